package netns

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// IP runs ip(8) with args inside [Run] and fails t on error (for example
// to give br0 an address, so that this namespace can reach the hosts).
func IP(t testing.TB, args ...string) {
	t.Helper()
	if !Inside() {
		t.Fatalf("netns: IP outside Run")
	}
	ip(t, args...)
}

// Capture is a tcpdump(8) running inside [Run], started by [StartCapture].
type Capture struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string       // packet lines so far
	more  chan struct{}  // closed and replaced when a line arrives
	done  chan struct{}  // closed when tcpdump's output ends
	wg    sync.WaitGroup // the two readers of its output
	once  sync.Once
}

// StartCapture runs tcpdump on iface ("any" for every interface) with the
// pcap filter, numeric and line-buffered, and returns once tcpdump says it
// is listening, so no packet sent afterwards is missed. It must be called
// inside Run; it skips t when tcpdump is not installed. A cleanup stops it.
func StartCapture(t *testing.T, iface, filter string) *Capture {
	t.Helper()
	if !Inside() {
		t.Fatalf("netns: StartCapture outside Run")
	}
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skipf("skipping: tcpdump not installed: %v", err)
	}
	cmd := exec.Command(path, "-i", iface, "-n", "-l", "-U", "-s", "128", filter)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("netns: start tcpdump: %v", err)
	}
	c := &Capture{cmd: cmd, more: make(chan struct{}), done: make(chan struct{})}
	listening := make(chan error, 1)
	c.wg.Go(func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			t.Log("tcpdump: " + sc.Text())
			if !said && strings.HasPrefix(sc.Text(), "listening on") {
				said = true
				listening <- nil
			}
		}
		if !said {
			listening <- fmt.Errorf("netns: tcpdump exited before listening")
		}
	})
	c.wg.Go(func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			close(c.more)
			c.more = make(chan struct{})
			c.mu.Unlock()
		}
	})
	t.Cleanup(func() { c.Stop() })
	select {
	case err := <-listening:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("netns: tcpdump not listening after 10s")
	}
	return c
}

// WaitFor waits until a captured line contains s, or d passes, and
// reports whether one did.
func (c *Capture) WaitFor(s string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		c.mu.Lock()
		for _, l := range c.lines {
			if strings.Contains(l, s) {
				c.mu.Unlock()
				return true
			}
		}
		more := c.more
		c.mu.Unlock()
		select {
		case <-more:
		case <-c.done:
			return false
		case <-deadline:
			return false
		}
	}
}

// Stop stops tcpdump (SIGINT, then it flushes and exits) and returns every
// packet line it printed. It is idempotent.
func (c *Capture) Stop() []string {
	c.once.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		c.wg.Wait() // every read from the pipes is done before Wait
		_ = c.cmd.Wait()
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// TCPListeners returns the local addresses ("ip:port") of every listening
// TCP socket in this network namespace, from /proc/net/tcp and tcp6.
func TCPListeners(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatalf("netns: %v", err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			if i == 0 || len(fields) < 4 || fields[3] != "0A" { // 0A: TCP_LISTEN
				continue
			}
			addr, err := procAddr(fields[1])
			if err != nil {
				t.Fatalf("netns: %s: %v", f, err)
			}
			out = append(out, addr)
		}
	}
	return out
}

// procAddr decodes a /proc/net/tcp{,6} address: the IP as 32-bit words in
// host (little-endian here) order, then the port in hex.
func procAddr(s string) (string, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("bad address %q", s)
	}
	ipb := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		for k := range 4 {
			ipb[w+k] = raw[w+3-k]
		}
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", fmt.Errorf("bad port in %q", s)
	}
	return net.JoinHostPort(ipb.String(), strconv.FormatUint(port, 10)), nil
}
