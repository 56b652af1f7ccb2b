package bridge

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// hMsgID is JetStream's de-duplication header: the stream keeps one
// message per id within its duplicate window.
const hMsgID = "Nats-Msg-Id"

// streamName names the stream of the entry whose NATS subject (a literal
// or a wildcard subject) is subj: readable, and the same for every bridge
// that derives it from the same subject. JetStream names may hold no '.',
// '*', '>' or space; the hash tells apart subjects that read alike.
func streamName(subj string) string {
	var b strings.Builder
	b.WriteString("colugo_")
	for i := 0; i < len(subj) && b.Len() < 48; i++ {
		switch c := subj[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	b.WriteString(subjectHash(subj))
	return b.String()
}

// subjectHash is a short hash of subj, in hex.
func subjectHash(subj string) string {
	h := fnv.New64a()
	h.Write([]byte(subj))
	return strconv.FormatUint(h.Sum64(), 16)
}

// durableName names a site's consumer of a stream: the bridges of one
// site share it, so that the site gets each message once.
func durableName(site, stream string) string {
	return strings.ReplaceAll(site, ".", "_") + "_" + strings.TrimPrefix(stream, "colugo_")
}

// retry calls f until it succeeds or ctx ends, pausing longer and longer
// (up to 2 s) in between: JetStream may be unreachable, or the stream not
// made yet.
func retry(ctx context.Context, f func(context.Context) error) bool {
	wait := 50 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(cctx)
		cancel()
		if err == nil {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// ensureStream makes (or updates) the stream of export entry r, until it
// succeeds or ctx ends.
func (b *Bridge) ensureStream(ctx context.Context, js jetstream.JetStream, r Topic) {
	subj := patternSubject(b.cfg.Root, kindTopic, joinPrefix(r.Prefix, r.Name))
	cfg := jetstream.StreamConfig{
		Name:        streamName(subj),
		Description: "colugo bridge: topic " + joinPrefix(r.Prefix, r.Name),
		Subjects:    []string{subj},
		MaxMsgs:     r.JetStream.MaxMsgs,
		MaxBytes:    r.JetStream.MaxBytes,
		MaxAge:      r.JetStream.MaxAge,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = -1
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = -1
	}
	retry(ctx, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		if err != nil {
			b.jsFailed("export "+r.Name+": stream "+cfg.Name, err)
		}
		return err
	})
}

// consume reads import entry r's stream through the site's durable
// consumer until ctx ends, handing each message to handle (as a plain
// subscription would) unless it is one the site had already: a
// redelivery, when an ack was lost with the link.
func (b *Bridge) consume(ctx context.Context, js jetstream.JetStream, r Topic, handle func(*nats.Msg) (giveBack bool)) {
	subj := patternSubject(b.cfg.Root, kindTopic, joinPrefix(r.Prefix, r.Name))
	var stream string // found in each round: the exporter's may be made later, or again
	cfg := jetstream.ConsumerConfig{
		Description:   "colugo bridge: site " + b.cfg.Site,
		FilterSubject: subj,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1024,
		// What was sent to a bridge that went away unacked comes again
		// after this: short, as a site's catch-up waits on it.
		AckWait: ackWait,
	}
	// The messages the site had lately, by exporting bridge, sender,
	// subject and sequence number: a redelivery (its ack lost with the
	// link, or late) or a second copy in the stream comes again with the
	// same. Bounded: the oldest are forgotten first.
	seen := newRecent(recentMax)
	var mu sync.Mutex     // handle's state is one subscription's: one message at a time
	var lastSeq uint64    // the stream sequence of the last message handled, under mu
	var created time.Time // when the stream read last was made, under mu
	deliver := func(m jetstream.Msg) {
		if md, err := m.Metadata(); err == nil {
			lastSeq = max(lastSeq, md.Sequence.Stream)
		}
		h := m.Headers()
		if seq := h.Get(hSeq); seq != "" {
			if !seen.add(h.Get(hBridge) + " " + h.Get(hSender) + " " + m.Subject() + " " + seq) {
				b.st.imp.duplicate.Add(1)
				_ = m.Ack()
				return
			}
		}
		if handle(&nats.Msg{Subject: m.Subject(), Header: h, Data: m.Data()}) {
			// The bridge stops: the site's next bridge gets it at once.
			_ = m.Nak()
			return
		}
		_ = m.Ack()
	}
	ord := &inOrder{held: map[uint64]jetstream.Msg{}, deliver: deliver}
	ord.expire = func() {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() == nil {
			ord.timeout()
		}
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		ord.stop()
	}()
	onMsg := func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			// Stopping: what the drain hands over goes back at once, for
			// the site's next bridge, rather than after the ack wait.
			_ = m.Nak()
			return
		}
		md, err := m.Metadata()
		if err != nil {
			deliver(m)
			return
		}
		ord.add(m, md.Sequence.Stream)
	}
	for ctx.Err() == nil {
		var cc jetstream.ConsumeContext
		if !retry(ctx, func(ctx context.Context) error {
			// A stream made again (deleted under the bridges) numbers its
			// messages from 1 again: all of it is new to the site.
			st, err := findStream(ctx, js, subj)
			if err != nil {
				// The exporter has not made the stream yet, the link is
				// down, or the pattern is wider than the exports'.
				b.jsFailed("import "+r.Name+": stream", err)
				return err
			}
			stream = st.CachedInfo().Config.Name
			cfg.Durable = durableName(b.cfg.Site, stream)
			if stream != streamName(subj) { // part of a wider export's stream: a consumer of this entry's own
				cfg.Durable += "_" + strings.TrimPrefix(streamName(subj), "colugo_")
			}
			mu.Lock()
			if c := st.CachedInfo().Created; !c.Equal(created) {
				if !created.IsZero() {
					lastSeq = 0
				}
				created = c
			}
			mu.Unlock()
			// The site's durable if it exists; else a new one, from the
			// message after the last this bridge handled (its durable was
			// deleted under it) or, at first, from the stream's start.
			cons, err := js.Consumer(ctx, stream, cfg.Durable)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				c := cfg
				mu.Lock()
				if lastSeq > 0 {
					c.DeliverPolicy, c.OptStartSeq = jetstream.DeliverByStartSequencePolicy, lastSeq+1
				}
				mu.Unlock()
				cons, err = js.CreateConsumer(ctx, stream, c)
			}
			if err == nil {
				// What the bridge before this one was sent and did not
				// ack comes again late: catch up on it in order.
				info := cons.CachedInfo()
				var first uint64
				if st, err := js.Stream(ctx, stream); err == nil {
					first = st.CachedInfo().State.FirstSeq
				}
				mu.Lock()
				ord.begin(info.AckFloor.Stream, info.Delivered.Stream, first)
				mu.Unlock()
				cc, err = cons.Consume(onMsg, jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {}))
			}
			if err != nil {
				b.jsFailed("import "+r.Name+": consumer "+cfg.Durable, err) // the exporter has not made the stream yet, or the link is down
			}
			return err
		}) {
			return
		}
		// Until Run ends or the consuming stops by itself (its durable
		// deleted): then again.
		select {
		case <-ctx.Done():
			cc.Drain() // what is buffered reaches onMsg, which gives it back
		case <-cc.Closed():
			b.jsFailed("import "+r.Name+": consumer "+cfg.Durable, errConsumerGone)
			cc.Stop()
		}
		<-cc.Closed()
	}
}

// errConsumerGone: a consumer's Consume ended by itself (its durable was
// deleted under it); the bridge makes it again.
var errConsumerGone = errors.New("consuming stopped (the consumer was deleted?); made again")

// errStreamWider: the streams that hold an import's subjects hold each
// only part of them.
var errStreamWider = errors.New("the import's pattern is wider than any exported stream's: import each exported pattern, or a narrower one")

// findStream finds the stream an import of subj reads: the one an export
// of the same pattern makes, or else the one whose subjects hold all of
// subj (an export of a wider pattern). JetStream lets no two streams of
// an account share a subject, so there is at most one.
func findStream(ctx context.Context, js jetstream.JetStream, subj string) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, streamName(subj))
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return st, err
	}
	names := js.StreamNames(ctx, jetstream.WithStreamListSubject(subj))
	wider := false
	for name := range names.Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			continue // deleted since it was listed
		}
		for _, s := range st.CachedInfo().Config.Subjects {
			if subjectWithin(subj, s) {
				return st, nil
			}
		}
		wider = true
	}
	if err := names.Err(); err != nil {
		return nil, err
	}
	if wider {
		return nil, fmt.Errorf("%w (%s)", errStreamWider, subj)
	}
	return nil, jetstream.ErrStreamNotFound
}

// subjectWithin reports whether every subject that matches NATS subject
// pattern a also matches pattern b.
func subjectWithin(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i, t := range bt {
		switch {
		case t == ">":
			return len(at) > i // one token or more, whatever they are
		case i >= len(at):
			return false
		case at[i] == ">":
			return false
		case t == "*":
		case at[i] != t:
			return false
		}
	}
	return len(at) == len(bt)
}

// ackWait is the durable consumers' ack wait: how long a message sent to
// a bridge is left unacked before JetStream sends it again.
const ackWait = 5 * time.Second

// recentMax bounds the messages a consumer remembers, for duplicates.
const recentMax = 8192

// recent is a bounded set of strings, forgetting the oldest first.
type recent struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newRecent(n int) *recent {
	return &recent{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add adds k and reports whether it was new.
func (r *recent) add(k string) bool {
	if _, ok := r.set[k]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = k
	r.next = (r.next + 1) % len(r.ring)
	r.set[k] = struct{}{}
	return true
}
