package bridge

import (
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// inOrder keeps an import's stream messages in stream order across a
// change of bridge. When a site's bridge (re)starts, what JetStream had
// sent to the one before and saw no ack for (stream sequences after the
// consumer's ack floor, up to what it had delivered) comes again only
// after the ack wait, behind newer messages. So, from start to until (the
// consumer's delivered sequence at the start), a message past the one
// expected is held until that one comes, or until holdTimeout passes
// without progress (it left the stream, or another bridge of the site had
// it): then the held ones go on from the oldest. Once past until, messages
// go on as they come (next is 0): the site's bridges may share the
// consumer, each sent its own share. The consumer's MaxAckPending bounds
// what can be held (held messages are not acked yet). Every method runs
// under the consume's lock; expire, the timer's, takes it and calls
// timeout.
type inOrder struct {
	next    uint64 // the stream sequence expected; 0: whatever comes
	until   uint64 // the last sequence JetStream may send again late
	held    map[uint64]jetstream.Msg
	timer   *time.Timer
	deliver func(jetstream.Msg) // hands a message on and acks it
	expire  func()
}

// begin sets what a consumer's start (its ack floor and delivered stream
// sequences, the stream's first) leaves to catch up in order.
func (o *inOrder) begin(ackFloor, delivered, first uint64) {
	if delivered <= ackFloor || o.next != 0 {
		return // nothing sent and unacked, or already catching up
	}
	o.next, o.until = max(ackFloor+1, first), delivered
	if o.next > o.until {
		o.next = 0
	}
}

// holdTimeout is how long held messages wait for the one before them:
// past the ack wait, after which JetStream sends it again.
const holdTimeout = ackWait + time.Second

// maxHeld bounds the held messages whatever MaxAckPending allows.
const maxHeld = 4096

// add takes the message with stream sequence seq.
func (o *inOrder) add(m jetstream.Msg, seq uint64) {
	switch {
	case o.next != 0 && seq > o.next:
		if _, ok := o.held[seq]; ok {
			return // sent again while held: the held copy's ack acks both
		}
		o.held[seq] = m
		if len(o.held) >= maxHeld {
			o.timeout()
		} else if o.timer == nil {
			o.timer = time.AfterFunc(holdTimeout, o.expire)
		}
	case o.next != 0 && seq == o.next:
		o.deliver(m)
		o.next++
		o.release(true)
	default:
		// As it comes: or, before next, one handed on already (deliver
		// knows it) or given up on and late, better late than lost.
		o.deliver(m)
	}
}

// release hands on the held messages that follow on from next; after
// progress, a wait still needed starts again.
func (o *inOrder) release(progress bool) {
	for m, ok := o.held[o.next]; ok; m, ok = o.held[o.next] {
		delete(o.held, o.next)
		o.deliver(m)
		o.next++
	}
	if o.next > o.until { // caught up: the rest in order, then as they come
		for _, s := range slices.Sorted(maps.Keys(o.held)) {
			o.deliver(o.held[s])
			delete(o.held, s)
		}
		o.next = 0
	}
	if o.timer != nil && (progress || len(o.held) == 0) {
		o.timer.Stop()
		o.timer = nil
	}
	if len(o.held) > 0 && o.timer == nil {
		o.timer = time.AfterFunc(holdTimeout, o.expire)
	}
}

// timeout gives up on the missing messages before the oldest held one.
func (o *inOrder) timeout() {
	o.timer = nil
	if len(o.held) == 0 {
		return
	}
	o.next = slices.Min(slices.Collect(maps.Keys(o.held)))
	o.release(false)
}

// stop ends the wait and gives the held messages back (Nak), so that
// JetStream sends them again at once, to the site's next bridge.
func (o *inOrder) stop() {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	for s, m := range o.held {
		_ = m.Nak()
		delete(o.held, s)
	}
}
