package colugo

import (
	"context"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport/inproc"
)

// TestPickTargetNoNodeLock: once a service's servers are known, picking
// one takes no node-wide lock, so requests do not queue behind whatever
// holds the node's mutex (discovery, $describe, a catalog change).
func TestPickTargetNoNodeLock(t *testing.T) {
	node, err := NewNode("n", WithTransport(inproc.NewNetwork().New()), WithDiscovery(discovery.Static()))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	if _, err := Serve(node, "svc", func(_ context.Context, x int) (int, error) { return x, nil }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := node.pickTarget(ctx, "svc", true); err != nil { // learns the servers
		t.Fatal(err)
	}
	node.mu.Lock()
	picked := make(chan error, 1)
	go func() {
		_, err := node.pickTarget(ctx, "svc", true)
		picked <- err
	}()
	select {
	case err := <-picked:
		node.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		node.mu.Unlock()
		<-picked
		t.Fatal("pickTarget waited for the node's mutex")
	}
	// A change of services empties the rotations: a closed server is not picked.
	srv2, err := Serve(node, "svc2", func(_ context.Context, x int) (int, error) { return x, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.pickTarget(ctx, "svc2", true); err != nil {
		t.Fatal(err)
	}
	_ = srv2.Close()
	if _, err := node.pickTarget(ctx, "svc2", true); err == nil {
		t.Fatal("a closed server was still picked")
	}
}
