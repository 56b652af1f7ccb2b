package colugo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// Pattern is a compiled topic pattern, as SubscribePattern takes it. A
// pattern is split into segments on "/", as topic names are:
//
//   - "*" matches exactly one whole segment, whatever it holds (an empty
//     one too: topic names may have empty segments, as in "a//b");
//   - "**" matches zero or more whole segments: "robot/**" matches
//     "robot", "robot/pose" and "robot/arm/joint/3";
//   - any other segment matches itself only, byte for byte.
//
// A "*" may stand only as a whole segment: "pose*", "a**b" or "***" are
// refused, so that no pattern quietly means something else than it
// seems (and so that a later version may give them a meaning). Like a
// topic name, a pattern is 1 to 255 bytes of UTF-8 without NUL; "/a",
// "a/" and "a//b" are valid and their empty segments literal. A pattern
// without "*" matches the one topic of that name.
//
// The zero Pattern matches nothing. A Pattern is immutable and safe for
// concurrent use.
type Pattern struct {
	s    string
	segs []string // "*", "**" (never two in a row) or a literal segment
	wild bool     // has a "*" or "**" segment
}

// ParsePattern compiles a topic pattern (see [Pattern] for the syntax). An
// invalid pattern returns an error that matches ErrInvalidOption.
func ParsePattern(pattern string) (Pattern, error) {
	if err := wire.CheckName(pattern); err != nil {
		return Pattern{}, fmt.Errorf("%w: pattern: %w", ErrInvalidOption, err)
	}
	p := Pattern{s: pattern}
	for seg := range strings.SplitSeq(pattern, "/") {
		switch {
		case seg == "**" && len(p.segs) > 0 && p.segs[len(p.segs)-1] == "**":
			continue // "**/**" is "**"
		case seg == "*" || seg == "**":
			p.wild = true
		case strings.Contains(seg, "*"):
			return Pattern{}, fmt.Errorf("%w: pattern %q: segment %q: * and ** stand only as whole segments", ErrInvalidOption, pattern, seg)
		}
		p.segs = append(p.segs, seg)
	}
	return p, nil
}

// String returns the pattern as it was given to ParsePattern.
func (p Pattern) String() string { return p.s }

// Match reports whether topic matches the pattern.
func (p Pattern) Match(topic string) bool {
	if !p.wild {
		return p.s != "" && topic == p.s
	}
	var buf [wire.MaxName/2 + 1]string // a valid name has at most this many segments
	t := buf[:0]
	for seg := range strings.SplitSeq(topic, "/") {
		t = append(t, seg)
	}
	// Glob matching over segments ("**" as a glob's *, "*" as its ?) with
	// one backtracking point, the last "**": O(len(t) × len(p.segs)).
	pi, ti := 0, 0
	star, mark := -1, 0 // the last "**", and the first topic segment it has not taken
	for ti < len(t) {
		switch {
		case pi < len(p.segs) && p.segs[pi] == "**":
			star, mark = pi, ti
			pi++
		case pi < len(p.segs) && (p.segs[pi] == "*" || p.segs[pi] == t[ti]):
			pi++
			ti++
		case star >= 0: // the last "**" takes one more segment; retry after it
			mark++
			pi, ti = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p.segs) && p.segs[pi] == "**" {
		pi++
	}
	return pi == len(p.segs)
}

// SubscribePattern returns one channel of the values published on every
// topic that matches pattern (see [Pattern] for the syntax), by any node,
// this one included. Names given to Subscribe stay literal ("*" is an
// ordinary character there); only SubscribePattern reads wildcards.
//
// The topics are those this node learns of: its own publishers', those
// of its peers' $describe (as they join and as their catalogs change),
// and, on a node with WithSeedCompat, those of the seed publishers it
// finds (nodes of the Python colugo, as their records appear; a seed
// publisher joins a matched topic as it joins Subscribe of that topic,
// and leaves it when its record goes). Each matching topic is
// subscribed to as Subscribe would, as soon as the node learns of it,
// so a publisher that appears later joins
// the channel without any call; a topic, once matched, stays subscribed
// until the subscription ends, even when nobody publishes it any more (a
// publisher that comes back is heard again). A topic nobody publishes is
// never matched: this node cannot tell a pattern's topics before someone
// publishes them.
//
// The options are Subscribe's and apply to every matched topic. The
// topics share one channel (WithBuffer) and one queue (WithQueueBytes)
// with one drop policy; WithHistory asks each publisher of each topic. The
// values carry no topic: SubscribePatternReceived tells which topic each
// came on. For tools, WithAnyCodec with T = []byte takes every topic's
// payloads as they are, whatever codec each topic uses (the Received codec
// name says how to read them). With a typed T, messages of a topic whose
// codec or type does not match are refused as Subscribe refuses them
// (ErrCodecMismatch: counted in that topic's DecodeErrors, reported to the
// error handler), never delivered as garbage; the other topics flow on.
//
// Order: values of one publisher on one topic arrive in publish order;
// there is no order between topics, even of one publisher, nor between
// publishers. Stats().Subscriptions shows one entry per matched topic,
// with Pattern set (a pattern that matched nothing yet has none).
//
// The node owns the channel: it is closed when ctx ends or the node
// closes, and at no other time. SubscribePattern does not block; it is
// safe for concurrent use. Errors: an invalid pattern or option
// (ErrInvalidOption), ctx's error if it has ended, ErrClosed after Close
// or during Shutdown.
func SubscribePattern[T any](ctx context.Context, node *Node, pattern string, opts ...SubscribeOption) (<-chan T, error) {
	return subscribePattern(ctx, node, pattern, opts, false, func(v T, _ *transport.Message, _ time.Time) T { return v })
}

// SubscribePatternReceived is SubscribePattern with each value's metadata,
// Received.Topic naming the topic it came on.
func SubscribePatternReceived[T any](ctx context.Context, node *Node, pattern string, opts ...SubscribeOption) (<-chan Received[T], error) {
	return subscribePattern(ctx, node, pattern, opts, true, received[T])
}

// patternSub is a SubscribePattern subscription: root holds its channel
// and queue, its options and its end (root is in no topic's list, and
// receives nothing itself); topics holds one subCore per matched topic,
// each delivering into root's queue.
type patternSub struct {
	pat    Pattern
	root   *subCore
	topics map[string]*subCore // under n.mu
}

func subscribePattern[T, V any](ctx context.Context, node *Node, pattern string, opts []SubscribeOption, stamp bool, wrap func(T, *transport.Message, time.Time) V) (<-chan V, error) {
	pat, err := ParsePattern(pattern)
	if err != nil {
		return nil, err
	}
	root, k, err := newSub(ctx, node, pattern, opts, stamp, wrap)
	if err != nil {
		return nil, err
	}
	ps := &patternSub{pat: pat, root: root, topics: make(map[string]*subCore)}
	if err := node.addPattern(ps); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { node.removePattern(ps) })
	root.mu.Lock()
	root.stop = stop
	closed := root.closed
	root.mu.Unlock()
	if closed { // the node closed meanwhile
		stop()
	}
	return k.ch, nil
}

// addPattern registers ps and subscribes to the matching topics known now.
func (n *Node) addPattern(ps *patternSub) error {
	n.mu.Lock()
	if err := n.acceptingLocked(); err != nil {
		n.mu.Unlock()
		return err
	}
	n.goLocked(ps.root.q.feed) // one feeder for all the topics
	if n.patterns == nil {
		n.patterns = make(map[*patternSub]struct{})
	}
	n.patterns[ps] = struct{}{}
	var known []string
	for t := range n.pubs {
		known = append(known, t)
	}
	for _, p := range n.peers {
		if p.visible() {
			for _, t := range p.desc.Topics {
				known = append(known, t.Name)
			}
		}
	}
	if n.seed != nil {
		known = append(known, n.seed.pubTopics()...)
	}
	added := n.matchLocked(ps, known)
	n.mu.Unlock()
	if len(added) > 0 {
		n.syncSeedTopics(added)
		n.catalogChanged() // peers count subscribers
	}
	return nil
}

// matchPatternsLocked subscribes the pattern subscriptions to the topics
// among these (just published here, or described by a peer) that match
// them. Called with n.mu held before the caller syncs its peer, so that
// the new subscriptions reach it with the rest.
func (n *Node) matchPatternsLocked(topics []TopicInfo) {
	if len(n.patterns) == 0 || len(topics) == 0 {
		return
	}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	added := false
	for ps := range n.patterns {
		added = len(n.matchLocked(ps, names)) > 0 || added
	}
	if added {
		// Seed publishers need no sync here: a seed topic known before
		// the pattern was matched when the pattern began, and one found
		// after is synced as it is found (seedNode.apply).
		n.goLocked(n.catalogChanged) // not under n.mu: it announces
	}
}

// matchLocked adds to ps the topics among names that match it and it does
// not have yet, and returns them. n.mu is held.
func (n *Node) matchLocked(ps *patternSub, names []string) []string {
	var added []string
	for _, t := range names {
		if ps.topics[t] != nil || !ps.pat.Match(t) {
			continue
		}
		s := ps.root.forTopic(t)
		ps.topics[t] = s
		n.insertSubLocked(s)
		added = append(added, t)
	}
	if len(added) > 0 {
		n.publishRecvLocked()
		for _, p := range n.peers {
			n.syncPeerLocked(p)
		}
	}
	return added
}

// syncSeedTopics connects the subscriptions of these topics to their seed
// publishers, or disconnects them (WithSeedCompat; nothing without). n.mu
// is not held.
func (n *Node) syncSeedTopics(topics []string) {
	if n.seed == nil {
		return
	}
	for _, t := range topics {
		n.seed.syncTopic(t)
	}
}

// forTopic makes the subscription of one topic that a pattern matched:
// root's options, delivering into root's queue.
func (root *subCore) forTopic(topic string) *subCore {
	s := &subCore{node: root.node, info: root.info, strict: root.strict, policy: root.policy, anyCodec: root.anyCodec,
		pattern: root.info.Name, q: root.q, done: make(chan struct{})}
	s.info.Name = topic
	if h := root.hist; h != nil {
		// The pattern's start: as for Subscribe, what was published after
		// the subscription began comes too, beyond the depth asked.
		s.hist = &subHistory{depth: h.depth, holdMax: h.holdMax, start: h.start, pubs: make(map[string]*pubHistory)}
	}
	return s
}

// removePattern ends ps: its topics' subscriptions, then its channel.
func (n *Node) removePattern(ps *patternSub) {
	n.mu.Lock()
	var ended []*subCore
	var topics []string
	if _, ok := n.patterns[ps]; ok {
		delete(n.patterns, ps)
		for t, s := range ps.topics {
			ss := n.subs[t]
			if i := slices.Index(ss, s); i >= 0 {
				ss = append(ss[:i:i], ss[i+1:]...)
				if len(ss) == 0 {
					delete(n.subs, t)
				} else {
					n.subs[t] = ss
				}
			}
			ended = append(ended, s)
			topics = append(topics, t)
		}
		if len(ended) > 0 {
			n.publishRecvLocked()
			if !n.closed.Load() {
				for _, p := range n.peers {
					n.syncPeerLocked(p)
				}
			}
		}
	}
	n.mu.Unlock()
	n.syncSeedTopics(topics) // before the close: a seed connection's deliveries end first
	for _, s := range ended {
		s.close()
	}
	ps.root.close() // the feeder closes the channel
	if len(ended) > 0 {
		n.catalogChanged()
	}
}
