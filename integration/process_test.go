package integration

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
)

const registryEnv = "COLUGO_TEST_REGISTRY"

// nodeRole is the child process of TestTwoProcesses: a node serving and
// publishing until its stdin closes.
func nodeRole(t *testing.T) {
	dir := os.Getenv(registryEnv)
	node, err := colugo.NewNode("child", colugo.WithDiscovery(local.New(local.WithDir(dir))))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	_, _ = colugo.Serve(node, "proc/add", add)
	_, _ = colugo.Serve(node, "proc/block", func(ctx context.Context, _ int) (int, error) {
		os.Stdout.WriteString("blocking\n") // tells the parent the request arrived
		<-ctx.Done()
		return 0, ctx.Err()
	})
	pub, _ := colugo.NewPublisher[tick](node, "proc/ticks")
	pid := os.Getpid()
	stdinClosed := make(chan struct{})
	go func() { _, _ = bufio.NewReader(os.Stdin).ReadString('\n'); close(stdinClosed) }()
	os.Stdout.WriteString("ready " + node.Endpoint().Router + "\n")
	ticker := time.NewTicker(2 * time.Millisecond)
	defer ticker.Stop()
	for i := 0; ; i++ {
		select {
		case <-stdinClosed:
			return
		case <-time.After(30 * time.Second):
			return
		case <-ticker.C:
			_ = pub.Publish(t.Context(), tick{PID: pid, N: i})
		}
	}
}

// tick is what a child publishes: a counter tagged with the child's PID,
// so that ticks of a killed child still queued at the parent are told from
// those of the next child, whose counter starts again at 0.
type tick struct{ PID, N int }

type child struct {
	router string
	cmd    *exec.Cmd
	out    *bufio.Reader
	exited chan error
}

// startChild runs nodeRole in a new process registered in dir.
func startChild(t *testing.T, dir string) *child {
	t.Helper()
	c := spawn(t, "node", registryEnv+"="+dir)
	c.router = strings.TrimSpace(strings.TrimPrefix(c.expect(t, "ready"), "ready"))
	return c
}

// spawn runs the role named role (see roles) in a new process of this
// test binary with env added; the child ends when its stdin closes (at
// cleanup) or is killed by its PID if it does not.
func spawn(t *testing.T, role string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRole$")
	cmd.Env = append(os.Environ(), append([]string{roleEnv + "=" + role}, env...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: bufio.NewReader(out), exited: make(chan error, 1)}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-c.exited:
		case <-time.After(wait):
			_ = cmd.Process.Kill() // our child, by its PID
			<-c.exited
		}
	})
	return c
}

func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	line, err := c.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, prefix) {
		t.Fatalf("child said %q, %v; want %q", line, err, prefix)
	}
	return line
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil { // SIGKILL, by PID
		t.Fatal(err)
	}
	<-c.exited
	c.exited <- nil // for the cleanup
}

// nextEvent returns the next event of kind, skipping others.
func nextEvent(t *testing.T, evs <-chan colugo.PeerEvent, kind discovery.EventKind, within time.Duration) colugo.PeerEvent {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev := <-evs:
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %v event within %v", kind, within)
		}
	}
}

// TestTwoProcesses runs a node in a child process on real sockets with
// host-local discovery: pub/sub and request/reply across processes, a
// SIGKILL of the child mid-request, and a restart that is found again.
func TestTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	ch := startChild(t, dir)

	node, err := colugo.NewNode("parent", colugo.WithDiscovery(local.New(local.WithDir(dir))))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	events := node.Events(t.Context())
	if ev := nextEvent(t, events, discovery.Joined, wait); ev.Peer.Name != "child" || ev.Peer.Router != ch.router || len(ev.Peer.Services) != 2 {
		t.Fatalf("joined: %+v", ev.Peer)
	}
	ticks, err := colugo.Subscribe[tick](t.Context(), node, "proc/ticks")
	if err != nil {
		t.Fatal(err)
	}
	// expectTicks reads six ticks of c in order, skipping those of an
	// earlier child still queued here (it flaked so, 1 run in ~108).
	expectTicks := func(c *child) {
		var prev tick
		for got := 0; got < 6; {
			v := colugotestNext(t, ticks)
			if v.PID != c.cmd.Process.Pid {
				continue
			}
			if got > 0 && v.N <= prev.N {
				t.Fatalf("ticks out of order: %d after %d", v.N, prev.N)
			}
			prev = v
			got++
		}
	}
	expectTicks(ch)
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	r, err := colugo.Request[AddReq, AddResp](ctx, node, "proc/add", AddReq{A: 20, B: 22})
	if err != nil || r.Sum != 42 {
		t.Fatalf("proc/add: %+v %v", r, err)
	}

	// Kill the child while a request is in flight.
	errc := make(chan error, 1)
	go func() { _, err := colugo.Request[int, int](ctx, node, "proc/block", 1); errc <- err }()
	ch.expect(t, "blocking")
	killed := time.Now()
	ch.kill(t)
	select {
	case err := <-errc:
		if !errors.Is(err, colugo.ErrPeerLost) {
			t.Fatalf("request to a killed node: %v, want ErrPeerLost", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("request still waiting 3s after its server was killed")
	}
	nextEvent(t, events, discovery.Left, 3*time.Second)
	t.Logf("SIGKILL to Left: %v", time.Since(killed))
	if _, err := colugo.Request[AddReq, AddResp](ctx, node, "proc/add", AddReq{}, colugo.WithFailFast()); !errors.Is(err, colugo.ErrNoResponders) {
		t.Fatalf("after the kill: %v, want ErrNoResponders", err)
	}

	// A new process with the same name is found, and traffic resumes by itself.
	ch2 := startChild(t, dir)
	if ev := nextEvent(t, events, discovery.Joined, wait); ev.Peer.Router != ch2.router {
		t.Fatalf("rejoined: %+v", ev.Peer)
	}
	expectTicks(ch2)
	if r, err := colugo.Request[AddReq, AddResp](ctx, node, "proc/add", AddReq{A: 1, B: 1}); err != nil || r.Sum != 2 {
		t.Fatalf("after restart: %+v %v", r, err)
	}
}

// TestLivenessWithoutDiscovery finds a child through a static seed, which
// never reports departures: the Left after SIGKILL comes from the node's
// own liveness check (connection loss, then no $describe answer).
func TestLivenessWithoutDiscovery(t *testing.T) {
	ch, node, events := staticParent(t)
	ticks, _ := colugo.Subscribe[tick](t.Context(), node, "proc/ticks")
	colugotestNext(t, ticks)
	killed := time.Now()
	ch.kill(t)
	ev := nextEvent(t, events, discovery.Left, 3*time.Second)
	t.Logf("SIGKILL to Left (static seed): %v", time.Since(killed))
	if ev.Peer.Router != ch.router {
		t.Fatalf("left: %+v", ev.Peer)
	}
}

// staticParent starts a child and a node that knows it only as a static
// seed (which never reports departures), and waits for it to join.
func staticParent(t *testing.T) (*child, *colugo.Node, <-chan colugo.PeerEvent) {
	t.Helper()
	ch := startChild(t, t.TempDir())
	t.Setenv(colugo.EnvDiscovery, "static:"+ch.router) // CI's "local" would replace the seed
	node, err := colugo.NewNode("parent", colugo.WithDiscovery(discovery.Static(ch.router)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	events := node.Events(t.Context())
	nextEvent(t, events, discovery.Joined, wait)
	return ch, node, events
}

func colugotestNext[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatal("no value")
		panic("unreachable")
	}
}

// TestLivenessFrozenPeer stops a child with SIGSTOP: its kernel keeps the
// connections open, so only heartbeats can tell. Left must come within 3s.
func TestLivenessFrozenPeer(t *testing.T) {
	ch, _, events := staticParent(t)
	if err := ch.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ch.cmd.Process.Signal(syscall.SIGCONT) }()
	stopped := time.Now()
	nextEvent(t, events, discovery.Left, 3500*time.Millisecond)
	el := time.Since(stopped)
	t.Logf("SIGSTOP to Left: %v", el)
	if el > 3*time.Second {
		t.Errorf("frozen peer left after %v, want within 3s", el)
	}
}
