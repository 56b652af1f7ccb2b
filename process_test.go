package colugo_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery/local"
)

const registryEnv = "COLUGO_TEST_REGISTRY"

// TestHelperNode is not a test: it is the child process of
// TestTwoProcesses, a node serving and publishing until its stdin closes.
func TestHelperNode(t *testing.T) {
	dir := os.Getenv(registryEnv)
	if dir == "" {
		t.Skip("child process of TestTwoProcesses only")
	}
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
	pub, _ := colugo.NewPublisher[int](node, "proc/ticks")
	stdinClosed := make(chan struct{})
	go func() { _, _ = bufio.NewReader(os.Stdin).ReadString('\n'); close(stdinClosed) }()
	os.Stdout.WriteString("ready\n")
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stdinClosed:
			return
		case <-time.After(30 * time.Second):
			return
		case <-tick.C:
			_ = pub.Publish(t.Context(), i)
		}
	}
}

// TestTwoProcesses runs a node in a child process on real sockets with
// host-local discovery: pub/sub and request/reply across processes, then a
// SIGKILL of the child mid-request.
func TestTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNode$")
	cmd.Env = append(os.Environ(), registryEnv+"="+dir)
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
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(wait):
			_ = cmd.Process.Kill() // our child, by its PID
			<-exited
		}
	})
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child said %q, %v", line, err)
	}

	node, err := colugo.NewNode("parent", colugo.WithDiscovery(local.New(local.WithDir(dir))))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	ticks, err := colugo.Subscribe[int](t.Context(), node, "proc/ticks")
	if err != nil {
		t.Fatal(err)
	}
	prev := colugotestNext(t, ticks)
	for range 5 {
		v := colugotestNext(t, ticks)
		if v <= prev {
			t.Fatalf("ticks out of order: %d after %d", v, prev)
		}
		prev = v
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	r, err := colugo.Request[AddReq, AddResp](ctx, node, "proc/add", AddReq{A: 20, B: 22})
	if err != nil || r.Sum != 42 {
		t.Fatalf("proc/add: %+v %v", r, err)
	}

	// Kill the child while a request is in flight.
	errc := make(chan error, 1)
	go func() { _, err := colugo.Request[int, int](ctx, node, "proc/block", 1); errc <- err }()
	if line, err := br.ReadString('\n'); err != nil || strings.TrimSpace(line) != "blocking" {
		t.Fatalf("child said %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, colugo.ErrPeerLost) {
			t.Fatalf("request to a killed node: %v, want ErrPeerLost", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("request still waiting 3s after its server was killed")
	}
	// The registry notices the dead entry: the service disappears.
	eventually(t, "the killed node to leave", func() bool { return len(node.Peers()) == 0 })
	if _, err := colugo.Request[AddReq, AddResp](ctx, node, "proc/add", AddReq{}, colugo.WithFailFast()); !errors.Is(err, colugo.ErrNoResponders) {
		t.Fatalf("after the kill: %v, want ErrNoResponders", err)
	}
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
