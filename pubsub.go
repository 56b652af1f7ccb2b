package colugo

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/internal/wire"
	"github.com/colugo-go/colugo/transport"
)

// Publisher publishes values of type T on one topic. Create it with
// NewPublisher; it is safe for concurrent use. Messages from one Publisher
// arrive at each subscriber in the order Publish was called.
type Publisher[T any] struct {
	node  *Node
	topic string
	codec codec.Codec
	info  TopicInfo
	seq   *pubSeq // shared by the node's publishers of the topic
	c     *counters

	// handOver says that payloads are colugo's once encoded: any codec but
	// Raw makes new bytes, and WithZeroCopy gives Raw's up.
	handOver bool

	closed atomic.Bool
	// spare is a Message for the next Publish: neither local delivery nor
	// the transport keeps it, so one serves every call that does not
	// overlap another (overlapping ones allocate).
	spare atomic.Pointer[transport.Message]
}

// NewPublisher announces that node publishes T on topic. topic is any UTF-8
// string of 1 to 255 bytes without NUL. Subscribers on other nodes connect
// once discovery has told them; messages published before that are not
// delivered to them (there is no history).
func NewPublisher[T any](node *Node, topic string, opts ...PublisherOption) (*Publisher[T], error) {
	if err := wire.CheckName(topic); err != nil {
		return nil, fmt.Errorf("%w: topic: %w", ErrInvalidOption, err)
	}
	cfg := topicConfig{codec: node.cfg.codec}
	for _, o := range opts {
		if o != nil {
			o.applyPublisher(&cfg)
		}
	}
	if cfg.codec == nil {
		return nil, fmt.Errorf("%w: nil codec", ErrInvalidOption)
	}
	_, raw := cfg.codec.(codec.Raw)
	p := &Publisher[T]{node: node, topic: topic, codec: cfg.codec, handOver: !raw || cfg.zeroCopy,
		info: TopicInfo{Name: topic, Codec: cfg.codec.Name(), Type: typeName[T](cfg.codec), Schema: schemaOf[T](cfg.codec)}}
	node.mu.Lock()
	if node.closed.Load() {
		node.mu.Unlock()
		return nil, ErrClosed
	}
	pc := node.pubs[topic]
	if pc == nil {
		pc = &pubCount{info: p.info, seq: node.seqs[topic]}
		if pc.seq == nil { // kept after the last publisher closes: a new one continues the sequence
			pc.seq = new(pubSeq)
			node.seqs[topic] = pc.seq
		}
		node.pubs[topic] = pc
	}
	pc.n++
	p.seq = pc.seq
	p.c = node.counterLocked(topic)
	node.mu.Unlock()
	node.catalogChanged()
	return p, nil
}

// Topic returns the publisher's topic.
func (p *Publisher[T]) Topic() string { return p.topic }

// Publish encodes v and sends it to every subscriber of the topic, on this
// node and on its peers. It does not wait for subscribers, not even for a
// Block subscription on this node (see [Block]): a subscriber that cannot
// keep up loses messages by its drop policy, counted in its node's Stats.
// ctx is checked before sending (Publish itself does not block).
// Publish keeps nothing of v: once it returns, v (with codec.Raw, the bytes
// of v) may be reused. Errors: ctx's error, ErrClosed, or the codec's
// marshal error.
func (p *Publisher[T]) Publish(ctx context.Context, v T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.closed.Load() || p.node.closed.Load() {
		return ErrClosed
	}
	payload, err := marshal(p.codec, v)
	if err != nil {
		return fmt.Errorf("colugo: encoding %q: %w", p.topic, err)
	}
	msg := p.spare.Swap(nil)
	if msg == nil {
		msg = new(transport.Message)
	}
	*msg = transport.Message{Name: p.topic, Header: wire.Header{
		Kind:   transport.KindPublish,
		Codec:  p.info.Codec,
		Type:   p.info.Type,
		Sender: p.node.id,
	}, Payload: payload}
	p.c.published.Add(1)
	if p.node.keys != nil {
		err = p.publishSealed(msg)
	} else {
		msg.Header.Seq, msg.Header.SendTime = p.seq.Add(1), time.Now().UnixNano()
		p.node.receiveLocal(msg)   // subscribers on this node, which keep nothing of msg
		msg.Exclusive = p.handOver // after local delivery: a local subscriber must not keep it
		_, err = p.node.tr.Publish(context.Background(), msg, transport.PublishOptions{})
	}
	msg.Payload = nil // the caller's: do not pin it
	p.spare.Store(msg)
	return err
}

// publishSealed numbers, seals and sends msg under the topic's sequence
// lock, so that every connection gets the topic's messages in sequence
// order (the receivers' replay windows), then delivers the plaintext on
// this node, which needs no seal.
func (p *Publisher[T]) publishSealed(msg *transport.Message) error {
	plain := msg.Payload
	p.seq.mu.Lock()
	msg.Header.Seq, msg.Header.SendTime = p.seq.Add(1), time.Now().UnixNano()
	p.node.sealMsg(msg, binding{}) // a new buffer, handed over
	_, err := p.node.tr.Publish(context.Background(), msg, transport.PublishOptions{})
	p.seq.mu.Unlock()
	msg.Header.Flags &^= wire.FlagSealed
	msg.Payload, msg.Exclusive = plain, false // local subscribers must not keep it
	p.node.receiveLocal(msg)
	return err
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

// marshal encodes v. Raw []byte payloads skip the codec call, whose
// interface argument would cost an allocation per message.
func marshal[T any](c codec.Codec, v T) ([]byte, error) {
	if _, raw := c.(codec.Raw); raw {
		if b, ok := any(v).([]byte); ok {
			return b, nil
		}
	}
	return c.Marshal(v)
}

// Close withdraws the publisher. Other publishers of the topic on the same
// node are not affected. Close is idempotent.
func (p *Publisher[T]) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	n := p.node
	n.mu.Lock()
	if pc := n.pubs[p.topic]; pc != nil {
		if pc.n--; pc.n == 0 {
			delete(n.pubs, p.topic)
		}
	}
	n.mu.Unlock()
	n.catalogChanged()
	return nil
}

// schemaOf is the codec's description of T, when it gives one.
func schemaOf[T any](c codec.Codec) []byte {
	d, ok := c.(codec.Describer)
	if !ok {
		return nil
	}
	var zero T
	b, err := d.Describe(zero)
	if err != nil {
		return nil
	}
	return b
}

// Subscribers returns how many subscribers the topic has that this
// publisher's messages reach now: the subscriptions on this node, plus
// the nodes whose subscription has reached this node's transport (one per
// node, however many subscriptions it has). With a transport that cannot
// tell, the remote part counts the subscriptions peers announced in
// $describe, which a first message can still outrun.
func (p *Publisher[T]) Subscribers() int {
	n := p.node
	n.mu.Lock()
	count := len(n.subs[p.topic])
	n.mu.Unlock()
	if sc, ok := n.tr.(interface{ Subscribers(topic string) int }); ok {
		return count + sc.Subscribers(p.topic)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, peer := range n.peers {
		if !peer.visible() {
			continue
		}
		for _, s := range peer.desc.Subscriptions {
			if s.Name == p.topic {
				count++
			}
		}
	}
	return count
}

// WaitSubscribers blocks until Subscribers reports at least want, ctx ends
// (its error is returned) or the node closes (ErrClosed). It checks when the
// peer catalog changes and every few milliseconds, since a subscription
// reaches the transport without telling the node.
func (p *Publisher[T]) WaitSubscribers(ctx context.Context, want int) error {
	n := p.node
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.Subscribers() >= want {
			return nil
		}
		n.mu.Lock()
		changed := n.changed
		n.mu.Unlock()
		select {
		case <-changed:
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

// typeName is T's name as carried in headers: the codec's name for it when
// the codec has strict names (protobuf), else the Go type.
func typeName[T any](c codec.Codec) string {
	var zero T
	if tn, ok := c.(codec.TypeNamer); ok {
		if name := tn.TypeName(zero); name != "" {
			return name
		}
	}
	return reflect.TypeFor[T]().String()
}

// subCore is the untyped half of a subscription.
type subCore struct {
	node   *Node
	info   TopicInfo
	strict bool // compare type names too
	policy DropPolicy
	c      *counters
	slow   atomic.Bool // in a slow-consumer episode

	// decode decodes a message's payload and offers it to the channel under mu.
	decode func(m *transport.Message, exclusive bool) (dropped bool, err error)
	// With the Block policy, messages from this node's own publishers do
	// not wait for the channel in Publish: handOff decodes one and queues
	// it without waiting (dropped: the queue is full), and drain, a
	// goroutine of the node's, offers the queue to the channel in order,
	// waiting up to the Block duration for each. Both are nil for the
	// other policies.
	handOff  func(m *transport.Message) (dropped bool, err error)
	drain    func()
	anyCodec bool // take every codec (WithAnyCodec)
	closeC   func()
	ending   atomic.Bool
	done     chan struct{} // closed first by close: ends a Block wait and drain
	mu       sync.Mutex
	closed   bool
	stop     func() bool // stops the ctx watcher
}

func (s *subCore) close() {
	if !s.ending.Swap(true) {
		close(s.done) // a delivery waiting under mu lets go of it
	}
	s.mu.Lock()
	stop := s.stop
	if !s.closed {
		s.closed = true
		s.closeC()
	}
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Subscribe returns a channel of the values published on topic by any node,
// this one included. The node owns the channel: it is closed when ctx ends
// or the node closes, and at no other time. Delivery never blocks the
// network, nor a Publish on this node: when the channel is full
// (WithBuffer, default 64) the drop policy (WithDropPolicy, default
// DropOldest) decides, the drop is counted in Stats, and ErrSlowConsumer
// goes to the error handler once per episode.
// Messages that do not decode into T, or carry another codec, are dropped,
// counted and reported (*DecodeError, ErrCodecMismatch); they never reach
// the channel. Values from one publisher arrive in publish order.
func Subscribe[T any](ctx context.Context, node *Node, topic string, opts ...SubscribeOption) (<-chan T, error) {
	return subscribe(ctx, node, topic, opts, false, func(v T, _ *transport.Message, _ time.Time) T { return v })
}

// Received is a value with what its message's header said, as delivered by
// SubscribeReceived.
type Received[T any] struct {
	Value    T
	Codec    string    // codec name the publisher used
	Type     string    // type name the publisher gave
	Sender   string    // publishing node's id
	Seq      uint64    // the publisher's sequence number on this topic, from 1
	SendTime time.Time // publisher's clock when it published
	RecvTime time.Time // this node's clock when the message arrived
}

// SubscribeReceived is Subscribe with each value's metadata: for tools that
// measure rates and latencies, record, or follow sequence numbers.
func SubscribeReceived[T any](ctx context.Context, node *Node, topic string, opts ...SubscribeOption) (<-chan Received[T], error) {
	return subscribe(ctx, node, topic, opts, true, func(v T, m *transport.Message, recv time.Time) Received[T] {
		h := &m.Header
		return Received[T]{Value: v, Codec: h.Codec, Type: h.Type, Sender: h.Sender, Seq: h.Seq,
			SendTime: time.Unix(0, h.SendTime), RecvTime: recv}
	})
}

// WithAnyCodec makes a subscription of []byte take every message of the
// topic whatever its codec, and deliver the payload bytes as they are
// (with SubscribeReceived, the codec name says how to read them): for
// tools such as recorders. Default: only messages of the subscription's
// codec are taken.
func WithAnyCodec() SubscribeOption { return anyCodecOption{} }

type anyCodecOption struct{}

func (anyCodecOption) applySubscribe(c *subConfig) { c.anyCodec = true }

// subscribe is the generic core of Subscribe and SubscribeReceived: T is
// what the codec decodes, V what the channel carries. stamp says whether
// wrap uses the receive time (reading the clock costs about 3% of a small
// message's delivery here).
func subscribe[T, V any](ctx context.Context, node *Node, topic string, opts []SubscribeOption, stamp bool, wrap func(T, *transport.Message, time.Time) V) (<-chan V, error) {
	if err := wire.CheckName(topic); err != nil {
		return nil, fmt.Errorf("%w: topic: %w", ErrInvalidOption, err)
	}
	cfg := subConfig{topicConfig: topicConfig{codec: node.cfg.codec}, buffer: 64, policy: DropOldest}
	for _, o := range opts {
		if o != nil {
			o.applySubscribe(&cfg)
		}
	}
	if cfg.codec == nil || cfg.buffer < 1 || (cfg.policy.kind == dropBlock && cfg.policy.block <= 0) {
		return nil, fmt.Errorf("%w: subscription needs a codec, a buffer of at least 1 and a positive Block duration", ErrInvalidOption)
	}
	c := cfg.codec
	if cfg.anyCodec {
		if _, ok := any(new(T)).(*[]byte); !ok {
			return nil, fmt.Errorf("%w: WithAnyCodec needs T = []byte", ErrInvalidOption)
		}
		c = codec.Raw{}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := make(chan V, cfg.buffer)
	_, strict := c.(codec.TypeNamer)
	s := &subCore{node: node, policy: cfg.policy, strict: strict, anyCodec: cfg.anyCodec, done: make(chan struct{}),
		info:   TopicInfo{Name: topic, Codec: c.Name(), Type: typeName[T](c), Schema: schemaOf[T](c)},
		closeC: func() { close(ch) }}
	if cfg.anyCodec {
		s.info.Codec, s.info.Type = "*", "*"
	}
	// scratch is decoded into under s.mu and copied into the channel, so a
	// delivery costs no allocation of its own beyond what the codec makes.
	// (A Raw []byte takes an exclusive payload as it is: rawValue.)
	scratch := new(T)
	s.decode = func(m *transport.Message, exclusive bool) (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return false, nil
		}
		v, ok := rawValue[T](c, m.Payload, exclusive)
		if !ok {
			var zero T
			*scratch = zero // codecs such as JSON merge into what is there
			if err := c.Unmarshal(m.Payload, scratch); err != nil {
				return false, err
			}
			v = *scratch
			*scratch = zero // the channel has its own copy; do not keep v's referents alive
		}
		var recv time.Time
		if stamp {
			recv = time.Now()
		}
		return offer(ch, wrap(v, m, recv), s.policy, s.done), nil
	}
	if cfg.policy.kind == dropBlock {
		// The hand-off queue holds as many values as the channel. Each
		// value carries its arrival number, so that drain can tell whether
		// it arrived after the last drop (then its offer ends the episode).
		type queued struct {
			v V
			n uint64
		}
		q := make(chan queued, cfg.buffer)
		var arrivals, lastDrop atomic.Uint64
		s.handOff = func(m *transport.Message) (bool, error) {
			if s.ending.Load() {
				return false, nil
			}
			// Not under mu, which drain holds while it waits: a value of
			// its own (a local message's payload is never exclusive).
			v, err := decode[T](c, m.Payload)
			if err != nil {
				return false, err
			}
			var recv time.Time
			if stamp {
				recv = time.Now()
			}
			n := arrivals.Add(1)
			select {
			case q <- queued{wrap(v, m, recv), n}:
				return false, nil
			default:
				lastDrop.Store(n)
				return true, nil
			}
		}
		s.drain = func() {
			for {
				select {
				case <-s.done:
					return // values still queued go with the subscription
				case e := <-q:
					s.mu.Lock()
					dropped := !s.closed && offer(ch, e.v, s.policy, s.done)
					s.mu.Unlock()
					if s.ending.Load() {
						return
					}
					if dropped || e.n > lastDrop.Load() {
						s.noteOffer(dropped)
					}
				}
			}
		}
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
	return ch, nil
}

// offer puts v on ch by policy and reports whether a message was dropped.
// The caller holds the subscription's lock, so offers never interleave. A
// Block wait also ends when done closes (the subscription is closing).
func offer[T any](ch chan T, v T, p DropPolicy, done <-chan struct{}) (dropped bool) {
	select {
	case ch <- v:
		return false
	default:
	}
	switch p.kind {
	case dropOldest:
		select { // a reader may have made room meanwhile: either way v goes in
		case <-ch:
			dropped = true
		default:
		}
		select {
		case ch <- v:
		default:
			dropped = true
		}
		return dropped
	case dropBlock:
		t := time.NewTimer(p.block)
		defer t.Stop()
		select {
		case ch <- v:
			return false
		case <-t.C:
		case <-done:
		}
	}
	return true
}

func (n *Node) addSub(s *subCore) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed.Load() {
		return ErrClosed
	}
	s.c = n.counterLocked(s.info.Name)
	if s.drain != nil {
		n.goLocked(s.drain) // the node is open: it starts, and Close waits for it
	}
	n.subs[s.info.Name] = append(n.subs[s.info.Name], s)
	n.publishRecvLocked()
	for _, p := range n.peers {
		n.syncPeerLocked(p)
	}
	return nil
}

func (n *Node) removeSub(s *subCore) {
	n.mu.Lock()
	ss := n.subs[s.info.Name]
	if i := indexOf(ss, s); i >= 0 {
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
	s.close()
	n.catalogChanged()
}

func indexOf(ss []*subCore, s *subCore) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

// publishRecvLocked replaces the receive path's snapshot of subscriptions.
func (n *Node) publishRecvLocked() {
	m := make(map[string]*topicSubs, len(n.subs))
	for t, ss := range n.subs {
		m[t] = &topicSubs{subs: ss, c: n.counterLocked(t)}
	}
	n.recv.Store(&m)
}

// receive hands a message from another node to this node's subscriptions.
// It runs on the transport's connection goroutine and never blocks, except
// for subscriptions with the Block policy, which hold up that connection
// only.
func (n *Node) receive(msg *transport.Message) { n.receiveFrom(msg, false) }

// receiveLocal hands a message of this node's own publisher to this node's
// subscriptions, on the publisher's goroutine. It never blocks: Block
// subscriptions take it through their hand-off queue.
func (n *Node) receiveLocal(msg *transport.Message) { n.receiveFrom(msg, true) }

func (n *Node) receiveFrom(msg *transport.Message, local bool) {
	ts := (*n.recv.Load())[msg.Name]
	if ts == nil {
		return // not (or no longer) subscribed
	}
	ts.c.received.Add(1)
	ts.c.noteSeq(msg.Header.Sender, msg.Header.Seq)
	exclusive := msg.Exclusive && len(ts.subs) == 1 // the one subscription may keep the payload
	for _, s := range ts.subs {
		s.deliver(msg, exclusive, local)
	}
}

func (s *subCore) deliver(msg *transport.Message, exclusive, local bool) {
	h := &msg.Header
	if !s.anyCodec && (h.Codec != s.info.Codec || (s.strict && h.Type != s.info.Type)) {
		s.c.decodeErrors.Add(1)
		s.node.report(&DecodeError{Topic: s.info.Name, Codec: h.Codec, Type: h.Type, Sender: h.Sender,
			Err: fmt.Errorf("%w: subscriber expects codec %s, type %s", ErrCodecMismatch, s.info.Codec, s.info.Type)})
		return
	}
	var dropped bool
	var err error
	handOff := local && s.handOff != nil
	if handOff {
		dropped, err = s.handOff(msg)
	} else {
		dropped, err = s.decode(msg, exclusive)
	}
	if err != nil {
		s.c.decodeErrors.Add(1)
		s.node.report(&DecodeError{Topic: s.info.Name, Codec: h.Codec, Type: h.Type, Sender: h.Sender, Err: err})
		return
	}
	s.c.delivered.Add(1)
	if handOff && !dropped {
		return // queued: drain notes how its offer went
	}
	s.noteOffer(dropped)
}

// noteOffer counts a drop and reports ErrSlowConsumer when an episode
// starts; an offer that got through ends the episode.
func (s *subCore) noteOffer(dropped bool) {
	if !dropped {
		if s.slow.Load() {
			s.slow.Store(false)
		}
		return
	}
	s.c.dropped.Add(1)
	if !s.slow.Swap(true) {
		s.node.report(fmt.Errorf("%w: topic %q (policy %v)", ErrSlowConsumer, s.info.Name, s.policy))
	}
}
