package bridge

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// NATS header fields. A message's colugo metadata travels as one field per
// entry, hMeta followed by its key.
const (
	hCodec    = "Colugo-Codec"     // codec name: required
	hType     = "Colugo-Type"      // type name
	hSender   = "Colugo-Sender"    // publishing (requesting) node's id
	hSeq      = "Colugo-Seq"       // the publisher's sequence number, decimal
	hSendTime = "Colugo-Send-Time" // publisher's clock, Unix nanoseconds, decimal
	hTimeout  = "Colugo-Timeout"   // a request's remaining time, nanoseconds, decimal
	hOrigin   = "Colugo-Origin"    // site the message entered NATS from
	hBridge   = "Colugo-Bridge"    // id of the bridge that put it on NATS
	hStatus   = "Colugo-Status"    // a reply's colugo.Code, decimal; absent or 0: success
	hError    = "Colugo-Error"     // a failed reply's message
	hMeta     = "Colugo-Md-"
)

// mdOrigin is the metadata key a bridge adds to what it injects into its
// site (imported messages, requests from NATS): "site bridge-id" of the
// bridge that put it on NATS. Other bridges of the site see it and never
// export it back.
const mdOrigin = "colugo.bridge.origin"

// maxHeaderValue bounds the codec, type and sender fields a bridge accepts.
const maxHeaderValue = 255

// header returns the header fields common to what a bridge sends.
func (b *Bridge) header(codecName, typ, sender string, md colugo.Metadata) nats.Header {
	h := nats.Header{hCodec: {codecName}, hOrigin: {b.cfg.Site}, hBridge: {b.id}}
	if typ != "" {
		h[hType] = []string{typ}
	}
	if sender != "" {
		h[hSender] = []string{sender}
	}
	for k, v := range md {
		h[hMeta+k] = []string{v}
	}
	return h
}

// incoming is what a bridge reads from a NATS message's header.
type incoming struct {
	codec, typ string
	md         colugo.Metadata
	origin     string          // site and bridge, for mdOrigin
	mctx       context.Context // when set, Run's ctx with md on it (colugo.WithMetadata), made already
}

// parseHeader checks h and returns its fields, or false for a message to
// drop: no or an oversized codec, oversized type or sender, a malformed
// number, metadata the library would refuse (with mdOrigin added).
func parseHeader(h nats.Header) (incoming, bool) { return parseHeaderLast(h, nil) }

// lastOrigin keeps what parseHeaderLast made for the last message's
// origin, for the next one of one goroutine's: a subscription's messages
// mostly come from one bridge, and each would otherwise allocate the same
// origin string, metadata map and context again.
type lastOrigin struct {
	site, bridge string
	origin       string
	md           colugo.Metadata // {mdOrigin: origin} alone: shared, never written
	mctx         context.Context // colugo.WithMetadata(ctx, md), made by the caller; nil until then
}

// parseHeaderLast is parseHeader, reusing last's origin and metadata when
// the message has the same origin and no metadata fields (and updating
// last when it has a new origin). A nil last reuses nothing.
func parseHeaderLast(h nats.Header, last *lastOrigin) (incoming, bool) {
	var in incoming
	for _, f := range [...]string{hCodec, hType, hSender, hOrigin, hBridge} {
		if len(h[f]) > 1 {
			return in, false
		}
	}
	in.codec = h.Get(hCodec)
	in.typ = h.Get(hType)
	if in.codec == "" || len(in.codec) > 64 || len(in.typ) > maxHeaderValue || len(h.Get(hSender)) > maxHeaderValue {
		return in, false
	}
	for _, f := range [...]string{hSeq, hSendTime, hTimeout, hPrev} {
		if v, ok := h[f]; ok {
			if len(v) != 1 {
				return in, false
			}
			if _, err := strconv.ParseInt(v[0], 10, 64); err != nil {
				return in, false
			}
		}
	}
	origin, bridge := h.Get(hOrigin), h.Get(hBridge)
	if origin == "" || bridge == "" {
		return in, false
	}
	fields := 0
	for k := range h {
		if strings.HasPrefix(k, hMeta) {
			fields++
		}
	}
	if fields == 0 && last != nil {
		if last.md == nil || last.site != origin || last.bridge != bridge {
			o := origin + " " + bridge
			*last = lastOrigin{site: origin, bridge: bridge, origin: o, md: colugo.Metadata{mdOrigin: o}}
			if !validMetadata(last.md) {
				*last = lastOrigin{}
				return in, false
			}
		}
		in.origin, in.md, in.mctx = last.origin, last.md, last.mctx
		return in, true
	}
	in.origin = origin + " " + bridge
	in.md = make(colugo.Metadata, fields+1)
	in.md[mdOrigin] = in.origin
	for k, v := range h {
		if key, ok := strings.CutPrefix(k, hMeta); ok {
			if len(v) != 1 || key == mdOrigin {
				return in, false
			}
			in.md[key] = v[0]
		}
	}
	if !validMetadata(in.md) {
		return in, false // out of the library's bounds
	}
	return in, true
}

// validMetadata reports whether md is within colugo.Metadata's documented
// bounds, without encoding it (WithMetadata will, once, to send it; a
// refusal there is counted too).
func validMetadata(md colugo.Metadata) bool {
	if len(md) > colugo.MaxMetadataEntries {
		return false
	}
	total := 0
	for k, v := range md {
		if len(k) == 0 || len(k) > colugo.MaxMetadataKey || len(v) > colugo.MaxMetadataValue || !utf8.ValidString(v) {
			return false
		}
		for i := range len(k) {
			switch c := k[i]; {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
			default:
				return false
			}
		}
		total += len(k) + len(v)
	}
	return total <= colugo.MaxMetadataBytes
}

// exportTopic forwards the local topic name to NATS by rule r.
func (b *Bridge) exportTopic(ctx context.Context, name string, r Topic) error {
	b.mu.Lock()
	if b.exported[name] {
		b.mu.Unlock()
		return nil
	}
	if isPattern(r.Name) && b.matched >= b.cfg.MaxExportTopics {
		// A flood of names on the site must not make a subscription and
		// a goroutine each.
		first := len(b.refused) == 0
		if !b.refused[name] && len(b.refused) < maxRefused {
			b.refused[name] = true
		}
		b.mu.Unlock()
		if first {
			b.cfg.Logger.Warn("bridge: MaxExportTopics reached: topics matching export patterns from now on are not exported",
				slog.Int("max_export_topics", b.cfg.MaxExportTopics), slog.String("topic", name))
		}
		return nil
	}
	if isPattern(r.Name) {
		b.matched++
	}
	b.exported[name] = true
	b.mu.Unlock()
	// A bounded queue: when NATS is slower than the site, the subscription
	// drops its oldest (Stats: Queue) instead of growing.
	subj := subject(b.cfg.Root, kindTopic, joinPrefix(r.Prefix, name))
	opts := []colugo.SubscribeOption{colugo.WithAnyCodec(), colugo.WithQueueBytes(b.cfg.QueueBytes), colugo.WithQueueBudget(b.queued),
		colugo.WithRelay(colugo.Relay{Via: "nats", Name: subj})} // $describe: exported, on subj
	if r.JetStream != nil {
		// Store-and-forward: a burst the spool and the queue cannot hold
		// waits in the publisher's send queue (which a publisher with
		// WithBackPressure waits for) rather than being dropped here.
		opts = append(opts, colugo.WithDropPolicy(colugo.Block(jsBlock)))
	}
	ch, err := colugo.SubscribeReceived[[]byte](ctx, b.node, name, opts...)
	if err != nil {
		return err
	}
	x := &exporter{b: b, subj: subj, idTopic: "-" + subjectHash(subj)}
	if r.JetStream != nil {
		x.spool = newSpool(b, r.JetStream.Spool, r.Name)
		ensure := func(ctx context.Context) { b.ensureStream(ctx, b.js, r) }
		if !b.goRun(func() { x.spool.run(ctx, b.jsPub, b.jsnc, ensure) }) {
			x.spool.stopped = true // ctx has ended: nothing will run it
		}
	}
	send := x.publish
	var lim *limiter[colugo.Received[[]byte]]
	if r.MaxRate > 0 {
		lim = newLimiter(r.MaxRate, send, func() { b.st.exp.rate.Add(1) })
		b.mu.Lock()
		b.stops = append(b.stops, lim.stop)
		b.mu.Unlock()
	}
	if !b.goRun(func() {
		for m := range ch {
			// Only what originated here leaves: not the bridge's own
			// imports, nor another bridge's.
			if m.Sender == b.id || m.Metadata[mdOrigin] != "" {
				b.st.exp.loop.Add(1)
				continue
			}
			if r.MaxPayload > 0 && len(m.Value) > r.MaxPayload {
				b.st.exp.payload.Add(1)
				continue
			}
			if lim != nil {
				lim.offer(m)
			} else {
				send(m)
			}
		}
	}) {
		for range ch { // drain: ctx has ended, the channel closes
		}
	}
	return nil
}

// exporter publishes one exported topic's messages on NATS.
type exporter struct {
	b    *Bridge
	subj string

	// The header of the last message, reused: most fields stay the same
	// from one message to the next, and PublishMsg encodes the header
	// before it returns. mu orders the export goroutine and a limiter's
	// timer.
	mu                 sync.Mutex
	h                  nats.Header
	codec, typ, sender string
	seq, sendTime      []string
	md                 bool // h holds metadata fields
	// A JetStream entry's messages go through spool, each with its own
	// header (kept until acked) holding its id.
	spool *spool
	// idTopic ends the message ids: seq numbers are per sender and topic,
	// and a pattern's topics share one stream.
	idTopic string
	// prev holds, per sender, the seq of its last message spooled: the
	// next one's hPrev. Bounded: emptied when full.
	prev map[string]uint64
}

// maxPrevSenders bounds an exporter's prev.
const maxPrevSenders = 1024

func (x *exporter) publish(m colugo.Received[[]byte]) {
	b := x.b
	x.mu.Lock()
	if x.h == nil || x.md || len(m.Metadata) > 0 || m.Codec != x.codec || m.Type != x.typ || m.Sender != x.sender {
		x.h = b.header(m.Codec, m.Type, m.Sender, m.Metadata)
		x.codec, x.typ, x.sender, x.md = m.Codec, m.Type, m.Sender, len(m.Metadata) > 0
		x.seq, x.sendTime = []string{""}, []string{""}
		x.h[hSeq], x.h[hSendTime] = x.seq, x.sendTime
	}
	x.seq[0] = strconv.FormatUint(m.Seq, 10)
	x.sendTime[0] = strconv.FormatInt(m.SendTime.UnixNano(), 10)
	if x.spool != nil {
		h := make(nats.Header, len(x.h)+1)
		for k, v := range x.h {
			h[k] = v
		}
		h[hSeq], h[hSendTime] = []string{x.seq[0]}, []string{x.sendTime[0]}
		// The stream keeps one copy of a message that reaches it twice
		// (within its duplicate window): sender, seq and topic name it.
		h[hMsgID] = []string{m.Sender + "-" + x.seq[0] + x.idTopic}
		if p, ok := x.prev[m.Sender]; ok && p < m.Seq {
			h[hPrev] = []string{strconv.FormatUint(p, 10)}
		}
		if x.prev == nil || len(x.prev) >= maxPrevSenders {
			x.prev = map[string]uint64{}
		}
		x.prev[m.Sender] = m.Seq
		x.mu.Unlock()
		x.spool.add(&nats.Msg{Subject: x.subj, Data: m.Value, Header: h})
		return
	}
	err := b.nc.PublishMsg(&nats.Msg{Subject: x.subj, Data: m.Value, Header: x.h})
	x.mu.Unlock()
	if err != nil {
		b.st.exp.link.Add(1)
		return
	}
	b.st.exp.messages.Add(1)
	b.st.exp.bytes.Add(uint64(len(m.Value)))
}

// importTopics subscribes to the NATS subjects of import entry i, which
// takes the names it matches that no earlier entry with its prefix (so
// publishing them under the same local names) matches.
func (b *Bridge) importTopics(ctx context.Context, i int) error {
	r := b.cfg.Import.Topics[i]
	earlier := b.cfg.Import.Topics[:i]
	type msg struct {
		local string
		in    incoming
		data  []byte
	}
	durable := r.JetStream != nil
	// A limiter's: what it delays is acked already, as its drops are.
	deliver := func(m msg) { b.publishLocal(m.local, m.in, m.data, durable) }
	var lims map[string]*limiter[msg] // per topic; only the subscription's goroutine uses the map
	if r.MaxRate > 0 {
		lims = map[string]*limiter[msg]{}
	}
	root := b.cfg.Root
	// The last subject's local name: a subscription mostly carries one
	// topic at a time, whose name need not be decoded again. Only the
	// subscription's goroutine uses it.
	var lastSubj, lastLocal string
	// Likewise the last message's metadata, when it was its origin alone.
	var last lastOrigin
	// handle reports whether a JetStream message should be given back for
	// the site's next bridge: it could not be handed on as this one stops.
	// Every other drop is counted and final.
	handle := func(nm *nats.Msg) (giveBack bool) {
		local := lastLocal
		if nm.Subject != lastSubj || lastSubj == "" {
			global, err := nameOf(root, kindTopic, nm.Subject)
			if err != nil {
				b.st.imp.badSubject.Add(1)
				return false
			}
			l, ok := stripPrefix(r.Prefix, global)
			if !ok || !match(r.Name, l) {
				return false // in the subscription's superset, not in the pattern
			}
			if slices.ContainsFunc(earlier, func(e Topic) bool { return e.Prefix == r.Prefix && match(e.Name, l) }) {
				return false // an earlier entry's, which publishes it under this name too
			}
			lastSubj, lastLocal, local = nm.Subject, l, l
		}
		if nm.Header.Get(hBridge) == b.id || nm.Header.Get(hOrigin) == b.cfg.Site {
			b.st.imp.loop.Add(1) // the site has it already
			return false
		}
		in, ok := parseHeaderLast(nm.Header, &last)
		if !ok {
			b.st.imp.badHeader.Add(1)
			return false
		}
		if in.mctx == nil && len(in.md) == 1 { // mdOrigin alone, as most messages: last's from now on
			last.mctx = colugo.WithMetadata(context.WithoutCancel(ctx), in.md)
			in.mctx = last.mctx
		}
		if r.MaxPayload > 0 && len(nm.Data) > r.MaxPayload {
			b.st.imp.payload.Add(1)
			return false
		}
		m := msg{local, in, nm.Data}
		if lims == nil {
			return !b.publishLocal(m.local, m.in, m.data, durable)
		}
		lim := lims[local]
		if lim == nil {
			if len(lims) >= b.cfg.MaxImportTopics {
				b.st.imp.limit.Add(1)
				return false
			}
			lim = newLimiter(r.MaxRate, deliver, func() { b.st.imp.rate.Add(1) })
			lims[local] = lim
			b.mu.Lock()
			b.stops = append(b.stops, lim.stop)
			b.mu.Unlock()
		}
		lim.offer(m)
		return false
	}
	if r.JetStream != nil {
		b.goRun(func() { b.consume(ctx, b.js, r, handle) })
		return nil
	}
	subjects := entrySubjects(root, kindTopic, r.Prefix, r.Name)
	receive := func(nm *nats.Msg) { handle(nm) }
	if len(subjects) > 1 {
		// Each subscription has a goroutine of its own; handle keeps the
		// last message's state for one.
		var mu sync.Mutex
		receive = func(nm *nats.Msg) {
			mu.Lock()
			defer mu.Unlock()
			handle(nm)
		}
	}
	var subs []*nats.Subscription
	for _, subj := range subjects {
		sub, err := b.nc.Subscribe(subj, receive)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return err
		}
		subs = append(subs, sub)
	}
	b.mu.Lock()
	b.subs = append(b.subs, subs...)
	b.mu.Unlock()
	return nil
}

// publishLocal publishes an imported message on the site, as the bridge's
// node, with the original codec and type. For a durable (JetStream)
// entry, a topic's first message waits (5 s at most) for the bridge's
// node to have looked at the whole site and for the publisher to reach
// the site's subscribers that the catalog then shows: a backlog caught up
// at once must not go before anyone is connected to receive it. It
// reports whether the message was published or dropped for good (and
// counted): false only when the bridge is stopping, so that JetStream
// gives it to the site's next bridge.
func (b *Bridge) publishLocal(topic string, in incoming, data []byte, durable bool) bool {
	k := pubKey{topic, in.codec, in.typ}
	b.mu.Lock()
	ctx := b.ctx
	p := b.pubs[k]
	fresh := p == nil
	if fresh {
		if ctx.Err() != nil {
			b.mu.Unlock()
			return false
		}
		if len(b.pubs) >= b.cfg.MaxImportTopics {
			b.mu.Unlock()
			b.st.imp.limit.Add(1)
			return true
		}
		var err error
		// WithZeroCopy: data is nats.go's copy of each message, which
		// nothing touches after this publish, so colugo may keep it rather
		// than copy it again when its send queue grows.
		opts := []colugo.PublisherOption{colugo.WithCodec(codec.Passthrough(in.codec, in.typ)),
			colugo.WithRelay(b.importRelay(topic, in.origin)), colugo.WithZeroCopy()}
		if durable {
			// A durable message is acked once this publish returns: for a
			// site subscriber that asked for reliable delivery (Block), it
			// waits for room, as the stream holds the rest back meanwhile,
			// rather than being dropped on a full send queue and acked.
			opts = append(opts, colugo.WithBackPressure(jsBlock))
		}
		if p, err = colugo.NewPublisher[[]byte](b.node, topic, opts...); err != nil {
			b.mu.Unlock()
			if errors.Is(err, colugo.ErrClosed) {
				return false
			}
			b.st.imp.failed.Add(1)
			return true
		}
		b.pubs[k] = p
		if durable {
			b.flushPub.Store(p)
		}
	}
	b.mu.Unlock()
	if fresh && durable && !b.awaitSubscribers(ctx, p, topic) && ctx.Err() != nil {
		// Stopped before the site's subscribers were reached: published
		// now, the message would reach none of them.
		return false
	}
	// Not on Run's ctx itself: Publish refuses a cancelled ctx, and a
	// JetStream message that reached here is acked once this returns, so
	// one handled as Run stops would be lost (1 run in 25 of
	// TestJetStreamRestartWhileFlowing lost the last before the close).
	mctx := in.mctx
	if mctx == nil {
		mctx = colugo.WithMetadata(context.WithoutCancel(ctx), in.md)
	}
	if err := p.Publish(mctx, data); err != nil {
		switch {
		case errors.Is(err, colugo.ErrClosed):
			return false
		case errors.Is(err, colugo.ErrInvalidMetadata):
			b.st.imp.badHeader.Add(1)
		default:
			b.st.imp.failed.Add(1)
		}
		return true
	}
	b.st.imp.messages.Add(1)
	b.st.imp.bytes.Add(uint64(len(data)))
	return true
}

// awaitSubscribers waits, 5 s at most, until the bridge's node has looked
// at the whole site (a bridge that has just started knows none of it yet)
// and p reaches as many subscribers as the site's catalog then lists for
// topic, and reports whether it does.
func (b *Bridge) awaitSubscribers(ctx context.Context, p *colugo.Publisher[[]byte], topic string) bool {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if b.node.WaitDiscovered(wctx) != nil {
		return false
	}
	want := 0
	for _, peer := range b.node.Peers() {
		for _, s := range peer.Subscriptions {
			if s.Name == topic {
				want++
				break
			}
		}
	}
	if want == 0 {
		return true
	}
	return p.WaitSubscribers(wctx, want) == nil
}

// deadline returns the request timeout a header gives, 0 for none.
func deadline(h nats.Header) time.Duration {
	v, err := strconv.ParseInt(h.Get(hTimeout), 10, 64)
	if err != nil || v <= 0 {
		return 0
	}
	return time.Duration(v)
}

// maxRefused bounds the names Stats.ExportRefused counts.
const maxRefused = 4096
