package colugo_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/testwait"
)

// TestEventsBounded: a watcher that stops reading holds its buffer
// (WithEventBuffer) and drops the rest, counted and reported once, while
// the node and its other watchers carry on.
func TestEventsBounded(t *testing.T) {
	net := colugotest.NewNetwork(t)
	slow := make(chan error, 16)
	node := net.NewNode("watcher", colugo.WithErrorHandler(func(err error) {
		if errors.Is(err, colugo.ErrSlowConsumer) {
			slow <- err
		}
	}))
	stalled := node.Events(t.Context(), colugo.WithEventBuffer(2)) // never read until the end
	reader := node.Events(t.Context())
	const peers = 6
	for i := range peers {
		net.NewNode(fmt.Sprint("p", i))
	}
	// The reading watcher sees every join.
	for joined := 0; joined < peers; {
		select {
		case ev := <-reader:
			if ev.Kind == discovery.Joined {
				joined++
			}
		case <-time.After(wait):
			t.Fatal("the reading watcher missed joins")
		}
	}
	// The stalled one keeps 2 (and the one its pump holds): 3 of 6 dropped at least.
	testwait.Until(t, "drops to be counted", func() bool { return node.Stats().EventsDropped >= peers-3 })
	select {
	case err := <-slow:
		t.Logf("reported: %v", err)
	case <-time.After(wait):
		t.Fatal("ErrSlowConsumer not reported")
	}
	select {
	case err := <-slow:
		t.Fatalf("reported twice in one episode: %v", err)
	default:
	}
	for got := 0; got < 2; got++ { // what it kept comes when it reads again
		select {
		case <-stalled:
		case <-time.After(wait):
			t.Fatalf("the stalled watcher gave %d of the events it kept", got)
		}
	}
}
