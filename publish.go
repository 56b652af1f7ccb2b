package colugo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

type pubCount struct {
	info TopicInfo
	n    int
	// seq numbers the node's messages on the topic, all its publishers
	// together: the header's sender is the node, so one sequence per node
	// and topic is what receivers can follow without false gaps.
	seq *pubSeq
	// hist holds the WithHistory of each open publisher that asked (the
	// topic's history is as deep and large as the largest).
	hist []historyConfig
}

// pubSeq is a topic's publish sequence. With a key, mu is held from taking
// a number to handing the sealed message to the transport, so that the
// numbers reach each connection in order (a receiver's replay window then
// sees no reorder), whatever the number of goroutines publishing.
type pubSeq struct {
	atomic.Uint64
	mu sync.Mutex

	// tail says the topic's latest publish was missed by a subscriber
	// connection: tail markers go out until one, or a publish, reaches
	// every connection. slow is the ErrSlowConsumer episode.
	tail, slow atomic.Bool
	// sent is the send time of the latest publish.
	sent atomic.Int64
	// waiting counts sealed publishes that hold mu while the transport may
	// wait for back-pressure (WithBackPressure): $describe does not wait
	// for those (baseline).
	waiting atomic.Int32
	// hist is what the node keeps of the topic (WithHistory); nil: none.
	hist atomic.Pointer[history]
}

// baseline is the sequence number up to which every sealed publish of the
// topic has been handed to the transport, for $describe's seqs. It takes mu,
// except while a back-pressured publish holds it (possibly for its maxWait):
// then all but the latest number were handed, so it says one less, which
// lets a subscriber that described meanwhile accept that one message
// rather than stall the reply.
func (q *pubSeq) baseline() uint64 {
	if q.waiting.Load() == 0 {
		q.mu.Lock()
	} else if !q.mu.TryLock() {
		return max(q.Load(), 1) - 1
	}
	defer q.mu.Unlock()
	return q.Load()
}

// sendTails sends a tail marker on every topic whose latest publish a
// subscriber connection missed and that has not been published on for a
// while (a later publish's seq tells subscribers of the gap anyway, and a
// marker must not overtake the publish whose number it carries), so that a
// subscriber whose stream stopped learns of the lost tail. The markers go
// on, one per tick, until one reaches every connection.
func (n *Node) sendTails() {
	type due struct {
		topic string
		seq   *pubSeq
	}
	var dues []due
	quiet := time.Now().Add(-tailQuiet).UnixNano()
	n.mu.Lock()
	for t, q := range n.seqs {
		if q.tail.Load() && q.sent.Load() < quiet {
			dues = append(dues, due{t, q})
		}
	}
	n.mu.Unlock()
	for _, d := range dues {
		msg := &transport.Message{Name: d.topic, Header: wire.Header{Kind: transport.KindPublish, Flags: wire.FlagTail, Sender: n.id}}
		if !d.seq.mu.TryLock() { // with a key: in sequence order with the sealed publishes
			continue // a publish of the topic is under way (perhaps waiting for back-pressure): it tells the tail, or the next round does
		}
		msg.Header.Seq, msg.Header.SendTime = d.seq.Load(), time.Now().UnixNano()
		n.sealMsg(msg, binding{})
		res, err := n.tr.Publish(context.Background(), msg, transport.PublishOptions{})
		d.seq.mu.Unlock()
		if err == nil && res.Dropped == 0 {
			d.seq.tail.Store(false)
		}
	}
}

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
	maxWait  time.Duration // WithBackPressure; 0: Publish never waits
	hist     historyConfig // WithHistory; depth 0: none
	seed     *seedPub      // SeedVisible; nil without

	closed atomic.Bool
	// spare is a Message for the next Publish: neither local delivery nor
	// the transport keeps it, so one serves every call that does not
	// overlap another (overlapping ones allocate).
	spare atomic.Pointer[transport.Message]
}

// NewPublisher announces that node publishes T on topic. topic is any UTF-8
// string of 1 to 255 bytes without NUL. Subscribers on other nodes connect
// once discovery has told them; messages published before that reach
// them only from the publisher's history, when it keeps one (WithHistory)
// and they ask for it.
func NewPublisher[T any](node *Node, topic string, opts ...PublisherOption) (*Publisher[T], error) {
	if err := wire.CheckName(topic); err != nil {
		return nil, fmt.Errorf("%w: topic: %w", ErrInvalidOption, err)
	}
	cfg := topicConfig{codec: node.cfg.codec, historyBytes: DefaultHistoryBytes}
	for _, o := range opts {
		if o != nil {
			o.applyPublisher(&cfg)
		}
	}
	if cfg.codec == nil {
		return nil, fmt.Errorf("%w: nil codec", ErrInvalidOption)
	}
	if cfg.history < 0 || cfg.historyBytes < 0 {
		return nil, fmt.Errorf("%w: WithHistory takes 0 to %d, WithHistoryBytes a positive size", ErrInvalidOption, MaxHistory)
	}
	_, raw := cfg.codec.(codec.Raw)
	if cfg.maxWait < 0 {
		return nil, fmt.Errorf("%w: negative back-pressure wait", ErrInvalidOption)
	}
	var sp *seedPub
	if cfg.seedVisible {
		if node.seed == nil {
			return nil, fmt.Errorf("%w: SeedVisible needs a node WithSeedCompat", ErrInvalidOption)
		}
		if err := checkSeedName(topic); err != nil {
			return nil, err
		}
		var err error
		if sp, err = node.seed.addPub(topic); err != nil {
			return nil, err
		}
	}
	p := &Publisher[T]{node: node, topic: topic, codec: cfg.codec, handOver: !raw || cfg.zeroCopy, maxWait: cfg.maxWait, seed: sp,
		hist: historyConfig{depth: cfg.history, bytes: cfg.historyBytes},
		info: TopicInfo{Name: topic, Codec: cfg.codec.Name(), Type: typeName[T](cfg.codec), Schema: schemaOf[T](cfg.codec),
			JSONSchema: jsonSchemaOf[T](cfg.codec), Relay: cfg.relay}}
	node.mu.Lock()
	if err := node.acceptingLocked(); err != nil {
		node.mu.Unlock()
		if sp != nil {
			node.seed.releasePub(topic, sp)
		}
		return nil, err
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
	if p.hist.depth > 0 {
		pc.hist = append(pc.hist, p.hist)
		node.setHistoryLocked(pc)
	}
	for _, s := range node.subs[topic] { // this node's history subscriptions learn of it
		if s.hist != nil {
			node.notePublisherLocked(s, node.id, "", pc.info.History)
		}
	}
	node.matchPatternsLocked([]TopicInfo{p.info}) // this node's pattern subscriptions match it
	node.mu.Unlock()
	node.catalogChanged()
	return p, nil
}

// Topic returns the publisher's topic.
func (p *Publisher[T]) Topic() string { return p.topic }

// Publish encodes v and sends it to every subscriber of the topic, on this
// node and on its peers. Without back-pressure (the default) it does not
// wait for subscribers: a subscriber that cannot keep up loses messages by
// its drop policy once its queue is full (WithQueueBytes), counted in its
// node's Stats; a subscriber connection of another node whose send queue
// is full misses the message, counted in this node's Stats (TopicStats.
// Missed) and reported once per episode as ErrSlowConsumer.
//
// With WithBackPressure(maxWait), Publish waits, at most maxWait in all and
// until ctx ends, for room in the queues of the subscriptions that asked for
// it (those with the Block policy, on this node and on others); one that
// still has none misses the message and is not waited for again until its
// queue has drained.
//
// Publish keeps nothing of v: once it returns, v (with codec.Raw, the bytes
// of v) may be reused. Errors: ctx's error (checked first, and when it ended
// during a back-pressure wait: the message then went to the subscribers
// that had room), ErrClosed, or the codec's marshal error.
func (p *Publisher[T]) Publish(ctx context.Context, v T) error {
	if tr := p.node.cfg.tracer; tr != nil {
		ctx, end := tr.Start(ctx, SpanPublish, p.topic, nil)
		err := p.publish(ctx, v)
		end(err)
		return err
	}
	return p.publish(ctx, v)
}

func (p *Publisher[T]) publish(ctx context.Context, v T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.closed.Load() || p.node.closed.Load() {
		return ErrClosed
	}
	ext, err := outgoingExt(ctx)
	if err != nil {
		return err
	}
	payload, err := marshal(p.codec, v)
	if err != nil {
		return fmt.Errorf("colugo: encoding %q: %w", p.topic, err)
	}
	if p.seed != nil { // before any hand-over: the seed publisher keeps nothing of payload
		p.node.seed.publish(p.seed, payload)
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
		Ext:    ext,
	}, Payload: payload}
	p.c.published.Add(1)
	var w pubWait
	tctx, opts := context.Background(), transport.PublishOptions{}
	if p.maxWait > 0 {
		w, tctx = pubWait{ctx: ctx, deadline: time.Now().Add(p.maxWait)}, ctx
	}
	var res transport.PublishResult
	if p.node.keys != nil {
		res, err = p.publishSealed(tctx, msg, w)
	} else {
		if h := p.seq.hist.Load(); h != nil {
			// Numbered under the history's lock, so that it holds the
			// topic's messages in sequence order; kept before any delivery,
			// so that a subscription that fetches it after it appears to
			// the receive path misses nothing (subHistory).
			h.mu.Lock()
			msg.Header.Seq, msg.Header.SendTime = p.seq.Add(1), time.Now().UnixNano()
			h.appendLocked(&msg.Header, msg.Payload)
			h.mu.Unlock()
		} else {
			msg.Header.Seq, msg.Header.SendTime = p.seq.Add(1), time.Now().UnixNano()
		}
		p.node.receiveLocal(msg, w) // subscribers on this node, which keep nothing of msg
		msg.Exclusive = p.handOver  // after local delivery: a local subscriber must not keep it
		if w.ctx != nil {
			opts.MaxWait = max(time.Until(w.deadline), 0) // what the local waits left
		}
		res, err = p.node.tr.Publish(tctx, msg, opts)
	}
	p.seq.sent.Store(msg.Header.SendTime) // once the transport has it (sendTails)
	msg.Payload = nil                     // the caller's: do not pin it
	p.spare.Store(msg)
	p.noteResult(res)
	if err == nil && w.ctx != nil {
		err = ctx.Err() // it ended during a wait
	}
	return err
}

// noteResult counts the subscriber connections that missed a message and
// reports ErrSlowConsumer when an episode starts; a publish that every
// connection got ends it, and the tail markers (Node.sendTails).
func (p *Publisher[T]) noteResult(res transport.PublishResult) {
	q := p.seq
	if res.Dropped > 0 {
		p.c.missed.Add(uint64(res.Dropped))
		q.tail.Store(true)
		if !q.slow.Swap(true) {
			p.node.report(fmt.Errorf("%w: topic %q: %d of %d subscriber connections missed a message (their send queue was full)",
				ErrSlowConsumer, p.topic, res.Dropped, res.Subscribers))
		}
		return
	}
	if q.tail.Load() {
		q.tail.Store(false)
	}
	if q.slow.Load() {
		q.slow.Store(false)
	}
}

// publishSealed numbers, seals and sends msg under the topic's sequence
// lock, so that every connection gets the topic's messages in sequence
// order (the receivers' replay windows), then delivers the plaintext on
// this node, which needs no seal.
func (p *Publisher[T]) publishSealed(ctx context.Context, msg *transport.Message, w pubWait) (transport.PublishResult, error) {
	plain := msg.Payload
	var opts transport.PublishOptions
	if w.ctx != nil {
		opts.MaxWait = p.maxWait
	}
	if opts.MaxWait > 0 {
		p.seq.waiting.Add(1)
		defer p.seq.waiting.Add(-1)
	}
	ext := msg.Header.Ext
	p.seq.mu.Lock()
	if h := p.seq.hist.Load(); h != nil { // kept in plaintext: a replay is sealed for the node that asks
		// Numbered under the history's lock, as unsealed publishes are: an
		// answer built meanwhile must not give a latest seq its entries do
		// not reach yet (the asker would refuse it as out of place).
		h.mu.Lock()
		msg.Header.Seq, msg.Header.SendTime = p.seq.Add(1), time.Now().UnixNano()
		h.appendLocked(&msg.Header, plain)
		h.mu.Unlock()
	} else {
		msg.Header.Seq, msg.Header.SendTime = p.seq.Add(1), time.Now().UnixNano()
	}
	p.node.sealMsg(msg, binding{}) // a new buffer, handed over
	res, err := p.node.tr.Publish(ctx, msg, opts)
	p.seq.mu.Unlock()
	msg.Header.Flags &^= wire.FlagSealed
	msg.Header.Ext = ext                      // without the seal's MAC
	msg.Payload, msg.Exclusive = plain, false // local subscribers must not keep it
	p.node.receiveLocal(msg, w)
	return res, err
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
		if i := slices.Index(pc.hist, p.hist); p.hist.depth > 0 && i >= 0 {
			pc.hist = slices.Delete(pc.hist, i, i+1)
			n.setHistoryLocked(pc)
		}
		if pc.n--; pc.n == 0 {
			delete(n.pubs, p.topic)
		}
	}
	n.mu.Unlock()
	if p.seed != nil {
		n.seed.releasePub(p.topic, p.seed)
	}
	n.catalogChanged()
	return nil
}

// Flush waits until every message that Publish returned for before the
// call has left the node for each subscriber that asked for reliable
// delivery (the Block policy): written to its connection (the operating
// system then sends it even if this process exits at once) or, on this
// node, put in its queue; or dropped for it, counted as any drop (a
// subscriber that back-pressure gave up on is not waited for). Other
// subscribers take what they get: Flush does not wait for them, so that a
// slow one holds up no one. It waits for the node's other publishers'
// earlier messages too, as they share the connections, but not for what
// is published meanwhile, and not for subscribers to read. A relay that
// acks what it forwards acks after Flush, so that a crash loses nothing it
// acked that a reliable subscriber was to get. It returns ctx's error if
// ctx ends first (a stalled reliable subscriber's full queue holds it
// up), ErrClosed once the publisher or its node is closed, and
// errors.ErrUnsupported with a transport that cannot tell (not a
// transport.Syncer).
func (p *Publisher[T]) Flush(ctx context.Context) error {
	if p.closed.Load() || p.node.closed.Load() {
		return ErrClosed
	}
	s, ok := p.node.tr.(transport.Syncer)
	if !ok {
		return fmt.Errorf("colugo: Flush: transport %T: %w", p.node.tr, errors.ErrUnsupported)
	}
	return s.Sync(ctx)
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
	if sc, ok := n.tr.(transport.SubscriberCounter); ok {
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
	return p.node.waitUntil(ctx, 5*time.Millisecond, func() bool { return p.Subscribers() >= want })
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
