package mdns_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/mdns"
)

// settleWindow is the first browse session's life (browse.go sessionLife).
const settleWindow = time.Second

// TestSettledAfterFirstLook: Settled closes within a bounded time after
// Start, not before the first session's window is over, and by then the
// Joined of every peer that was announcing before Start has been sent:
// read by the consumer, or waiting in the channel.
func TestSettledAfterFirstLook(t *testing.T) {
	inNS(t, func(t *testing.T) {
		// More peers than the event channel buffers, so that Settled has
		// to wait for the consumer. They are bare zeroconf servers, as
		// in TestMalformedTXTIgnored: they answer queries (from their
		// registration on) and announce themselves, but send no query.
		const n = 20
		want := map[string]bool{}
		for i := range n {
			id := newID()
			want[id] = true
			rawServer(t, fmt.Sprintf("p%d-%s", i, id), 7100+i, []string{"v=1", "id=" + id})
		}

		d := mdns.New(mdns.WithInterfaces("lo"), mdns.WithLogger(logger(t)))
		settled := d.Settled()
		if d.Settled() != settled {
			t.Fatal("Settled returned two different channels")
		}
		select {
		case <-settled:
			t.Fatal("Settled closed before Start")
		default:
		}
		began := time.Now()
		events, err := d.Start(peer("observer", 7001, 7002, ""))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = d.Close() }()

		// The consumer reads events until told to stop, and then hands over
		// the Joined it read; a select that picks stop has read nothing.
		stop := make(chan struct{})
		read := make(chan map[string]bool, 1)
		go func() {
			got := map[string]bool{}
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						read <- got
						return
					}
					if ev.Kind == discovery.Joined {
						got[ev.Peer.ID] = true
					}
				case <-stop:
					read <- got
					return
				}
			}
		}()
		deadline := time.NewTimer(timeout)
		defer deadline.Stop()
		select {
		case <-settled:
		case <-deadline.C:
			close(stop)
			t.Fatalf("Settled not closed %v after Start; Joined read: %d of %d", timeout, len(<-read), n)
		}
		el := time.Since(began)
		close(stop)
		got := <-read
		fromConsumer := len(got)
		for drained := false; !drained; { // what was sent but not read yet
			select {
			case ev := <-events:
				if ev.Kind == discovery.Joined {
					got[ev.Peer.ID] = true
				}
			default:
				drained = true
			}
		}
		t.Logf("Settled %v after Start; Joined read before: %d, in the channel: %d", el, fromConsumer, len(got)-fromConsumer)
		if el < settleWindow {
			t.Errorf("Settled %v after Start, before the first session's %v window was over", el, settleWindow)
		}
		for id := range want {
			if !got[id] {
				t.Errorf("no Joined for %s sent before Settled closed", id)
			}
		}
		if d.Settled() != settled {
			t.Error("Settled returned another channel after Start")
		}
	})
}

// TestSettledLifecycle: Settled stays open before Start, after a failed
// Start and after a Close that comes first; a Close within the window
// neither panics nor leaks; a Start that succeeds after a failed one
// settles; Close after Settled leaves it closed.
func TestSettledLifecycle(t *testing.T) {
	inNS(t, func(t *testing.T) {
		isClosed := func(c <-chan struct{}) bool {
			select {
			case <-c:
				return true
			default:
				return false
			}
		}
		self := peer("n", 7001, 7002, "")

		// Closed before Start.
		d := mdns.New(mdns.WithInterfaces("lo"))
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Start(self); !errors.Is(err, discovery.ErrClosed) {
			t.Fatalf("Start after Close: %v", err)
		}
		if isClosed(d.Settled()) {
			t.Error("Settled closed although Start never succeeded")
		}

		// A failed Start, then one that succeeds.
		d = mdns.New(mdns.WithInterfaces("lo"), mdns.WithLogger(logger(t)))
		settled := d.Settled()
		if _, err := d.Start(discovery.Peer{ID: "bad id", Router: ":1"}); err == nil {
			t.Fatal("Start with a bad ID succeeded")
		}
		if isClosed(settled) {
			t.Fatal("Settled closed by a failed Start")
		}
		if _, err := d.Start(self); err != nil {
			t.Fatal(err)
		}
		select {
		case <-settled:
		case <-time.After(timeout):
			t.Fatalf("Settled not closed %v after Start", timeout)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if !isClosed(d.Settled()) || d.Settled() != settled {
			t.Error("Settled changed by Close")
		}

		// Close within the window, several times; goleak checks below.
		for i := range 3 {
			d := mdns.New(mdns.WithInterfaces("lo"))
			if _, err := d.Start(self); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("Close %d within the window: Settled closed: %v", i, isClosed(d.Settled()))
		}
		goleak.VerifyNone(t)
	})
}
