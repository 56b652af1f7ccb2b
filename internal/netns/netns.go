// Package netns runs tests that need a network (multicast above all) inside
// private Linux network namespaces, so that no packet they send can leave
// the machine through a real interface.
//
// A test calls [Run] first. Run re-executes the test binary, restricted to
// that one test, under unshare(1) with a new network namespace and a new
// mount namespace (plus a new user namespace when not root), streams the
// child's output into the test log and passes, fails or skips with it.
// Inside, Run brings lo up with multicast and a 224.0.0.0/4 route, checks
// that lo is the only interface, and only then calls the test body. Where
// namespaces are unavailable (no unshare or ip, or not permitted), the test
// is skipped with the reason; it never runs in place.
//
// Inside Run, [NewHosts] builds simulated hosts: one network namespace each
// (ip netns add, in a private /run/netns), joined by veth pairs to a bridge,
// each with its own address in 10.77.0.0/24. [Host.Start] runs the test
// binary again in one host's namespace with a role, and the test reads the
// child's stdout; the child finds its role with [Role], which checks that
// its interfaces are only lo and its own veth before returning it.
package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment markers set on re-executed children.
const (
	envInside = "COLUGO_NETNS_INSIDE" // test name, in the private namespace
	envOuter  = "COLUGO_NETNS_OUTER"  // the parent's netns identity, to prove we left it
	envHost   = "COLUGO_NETNS_HOST"   // host name, in a host child
	envIface  = "COLUGO_NETNS_IFACE"  // the host's veth name
	envRole   = "COLUGO_NETNS_ROLE"   // role given by Host.Start
)

var (
	availOnce sync.Once
	availErr  error
)

// unshareArgs returns the unshare(1) flags: a new network and mount
// namespace, and a user namespace mapping us to root when we are not root
// (unprivileged users may create the others only inside one).
func unshareArgs() []string {
	if os.Geteuid() == 0 {
		return []string{"-n", "-m", "--propagation", "private"}
	}
	return []string{"-r", "-n", "-m", "--propagation", "private"}
}

// Available reports why namespaces cannot be used here, or nil. It checks
// that unshare and ip exist and that `unshare -n -m true` (with -r when not
// root) succeeds; the result is computed once per process.
func Available() error {
	availOnce.Do(func() {
		for _, tool := range []string{"unshare", "ip"} {
			if _, err := exec.LookPath(tool); err != nil {
				availErr = fmt.Errorf("netns: %s not found (util-linux provides unshare, iproute2 provides ip): %w", tool, err)
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		args := append(unshareArgs(), "true")
		if out, err := exec.CommandContext(ctx, "unshare", args...).CombinedOutput(); err != nil {
			availErr = fmt.Errorf("netns: unshare %s not permitted: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	})
	return availErr
}

// netnsID identifies the current network namespace (the target of
// /proc/self/ns/net, e.g. "net:[4026531840]").
func netnsID() string {
	id, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return ""
	}
	return id
}

// runPattern returns a -test.run pattern that matches exactly the test
// (or subtest) called name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// childArgs returns the arguments that re-run test name in the current
// binary, keeping the parent's timeout and always verbose, so the result
// lines can be read.
func childArgs(t *testing.T, name string) []string {
	args := []string{"-test.run=" + runPattern(name), "-test.v", "-test.count=1"}
	if d, ok := t.Deadline(); ok {
		if left := time.Until(d) - 5*time.Second; left > 0 {
			args = append(args, "-test.timeout="+left.String())
		}
	}
	return args
}

// Inside reports whether this process is the namespaced child of [Run].
func Inside() bool { return os.Getenv(envInside) != "" }

// Run runs fn as the body of t inside a fresh private network namespace.
//
// In the parent it re-executes the test binary for t alone under unshare,
// blocks until that child exits, logs its output through t, and passes,
// fails or skips t with it; fn is not called in the parent. In the child it
// sets up lo (up, multicast, route 224.0.0.0/4), fails t unless the
// namespace differs from the parent's and lo is its only interface, and
// then calls fn(t). When namespaces are unavailable ([Available]), t is
// skipped with the reason. Run must be called from the test goroutine, once
// per test.
func Run(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	if Inside() {
		if os.Getenv(envInside) != t.Name() {
			t.Fatalf("netns: child for %q runs %q", os.Getenv(envInside), t.Name())
		}
		if outer := os.Getenv(envOuter); outer == "" || outer == netnsID() {
			t.Fatalf("netns: still in the parent's network namespace (%s); refusing to run", outer)
		}
		setupLoopback(t)
		CheckInterfaces(t, "lo")
		fn(t)
		return
	}
	if os.Getenv(envHost) != "" {
		t.Fatalf("netns: Run called in host child %s; use Role", os.Getenv(envHost))
	}
	if err := Available(); err != nil {
		t.Skipf("skipping: network namespaces unavailable: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("netns: test binary: %v", err)
	}
	args := append(unshareArgs(), "--", exe)
	args = append(args, childArgs(t, t.Name())...)
	cmd := exec.CommandContext(context.WithoutCancel(t.Context()), "unshare", args...)
	cmd.Env = append(os.Environ(), envInside+"="+t.Name(), envOuter+"="+netnsID())
	cmd.WaitDelay = 5 * time.Second
	out, err := streamRun(t, cmd, "")
	switch {
	case strings.Contains(out, "--- SKIP: "+t.Name()+" "):
		t.Skipf("skipped inside the namespace (see log)")
	case err != nil:
		t.Fatalf("netns: namespaced child failed: %v", err)
	case !strings.Contains(out, "--- PASS: "+t.Name()+" "):
		t.Fatalf("netns: namespaced child did not run %s", t.Name())
	}
}

// streamRun starts cmd with stdout and stderr merged, logs each line
// through t as it arrives (prefixed), waits for the exit and returns the
// whole output.
func streamRun(t *testing.T, cmd *exec.Cmd, prefix string) (string, error) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatalf("netns: pipe: %v", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		_ = pr.Close()
		_ = pw.Close()
		t.Fatalf("netns: start %s: %v", cmd.Path, err)
	}
	_ = pw.Close() // the child holds the write end now
	var all strings.Builder
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line)
		all.WriteByte('\n')
		t.Log(prefix + line)
	}
	_ = pr.Close()
	return all.String(), cmd.Wait()
}

// ip runs ip(8) with args and fails t on error.
func ip(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("netns: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

func setupLoopback(t *testing.T) {
	t.Helper()
	ip(t, "link", "set", "lo", "up")
	ip(t, "link", "set", "lo", "multicast", "on")
	ip(t, "route", "add", "224.0.0.0/4", "dev", "lo")
}

// CheckInterfaces fails t unless every network interface visible to the
// process is in allowed. Call it before opening any multicast socket.
func CheckInterfaces(t testing.TB, allowed ...string) {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatalf("netns: list interfaces: %v", err)
	}
	var bad []string
	for _, i := range ifs {
		ok := false
		for _, a := range allowed {
			ok = ok || i.Name == a
		}
		if !ok {
			bad = append(bad, i.Name)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("netns: unexpected interfaces %v (allowed %v); refusing to open sockets", bad, allowed)
	}
}

// Host is a simulated host made by [NewHosts]: a network namespace with lo
// and one veth, joined to the others through a bridge.
type Host struct {
	Name  string // network namespace name (ip netns), also the host's name
	Iface string // its veth, the only interface besides lo
	IP    string // IPv4 address of Iface, in 10.77.0.0/24

	test string // name of the test that made it, re-run by Start
}

// NewHosts creates n (1 to 200) simulated hosts, h1 … hn, with addresses
// 10.77.0.1 … 10.77.0.n on veths v1 … vn, and a bridge "br0" in the
// namespace of [Run] joining them (multicast snooping off, so mDNS floods).
// It must be called inside Run; the hosts vanish with the namespace. It
// fails t on any error.
func NewHosts(t *testing.T, n int) []*Host {
	t.Helper()
	if !Inside() {
		t.Fatalf("netns: NewHosts outside Run")
	}
	if n < 1 || n > 200 {
		t.Fatalf("netns: NewHosts(%d): want 1 to 200", n)
	}
	// A private /run/netns: this mount namespace is ours, so the names can
	// clash with nothing and disappear with us.
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		t.Fatalf("netns: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "mount", "-t", "tmpfs", "colugo-netns", "/run/netns").CombinedOutput(); err != nil {
		t.Fatalf("netns: mount tmpfs on /run/netns: %v: %s", err, out)
	}
	ip(t, "link", "add", "br0", "type", "bridge")
	ip(t, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0")
	ip(t, "link", "set", "br0", "up")
	hosts := make([]*Host, n)
	for i := range hosts {
		h := &Host{
			Name:  fmt.Sprintf("h%d", i+1),
			Iface: fmt.Sprintf("v%d", i+1),
			IP:    fmt.Sprintf("10.77.0.%d", i+1),
			test:  t.Name(),
		}
		peer := h.Iface + "p"
		ip(t, "netns", "add", h.Name)
		ip(t, "link", "add", h.Iface, "type", "veth", "peer", "name", peer)
		ip(t, "link", "set", h.Iface, "netns", h.Name)
		ip(t, "link", "set", peer, "master", "br0")
		ip(t, "link", "set", peer, "up")
		ip(t, "-n", h.Name, "addr", "add", h.IP+"/24", "dev", h.Iface)
		ip(t, "-n", h.Name, "link", "set", h.Iface, "up")
		ip(t, "-n", h.Name, "link", "set", h.Iface, "multicast", "on")
		hosts[i] = h
	}
	return hosts
}

// Role returns the role this process was started with by [Host.Start], or
// "" when it was not started that way. In a host child it first checks
// that the only interfaces are lo and the host's veth, and fails t (before
// the caller can open any socket) otherwise.
func Role(t testing.TB) string {
	t.Helper()
	host := os.Getenv(envHost)
	if host == "" {
		return ""
	}
	if outer := os.Getenv(envOuter); outer == "" || outer == netnsID() {
		t.Fatalf("netns: host child %s still in its parent's network namespace; refusing to run", host)
	}
	CheckInterfaces(t, "lo", os.Getenv(envIface))
	return os.Getenv(envRole)
}

// HostName returns the host name given to this process by [Host.Start],
// or "".
func HostName() string { return os.Getenv(envHost) }

// Proc is a child process started by [Host.Start].
type Proc struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	err   error
}

// Start runs the current test again in h's namespace (ip netns exec) with
// role (see [Role]) and the extra environment variables env ("K=V"). The
// child's stdout lines arrive on [Proc.Lines]; its stderr goes to t's log.
// A cleanup registered on t kills the child (by its pid) if it is still
// running when t ends, and waits for it.
func (h *Host) Start(t *testing.T, role string, env ...string) *Proc {
	t.Helper()
	if role == "" {
		t.Fatalf("netns: empty role")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("netns: test binary: %v", err)
	}
	args := append([]string{"netns", "exec", h.Name, exe}, childArgs(t, h.test)...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), envHost+"="+h.Name, envIface+"="+h.Iface, envRole+"="+role, envOuter+"="+netnsID())
	cmd.Env = append(cmd.Env, env...)
	cmd.Env = withoutEnv(cmd.Env, envInside)
	cmd.Stderr = &logWriter{t: t, prefix: h.Name + "/" + role + " stderr: "}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("netns: start in %s: %v", h.Name, err)
	}
	p := &Proc{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads that much: drop rather than stall the child
			}
		}
		close(p.lines)
		p.err = cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Lines returns the child's stdout, one line per value; it is closed when
// the child's stdout closes (normally at exit). Lines are dropped if more
// than 1024 wait unread.
func (p *Proc) Lines() <-chan string { return p.lines }

// Pid returns the child's process id (of ip netns exec, which execs the
// test binary, so the same process).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Wait blocks until the child exits or d passes, and returns its exit
// error (nil for success) or an error on timeout.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return errors.New("netns: child still running after " + d.String())
	}
}

// Signal sends sig to the child.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// logWriter sends what a child writes to the test log, a line at a time.
type logWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.t.Log(w.prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}
