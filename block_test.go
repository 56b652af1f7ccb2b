package colugo_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

// TestLocalBlockDoesNotStallPublish: a stalled Block subscription on the
// publishing node does not hold up Publish. A healthy subscription gets
// every message in order, the stalled one's drops are counted and
// reported once, its channel still closes when its ctx ends, and Close
// does not wait behind its pending delivery. (Before the hand-off queue,
// the second Publish waited the whole Block duration.)
func TestLocalBlockDoesNotStallPublish(t *testing.T) {
	var slow atomic.Int64
	n := colugotest.NewNode(t, "n", colugo.WithErrorHandler(func(err error) {
		if errors.Is(err, colugo.ErrSlowConsumer) {
			slow.Add(1)
		}
	}))
	const count = 100
	stalledCtx, cancelStalled := context.WithCancel(t.Context())
	defer cancelStalled()
	stalled, err := colugo.Subscribe[int](stalledCtx, n, "t", colugo.WithBuffer(1), colugo.WithQueueBytes(1), colugo.WithDropPolicy(colugo.Block(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	healthy, err := colugo.Subscribe[int](t.Context(), n, "t", colugo.WithBuffer(count))
	if err != nil {
		t.Fatal(err)
	}
	healthyBlock, err := colugo.Subscribe[int](t.Context(), n, "t", colugo.WithBuffer(count), colugo.WithDropPolicy(colugo.Block(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[int](n, "t")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for i := range count {
			if err := pub.Publish(t.Context(), i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait): // a guard against a hang, not a measurement
		cancelStalled() // lets the publisher go
		t.Fatal("Publish waited for a stalled Block subscriber on its own node")
	}
	for i := range count {
		if got := colugotest.Next(t, healthy, wait); got != i {
			t.Fatalf("healthy subscriber: got %d, want %d", got, i)
		}
		if got := colugotest.Next(t, healthyBlock, wait); got != i {
			t.Fatalf("healthy Block subscriber: got %d, want %d", got, i)
		}
	}
	// The stalled one holds at most 2 (its channel, and its queue, which
	// takes one value whatever its bound); the rest were dropped and
	// counted.
	if d := n.Stats().Topics["t"].Dropped; d < count-3 {
		t.Fatalf("dropped %d, want at least %d", d, count-3)
	}
	if s := slow.Load(); s != 1 {
		t.Fatalf("%d ErrSlowConsumer reports, want 1 for one episode", s)
	}
	if got := colugotest.Next(t, stalled, wait); got != 0 {
		t.Fatalf("stalled subscriber: first value %d, want 0", got)
	}
	cancelStalled()
	deadline := time.After(wait)
	for open := true; open; {
		select {
		case _, open = <-stalled:
		case <-deadline:
			t.Fatal("the stalled subscription's channel did not close after its ctx ended")
		}
	}
}

// TestCloseDoesNotWaitForBlock: Node.Close returns while a Block
// subscription is waiting for room, for a local publisher's message (a
// back-pressured Publish) and for a remote one's (on the connection's goroutine),
// and closes the channels. (Before, Close waited out the Block duration.)
func TestCloseDoesNotWaitForBlock(t *testing.T) {
	net := colugotest.NewNetwork(t)
	a, b := net.NewNode("a"), net.NewNode("b")
	local, err := colugo.Subscribe[int](t.Context(), b, "t", colugo.WithBuffer(1), colugo.WithQueueBytes(1), colugo.WithDropPolicy(colugo.Block(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	remote, err := colugo.Subscribe[int](t.Context(), b, "r", colugo.WithBuffer(1), colugo.WithQueueBytes(1), colugo.WithDropPolicy(colugo.Block(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	// A local publisher waits for a Block subscription with back-pressure only.
	pb, err := colugo.NewPublisher[int](b, "t", colugo.WithBackPressure(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	pa, err := colugo.NewPublisher[int](a, "r")
	if err != nil {
		t.Fatal(err)
	}
	if err := pa.WaitSubscribers(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	// Fill both channels, then make a delivery wait for room in each.
	var published sync.WaitGroup
	for _, publish := range []func(context.Context, int) error{pb.Publish, pa.Publish} {
		published.Go(func() {
			for i := range 3 {
				_ = publish(t.Context(), i)
			}
		})
	}
	testwait.Until(t, "deliveries waiting", func() bool {
		st := b.Stats().Topics
		return st["t"].Received >= 2 && st["r"].Received >= 2
	})
	closed := make(chan struct{})
	go func() { _ = b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(wait): // a guard against a hang, not a measurement
		t.Fatal("Close waited for a Block delivery")
	}
	published.Wait()
	for name, ch := range map[string]<-chan int{"local": local, "remote": remote} {
		deadline := time.After(wait)
		for open := true; open; {
			select {
			case _, open = <-ch:
			case <-deadline:
				t.Fatalf("%s Block subscription's channel not closed by Close", name)
			}
		}
	}
}
