package colugo_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
)

// TestWaitDiscovered: once a new node's first look is over, it knows every
// node that was there (host-local registry, static seeds), an unreachable
// seed does not hold it up for ever, and a discovery that never settles
// leaves the wait to ctx or Close.
func TestWaitDiscovered(t *testing.T) {
	// Else it wins over WithDiscovery. Every seed here is on loopback.
	t.Setenv(colugo.EnvDiscovery, "")
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		const others = 5
		for range others {
			hostileNode(t, "present", dir)
		}
		// A long poll interval: only the first poll can report the others
		// within this test's time.
		n, err := colugo.NewNode("late", colugo.WithDiscovery(local.New(local.WithDir(dir), local.WithPollInterval(time.Hour))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		if err := n.WaitDiscovered(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := len(n.Peers()); got != others {
			t.Errorf("after WaitDiscovered: %d peers, want %d", got, others)
		}
	})
	t.Run("static", func(t *testing.T) {
		a := hostileNode(t, "a", t.TempDir())
		// Nothing listens on the closed port: its $describe fails.
		gone := closedPort(t)
		n, err := colugo.NewNode("seeded", colugo.WithDiscovery(discovery.Static(a.Endpoint().Router, gone)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		if err := n.WaitDiscovered(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ps := n.Peers(); len(ps) != 1 || ps[0].ID != a.ID() {
			t.Errorf("after WaitDiscovered: %v, want only a", ps)
		}
	})
	t.Run("never settles", func(t *testing.T) {
		n, err := colugo.NewNode("waiting", colugo.WithDiscovery(&unsettled{Discovery: discovery.Static()}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := n.WaitDiscovered(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitDiscovered = %v, want DeadlineExceeded", err)
		}
		errc := make(chan error, 1)
		go func() { errc <- n.WaitDiscovered(t.Context()) }()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, colugo.ErrClosed) {
			t.Errorf("WaitDiscovered across Close = %v, want ErrClosed", err)
		}
	})
	t.Run("not a settler", func(t *testing.T) {
		a := hostileNode(t, "a", t.TempDir())
		n, err := colugo.NewNode("plain", colugo.WithDiscovery(plainDiscovery{discovery.Static(a.Endpoint().Router)}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		if err := n.WaitDiscovered(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// unsettled is a Settler whose first look never ends.
type unsettled struct {
	discovery.Discovery
}

func (*unsettled) Settled() <-chan struct{} { return nil }

// plainDiscovery hides its Discovery's Settled.
type plainDiscovery struct{ d discovery.Discovery }

func (p plainDiscovery) Start(self discovery.Peer) (<-chan discovery.Event, error) {
	return p.d.Start(self)
}
func (p plainDiscovery) Update(self discovery.Peer) error { return p.d.Update(self) }
func (p plainDiscovery) Close() error                     { return p.d.Close() }

// closedPort returns a loopback address nothing listens on (one that was
// just released).
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
