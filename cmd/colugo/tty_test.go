package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair (Linux: /dev/ptmx, unlock, ptsname).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		m.Close()
		t.Skipf("ptsname: %v", e)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("pts: %v", err)
	}
	return m, s
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestProgressOnTerminal: with stderr on a terminal, a wait longer than a
// second prints a progress line; TestContract checks that a pipe gets none.
func TestProgressOnTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	master, slave := openPTY(t)
	defer master.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "echo", "no/such", "--timeout", "2s")
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "COLUGO_DISCOVERY=local")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var tty bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&tty, master); close(copied) }() // ends with EIO when the child exits
	err := cmd.Wait()
	<-copied
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	got := tty.String()
	if !strings.Contains(got, `colugo echo: waiting up to 2s for a publisher of topic "no/such" (--timeout)...`) ||
		!strings.Contains(got, `no publisher of topic "no/such" found within 2s`) || out.Len() != 0 {
		t.Fatalf("terminal got %q, stdout %q", got, out.String())
	}
}
