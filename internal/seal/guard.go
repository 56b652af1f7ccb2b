package seal

import (
	"maps"
	"sync"
)

// WindowSize is how far behind the newest publish sequence number of a
// sender and topic a publish may arrive and still be accepted once. A node
// hands its publishes of one topic to the transport in sequence order, so
// on one connection they arrive in order; the window is for the reorder
// when a subscriber moves to a new connection to the same publisher (TCP
// to the Unix socket, a resubscription after a loss) while the old one
// still delivers what it had queued: 1024 messages in transport/zmq's
// default send queue, plus what the kernel buffers. 1 KiB per sender and
// topic.
const WindowSize = 8192

// Guard decides whether an authenticated message is new. It keeps, per
// sending node (an id, random per process: one incarnation):
//
//   - for publishes, per topic, the newest sequence number and a bitmap of
//     the WindowSize before it. A sender's publishes are accepted only once
//     Describe has given its sequence numbers at the time it described
//     itself (a baseline): everything at or below it is older than this
//     node's knowledge of the sender, so a captured old publish is refused
//     even by a node that has just started.
//   - for requests, the sequence numbers of those not yet expired by the
//     sender's own clock (send time + deadline, compared with the newest
//     send time seen from it). A legitimate request is refused only if it
//     arrives after its requester has given up on it, however requests are
//     reordered on the way; an expired one is refused by its time, so the
//     set holds only live requests.
//
// Safe for concurrent use.
type Guard struct {
	mu          sync.Mutex
	senders     map[string]*sender
	maxSenders  int
	maxRequests int
	tick        uint64
	onEvict     func(id string)
}

type sender struct {
	last      uint64            // Guard.tick when last heard of (least recently heard of is evicted)
	described bool              // Describe was called: publishes are accepted
	baseline  map[string]uint64 // per topic, the sequence number when described
	topics    map[string]*window

	reqs   map[uint64]int64 // live requests: seq -> expiry, in the sender's clock
	newest int64            // newest send time of its requests
	floor  int64            // requests sent at or before floor are refused (Forget)
	swept  int              // len(reqs) after the last sweep
}

// NewGuard keeps state for at most maxSenders senders (past that the least
// recently heard of is dropped, and onEvict, unless nil, is told its id)
// and at most maxRequests live requests per sender (past that its new
// requests are refused with ErrFull until old ones expire).
func NewGuard(maxSenders, maxRequests int, onEvict func(id string)) *Guard {
	return &Guard{senders: make(map[string]*sender), maxSenders: max(maxSenders, 1),
		maxRequests: max(maxRequests, 1), onEvict: onEvict}
}

// senderLocked returns id's state, creating it.
func (g *Guard) senderLocked(id string) *sender {
	g.tick++
	s := g.senders[id]
	if s == nil {
		if len(g.senders) >= g.maxSenders {
			g.evictLocked()
		}
		s = &sender{}
		g.senders[id] = s
	}
	s.last = g.tick
	return s
}

func (g *Guard) evictLocked() {
	var oldest string
	var at uint64
	for id, s := range g.senders {
		if oldest == "" || s.last < at {
			oldest, at = id, s.last
		}
	}
	delete(g.senders, oldest)
	if g.onEvict != nil {
		g.onEvict(oldest)
	}
}

// Describe records what sender said about itself in an authenticated,
// fresh description (a reply bound to this node's own request): seqs holds
// its publish sequence number per topic at that time (topics absent: 0).
// Only the first description of a sender counts: later ones come while
// its publishes are already flowing, and must not move the baseline past
// publishes still on their way.
func (g *Guard) Describe(sender string, seqs map[string]uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.senderLocked(sender)
	if s.described {
		return
	}
	s.described, s.baseline = true, maps.Clone(seqs)
}

// Forget drops what is known of sender's publishes (a sender that left:
// it must be described again before they are accepted) and its live
// requests, refusing from now on every request it sent before.
func (g *Guard) Forget(sender string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.senders[sender]
	if s == nil {
		return
	}
	s.described, s.baseline, s.topics = false, nil, nil
	s.floor, s.reqs, s.swept = max(s.floor, s.newest), nil, 0
}

// Publish reports whether the publish seq of sender on topic is new:
// ErrUnknown when sender has not been described, ErrReplay when seq is at
// or below its baseline, was seen, or is WindowSize or more behind the
// newest.
func (g *Guard) Publish(sender, topic string, seq uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.senders[sender]
	if s == nil || !s.described {
		return ErrUnknown
	}
	g.tick++
	s.last = g.tick
	w := s.topics[topic]
	if w == nil {
		if s.topics == nil {
			s.topics = make(map[string]*window)
		}
		w = newWindow(s.baseline[topic])
		s.topics[topic] = w
	}
	if !w.check(seq) {
		return ErrReplay
	}
	return nil
}

// Request reports whether request seq of sender, sent at sendTime and
// valid until expiry (both in the sender's clock, Unix ns), is new:
// ErrReplay when it was seen, expired before the newest request seen from
// sender was sent, or was sent before Forget; ErrFull past the limit.
func (g *Guard) Request(sender string, seq uint64, sendTime, expiry int64) error {
	if seq == 0 {
		return ErrReplay
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.senderLocked(sender)
	if sendTime <= s.floor || expiry < s.newest {
		return ErrReplay
	}
	if _, seen := s.reqs[seq]; seen {
		return ErrReplay
	}
	if s.reqs == nil {
		s.reqs = make(map[uint64]int64)
	}
	s.newest = max(s.newest, sendTime) // authentic: the sender's clock got there
	if len(s.reqs) >= g.maxRequests {
		s.sweep()
		if len(s.reqs) >= g.maxRequests {
			return ErrFull
		}
	}
	s.reqs[seq] = expiry
	if len(s.reqs) > 2*s.swept+1024 { // amortised: a sweep per doubling
		s.sweep()
	}
	return nil
}

// sweep forgets the requests that have expired: they are refused by time.
func (s *sender) sweep() {
	maps.DeleteFunc(s.reqs, func(_ uint64, expiry int64) bool { return expiry < s.newest })
	s.swept = len(s.reqs)
}

// Len returns how many senders have state, and how many live requests are
// remembered in all: for tests and metrics.
func (g *Guard) Len() (senders, requests int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.senders {
		requests += len(s.reqs)
	}
	return len(g.senders), requests
}

// window is a topic's newest sequence number and which of the WindowSize
// numbers up to it were seen: bit s%WindowSize for top-WindowSize < s <= top.
type window struct {
	top  uint64
	bits [WindowSize / 64]uint64
}

// newWindow treats everything up to base as seen.
func newWindow(base uint64) *window {
	w := &window{top: base}
	for i := range w.bits {
		w.bits[i] = ^uint64(0)
	}
	return w
}

func (w *window) bit(s uint64) (word int, mask uint64) {
	i := s % WindowSize
	return int(i / 64), 1 << (i % 64)
}

// check records seq and reports whether it was new.
func (w *window) check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > w.top {
		if seq-w.top >= WindowSize {
			clear(w.bits[:])
		} else {
			for s := w.top + 1; s < seq; s++ {
				i, m := w.bit(s)
				w.bits[i] &^= m
			}
		}
		w.top = seq
		i, m := w.bit(seq)
		w.bits[i] |= m
		return true
	}
	if w.top-seq >= WindowSize {
		return false
	}
	i, m := w.bit(seq)
	if w.bits[i]&m != 0 {
		return false
	}
	w.bits[i] |= m
	return true
}
