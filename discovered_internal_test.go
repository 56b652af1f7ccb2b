package colugo

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
)

// preSettled is a Settler that has settled before Start, with its first
// look's events still unread in its channel.
type preSettled struct {
	ch      chan discovery.Event
	settled chan struct{}
	once    sync.Once
}

func (d *preSettled) Start(discovery.Peer) (<-chan discovery.Event, error) { return d.ch, nil }
func (d *preSettled) Update(discovery.Peer) error                          { return nil }
func (d *preSettled) Close() error                                         { d.once.Do(func() { close(d.ch) }); return nil }
func (d *preSettled) Settled() <-chan struct{}                             { return d.settled }

// TestSettledAfterBufferedEvents: when discovery settles, the node applies
// the events it sent before (still buffered) before it counts as settled,
// so WaitDiscovered never returns with peers of the first look missing.
// The settled and event cases are ready together, so without the drain a
// node settles early about half the time: several nodes make that sure.
func TestSettledAfterBufferedEvents(t *testing.T) {
	t.Setenv(EnvDiscovery, "") // it would win over WithDiscovery
	const nodes, peers = 8, 32
	for i := range nodes {
		d := &preSettled{ch: make(chan discovery.Event, peers), settled: make(chan struct{})}
		for j := range peers {
			d.ch <- discovery.Event{Kind: discovery.Joined, Peer: discovery.Peer{
				ID: fmt.Sprint("p", j), Name: "p", Router: "127.0.0.1:1", Pub: "127.0.0.1:1",
			}}
		}
		close(d.settled)
		n, err := NewNode(fmt.Sprint("n", i), WithDiscovery(d))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-n.settled:
		case <-time.After(10 * time.Second):
			t.Fatal("not settled within 10s")
		}
		n.mu.Lock()
		got := len(n.peers)
		n.mu.Unlock()
		_ = n.Close()
		if got != peers {
			t.Fatalf("node %d settled knowing %d of the %d peers its discovery had sent", i, got, peers)
		}
	}
}

// TestSettledWhenDiscoveryEnds: a discovery whose channel closes before it
// settles does not leave WaitDiscovered waiting.
func TestSettledWhenDiscoveryEnds(t *testing.T) {
	t.Setenv(EnvDiscovery, "")
	d := &preSettled{ch: make(chan discovery.Event), settled: make(chan struct{})}
	n, err := NewNode("n", WithDiscovery(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	_ = d.Close()
	select {
	case <-n.settled:
	case <-time.After(10 * time.Second):
		t.Fatal("a discovery that ended unsettled left the node unsettled")
	}
}
