package bridge

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// chainMsg is a stream message as inChain sees it.
type chainMsg struct {
	fakeMsg
	data []byte
}

func (m chainMsg) Data() []byte { return m.data }

// TestInChain: of one chain, messages stored after later ones (2 after 3
// and 4) are handed on in their exporter's order; a second copy of a held
// one is held once; another chain is not held up; one whose predecessor
// never comes goes on at the timeout; the bounds and stop give up or give
// back what waits.
func TestInChain(t *testing.T) {
	var out, nacked []uint64
	now := time.Unix(1000, 0)
	c := newInChain()
	c.now = func() time.Time { return now }
	deliver := func(m jetstream.Msg) { out = append(out, m.(chainMsg).seq) }
	add := func(key string, seq, prev uint64) {
		c.add(chainMsg{fakeMsg: fakeMsg{seq: seq, nacked: &nacked}, data: make([]byte, 10)}, chainKey{"s", key}, seq, prev, deliver)
	}
	add("a", 1, 0)
	add("a", 3, 2)
	add("a", 4, 3)
	add("a", 4, 3) // sent again while held
	add("b", 7, 0) // another chain goes on
	if !slices.Equal(out, []uint64{1, 7}) || c.n != 2 {
		t.Fatalf("handed on %v, held %d; want 1 7 and two held", out, c.n)
	}
	add("a", 2, 1)
	if !slices.Equal(out, []uint64{1, 7, 2, 3, 4}) || c.n != 0 || c.bytes != 0 {
		t.Fatalf("handed on %v, held %d (%d bytes); want 1 7 2 3 4, none held", out, c.n, c.bytes)
	}
	add("a", 5, 4)
	add("a", 1, 0) // the sender restarted: seqs from 1 again, no wait
	add("a", 2, 1)
	if !slices.Equal(out[5:], []uint64{5, 1, 2}) {
		t.Fatalf("after a restart, %v", out[5:])
	}

	// A predecessor that never comes (dropped where unchain could not
	// tell): given up on after chainTimeout, not before.
	out = nil
	add("c", 10, 0)
	add("c", 12, 11)
	add("c", 13, 12)
	now = now.Add(chainTimeout / 2)
	c.timeout()
	if len(out) != 1 || c.n != 2 {
		t.Fatalf("half way: handed on %v, held %d", out, c.n)
	}
	now = now.Add(chainTimeout)
	c.timeout()
	if !slices.Equal(out, []uint64{10, 12, 13}) || c.n != 0 {
		t.Fatalf("after the wait: handed on %v, held %d", out, c.n)
	}

	// Too much waiting: all of it goes on.
	out = nil
	add("d", 1, 0)
	for i := range uint64(maxChainHeld) {
		add("d", 100+i, 99+i)
	}
	if len(out) != maxChainHeld+1 || c.n != 0 || !slices.IsSorted(out[1:]) {
		t.Fatalf("past maxChainHeld: handed on %d, held %d", len(out), c.n)
	}

	// Stop gives back what waits.
	add("e", 1, 0)
	add("e", 3, 2)
	c.stop()
	if !slices.Equal(nacked, []uint64{3}) || c.n != 0 {
		t.Fatalf("stop gave back %v, held %d", nacked, c.n)
	}
}

// TestUnchain: a dropped message's successor of the same sender follows
// on from what the dropped one followed.
func TestUnchain(t *testing.T) {
	msg := func(sender, seq, prev string) *nats.Msg {
		m := nats.NewMsg("s")
		m.Header.Set(hSender, sender)
		m.Header.Set(hSeq, seq)
		if prev != "" {
			m.Header.Set(hPrev, prev)
		}
		return m
	}
	dropped := msg("x", "5", "4")
	other, next, later := msg("y", "9", "8"), msg("x", "6", "5"), msg("x", "7", "6")
	unchain(dropped, []*nats.Msg{other, next}, later)
	if next.Header.Get(hPrev) != "4" || other.Header.Get(hPrev) != "8" || later.Header.Get(hPrev) != "6" {
		t.Errorf("prev: next %q, other %q, later %q; want 4 8 6", next.Header.Get(hPrev), other.Header.Get(hPrev), later.Header.Get(hPrev))
	}
	first := msg("x", "1", "")
	second := msg("x", "2", "1")
	unchain(first, nil, second)
	if _, ok := second.Header[hPrev]; ok {
		t.Errorf("the first's successor still waits for %q", second.Header.Get(hPrev))
	}
}

// future is a PubAckFuture whose ack has come or not.
type future struct{ ok chan *jetstream.PubAck }

func (f future) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f future) Err() <-chan error            { return nil }
func (f future) Msg() *nats.Msg               { return nil }

// TestOvertaken: of five messages in flight, the 2nd's and 4th's acks came
// while the 1st's was awaited: the first four are settled (the 1st and
// 3rd lost with a leader change, to be sent again), the 5th still awaits
// its ack; with no later ack in, nothing is settled.
func TestOvertaken(t *testing.T) {
	var fl []flight
	for i := range 5 {
		f := future{make(chan *jetstream.PubAck, 1)}
		if i == 1 || i == 3 {
			f.ok <- &jetstream.PubAck{}
		}
		fl = append(fl, flight{f: f})
	}
	if n := overtaken(fl); n != 4 {
		t.Fatalf("settled %d, want 4", n)
	}
	for i, want := range []bool{false, true, false, true, false} {
		if fl[i].ok != want {
			t.Errorf("flight %d: ok %v, want %v", i, fl[i].ok, want)
		}
	}
	if n := overtaken(fl[4:]); n != 0 {
		t.Errorf("one in flight: settled %d", n)
	}
	pending := []flight{{f: future{make(chan *jetstream.PubAck, 1)}}, {f: future{make(chan *jetstream.PubAck, 1)}}}
	if n := overtaken(pending); n != 0 {
		t.Errorf("none acked: settled %d", n)
	}
}
