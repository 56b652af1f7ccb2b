package bridge

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
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
// succeeds or ctx ends. Of a stream that exists it sets only what the
// entry says (streamConfig).
func (b *Bridge) ensureStream(ctx context.Context, js jetstream.JetStream, r Topic) {
	subjects := entrySubjects(b.cfg.Root, kindTopic, r.Prefix, r.Name)
	want := jetstream.StreamConfig{
		Name:        streamName(subjects[0]),
		Description: "colugo bridge: topic " + joinPrefix(r.Prefix, r.Name),
		// A stream made by an earlier bridge, whose "**" took one segment
		// or more, gains the second subject of a trailing "**" here.
		Subjects: subjects,
		MaxMsgs:  r.JetStream.MaxMsgs,
		MaxBytes: r.JetStream.MaxBytes,
		MaxAge:   r.JetStream.MaxAge,
		Discard:  jetstream.DiscardOld,
		Storage:  jetstream.FileStorage,
	}
	if want.MaxMsgs == 0 {
		want.MaxMsgs = -1
	}
	if want.MaxBytes == 0 {
		want.MaxBytes = -1
	}
	retry(ctx, func(ctx context.Context) error {
		var have *jetstream.StreamConfig
		st, err := js.Stream(ctx, want.Name)
		switch {
		case err == nil:
			have = &st.CachedInfo().Config
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			b.jsFailed("export "+r.Name+": stream "+want.Name, err)
			return err
		}
		cfg := streamConfig(want, have, r.JetStream.Replicas)
		if _, err = js.CreateOrUpdateStream(ctx, cfg); err != nil {
			b.jsFailed("export "+r.Name+": stream "+cfg.Name, err)
		}
		return err
	})
}

// streamConfig is the config an export entry's stream gets: want (the
// entry's bounds, subjects, file storage, replicas when set, else 1) for
// a new stream; for one that exists (have), its own config with the
// entry's bounds and discard policy and its subjects joined by the
// entry's, so that what an operator set (replicas, placement, storage,
// duplicate window) stays: updating a stream to a config of the bridge's
// own would scale a stream of 3 replicas down to 1, and fail for ever on
// one kept in memory (a stream's storage cannot change).
func streamConfig(want jetstream.StreamConfig, have *jetstream.StreamConfig, replicas int) jetstream.StreamConfig {
	cfg := want
	if have != nil {
		cfg = *have
		cfg.Description = want.Description
		cfg.MaxMsgs, cfg.MaxBytes, cfg.MaxAge, cfg.Discard = want.MaxMsgs, want.MaxBytes, want.MaxAge, want.Discard
		cfg.Subjects = slices.Clone(have.Subjects)
		for _, s := range want.Subjects {
			if !slices.Contains(cfg.Subjects, s) {
				cfg.Subjects = append(cfg.Subjects, s)
			}
		}
	}
	switch {
	case replicas > 0:
		cfg.Replicas = replicas
	case cfg.Replicas == 0:
		cfg.Replicas = 1
	}
	return cfg
}

// consume reads the streams that hold import entry r's subjects, each
// through the site's durable consumer of it, until ctx ends, handing each
// message to handle (as a plain subscription would) unless it is one the
// site had already: a redelivery, when an ack was lost with the link. An
// entry may span several streams (an import of robot/** with one robot
// site exporting robot/1/** and another robot/2/**): it looks for them
// again every streamRescan, so that a site that starts exporting later
// is read too, and a stream deleted and made again is read anew.
func (b *Bridge) consume(ctx context.Context, js jetstream.JetStream, r Topic, handle func(*nats.Msg) (giveBack bool)) {
	imp := &importReader{b: b, js: js, r: r, handle: handle,
		subjects: entrySubjects(b.cfg.Root, kindTopic, r.Prefix, r.Name),
		seen:     newRecent(recentMax), ackKick: make(chan struct{}, 1), chain: newInChain()}
	imp.chain.expire = func() {
		imp.mu.Lock()
		defer imp.mu.Unlock()
		if ctx.Err() == nil {
			imp.chain.timeout()
		}
	}
	readsDone := make(chan struct{})
	acked := make(chan struct{})
	go func() {
		defer close(acked)
		imp.acks(readsDone)
	}()
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		imp.mu.Lock()
		imp.chain.stop() // what waits goes back, for the site's next bridge
		imp.mu.Unlock()
		close(readsDone) // the last handed on are acked, before the publishers close
		<-acked
	}()
	reading := map[string]bool{}
	ended := make(chan string)
	pause := 50 * time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-ended:
			// Gone (deleted): looked for again soon, as it may be made
			// again; the others are read on meanwhile.
			delete(reading, name)
			t.Reset(pause)
			continue
		case <-t.C:
		}
		names, err := findStreams(ctx, js, imp.subjects)
		if err == nil && len(names) == 0 && len(reading) == 0 {
			err = errNoStream
		}
		if err != nil && ctx.Err() == nil {
			b.jsFailed("import "+r.Name+": stream", err) // the exporters have not made theirs yet, or the link is down
		}
		for _, name := range names {
			if !reading[name] && len(reading) >= maxImportStreams {
				// A flood of streams on the account (made by anyone who
				// may) must not start a consumer and a goroutine each.
				b.jsFailed("import "+r.Name+": stream "+name, errTooManyStreams)
				break
			}
			if !reading[name] {
				reading[name] = true
				wg.Go(func() {
					imp.read(ctx, name)
					select {
					case ended <- name:
					case <-ctx.Done():
					}
				})
			}
		}
		if len(reading) == 0 {
			t.Reset(pause)
			pause = min(2*pause, 2*time.Second)
		} else {
			t.Reset(streamRescan)
			pause = 50 * time.Millisecond
		}
	}
}

// streamRescan is how often an import entry looks for streams it does not
// read yet.
const streamRescan = 2 * time.Second

// maxImportStreams bounds the streams one import entry reads at once.
const maxImportStreams = 256

// errTooManyStreams: an import's subjects are in more streams than it reads.
var errTooManyStreams = fmt.Errorf("more than %d streams hold its subjects: the others are not read", maxImportStreams)

// errNoStream: no stream holds any of an import's subjects yet.
var errNoStream = errors.New("no stream holds its subjects yet (the exporting bridge has not made it, or exports no such pattern)")

// importReader is one JetStream import entry's: what the consumers of its
// streams share.
type importReader struct {
	b        *Bridge
	js       jetstream.JetStream
	r        Topic
	subjects []string // the entry's (entrySubjects): its own stream is named after the first
	handle   func(*nats.Msg) (giveBack bool)

	// mu makes handle see one message at a time, as from one subscription.
	mu sync.Mutex
	// pending holds the messages handed on to the site and not acked yet:
	// acks waits until the bridge's node has written them to the site's
	// subscribers' connections (Publisher.Flush) first, so that a bridge
	// that crashes meanwhile has them sent again rather than lost in its
	// send queues. Under mu; ackKick (one slot) says it is not empty.
	pending []jetstream.Msg
	ackKick chan struct{}
	// seen holds the messages the site had lately, by exporting bridge,
	// sender, subject and sequence number: a redelivery (its ack lost
	// with the link, or late) or a second copy in a stream comes again
	// with the same. Bounded: the oldest are forgotten first. Under mu.
	seen *recent
	// chain puts back in their exporter's order the messages a stream
	// holds out of order (a leader change). Under mu.
	chain *inChain
}

// read reads stream through the site's durable consumer of it until ctx
// ends or the stream is gone.
func (ir *importReader) read(ctx context.Context, stream string) {
	b, js, subj, mu := ir.b, ir.js, ir.subjects[0], &ir.mu
	cfg := jetstream.ConsumerConfig{
		Durable:       durableName(b.cfg.Site, stream),
		Description:   "colugo bridge: site " + b.cfg.Site,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: maxAckPending,
		// What was sent to a bridge that went away unacked comes again
		// after this: short, as a site's catch-up waits on it.
		AckWait: ackWait,
	}
	setFilter(&cfg, ir.subjects)
	if stream != streamName(subj) { // not its own export's: a consumer of this entry's own
		cfg.Durable += "_" + strings.TrimPrefix(streamName(subj), "colugo_")
	}
	var lastSeq uint64    // the stream sequence of the last message handled, under mu
	var created time.Time // when the stream was made, as read last, under mu
	var handOn func(m jetstream.Msg)
	deliver := func(m jetstream.Msg) {
		if md, err := m.Metadata(); err == nil {
			lastSeq = max(lastSeq, md.Sequence.Stream)
		}
		// In its exporter's order, per topic and sender (inChain).
		h := m.Headers()
		seq, err1 := strconv.ParseUint(h.Get(hSeq), 10, 64)
		prev, err2 := strconv.ParseUint(h.Get(hPrev), 10, 64)
		if err1 != nil || (err2 != nil && h.Get(hPrev) != "") {
			handOn(m) // none, or malformed: handle counts it
			return
		}
		ir.chain.add(m, chainKey{m.Subject(), h.Get(hSender)}, seq, prev, handOn)
	}
	handOn = func(m jetstream.Msg) {
		h := m.Headers()
		if seq := h.Get(hSeq); seq != "" {
			if !ir.seen.add(h.Get(hBridge) + " " + h.Get(hSender) + " " + m.Subject() + " " + seq) {
				b.st.imp.duplicate.Add(1)
				_ = m.Ack()
				return
			}
		}
		if ir.handle(&nats.Msg{Subject: m.Subject(), Header: h, Data: m.Data()}) {
			// The bridge stops: the site's next bridge gets it at once.
			_ = m.Nak()
			return
		}
		ir.pending = append(ir.pending, m)
		signal(ir.ackKick)
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
		gone := false
		if !retry(ctx, func(ctx context.Context) error {
			st, err := js.Stream(ctx, stream)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				gone = true
				return nil
			}
			if err != nil {
				b.jsFailed("import "+ir.r.Name+": stream "+stream, err) // the link is down
				return err
			}
			// A stream made again (deleted under the bridges) numbers its
			// messages from 1 again: all of it is new to the site.
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
			if err == nil && (!sameFilter(cons.CachedInfo().Config, cfg) || cons.CachedInfo().Config.MaxAckPending != cfg.MaxAckPending) {
				// Made by an earlier bridge, whose "**" took one segment
				// or more, or which had less room for unacked messages:
				// the same consumer (what it acked stays acked), with the
				// entry's subjects and room now.
				c := cons.CachedInfo().Config
				setFilter(&c, ir.subjects)
				c.MaxAckPending = cfg.MaxAckPending
				cons, err = js.UpdateConsumer(ctx, stream, c)
			}
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
				b.jsFailed("import "+ir.r.Name+": consumer "+cfg.Durable, err) // the stream went, or the link is down
			}
			return err
		}) || gone {
			return
		}
		// Until Run ends or the consuming stops by itself (its durable
		// deleted, or its stream): then again.
		select {
		case <-ctx.Done():
			cc.Drain() // what is buffered reaches onMsg, which gives it back
		case <-cc.Closed():
			b.jsFailed("import "+ir.r.Name+": consumer "+cfg.Durable, errConsumerGone)
			cc.Stop()
		}
		<-cc.Closed()
	}
}

// errConsumerGone: a consumer's Consume ended by itself (its durable was
// deleted under it); the bridge makes it again.
var errConsumerGone = errors.New("consuming stopped (the consumer was deleted?); made again")

// ackFlushWait bounds how long acks wait for the site's subscribers'
// connections to take what was handed on: a subscriber that reads nothing
// must not hold the import up (its messages are in its queue, as any
// published on the site), and acks must come before the ack wait sends
// the messages again.
const ackFlushWait = ackWait - time.Second

// acks acks the pending messages, a batch at a time, each once the
// bridge's node has written it (or ackFlushWait has passed), until done is
// closed: then it acks the last ones the same way.
func (ir *importReader) acks(done <-chan struct{}) {
	for {
		select {
		case <-ir.ackKick:
			ir.ackPending()
		case <-done:
			ir.ackPending()
			return
		}
	}
}

func (ir *importReader) ackPending() {
	ir.mu.Lock()
	ms := ir.pending
	ir.pending = nil
	ir.mu.Unlock()
	if len(ms) == 0 {
		return
	}
	if p := ir.b.flushPub.Load(); p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), ackFlushWait)
		_ = p.Flush(ctx) // past the wait, closed or unsupported: acked all the same
		cancel()
	}
	for _, m := range ms {
		_ = m.Ack()
	}
}

// setFilter has a consumer read subjects: FilterSubject for one, as
// every consumer was made before entries had two, else FilterSubjects.
func setFilter(c *jetstream.ConsumerConfig, subjects []string) {
	c.FilterSubject, c.FilterSubjects = "", nil
	if len(subjects) == 1 {
		c.FilterSubject = subjects[0]
	} else {
		c.FilterSubjects = slices.Clone(subjects)
	}
}

// sameFilter reports whether consumer config a reads what b does.
func sameFilter(a, b jetstream.ConsumerConfig) bool {
	return a.FilterSubject == b.FilterSubject && slices.Equal(a.FilterSubjects, b.FilterSubjects)
}

// findStreams lists the streams that hold some of the subjects that
// subjects match, sorted and each once: an export of the same pattern's,
// of a wider one's, or of narrower ones' (several sites exporting parts
// of an imported pattern). JetStream lets no two streams of an account
// share a subject, so each topic is in one of them at most.
func findStreams(ctx context.Context, js jetstream.JetStream, subjects []string) ([]string, error) {
	var out []string
	for _, subj := range subjects {
		names := js.StreamNames(ctx, jetstream.WithStreamListSubject(subj))
		for name := range names.Name() {
			out = append(out, name)
		}
		if err := names.Err(); err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// maxAckPending is the durable consumers' bound on messages sent to a
// bridge and not acked yet: room for what inChain holds after a leader
// change (the exporter's in-flight window, jsWindow, and what the old
// leader lost), with some to spare for the flow meanwhile.
const maxAckPending = 4*jsWindow + 1024

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
