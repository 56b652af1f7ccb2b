//go:build unix

package bench

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChildLifecycle: a child says where it listens, exits when its
// parent closes its stdin, exits by itself past its time bound, is killed
// by its PID when it does not exit, and cannot start children itself.
func TestChildLifecycle(t *testing.T) {
	closed := func(t *testing.T, c *child) {
		t.Helper()
		done := make(chan struct{})
		go func() { c.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(childExitWait + 10*time.Second):
			_ = c.cmd.Process.Kill()
			t.Fatalf("Close of child %d did not return", c.cmd.Process.Pid)
		}
		if c.cmd.ProcessState == nil {
			t.Fatal("child not reaped")
		}
	}
	t.Run("closed", func(t *testing.T) {
		c, url, err := spawn(roleNATS, childConfig{Limit: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(url, "nats://127.0.0.1:") {
			t.Errorf("nats child listens on %q, not 127.0.0.1", url)
		}
		closed(t, c)
		if !c.cmd.ProcessState.Success() {
			t.Errorf("child: %v", c.cmd.ProcessState)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		c, _, err := spawn(roleServer, childConfig{Sys: TCP, Limit: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.readDone:
		case <-time.After(20 * time.Second):
			t.Error("a child past its time bound did not exit")
		}
		closed(t, c)
		if code := c.cmd.ProcessState.ExitCode(); code != 3 {
			t.Errorf("exit code %d, want 3 (over its bound)", code)
		}
	})
	t.Run("killed", func(t *testing.T) {
		defer func(d time.Duration) { childExitWait = d }(childExitWait)
		childExitWait = 200 * time.Millisecond
		c, _, err := spawn(roleServer, childConfig{Sys: TCP, Limit: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		// A stopped child cannot read its closed stdin: only a kill ends it.
		if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		waitStopped(t, c.cmd.Process.Pid)
		closed(t, c)
		if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("child: %v, want killed", c.cmd.ProcessState)
		}
	})
	t.Run("no grandchildren", func(t *testing.T) {
		t.Setenv(roleEnv, roleSub)
		if c, _, err := spawn(roleNATS, childConfig{}); err == nil {
			c.Close()
			t.Error("a child could start a child")
		}
	})
}

// waitStopped waits until the kernel reports pid stopped (state T in
// /proc/pid/stat): kill(2) queues SIGSTOP, and a child that reads its
// closed stdin before the stop takes effect would exit by itself.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Skipf("no /proc to see the child stopped: %v", err)
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return
		}
		time.Sleep(time.Millisecond) // polling the kernel's state, with a deadline
	}
	t.Fatalf("child %d not stopped after SIGSTOP", pid)
}
