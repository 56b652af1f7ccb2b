package record

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/colugo-go/colugo"
)

// RecordOption configures NewRecorder.
type RecordOption interface{ applyRecord(*recordConfig) }

type recordConfig struct {
	topics map[string]bool // nil: all
	buffer int
	block  time.Duration
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

// Topics limits a recording to these topics. Default: every topic any
// discovered node publishes.
func Topics(names ...string) RecordOption { return topicsOption(names) }

type bufferOption int

func (o bufferOption) applyRecord(c *recordConfig) { c.buffer = int(o) }
func (o bufferOption) String() string              { return "record.WithBuffer(" + strconv.Itoa(int(o)) + ")" }

// WithBuffer sets each recording subscription's channel capacity. When it
// is full, delivery waits up to 1s for the writer (colugo.Block), then drops
// and counts. Default: 1024.
func WithBuffer(n int) RecordOption { return bufferOption(n) }

// Recorder records topics from a node into a Writer. Create it with
// NewRecorder and call Run.
type Recorder struct {
	node *colugo.Node
	w    *Writer
	cfg  recordConfig

	mu      sync.Mutex
	subbed  map[subKey]bool
	codecs  map[string][]string // codecs recorded per topic
	started time.Time
}

type subKey struct{ topic, codec string }

// NewRecorder returns a recorder of node's peers' topics into w.
func NewRecorder(node *colugo.Node, w *Writer, opts ...RecordOption) (*Recorder, error) {
	cfg := recordConfig{buffer: 1024, block: time.Second}
	for _, o := range opts {
		if o != nil {
			o.applyRecord(&cfg)
		}
	}
	if cfg.buffer < 1 {
		return nil, fmt.Errorf("%w: record buffer must be at least 1", colugo.ErrInvalidOption)
	}
	return &Recorder{node: node, w: w, cfg: cfg, subbed: map[subKey]bool{}, codecs: map[string][]string{}}, nil
}

// Run records until ctx ends, then writes the "colugo.recording" metadata
// record and returns nil (the caller closes the Writer), or returns the
// first error writing the file. It subscribes to each wanted topic, once per
// codec its publishers use, as soon as a publisher is discovered (node's
// Events), so topics that appear later are recorded too. Run blocks, owns
// every goroutine it starts and waits for them before it returns. Call it
// once.
func (r *Recorder) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	r.started = time.Now()
	r.mu.Unlock()
	var wg sync.WaitGroup
	subscribe := func(t colugo.TopicInfo) {
		if r.cfg.topics != nil && !r.cfg.topics[t.Name] {
			return
		}
		k := subKey{t.Name, t.Codec}
		r.mu.Lock()
		if r.subbed[k] {
			r.mu.Unlock()
			return
		}
		r.subbed[k] = true
		r.codecs[t.Name] = append(r.codecs[t.Name], t.Codec)
		r.mu.Unlock()
		ch, err := colugo.Subscribe[[]byte](ctx, r.node, t.Name, colugo.WithCodec(Passthrough(t.Codec, "")),
			colugo.WithBuffer(r.cfg.buffer), colugo.WithDropPolicy(colugo.Block(r.cfg.block)))
		if err != nil {
			cancel(fmt.Errorf("record: subscribing to %q: %w", t.Name, err))
			return
		}
		wg.Go(func() {
			for data := range ch {
				err := r.w.Write(Message{Topic: t.Name, Codec: t.Codec, Type: t.Type, LogTime: time.Now(), Data: data})
				if err != nil {
					cancel(err)
				}
			}
		})
	}
	for ev := range r.node.Events(ctx) {
		for _, t := range ev.Peer.Topics {
			subscribe(t)
		}
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause // a write or subscribe error
	}
	return r.w.AddMetadata(MetadataRecording, r.metadata())
}

// metadata summarises the node's counters for the recorded topics.
func (r *Recorder) metadata() map[string]string {
	st := r.node.Stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]string{
		"node":  r.node.Name(),
		"start": r.started.UTC().Format(time.RFC3339Nano),
		"end":   time.Now().UTC().Format(time.RFC3339Nano),
	}
	for topic := range r.codecs {
		ts := st.Topics[topic]
		m["topic."+topic+".received"] = strconv.FormatUint(ts.Received, 10)
		m["topic."+topic+".dropped"] = strconv.FormatUint(ts.Dropped, 10)
		m["topic."+topic+".gaps"] = strconv.FormatUint(ts.Gaps, 10)
		m["topic."+topic+".decode_errors"] = strconv.FormatUint(ts.DecodeErrors, 10)
	}
	return m
}

// TopicProgress is one topic's progress in a recording.
type TopicProgress struct {
	Topic    string
	Codecs   []string
	Messages uint64 // written
	Bytes    uint64 // payload bytes written
	Dropped  uint64 // dropped by the recording subscription (the writer did not keep up)
	Gaps     uint64 // missing from publishers' sequence numbers (lost before reaching the recorder)
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
	out := make([]TopicProgress, 0, len(r.codecs))
	for topic, codecs := range r.codecs {
		c := counts[topic]
		ts := st.Topics[topic]
		out = append(out, TopicProgress{Topic: topic, Codecs: slices.Clone(codecs), Messages: c.Messages, Bytes: c.Bytes,
			Dropped: ts.Dropped, Gaps: ts.Gaps})
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
