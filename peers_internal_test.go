package colugo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery/local"
)

// Nodes on one host talk over the Unix sockets they advertise.
func TestSameHostUsesUnixSockets(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string) *Node {
		n, err := NewNode(name, WithDiscovery(local.New(local.WithDir(dir))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, b := mk("a"), mk("b")
	if a.Endpoint().LocalRouter == "" {
		t.Skip("no Unix domain sockets on this system")
	}
	_, _ = Serve(a, "svc", func(_ context.Context, x int) (int, error) { return x + 1, nil })
	ch, _ := Subscribe[int](t.Context(), a, "t")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		var dial, pub string
		for _, p := range b.peers {
			if p.visible() {
				dial, pub = p.dialRouter, p.pubAddr
			}
		}
		b.mu.Unlock()
		if strings.HasPrefix(dial, "unix:") && strings.HasPrefix(pub, "unix:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b reaches a at %q / %q, want unix sockets", dial, pub)
		}
		time.Sleep(time.Millisecond)
	}
	if v, err := Request[int, int](t.Context(), b, "svc", 1); err != nil || v != 2 {
		t.Fatalf("request over the Unix socket: %d %v", v, err)
	}
	pub, _ := NewPublisher[int](b, "t")
	if err := pub.WaitSubscribers(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	_ = pub.Publish(t.Context(), 7)
	select {
	case v := <-ch:
		if v != 7 {
			t.Fatalf("got %d", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing over the Unix socket")
	}
}
