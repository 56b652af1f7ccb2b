package record

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"golang.org/x/sync/errgroup"
)

// RecordOption configures NewRecorder.
type RecordOption interface{ applyRecord(*recordConfig) }

type recordConfig struct {
	topics   map[string]bool // nil (and no patterns): all
	patterns []colugo.Pattern
	buffer   int
	block    time.Duration
	budget   int // bytes, shared by the subscriptions' queues
	seed     bool
	err      error // an option's, returned by NewRecorder
}

// wants reports whether the recording takes topic.
func (c *recordConfig) wants(topic string) bool {
	if c.topics == nil && c.patterns == nil {
		return true
	}
	return c.topics[topic] || slices.ContainsFunc(c.patterns, func(p colugo.Pattern) bool { return p.Match(topic) })
}

type topicsOption []string

func (o topicsOption) applyRecord(c *recordConfig) {
	if c.topics == nil {
		c.topics = map[string]bool{}
	}
	for _, t := range o {
		c.topics[t] = true
	}
}
func (o topicsOption) String() string { return fmt.Sprintf("record.Topics(%q)", []string(o)) }

// Topics limits a recording to these topics (with Patterns: to these and
// the topics the patterns match). Default: every topic any discovered node
// publishes.
func Topics(names ...string) RecordOption { return topicsOption(names) }

type patternsOption []string

func (o patternsOption) applyRecord(c *recordConfig) {
	if c.patterns == nil {
		c.patterns = []colugo.Pattern{}
	}
	for _, s := range o {
		p, err := colugo.ParsePattern(s)
		if err != nil {
			c.err = cmp.Or(c.err, err)
			continue
		}
		c.patterns = append(c.patterns, p)
	}
}
func (o patternsOption) String() string { return fmt.Sprintf("record.Patterns(%q)", []string(o)) }

// Patterns limits a recording to the topics that match these patterns
// (colugo.ParsePattern's syntax: "robot/*/pose", "robot/**"), matched
// against each topic as its publishers are discovered; with Topics, to
// those topics too. NewRecorder returns an invalid pattern's error
// (colugo.ErrInvalidOption). Each matching topic is subscribed to on its
// own, as a topic named with Topics is. Default: every topic.
func Patterns(patterns ...string) RecordOption { return patternsOption(patterns) }

type seedOption struct{}

func (seedOption) applyRecord(c *recordConfig) { c.seed = true }
func (seedOption) String() string              { return "record.WithSeed()" }

// WithSeed also records the topics of the seed publishers (nodes of the
// Python colugo) that the recorder's node finds, which needs a node with
// colugo.WithSeedCompat: Run looks at Node.SeedSockets every 100 ms and
// subscribes to each new wanted topic as it does to a
// colugo topic. (Without WithSeed, a seed publisher of a topic that a
// colugo node publishes is recorded anyway: it joins that topic's
// subscription.) The seed's wire names no codec, type, sequence number or
// send time, so its messages are written with codec raw (their bytes, as
// colugo echo --seed shows them), no type, the receive time as both log
// and publish time, and count no gaps. Default: off.
func WithSeed() RecordOption { return seedOption{} }

// seedPoll is how often a recorder WithSeed looks for new seed
// publishers: the node has no event for them, and the seed's own
// discovery takes 10 ms to 1 s.
const seedPoll = 100 * time.Millisecond

type bufferOption int

func (o bufferOption) applyRecord(c *recordConfig) { c.buffer = int(o) }
func (o bufferOption) String() string              { return "record.WithBuffer(" + strconv.Itoa(int(o)) + ")" }

// WithBuffer sets each recording subscription's channel capacity. When it
// is full, messages wait in the subscription's queue (see WithQueueBudget).
// What waits in a channel is outside the budget, so the default is small:
// 16 (at 1024, a topic of 1 MiB point clouds could hold 1 GiB there while
// the file lags; BenchmarkRecorder finds no speed in a larger one).
func WithBuffer(n int) RecordOption { return bufferOption(n) }

type queueBudgetOption int

func (o queueBudgetOption) applyRecord(c *recordConfig) { c.budget = int(o) }
func (o queueBudgetOption) String() string {
	return "record.WithQueueBudget(" + strconv.Itoa(int(o)) + ")"
}

// WithQueueBudget bounds, in bytes, what all of a recording's subscription
// queues hold together while the Writer lags (one colugo.QueueBudget for
// them; each also keeps its own bound, colugo.DefaultQueueBytes). When
// a topic's message finds the budget (or its own bound) full, it waits up
// to 1s for that topic's writes to make room (colugo.Block: the wait holds
// up delivery from the message's node, whose topics so wait in turn), then
// it and the topic's later messages are dropped and counted (Progress, the
// "dropped" metadata) until the topic's queue has drained. A topic with
// nothing queued still takes one message however full the budget is, so
// the bound may be passed by one message per topic. Not counted: the up to
// WithBuffer messages per topic in the subscriptions' channels. A value
// below 1 makes NewRecorder fail (colugo.ErrInvalidOption). Default: 256
// MiB.
func WithQueueBudget(bytes int) RecordOption { return queueBudgetOption(bytes) }

// defaultQueueBudget is four topics' colugo.DefaultQueueBytes: a recording
// of a few topics keeps each one's whole bound, one of many topics is
// bounded all the same.
const defaultQueueBudget = 4 * colugo.DefaultQueueBytes

// Recorder records topics from a node into a Writer. Create it with
// NewRecorder and call Run.
type Recorder struct {
	node   *colugo.Node
	w      *Writer
	cfg    recordConfig
	budget *colugo.QueueBudget // shared by all the subscriptions' queues

	mu      sync.Mutex
	topics  map[string]*topicState
	schemas map[schemaRef][]byte // advertised by publishers
	started time.Time
}

type schemaRef struct{ topic, codec, typ string }

// topicState is what the recorder knows of one recorded topic.
type topicState struct {
	codecs  []string                // codecs seen, in order
	senders map[string]*senderState // by publishing node id
	gaps    uint64
	history int // the greatest depth a publisher offered (TopicInfo.History), so far
}

// senderState follows one publisher's sequence numbers on a topic.
type senderState struct {
	first, last uint64
	messages    uint64
	gaps        uint64
}

// NewRecorder returns a recorder of node's peers' topics into w.
func NewRecorder(node *colugo.Node, w *Writer, opts ...RecordOption) (*Recorder, error) {
	cfg := recordConfig{buffer: 16, block: time.Second, budget: defaultQueueBudget}
	for _, o := range opts {
		if o != nil {
			o.applyRecord(&cfg)
		}
	}
	if cfg.err != nil {
		return nil, fmt.Errorf("record: %w", cfg.err)
	}
	if cfg.buffer < 1 {
		return nil, fmt.Errorf("%w: record buffer must be at least 1", colugo.ErrInvalidOption)
	}
	if cfg.budget < 1 {
		return nil, fmt.Errorf("%w: record queue budget must be at least 1 byte", colugo.ErrInvalidOption)
	}
	return &Recorder{node: node, w: w, cfg: cfg, budget: colugo.NewQueueBudget(cfg.budget),
		topics: map[string]*topicState{}, schemas: map[schemaRef][]byte{}}, nil
}

// Run records until ctx ends, then writes the "colugo.recording" metadata
// record and returns nil (the caller closes the Writer), or returns the
// first error writing the file. It subscribes to each wanted topic once,
// whatever codecs its publishers use (colugo.WithAnyCodec), as soon as a
// publisher is discovered (node's Events; WithSeed: and the node's seed
// publishers), so topics that appear later are recorded too. Each message
// is written with its publisher's codec and type names, the receive time
// as log time and the publisher's send time as publish time; protobuf
// channels get the FileDescriptorSet that the publishers advertise as
// their MCAP schema. A topic whose publishers
// offer history (colugo.TopicInfo.History) is marked so on its channels
// (MetaHistory: the greatest depth offered so far), and when its first
// publisher offers some, the subscription asks for that much
// (colugo.WithHistory), so the recording starts with what the publishers
// kept from before it started. Run blocks, owns every
// goroutine it starts and waits for them before it returns. Call it once.
func (r *Recorder) Run(ctx context.Context) error {
	// One goroutine per topic; the first write or subscribe error cancels
	// the others (and ends the events loop) and is Run's error.
	g, ctx := errgroup.WithContext(ctx)
	r.mu.Lock()
	r.started = time.Now()
	r.mu.Unlock()
	subscribe := func(t colugo.TopicInfo) {
		if !r.cfg.wants(t.Name) {
			return
		}
		r.mu.Lock()
		if len(t.Schema) > 0 {
			r.schemas[schemaRef{t.Name, t.Codec, t.Type}] = t.Schema
		}
		if st := r.topics[t.Name]; st != nil {
			st.history = max(st.history, t.History)
			r.mu.Unlock()
			return
		}
		st := &topicState{senders: map[string]*senderState{}, history: max(t.History, 0)}
		r.topics[t.Name] = st
		r.mu.Unlock()
		opts := []colugo.SubscribeOption{colugo.WithAnyCodec(), colugo.WithBuffer(r.cfg.buffer),
			colugo.WithDropPolicy(colugo.Block(r.cfg.block)), colugo.WithQueueBudget(r.budget)}
		if st.history > 0 {
			// The recording starts with what the publisher keeps (a latched
			// map, a configuration), which a replay can then latch in turn.
			opts = append(opts, colugo.WithHistory(min(st.history, colugo.MaxHistory)))
		}
		ch, err := colugo.SubscribeReceived[[]byte](ctx, r.node, t.Name, opts...)
		if err != nil {
			g.Go(func() error { return fmt.Errorf("record: subscribing to %q: %w", t.Name, err) })
			return
		}
		g.Go(func() error {
			schemas := map[schemaRef][]byte{} // this topic's, so no lock per message
			for m := range ch {
				ref := schemaRef{t.Name, m.Codec, m.Type}
				schema, ok := schemas[ref]
				if !ok {
					schema = r.noteCodec(st, ref)
					schemas[ref] = schema
				}
				history := r.noteSeq(st, m.Sender, m.Seq)
				if err := r.w.Write(Message{Topic: t.Name, Codec: m.Codec, Type: m.Type, LogTime: m.RecvTime,
					PublishTime: m.SendTime, Data: m.Value, Schema: schema, History: history}); err != nil {
					return err // cancels ctx, which ends the subscription: the node closes ch
				}
			}
			return nil
		})
	}
	events := r.node.Events(ctx)
	var seedTick <-chan time.Time
	if r.cfg.seed {
		t := time.NewTicker(seedPoll)
		defer t.Stop()
		seedTick = t.C
	}
	seedPubs := func() {
		for _, s := range r.node.SeedSockets() {
			if s.Kind == discovery.SeedPub {
				subscribe(colugo.TopicInfo{Name: s.Topic, Codec: "raw"}) // a known topic: nothing happens
			}
		}
	}
	if r.cfg.seed {
		seedPubs()
	}
loop:
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				break loop // ctx ended or the node closed
			}
			for _, t := range ev.Peer.Topics {
				subscribe(t)
			}
		case <-seedTick:
			seedPubs()
		}
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err // a write or subscribe error
	}
	return r.w.AddMetadata(MetadataRecording, r.metadata())
}

// noteCodec records that a topic's messages come in ref's codec and type,
// and returns the schema publishers advertised for it.
func (r *Recorder) noteCodec(st *topicState, ref schemaRef) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(st.codecs, ref.codec) {
		st.codecs = append(st.codecs, ref.codec)
	}
	if s := r.schemas[ref]; s != nil {
		return s
	}
	// A publisher not yet described (its first message overtook $describe):
	// the current view of the peers may have it.
	for _, p := range r.node.Peers() {
		for _, t := range p.Topics {
			if t.Name == ref.topic && t.Codec == ref.codec && t.Type == ref.typ && len(t.Schema) > 0 {
				r.schemas[ref] = t.Schema
				return t.Schema
			}
		}
	}
	return nil
}

// noteSeq follows sender's sequence numbers on a topic: a number more
// than one past the last is a gap (messages lost before they reached the
// recorder, or dropped by its subscription); one that goes back is a new
// publisher on that node, a new start. It returns the greatest history
// depth the topic's publishers offered so far.
func (r *Recorder) noteSeq(st *topicState, sender string, seq uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := st.senders[sender]
	if s == nil {
		s = &senderState{first: seq, last: seq}
		st.senders[sender] = s
	} else if seq > s.last+1 {
		s.gaps += seq - s.last - 1
		st.gaps += seq - s.last - 1
	}
	if seq != 0 {
		s.last = seq
	}
	s.messages++
	return st.history
}

// metadata summarises, per recorded topic, the recorder's sequence-number
// bookkeeping and its node's counters.
func (r *Recorder) metadata() map[string]string {
	st := r.node.Stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]string{
		"node":  r.node.Name(),
		"start": r.started.UTC().Format(time.RFC3339Nano),
		"end":   time.Now().UTC().Format(time.RFC3339Nano),
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for topic, ts := range r.topics {
		ns := st.Topics[topic]
		p := "topic." + topic + "."
		m[p+"received"] = u(ns.Received)
		m[p+"dropped"] = u(ns.Dropped)
		m[p+"gaps"] = u(ts.gaps)
		m[p+"decode_errors"] = u(ns.DecodeErrors)
		m[p+"publishers"] = strconv.Itoa(len(ts.senders))
		m[p+"history"] = strconv.Itoa(ts.history)
		for id, s := range ts.senders {
			q := p + "sender." + id + "."
			m[q+"messages"] = u(s.messages)
			m[q+"first_seq"] = u(s.first)
			m[q+"last_seq"] = u(s.last)
			m[q+"gaps"] = u(s.gaps)
		}
	}
	return m
}

// TopicProgress is one topic's progress in a recording.
type TopicProgress struct {
	Topic      string
	Codecs     []string
	Publishers int    // distinct publishing nodes seen
	Messages   uint64 // written
	Bytes      uint64 // payload bytes written
	Dropped    uint64 // dropped by the recording subscription (the writer did not keep up)
	Gaps       uint64 // missing from publishers' sequence numbers, per publisher (lost, or dropped by the subscription)
	History    int    // the greatest depth its publishers offered (colugo.TopicInfo.History; 0: none)
}

// Progress reports, per recorded topic, what was written and lost so far.
// Safe to call concurrently with Run.
func (r *Recorder) Progress() []TopicProgress {
	counts := map[string]TopicCount{}
	for _, c := range r.w.Counts() {
		counts[c.Topic] = c
	}
	st := r.node.Stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TopicProgress, 0, len(r.topics))
	for topic, ts := range r.topics {
		c := counts[topic]
		out = append(out, TopicProgress{Topic: topic, Codecs: slices.Clone(ts.codecs), Publishers: len(ts.senders),
			Messages: c.Messages, Bytes: c.Bytes, Dropped: st.Topics[topic].Dropped, Gaps: ts.gaps, History: ts.history})
	}
	slices.SortFunc(out, func(a, b TopicProgress) int {
		switch {
		case a.Topic < b.Topic:
			return -1
		case a.Topic > b.Topic:
			return 1
		}
		return 0
	})
	return out
}
