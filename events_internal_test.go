package colugo

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport/inproc"
)

// TestEventsDefaultBuffer: a watcher that stops reading keeps
// DefaultEventBuffer (1024) events, the latest, drops the older ones,
// counts them, and reports ErrSlowConsumer once per episode.
func TestEventsDefaultBuffer(t *testing.T) {
	errs := make(chan error, 8)
	n, err := NewNode("n", WithTransport(inproc.NewNetwork().New()), WithDiscovery(discovery.Static()),
		WithErrorHandler(func(err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	evs := n.Events(t.Context())
	n.mu.Lock()
	var w *watcher
	for w = range n.watchers {
	}
	n.mu.Unlock()

	emit := func(from, to int) {
		n.mu.Lock()
		defer n.mu.Unlock()
		for i := from; i < to; i++ {
			n.emitLocked(discovery.Updated, PeerInfo{Name: fmt.Sprint(i)})
		}
	}
	nextErr := func() error {
		select {
		case err := <-errs:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("no error reported")
			return nil
		}
	}
	const burst = 3000
	emit(0, burst)
	w.mu.Lock()
	queued := len(w.queue)
	w.mu.Unlock()
	if queued != DefaultEventBuffer {
		t.Fatalf("%d events queued, want DefaultEventBuffer = %d", queued, DefaultEventBuffer)
	}
	// The pump may hold one more, taken before the burst filled the queue.
	if d := n.Stats().EventsDropped; d != burst-DefaultEventBuffer && d != burst-DefaultEventBuffer-1 {
		t.Fatalf("EventsDropped = %d, want %d or one less", d, burst-DefaultEventBuffer)
	}
	if err := nextErr(); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("reported %v, want ErrSlowConsumer", err)
	}
	// The reader gets the latest events, in order.
	got, last := 0, -1
	for ev := range evs {
		var i int
		fmt.Sscan(ev.Peer.Name, &i)
		if i <= last {
			t.Fatalf("event %d after %d", i, last)
		}
		last = i
		if got++; i == burst-1 {
			break
		}
	}
	if got != DefaultEventBuffer && got != DefaultEventBuffer+1 {
		t.Fatalf("read %d events, want %d (or one more)", got, DefaultEventBuffer)
	}
	select {
	case err := <-errs:
		t.Fatalf("reported twice in one episode: %v", err)
	default:
	}
	// Once the reader has caught up, a new burst is a new episode.
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		dropping := w.dropping
		w.mu.Unlock()
		if !dropping {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the episode did not end after the reader caught up")
		}
		time.Sleep(time.Millisecond)
	}
	emit(burst, burst+DefaultEventBuffer+10)
	if err := nextErr(); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("second episode: %v", err)
	}
}

// TestEventBufferAtLeastOne: WithEventBuffer below 1 counts as 1, and the
// first snapshot always fits.
func TestEventBufferAtLeastOne(t *testing.T) {
	n, err := NewNode("n", WithTransport(inproc.NewNetwork().New()), WithDiscovery(discovery.Static()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Events(t.Context(), WithEventBuffer(0), nil)
	n.mu.Lock()
	defer n.mu.Unlock()
	for w := range n.watchers {
		if w.limit != 1 {
			t.Fatalf("limit %d, want 1", w.limit)
		}
	}
}
