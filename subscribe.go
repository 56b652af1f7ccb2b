package colugo

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// topicSubs is an immutable snapshot of one topic's local subscriptions.
type topicSubs struct {
	subs []*subCore
	c    *counters
}

// rawValue returns payload itself as a T when T is []byte, the codec is
// Raw and nothing else references payload (owned): no copy, and no decode
// target on the heap (a pointer passed to the codec's interface escapes).
func rawValue[T any](c codec.Codec, payload []byte, owned bool) (T, bool) {
	var zero T
	if !owned {
		return zero, false
	}
	if _, raw := c.(codec.Raw); !raw {
		return zero, false
	}
	v, ok := any(payload).(T)
	return v, ok
}

// decode decodes payload into a new T with the codec.
func decode[T any](c codec.Codec, payload []byte) (T, error) {
	var v T
	err := c.Unmarshal(payload, &v)
	return v, err
}

// Subscribe returns a channel of the values published on topic by any node,
// this one included. The node owns the channel: it is closed when ctx ends
// or the node closes, and at no other time. Values that find the channel
// (WithBuffer, default 64) full wait in the subscription's queue, in order,
// bounded in bytes (WithQueueBytes, default 64 MiB), so that a reader
// descheduled for a moment loses nothing of a burst. When the queue is full
// the drop policy (WithDropPolicy, default DropOldest) decides, the drop is
// counted in Stats, and ErrSlowConsumer goes to the error handler once per
// episode. Delivery never blocks the network, nor a Publish on this node,
// except for a Block subscription (see [Block] and [WithBackPressure]).
// Messages that do not decode into T, or carry another codec, are dropped,
// counted and reported (*DecodeError, ErrCodecMismatch); they never reach
// the channel. Values from one publisher arrive in publish order.
func Subscribe[T any](ctx context.Context, node *Node, topic string, opts ...SubscribeOption) (<-chan T, error) {
	return subscribe(ctx, node, topic, opts, false, func(v T, _ *transport.Message, _ time.Time) T { return v })
}

// Received is a value with what its message's header said, as delivered by
// SubscribeReceived and SubscribePatternReceived.
type Received[T any] struct {
	Value T
	// Topic is the message's topic: the subscription's own, or, for
	// SubscribePatternReceived, the matched topic it came on.
	Topic    string
	Codec    string    // codec name the publisher used
	Type     string    // type name the publisher gave
	Sender   string    // publishing node's id
	Seq      uint64    // the publisher's sequence number on this topic, from 1
	SendTime time.Time // publisher's clock when it published
	RecvTime time.Time // this node's clock when the message arrived
	// Metadata is what the publisher set with WithMetadata; nil for none
	// (or when the message came through a peer that does not carry it).
	Metadata Metadata
	// Replayed says the message came from the publisher's history
	// (WithHistory): published before this subscription reached the
	// publisher, or recovered after a loss, rather than received live.
	// Seq and SendTime are the original ones.
	Replayed bool
}

// SubscribeReceived is Subscribe with each value's metadata: for tools that
// measure rates and latencies, record, or follow sequence numbers.
func SubscribeReceived[T any](ctx context.Context, node *Node, topic string, opts ...SubscribeOption) (<-chan Received[T], error) {
	return subscribe(ctx, node, topic, opts, true, received[T])
}

// received wraps a value with its message's header, for SubscribeReceived
// and SubscribePatternReceived.
func received[T any](v T, m *transport.Message, recv time.Time) Received[T] {
	h := &m.Header
	return Received[T]{Value: v, Topic: m.Name, Codec: h.Codec, Type: h.Type, Sender: h.Sender, Seq: h.Seq,
		SendTime: time.Unix(0, h.SendTime), RecvTime: recv, Metadata: decodeMetadata(h.Ext),
		Replayed: h.Flags&flagReplayed != 0}
}

// DefaultQueueBytes is a subscription's default queue bound (see
// WithQueueBytes): 64 MiB, NATS's default pending limit per subscription.
const DefaultQueueBytes = 64 << 20

// QueueEntryOverhead is what a queued value counts for besides its
// message's payload length, in a subscription's queue bound.
const QueueEntryOverhead = 64

// subCore is the untyped half of a subscription.
type subCore struct {
	node     *Node
	info     TopicInfo
	strict   bool // compare type names too
	policy   DropPolicy
	anyCodec bool // take every codec (WithAnyCodec)
	c        *counters
	slow     atomic.Bool // in a slow-consumer episode
	pattern  string      // the SubscribePattern pattern that matched the topic; "" for Subscribe
	// This subscription's share of the topic's counters (Stats().Subscriptions).
	delivered, dropped, decodeErrors atomic.Uint64
	q                                sink        // the channel and the queue in front of it
	hist                             *subHistory // WithHistory; nil: live only

	ending atomic.Bool
	done   chan struct{} // closed first by close: ends waits, and the feeder, which closes the channel
	mu     sync.Mutex
	closed bool
	stop   func() bool // stops the ctx watcher
}

// sink is the typed half of a subscription: its channel, and the queue
// bounded in bytes in front of it. Offers are serialised by its lock; its
// feeder goroutine moves queued values to the channel in order and is the
// only one to close the channel (once the subscription's done closes).
type sink interface {
	// offer decodes m and queues the value by the subscription's policy.
	// It reports how many values were dropped (the arriving one, or older
	// ones for DropOldest). local says m comes from a Publish on this node,
	// which waits for a Block subscription only with back-pressure (w).
	offer(m *transport.Message, exclusive, local bool, w pubWait) (dropped int, err error)
	feed()
	// queued reports the values waiting in the queue and the channel, and
	// the queue's accounted bytes.
	queued() (values, bytes int)
}

// pubWait is a back-pressured Publish's bound on its waits for this node's
// Block subscriptions (zero: Publish does not wait).
type pubWait struct {
	ctx      context.Context
	deadline time.Time
}

func (s *subCore) close() {
	if !s.ending.Swap(true) {
		close(s.done) // waits end, the feeder closes the channel
	}
	s.mu.Lock()
	stop := s.stop
	s.closed = true
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// subscribe is the generic core of Subscribe and SubscribeReceived: T is
// what the codec decodes, V what the channel carries. stamp says whether
// wrap uses the receive time (reading the clock costs about 3% of a small
// message's delivery here).
func subscribe[T, V any](ctx context.Context, node *Node, topic string, opts []SubscribeOption, stamp bool, wrap func(T, *transport.Message, time.Time) V) (<-chan V, error) {
	if err := wire.CheckName(topic); err != nil {
		return nil, fmt.Errorf("%w: topic: %w", ErrInvalidOption, err)
	}
	s, k, err := newSub(ctx, node, topic, opts, stamp, wrap)
	if err != nil {
		return nil, err
	}
	if err := node.addSub(s); err != nil {
		return nil, err
	}
	node.catalogChanged() // peers count subscribers
	stop := context.AfterFunc(ctx, func() { node.removeSub(s) })
	s.mu.Lock()
	s.stop = stop
	closed := s.closed
	s.mu.Unlock()
	if closed { // the node closed meanwhile
		stop()
	}
	return k.ch, nil
}

// newSub checks opts and makes a subscription of name (a topic, or a
// SubscribePattern's pattern) with its channel and queue, not yet
// registered with the node.
func newSub[T, V any](ctx context.Context, node *Node, name string, opts []SubscribeOption, stamp bool, wrap func(T, *transport.Message, time.Time) V) (*subCore, *chanSink[V], error) {
	cfg := subConfig{topicConfig: topicConfig{codec: node.cfg.codec}, buffer: 64, policy: DropOldest, queueBytes: DefaultQueueBytes}
	for _, o := range opts {
		if o != nil {
			o.applySubscribe(&cfg)
		}
	}
	if cfg.codec == nil || cfg.buffer < 1 || cfg.queueBytes < 0 || (cfg.policy.kind == dropBlock && cfg.policy.block <= 0) {
		return nil, nil, fmt.Errorf("%w: subscription needs a codec, a buffer of at least 1, a queue bound of at least 0 and a positive Block duration", ErrInvalidOption)
	}
	if cfg.budgetSet && (cfg.budget == nil || cfg.budget.max < 1) {
		return nil, nil, fmt.Errorf("%w: WithQueueBudget needs a budget of at least 1 byte (NewQueueBudget)", ErrInvalidOption)
	}
	if cfg.history < 0 {
		return nil, nil, fmt.Errorf("%w: WithHistory takes 0 to %d", ErrInvalidOption, MaxHistory)
	}
	c := cfg.codec
	if cfg.anyCodec {
		if _, ok := any(new(T)).(*[]byte); !ok {
			return nil, nil, fmt.Errorf("%w: WithAnyCodec needs T = []byte", ErrInvalidOption)
		}
		c = codec.Raw{}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	_, strict := c.(codec.TypeNamer)
	s := &subCore{node: node, policy: cfg.policy, strict: strict, anyCodec: cfg.anyCodec, done: make(chan struct{}),
		info: TopicInfo{Name: name, Codec: c.Name(), Type: typeName[T](c), Schema: schemaOf[T](c), Relay: cfg.relay}}
	if cfg.anyCodec {
		s.info.Codec, s.info.Type = "*", "*"
	}
	if cfg.history > 0 {
		s.info.History = cfg.history
		s.hist = &subHistory{depth: cfg.history, holdMax: min(max(cfg.queueBytes, 1<<20), maxHoldBytes), start: time.Now().UnixNano(),
			pubs: make(map[string]*pubHistory)}
	}
	k := &chanSink[V]{s: s, ch: make(chan V, cfg.buffer), max: cfg.queueBytes, budget: cfg.budget, wake: make(chan struct{}, 1)}
	// scratch is decoded into under k.mu and copied out, so a delivery
	// costs no allocation of its own beyond what the codec makes. (A Raw
	// []byte takes an exclusive payload as it is: rawValue.)
	scratch := new(T)
	k.decode = func(m *transport.Message, exclusive bool) (V, error) {
		v, ok := rawValue[T](c, m.Payload, exclusive)
		if !ok {
			var zero T
			*scratch = zero // codecs such as JSON merge into what is there
			if err := c.Unmarshal(m.Payload, scratch); err != nil {
				var none V
				return none, err
			}
			v = *scratch
			*scratch = zero // the value has its own copy; do not keep its referents alive
		}
		var recv time.Time
		if stamp {
			recv = time.Now()
		}
		return wrap(v, m, recv), nil
	}
	s.q = k
	return s, k, nil
}

// chanSink is a subscription's channel with its queue.
type chanSink[V any] struct {
	s      *subCore
	ch     chan V
	max    int                                                   // queue bound in bytes; 0: no queue
	budget *QueueBudget                                          // shared with other subscriptions' queues, or nil
	decode func(m *transport.Message, exclusive bool) (V, error) // under mu
	wake   chan struct{}                                         // tells the feeder the queue is no longer empty

	mu       sync.Mutex
	closed   bool       // the channel is closed
	ring     []entry[V] // the queue, a ring of len(ring) slots (a power of 2)
	head, n  int
	bytes    int           // accounted bytes queued
	inflight bool          // the feeder holds a value taken from the queue: nothing may overtake it
	demoted  bool          // a Block wait timed out: no more waits until the queue drains
	room     chan struct{} // closed when the feeder makes room; nil when nobody waits
}

func (k *chanSink[V]) queued() (values, bytes int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	values = k.n + len(k.ch)
	if k.inflight {
		values++
	}
	return values, k.bytes
}

type entry[V any] struct {
	v    V
	size int
}

func (k *chanSink[V]) offer(m *transport.Message, exclusive, local bool, w pubWait) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || k.s.ending.Load() {
		return 0, nil
	}
	v, err := k.decode(m, exclusive)
	if err != nil {
		return 0, err
	}
	if k.n == 0 && !k.inflight { // nothing queued: straight to the channel
		select {
		case k.ch <- v:
			k.demoted = false
			return 0, nil
		default:
		}
	}
	if k.max == 0 {
		return k.offerChan(v, local, w), nil
	}
	size := len(m.Payload) + QueueEntryOverhead
	dropped := 0
	// A value larger than the whole bound still goes into an empty queue
	// (the value being handed to the channel counts in bytes, not in n).
room:
	for k.bytes > 0 && (k.bytes+size > k.max || k.budget.over(size)) {
		switch k.s.policy.kind {
		case dropOldest:
			if k.n == 0 {
				break room // only the value in hand is left: v goes in too
			}
			_, size := k.pop()
			k.bytes -= size
			k.budget.add(-size)
			dropped++
		case dropNewest:
			return 1, nil
		default:
			if !k.waitRoom(local, w) {
				return 1, nil
			}
			if k.closed || k.s.ending.Load() {
				return 0, nil
			}
		}
	}
	k.push(v, size)
	if k.n == 1 {
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}
	return dropped, nil
}

// waitTimes returns how long a Block wait may last and what else ends it,
// or false when this offer must not wait: a demoted subscription, or a
// local message without back-pressure. k.mu is held.
func (k *chanSink[V]) waitTimes(local bool, w pubWait) (time.Duration, <-chan struct{}, bool) {
	if k.demoted || (local && w.ctx == nil) {
		return 0, nil, false
	}
	if w.ctx != nil {
		return time.Until(w.deadline), w.ctx.Done(), true
	}
	return k.s.policy.block, nil, true
}

// waitRoom waits, without k.mu, for the feeder to make room in the queue
// (then true), or until the wait's bound (the subscription is then
// demoted), the publisher's ctx or the subscription's end.
func (k *chanSink[V]) waitRoom(local bool, w pubWait) bool {
	d, ctxDone, ok := k.waitTimes(local, w)
	if !ok {
		return false
	}
	if d <= 0 {
		k.demoted = true
		return false
	}
	if k.room == nil {
		k.room = make(chan struct{})
	}
	room := k.room
	k.mu.Unlock()
	t := time.NewTimer(d)
	ok, timedOut := false, false
	select {
	case <-room:
		ok = true
	case <-t.C:
		timedOut = true
	case <-ctxDone:
	case <-k.s.done:
	}
	t.Stop()
	k.mu.Lock()
	if timedOut {
		k.demoted = true
	}
	return ok
}

// offerChan is offer without a queue (WithQueueBytes(0)): the policy
// applies to the channel itself, and a Block wait holds k.mu.
func (k *chanSink[V]) offerChan(v V, local bool, w pubWait) (dropped int) {
	switch k.s.policy.kind {
	case dropOldest:
		select { // a reader may have made room meanwhile: either way v goes in
		case <-k.ch:
			dropped = 1
		default:
		}
		select {
		case k.ch <- v:
		default:
			dropped = 1
		}
		return dropped
	case dropBlock:
		d, ctxDone, ok := k.waitTimes(local, w)
		if !ok {
			return 1
		}
		if d <= 0 {
			k.demoted = true
			return 1
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case k.ch <- v:
			return 0
		case <-t.C:
			k.demoted = true
		case <-ctxDone:
		case <-k.s.done:
		}
	}
	return 1
}

func (k *chanSink[V]) push(v V, size int) {
	if k.n == len(k.ring) {
		grown := make([]entry[V], max(16, 2*len(k.ring)))
		for i := range k.n {
			grown[i] = k.ring[(k.head+i)&(len(k.ring)-1)]
		}
		k.ring, k.head = grown, 0
	}
	k.ring[(k.head+k.n)&(len(k.ring)-1)] = entry[V]{v, size}
	k.n++
	k.bytes += size
	k.budget.add(size)
}

// pop takes the queue's head; its bytes stay counted until the caller
// lets go of it.
func (k *chanSink[V]) pop() (V, int) {
	e := &k.ring[k.head]
	v, size := e.v, e.size
	*e = entry[V]{} // do not keep the value's referents alive
	k.head = (k.head + 1) & (len(k.ring) - 1)
	k.n--
	if k.n == 0 && len(k.ring) > 1024 {
		k.ring, k.head = nil, 0 // a burst's ring goes back to the garbage collector
	}
	return v, size
}

// feed moves queued values to the channel in order, waiting for the
// reader; a goroutine of the node's, one per subscription. A value being
// handed over still counts in the queue's bytes, so that the bound is
// exact. It closes the channel when the subscription ends.
func (k *chanSink[V]) feed() {
	k.mu.Lock()
	for {
		for k.n == 0 {
			k.inflight, k.demoted = false, false
			k.mu.Unlock()
			select {
			case <-k.wake:
			case <-k.s.done:
				k.shut()
				return
			}
			k.mu.Lock()
		}
		v, size := k.pop()
		k.inflight = true
		k.mu.Unlock()
		select {
		case k.ch <- v:
		case <-k.s.done:
			k.shut()
			return // values still queued go with the subscription
		}
		k.mu.Lock()
		k.bytes -= size
		k.budget.add(-size)
		if k.room != nil {
			close(k.room)
			k.room = nil
		}
	}
}

func (k *chanSink[V]) shut() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	k.budget.add(-k.bytes)
	k.ring, k.n, k.bytes = nil, 0, 0
	close(k.ch)
}

func (n *Node) addSub(s *subCore) error {
	n.mu.Lock()
	if err := n.acceptingLocked(); err != nil {
		n.mu.Unlock()
		return err
	}
	n.goLocked(s.q.feed) // the node is open: it starts, and Close waits for it
	n.insertSubLocked(s)
	n.publishRecvLocked()
	for _, p := range n.peers {
		n.syncPeerLocked(p)
	}
	n.mu.Unlock()
	if n.seed != nil {
		n.seed.syncTopic(s.info.Name) // its seed publishers
	}
	return nil
}

// insertSubLocked adds s to the topic's subscriptions; the caller then
// replaces the receive path's snapshot and syncs the peers. n.mu is held.
func (n *Node) insertSubLocked(s *subCore) {
	s.c = n.counterLocked(s.info.Name)
	if s.hist != nil {
		// Before the receive path sees it: a publisher known here is
		// being fetched by the time its first live message arrives, so
		// that message is held, not delivered ahead of the history.
		if pc := n.pubs[s.info.Name]; pc != nil {
			n.notePublisherLocked(s, n.id, "", pc.info.History)
		}
		for _, p := range n.peers {
			n.notePeerLocked(s, p)
		}
	}
	n.subs[s.info.Name] = append(n.subs[s.info.Name], s)
}

func (n *Node) removeSub(s *subCore) {
	n.mu.Lock()
	ss := n.subs[s.info.Name]
	if i := slices.Index(ss, s); i >= 0 {
		ss = append(ss[:i:i], ss[i+1:]...)
		if len(ss) == 0 {
			delete(n.subs, s.info.Name)
		} else {
			n.subs[s.info.Name] = ss
		}
		n.publishRecvLocked()
		if !n.closed.Load() {
			for _, p := range n.peers {
				n.syncPeerLocked(p)
			}
		}
	}
	n.mu.Unlock()
	if n.seed != nil {
		n.seed.syncTopic(s.info.Name)
	}
	s.close()
	n.catalogChanged()
}

// publishRecvLocked replaces the receive path's snapshot of subscriptions.
func (n *Node) publishRecvLocked() {
	m := make(map[string]*topicSubs, len(n.subs))
	for t, ss := range n.subs {
		m[t] = &topicSubs{subs: ss, c: n.counterLocked(t)}
	}
	n.recv.Store(&m)
}

// backPressureLocked reports whether a subscription of topic on this node
// asks publishers for back-pressure: one with the Block policy.
func (n *Node) backPressureLocked(topic string) bool {
	for _, s := range n.subs[topic] {
		if s.policy.kind == dropBlock {
			return true
		}
	}
	return false
}

// receive hands a message from another node to this node's subscriptions.
// It runs on the transport's connection goroutine and never blocks, except
// for subscriptions with the Block policy whose queue is full, which hold
// up that connection only.
func (n *Node) receive(msg *transport.Message) { n.receiveFrom(msg, false, pubWait{}) }

// receiveLocal hands a message of this node's own publisher to this node's
// subscriptions, on the publisher's goroutine. It waits only with
// back-pressure (w), for Block subscriptions whose queue is full.
func (n *Node) receiveLocal(msg *transport.Message, w pubWait) { n.receiveFrom(msg, true, w) }

func (n *Node) receiveFrom(msg *transport.Message, local bool, w pubWait) {
	ts := (*n.recv.Load())[msg.Name]
	if ts == nil {
		return // not (or no longer) subscribed
	}
	if msg.Header.Flags&wire.FlagTail != 0 { // no value: the sender's latest seq
		if !local {
			ts.c.noteTail(msg.Header.Sender, msg.Header.Seq)
			for _, s := range ts.subs {
				if s.hist != nil {
					s.hist.noteTail(s, msg.Header.Sender, msg.Header.Seq)
				}
			}
		}
		return
	}
	ts.c.received.Add(1)
	ts.c.noteSeq(msg.Header.Sender, msg.Header.Seq)
	exclusive := msg.Exclusive && len(ts.subs) == 1 // the one subscription may keep the payload
	for _, s := range ts.subs {
		s.deliver(msg, exclusive, local, w)
	}
}

func (s *subCore) deliver(msg *transport.Message, exclusive, local bool, w pubWait) {
	if s.hist != nil {
		s.hist.deliverLive(s, msg, exclusive, local, w)
		return
	}
	s.offerChecked(msg, exclusive, local, w)
}

// offerChecked checks msg's codec and type and offers it to the queue,
// counting and reporting what it refuses; it reports whether msg was
// taken.
func (s *subCore) offerChecked(msg *transport.Message, exclusive, local bool, w pubWait) bool {
	h := &msg.Header
	if !s.anyCodec && (h.Codec != s.info.Codec || (s.strict && h.Type != s.info.Type)) {
		s.c.decodeErrors.Add(1)
		s.decodeErrors.Add(1)
		s.node.report(&DecodeError{Topic: s.info.Name, Codec: h.Codec, Type: h.Type, Sender: h.Sender,
			Err: fmt.Errorf("%w: subscriber expects codec %s, type %s", ErrCodecMismatch, s.info.Codec, s.info.Type)})
		return false
	}
	dropped, err := s.q.offer(msg, exclusive, local, w)
	if err != nil {
		s.c.decodeErrors.Add(1)
		s.decodeErrors.Add(1)
		s.node.report(&DecodeError{Topic: s.info.Name, Codec: h.Codec, Type: h.Type, Sender: h.Sender, Err: err})
		return false
	}
	s.c.delivered.Add(1)
	s.delivered.Add(1)
	if tr := s.node.cfg.tracer; tr != nil {
		_, end := tr.Start(s.node.ctx, SpanReceive, s.info.Name, decodeMetadata(h.Ext))
		end(nil)
	}
	s.noteOffer(dropped)
	return true
}

// noteOffer counts drops and reports ErrSlowConsumer when an episode
// starts; an offer that dropped nothing ends the episode.
func (s *subCore) noteOffer(dropped int) {
	if dropped == 0 {
		if s.slow.Load() {
			s.slow.Store(false)
		}
		return
	}
	s.c.dropped.Add(uint64(dropped))
	s.dropped.Add(uint64(dropped))
	if !s.slow.Swap(true) {
		s.node.report(fmt.Errorf("%w: topic %q (policy %v)", ErrSlowConsumer, s.info.Name, s.policy))
	}
}
