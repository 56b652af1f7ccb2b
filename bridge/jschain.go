package bridge

import (
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// hPrev chains a JetStream export's messages: the Colugo-Seq of the
// message of the same sender that the exporting bridge spooled for the
// topic before this one (absent for the first since it started, or when
// that one was dropped unsent). A stream can hold them out of order: a
// change of stream leader loses the acks of what the old leader had not
// answered, and the exporter sends those again after newer ones were
// stored. The importer puts them back in order (inChain).
const hPrev = "Colugo-Prev-Seq"

// inChain hands on one import entry's stream messages in the order their
// exporter sent them, per topic and sender: a message whose predecessor
// (hPrev) is newer than what was handed on of its chain waits for it, until
// chainTimeout (the exporter sends a lost message again within its ack
// timeout) or until too much waits; then the held go on, oldest first,
// better late than lost. Held messages are not acked until handed on.
// Every method runs under the importReader's lock; expire, the timer's,
// takes it and calls timeout.
type inChain struct {
	last   map[chainKey]uint64 // per chain: the highest seq handed on
	keys   []chainKey          // last's keys, oldest first: its bound
	held   map[chainKey][]chained
	n      int // held in all
	bytes  int // their payloads
	timer  *time.Timer
	expire func()
	now    func() time.Time
}

// chainKey names a chain: a topic's subject and a sender. (A struct, not
// the two joined: a message's key costs no allocation.)
type chainKey struct{ subject, sender string }

type chained struct {
	prev, seq uint64
	m         jetstream.Msg
	deliver   func(jetstream.Msg) // its stream's: hands it on and has it acked
	since     time.Time
}

const (
	// chainTimeout is how long a held message waits for its predecessor:
	// past the exporter's ack timeout, after which it sends it again.
	chainTimeout = jsAckTimeout + 2*time.Second
	// maxChainHeld and maxChainBytes bound what waits (the consumer's
	// MaxAckPending bounds it too: held messages are not acked).
	maxChainHeld  = maxAckPending - 1024
	maxChainBytes = 64 << 20
	// maxChains bounds the chains remembered: the oldest is forgotten.
	maxChains = 8192
)

func newInChain() *inChain {
	return &inChain{last: map[chainKey]uint64{}, held: map[chainKey][]chained{}, now: time.Now}
}

// add takes m, of chain key, with its seq and prev (0: none), to be
// handed on with deliver.
func (c *inChain) add(m jetstream.Msg, key chainKey, seq, prev uint64, deliver func(jetstream.Msg)) {
	if l, ok := c.last[key]; ok && prev > l {
		h := c.held[key]
		i, found := slices.BinarySearchFunc(h, prev, func(x chained, p uint64) int {
			switch {
			case x.prev < p:
				return -1
			case x.prev > p:
				return 1
			}
			return 0
		})
		if found && h[i].seq == seq {
			return // the same sent again while held: the held copy's ack acks both
		}
		c.held[key] = slices.Insert(h, i, chained{prev, seq, m, deliver, c.now()})
		c.n++
		c.bytes += len(m.Data())
		if c.n >= maxChainHeld || c.bytes >= maxChainBytes {
			c.giveUp(time.Time{}) // all of them: too much waits
		} else if c.timer == nil && c.expire != nil {
			c.timer = time.AfterFunc(chainTimeout, c.expire)
		}
		return
	}
	c.pass(m, key, seq, deliver)
	c.release(key)
}

// pass hands m on and records its seq as its chain's newest.
func (c *inChain) pass(m jetstream.Msg, key chainKey, seq uint64, deliver func(jetstream.Msg)) {
	deliver(m)
	l, ok := c.last[key]
	if !ok {
		if len(c.keys) >= maxChains {
			old := c.keys[0]
			c.keys = c.keys[1:]
			c.flush(old)
			delete(c.last, old)
		}
		c.keys = append(c.keys, key)
	}
	c.last[key] = max(l, seq)
}

// release hands on key's held messages that follow on from what it has
// handed on.
func (c *inChain) release(key chainKey) {
	for h := c.held[key]; len(h) > 0 && h[0].prev <= c.last[key]; h = c.held[key] {
		c.take(key)
	}
	c.stopIdle()
}

// take hands on key's oldest held message.
func (c *inChain) take(key chainKey) {
	h := c.held[key]
	x := h[0]
	if len(h) == 1 {
		delete(c.held, key)
	} else {
		c.held[key] = h[1:]
	}
	c.n--
	c.bytes -= len(x.m.Data())
	c.pass(x.m, key, x.seq, x.deliver)
}

// flush hands on all of key's held messages, oldest first.
func (c *inChain) flush(key chainKey) {
	for len(c.held[key]) > 0 {
		c.take(key)
	}
}

// giveUp hands on the chains one of whose messages has waited since
// before cutoff (every chain for the zero time), giving up on what they
// miss.
func (c *inChain) giveUp(cutoff time.Time) {
	for _, key := range slices.Collect(maps.Keys(c.held)) { // (chains have no order among them)
		h := c.held[key]
		if cutoff.IsZero() || slices.ContainsFunc(h, func(x chained) bool { return x.since.Before(cutoff) }) {
			c.flush(key)
		}
	}
	c.stopIdle()
}

// timeout gives up on the predecessors waited for longer than
// chainTimeout, and waits again for the rest.
func (c *inChain) timeout() {
	c.timer = nil
	c.giveUp(c.now().Add(-chainTimeout + time.Millisecond))
	if c.n > 0 && c.expire != nil {
		c.timer = time.AfterFunc(chainTimeout/4, c.expire)
	}
}

// stopIdle stops the timer when nothing waits.
func (c *inChain) stopIdle() {
	if c.n == 0 && c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// stop ends the wait and gives the held messages back (Nak), so that
// JetStream sends them again at once, to the site's next bridge.
func (c *inChain) stop() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	for key, h := range c.held {
		for _, x := range h {
			_ = x.m.Nak()
		}
		delete(c.held, key)
	}
	c.n, c.bytes = 0, 0
}
