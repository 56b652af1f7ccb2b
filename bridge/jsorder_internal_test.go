package bridge

import (
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// fakeMsg is a stream message as inOrder sees it: its sequence, and
// whether it was given back.
type fakeMsg struct {
	jetstream.Msg
	seq    uint64
	nacked *[]uint64
}

func (m fakeMsg) Nak() error { *m.nacked = append(*m.nacked, m.seq); return nil }

// TestInOrder: a bridge starting after another that was sent 5 to 8 and
// acked up to 4 hands on 5 to 8 before the newer 9 and 10, whatever order
// they come in; past 8 messages go as they come; a missing one is given
// up on when the wait ends; stop gives the held ones back.
func TestInOrder(t *testing.T) {
	var out, nacked []uint64
	o := &inOrder{held: map[uint64]jetstream.Msg{}, deliver: func(m jetstream.Msg) { out = append(out, m.(fakeMsg).seq) }}
	o.expire = func() {}
	add := func(seqs ...uint64) {
		for _, s := range seqs {
			o.add(fakeMsg{seq: s, nacked: &nacked}, s)
		}
	}
	o.begin(4, 8, 1)
	add(9, 10, 9, 6) // newer ones first (9 twice: sent again while held), then one of the late
	if len(out) != 0 || len(o.held) != 3 || o.timer == nil {
		t.Fatalf("handed on %v, held %d, timer %v; want nothing yet", out, len(o.held), o.timer)
	}
	add(5) // 5 and 6 go on; 7 is still missing
	if !slices.Equal(out, []uint64{5, 6}) || o.timer == nil {
		t.Fatalf("handed on %v (timer %v), want 5 6 and a new wait", out, o.timer)
	}
	add(8, 7)
	if !slices.Equal(out, []uint64{5, 6, 7, 8, 9, 10}) || o.next != 0 || o.timer != nil || len(o.held) != 0 {
		t.Fatalf("handed on %v, next %d, held %d, timer %v; want 5 to 10, then as they come", out, o.next, len(o.held), o.timer)
	}
	add(12, 11) // past until: as they come
	if !slices.Equal(out[6:], []uint64{12, 11}) {
		t.Fatalf("after catching up, %v", out[6:])
	}

	// A missing one that never comes (left the stream): given up on.
	out = nil
	o = &inOrder{held: map[uint64]jetstream.Msg{}, deliver: o.deliver, expire: func() {}}
	o.begin(0, 5, 2) // the stream starts at 2
	add(4, 5, 6)
	o.timeout() // the wait for 2 and 3 ends
	if !slices.Equal(out, []uint64{4, 5, 6}) || o.next != 0 {
		t.Fatalf("after the wait, %v (next %d)", out, o.next)
	}
	add(2) // late: better late than lost
	if out[len(out)-1] != 2 {
		t.Fatalf("a late one: %v", out)
	}

	// Nothing unacked at the start: as they come; stop gives back what is held.
	out = nil
	o = &inOrder{held: map[uint64]jetstream.Msg{}, deliver: o.deliver, expire: func() {}}
	o.begin(7, 7, 1)
	add(9, 8)
	if !slices.Equal(out, []uint64{9, 8}) {
		t.Fatalf("with nothing to catch up: %v", out)
	}
	o.begin(7, 9, 1)
	add(11)
	o.stop()
	if !slices.Equal(nacked, []uint64{11}) || len(o.held) != 0 || o.timer != nil {
		t.Fatalf("stop gave back %v, held %d", nacked, len(o.held))
	}
}
