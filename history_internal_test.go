package colugo

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
	"github.com/colugo-go/colugo/transport/zmq"
)

func histHeader(seq uint64) *wire.Header {
	return &wire.Header{Kind: transport.KindPublish, Codec: "raw", Type: "[]uint8", Seq: seq, SendTime: int64(seq)}
}

func TestHistoryRingBounds(t *testing.T) {
	h := newHistory(3, DefaultHistoryBytes)
	for i := uint64(1); i <= 10; i++ {
		h.appendLocked(histHeader(i), []byte{byte(i)})
	}
	r, err := wire.DecodeHistoryReply(mustReply(h, 0, MaxHistory))
	if err != nil {
		t.Fatal(err)
	}
	if got := entrySeqs(r); !equalSeqs(got, 8, 9, 10) || r.Depth != 3 || r.More {
		t.Fatalf("depth 3 after 10: %v (depth %d, more %v), want 8 9 10", got, r.Depth, r.More)
	}
	// The bytes bound drops the oldest, but never the newest.
	h = newHistory(100, 3*(10+QueueEntryOverhead))
	for i := uint64(1); i <= 5; i++ {
		h.appendLocked(histHeader(i), make([]byte, 10))
	}
	if r, _ := wire.DecodeHistoryReply(mustReply(h, 0, MaxHistory)); !equalSeqs(entrySeqs(r), 3, 4, 5) {
		t.Fatalf("bytes bound: %v, want 3 4 5", entrySeqs(r))
	}
	h.appendLocked(histHeader(6), make([]byte, 1000)) // alone over the bound: kept alone
	if r, _ := wire.DecodeHistoryReply(mustReply(h, 0, MaxHistory)); !equalSeqs(entrySeqs(r), 6) {
		t.Fatalf("oversized newest: %v, want 6", entrySeqs(r))
	}
	h.resize(1, DefaultHistoryBytes)
	h.appendLocked(histHeader(7), nil)
	if r, _ := wire.DecodeHistoryReply(mustReply(h, 0, MaxHistory)); !equalSeqs(entrySeqs(r), 7) {
		t.Fatalf("resized to 1: %v, want 7", entrySeqs(r))
	}
}

// TestHistoryAppendReusesBuffers checks that a full history costs no
// allocation per message of a steady size (the "no cost" target).
func TestHistoryAppendReusesBuffers(t *testing.T) {
	h := newHistory(8, DefaultHistoryBytes)
	payload := make([]byte, 64)
	hd := histHeader(1)
	for range 16 {
		hd.Seq++
		h.appendLocked(hd, payload)
	}
	if a := testing.AllocsPerRun(1000, func() { hd.Seq++; h.appendLocked(hd, payload) }); a != 0 {
		t.Fatalf("%v allocations per append, want 0", a)
	}
}

func TestHistoryReplyWindow(t *testing.T) {
	h := newHistory(100, DefaultHistoryBytes)
	for i := uint64(1); i <= 20; i++ {
		h.appendLocked(histHeader(i), []byte(strconv.Itoa(int(i))))
	}
	for _, tt := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 3, []uint64{18, 19, 20}},
		{17, 100, []uint64{18, 19, 20}},
		{10, 2, []uint64{19, 20}},
		{20, 5, nil},
		{99, 5, nil},
	} {
		r, err := wire.DecodeHistoryReply(mustReply(h, tt.after, tt.limit))
		if err != nil {
			t.Fatal(err)
		}
		if got := entrySeqs(r); !equalSeqs(got, tt.want...) || r.Latest != 20 {
			t.Errorf("after %d limit %d: %v latest %d, want %v latest 20", tt.after, tt.limit, got, r.Latest, tt.want)
		}
	}
	// Past the reply budget: a part, with more, then the rest.
	big := newHistory(100, 64<<20)
	for i := uint64(1); i <= 10; i++ {
		big.appendLocked(histHeader(i), make([]byte, 1<<20))
	}
	r, _ := wire.DecodeHistoryReply(mustReply(big, 0, 100))
	if !r.More || len(r.Entries) == 0 || len(r.Entries) >= 10 || r.Entries[0].Header.Seq != 1 {
		t.Fatalf("10 MiB: first part %v more %v, want a prefix from 1 with more", entrySeqs(r), r.More)
	}
	one := newHistory(2, 64<<20)
	one.appendLocked(histHeader(1), make([]byte, wire.MaxHistoryReply+1))
	if r, _ := wire.DecodeHistoryReply(mustReply(one, 0, 2)); len(r.Entries) != 1 || r.More {
		t.Fatalf("an entry over the budget goes alone: %d entries, more %v", len(r.Entries), r.More)
	}
}

func mustReply(h *history, after uint64, limit int) []byte {
	latest := func() uint64 {
		if h.n == 0 {
			return 0
		}
		return h.at(h.n - 1).seq
	}
	b, _ := h.reply("s", after, limit, latest)
	return b
}

func entrySeqs(r wire.HistoryReply) []uint64 {
	var s []uint64
	for _, e := range r.Entries {
		s = append(s, e.Header.Seq)
	}
	return s
}

func equalSeqs(got []uint64, want ...uint64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestHistoryOptionsChecked(t *testing.T) {
	n := histNode(t, t.TempDir(), "n", nil)
	for _, o := range []PublisherOption{WithHistory(-1), WithHistory(MaxHistory + 1), WithHistoryBytes(0)} {
		if _, err := NewPublisher[int](n, "t", WithHistory(1), o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewPublisher with %v: %v, want ErrInvalidOption", o, err)
		}
	}
	for _, o := range []SubscribeOption{WithHistory(-1), WithHistory(MaxHistory + 1)} {
		if _, err := Subscribe[int](t.Context(), n, "t", o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Subscribe with %v: %v, want ErrInvalidOption", o, err)
		}
	}
	// The defaults the doc comments state.
	p, err := NewPublisher[int](n, "d", WithHistory(MaxHistory))
	if err != nil {
		t.Fatal(err)
	}
	if h := p.seq.hist.Load(); h == nil || h.depth != MaxHistory || h.maxBytes != DefaultHistoryBytes || DefaultHistoryBytes != 8<<20 || MaxHistory != 65536 {
		t.Fatalf("history %+v, want depth %d and %d bytes", h, MaxHistory, DefaultHistoryBytes)
	}
	q, _ := NewPublisher[int](n, "none")
	if q.seq.hist.Load() != nil {
		t.Fatal("a publisher without WithHistory keeps a history")
	}
	if _, err := NewPublisher[int](n, "d", WithHistory(3), WithHistoryBytes(100)); err != nil {
		t.Fatal(err)
	}
	if h := p.seq.hist.Load(); h.depth != MaxHistory || h.maxBytes != DefaultHistoryBytes {
		t.Fatalf("two publishers: %d deep, %d bytes, want the largest of each", h.depth, h.maxBytes)
	}
	_ = p.Close()
	if h := p.seq.hist.Load(); h == nil || h.depth != 3 || h.maxBytes != 100 {
		t.Fatalf("after the deeper one closed: %+v, want 3 deep, 100 bytes", h)
	}
}

// histNode is a node on host-local discovery in dir, on a transport
// wrapped by wrap when given.
func histNode(t *testing.T, dir, name string, wrap func(transport.Transport) transport.Transport, opts ...NodeOption) *Node {
	t.Helper()
	tr, err := zmq.New(zmq.WithHost("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var trp transport.Transport = tr
	if wrap != nil {
		trp = wrap(tr)
	}
	n, err := NewNode(name, append([]NodeOption{WithDiscovery(local.New(local.WithDir(dir))), WithTransport(trp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// dropping is a transport that loses the publishes its drop function
// picks, on the way to its node.
type dropping struct {
	transport.Transport
	drop func(*transport.Message) bool
}

func (d *dropping) Listen(h transport.Handler) (transport.Endpoint, error) {
	return d.Transport.Listen(&dropHandler{Handler: h, drop: d.drop})
}

type dropHandler struct {
	transport.Handler
	drop func(*transport.Message) bool
}

func (d *dropHandler) HandlePublish(m *transport.Message) {
	if !d.drop(m) {
		d.Handler.HandlePublish(m)
	}
}

// TestHistoryRecoversWhatWasLost drops messages on their way to a
// subscriber with history: it gets them from the publisher's history, in
// order, and they do not count as gaps. With a history too short for the
// loss, the gap left is exactly what it no longer holds.
func TestHistoryRecoversWhatWasLost(t *testing.T) {
	for _, tt := range []struct {
		name          string
		depth         int
		key           bool
		wantRecovered uint64
	}{
		{"deep enough", 100, false, 10},
		{"deep enough, sealed", 100, true, 10},
		{"3 kept", 3, false, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			dir := t.TempDir()
			var opts []NodeOption
			if tt.key {
				opts = append(opts, WithKey(bytes.Repeat([]byte{7}, 32)))
			}
			var dropped atomic.Int32
			drop := func(m *transport.Message) bool { // 5 to 14, on their way
				if m.Name == "t" && m.Header.Flags&wire.FlagTail == 0 && m.Header.Seq >= 5 && m.Header.Seq <= 14 {
					dropped.Add(1)
					return true
				}
				return false
			}
			pubNode := histNode(t, dir, "pub", nil, opts...)
			subNode := histNode(t, dir, "sub", func(tr transport.Transport) transport.Transport {
				return &dropping{Transport: tr, drop: drop}
			}, opts...)
			pub, err := NewPublisher[int](pubNode, "t", WithHistory(tt.depth))
			if err != nil {
				t.Fatal(err)
			}
			ch, err := SubscribeReceived[int](ctx, subNode, "t", WithHistory(1))
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.WaitSubscribers(ctx, 1); err != nil {
				t.Fatal(err)
			}
			publish := func(from, to int) {
				for i := from; i <= to; i++ {
					if err := pub.Publish(ctx, i); err != nil {
						t.Fatal(err)
					}
				}
			}
			publish(1, 4)
			var got []Received[int]
			next := func() Received[int] {
				select {
				case r := <-ch:
					got = append(got, r)
					return r
				case <-ctx.Done():
					t.Fatalf("after %+v: %v", got, ctx.Err())
				}
				return Received[int]{}
			}
			for len(got) < 4 {
				next()
			}
			publish(5, 14) // lost on the way
			testwait.Until(t, "the messages lost", func() bool { return dropped.Load() == 10 })
			publish(15, 15) // shows the gap
			for next().Value != 15 {
			}
			want := 1
			var early uint64 // 1 to 4 replayed
			for _, r := range got {
				if r.Value < want {
					t.Fatalf("out of order or twice: %v in %+v", r.Value, got)
				}
				want = r.Value + 1
				// 1 to 4 come live, or replayed when the subscription's
				// first history answer overtook their live copies (a
				// loaded machine delays that answer: 3 and 4 did once);
				// the lost ones can only be replayed, 15 only live.
				if lost := r.Value >= 5 && r.Value <= 14; lost && !r.Replayed || r.Value == 15 && r.Replayed {
					t.Errorf("value %d: Replayed %v", r.Value, r.Replayed)
				}
				if r.Value < 5 && r.Replayed {
					early++
				}
			}
			if n := uint64(len(got)); n != 5+tt.wantRecovered {
				t.Fatalf("got %d values %+v, want %d", n, got, 5+tt.wantRecovered)
			}
			st := subNode.Stats()
			ts := st.Topics["t"]
			if ts.Recovered != tt.wantRecovered || ts.Gaps != 10-tt.wantRecovered {
				t.Fatalf("topic stats %+v, want %d recovered, %d gaps", ts, tt.wantRecovered, 10-tt.wantRecovered)
			}
			if ss := st.Subscriptions[0]; ss.Recovered != tt.wantRecovered || ss.Replayed != tt.wantRecovered+early || ss.History != 1 {
				t.Fatalf("subscription stats %+v (%d of 1 to 4 replayed)", ss, early)
			}
		})
	}
}

// TestHistoryInParts fetches a history larger than one reply.
func TestHistoryInParts(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	a, b := histNode(t, dir, "a", nil), histNode(t, dir, "b", nil)
	pub, err := NewPublisher[[]byte](a, "big", WithHistory(100), WithCodec(codec.Raw{}), WithHistoryBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	const n = 100 // 6.4 MiB: two replies at least
	for i := range n {
		p := make([]byte, 64<<10)
		p[0] = byte(i)
		if err := pub.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := SubscribeReceived[[]byte](ctx, b, "big", WithHistory(n), WithCodec(codec.Raw{}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case r := <-ch:
			if r.Value[0] != byte(i) || r.Seq != uint64(i+1) || !r.Replayed {
				t.Fatalf("message %d: first byte %d, seq %d, replayed %v", i, r.Value[0], r.Seq, r.Replayed)
			}
		case <-ctx.Done():
			t.Fatalf("after %d of %d: %v", i, n, ctx.Err())
		}
	}
	testwait.Until(t, "history served counted", func() bool { return a.Stats().Topics["big"].HistoryServed == n })
	var st Stats
	testwait.Until(t, "the replays counted", func() bool { st = b.Stats(); return st.Topics["big"].Replayed == n }) // counted after the offer
	if ts, ss := st.Topics["big"], st.Subscriptions[0]; ts.Recovered != 0 || ts.Replayed != n || ts.Gaps != 0 || ss.Recovered != 0 || ss.Replayed != n {
		t.Fatalf("a history in parts counted as %+v, %+v: want %d replayed, nothing recovered", ts, ss, n)
	}
}

// TestHistoryRefusedToKeylessNode: a node without the key learns nothing
// from a keyed node's history, and the refusal is counted.
func TestHistoryRefusedToKeylessNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	keyed := histNode(t, dir, "keyed", nil, WithKey(bytes.Repeat([]byte{1}, 32)))
	pub, err := NewPublisher[string](keyed, "secret", WithHistory(5))
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Publish(ctx, "the map")
	tr, err := zmq.New(zmq.WithHost("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Listen(&dropHandler{drop: func(*transport.Message) bool { return true }}); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	before := keyed.Stats().AuthFailures
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	_, err = tr.Request(short, keyed.Endpoint().Router, &transport.Message{Name: wire.HistoryService,
		Header:  wire.Header{Kind: transport.KindControl, Codec: wire.HistoryCodec, Sender: "intruder", SendTime: time.Now().UnixNano(), Seq: 1},
		Payload: wire.AppendHistoryRequest(nil, wire.HistoryRequest{Topic: "secret", Max: 5})})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("keyless $history: %v, want no answer (deadline)", err)
	}
	if keyed.Stats().AuthFailures <= before || keyed.Stats().Topics["secret"].HistoryServed != 0 {
		t.Fatalf("stats %+v: want the refusal counted and nothing served", keyed.Stats())
	}
}

// TestHistoryErrorHandlerMayCallStats: a subscription reports a replayed
// message it cannot decode while delivering a publisher's history; the
// error handler, which runs then, may read the node's stats.
func TestHistoryErrorHandlerMayCallStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	reports := make(chan error, 16)
	var sub *Node
	var subReady atomic.Bool
	pubNode := histNode(t, dir, "pub", nil)
	sub = histNode(t, dir, "sub", nil, WithErrorHandler(func(err error) {
		if subReady.Load() {
			_ = sub.Stats() // must not wait for the delivery that reports
		}
		select {
		case reports <- err:
		default:
		}
	}))
	subReady.Store(true)
	pub, err := NewPublisher[string](pubNode, "t", WithHistory(2))
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Publish(ctx, "not a number")
	if _, err := Subscribe[int](ctx, sub, "t", WithHistory(2), WithCodec(codec.JSON{})); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case err := <-reports:
			var de *DecodeError
			if errors.As(err, &de) {
				return
			}
		case <-ctx.Done():
			t.Fatal("no decode error reported: the delivery is stuck")
		}
	}
}

// oldNode plays a node that does not know $history (an older colugo)
// but claims a history in its $describe: it answers $history as any
// unknown control request, and publishes live messages.
type oldNode struct {
	id string
	tr *zmq.Transport
	ep transport.Endpoint
}

func (o *oldNode) HandlePublish(*transport.Message) {}
func (o *oldNode) HandlePeerLost(string, error)     {}
func (o *oldNode) HandleRequest(m *transport.Message, rw transport.ReplyWriter) {
	rep := &transport.Message{Name: m.Name, Header: wire.Header{Kind: transport.KindReply, Codec: "json", Sender: o.id,
		RequestID: m.Header.RequestID, SendTime: time.Now().UnixNano()}}
	if m.Name == describeService {
		rep.Payload = []byte(`{"id":"` + o.id + `","name":"old","version":"0.0.9","router":"` + o.ep.Router + `","pub":"` + o.ep.Pub +
			`","topics":[{"name":"t","codec":"json","type":"int","history":3}],"subscriptions":[],"services":[]}`)
	} else {
		rep.Header.Status, rep.Header.Error = uint8(CodeNotServed), errUnknownControl
	}
	_ = rw.Reply(rep)
}

// TestHistoryFromOlderNode: a publisher's node that answers $history as
// an unknown control request counts as keeping none; its live messages
// flow.
func TestHistoryFromOlderNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	tr, err := zmq.New(zmq.WithHost("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	old := &oldNode{id: "0123456789abcdef", tr: tr}
	if old.ep, err = tr.Listen(old); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	reg := local.New(local.WithDir(dir))
	if _, err := reg.Start(discovery.Peer{ID: old.id, Name: "old", Router: old.ep.Router, Pub: old.ep.Pub, Catalog: "c"}); err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	sub := histNode(t, dir, "sub", nil)
	ch, err := SubscribeReceived[int](ctx, sub, "t", WithLastValue())
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); ; seq++ {
		_, _ = tr.Publish(ctx, &transport.Message{Name: "t", Header: wire.Header{Kind: transport.KindPublish, Codec: "json", Type: "int",
			Sender: old.id, Seq: seq, SendTime: time.Now().UnixNano()}, Payload: []byte(strconv.Itoa(int(seq)))}, transport.PublishOptions{})
		select {
		case r := <-ch:
			if r.Replayed {
				t.Fatalf("replayed %+v from a node without history", r)
			}
			st := sub.Stats()
			testwait.Until(t, "the fetch counted failed", func() bool { st = sub.Stats(); return st.HistoryFailed == 1 })
			if ns := st.Subscriptions[0].NoHistory; len(ns) != 1 || ns[0] != old.id {
				t.Fatalf("NoHistory %v, want [%s]", ns, old.id)
			}
			return
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no live message from the older node")
		}
	}
}

// TestHistoryWhilePublishing: subscriptions that join while a publisher
// publishes as fast as it can all get its history then its live messages,
// each once and in order, and no answer is refused.
func TestHistoryWhilePublishing(t *testing.T) {
	t.Run("plain", func(t *testing.T) { historyWhilePublishing(t, nil) })
	// Sealed publishes are numbered on another path, which must keep the
	// history in step with the seq an answer gives as its latest.
	t.Run("key", func(t *testing.T) { historyWhilePublishing(t, []byte("colugo history test key, 32 B!!!")) })
}

func historyWhilePublishing(t *testing.T, key []byte) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	var opts []NodeOption
	if key != nil {
		opts = append(opts, WithKey(key))
	}
	a, b := histNode(t, dir, "a", nil, opts...), histNode(t, dir, "b", nil, opts...)
	pub, err := NewPublisher[int](a, "fast", WithHistory(50))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = pub.Publish(ctx, i)
		}
	}()
	defer func() { close(stop); <-done }()
	for _, n := range []*Node{a, b} { // this node and another
		for range 10 {
			ch, err := SubscribeReceived[int](ctx, n, "fast", WithHistory(50), WithBuffer(1<<16))
			if err != nil {
				t.Fatal(err)
			}
			var last uint64
			for range 200 {
				select {
				case r := <-ch:
					if r.Seq <= last || uint64(r.Value) != r.Seq {
						t.Fatalf("seq %d (value %d) after %d", r.Seq, r.Value, last)
					}
					last = r.Seq
				case <-ctx.Done():
					t.Fatal(ctx.Err())
				}
			}
		}
	}
	if fa, fb := a.Stats().HistoryFailed, b.Stats().HistoryFailed; fa+fb != 0 {
		t.Fatalf("HistoryFailed %d and %d: an answer was refused", fa, fb)
	}
}

// TestHistoryBaselineCountsGaps: the latest seq of a history answer is
// where the topic's sequence starts: messages lost between it and the
// first live message count as gaps when the history no longer holds them.
func TestHistoryBaselineCountsGaps(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	var dropped atomic.Int32
	pubNode := histNode(t, dir, "pub", nil)
	subNode := histNode(t, dir, "sub", func(tr transport.Transport) transport.Transport {
		return &dropping{Transport: tr, drop: func(m *transport.Message) bool {
			if m.Name == "t" && m.Header.Seq >= 2 && m.Header.Seq <= 5 {
				dropped.Add(1)
				return true
			}
			return false
		}}
	})
	pub, err := NewPublisher[int](pubNode, "t", WithHistory(1))
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Publish(ctx, 1)
	ch, err := SubscribeReceived[int](ctx, subNode, "t", WithLastValue())
	if err != nil {
		t.Fatal(err)
	}
	if r := <-ch; r.Value != 1 || !r.Replayed {
		t.Fatalf("first %+v, want 1 replayed", r)
	}
	if err := pub.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 5; i++ {
		_ = pub.Publish(ctx, i)
	}
	testwait.Until(t, "2 to 5 lost", func() bool { return dropped.Load() == 4 })
	_ = pub.Publish(ctx, 6) // the history holds only 6 now
	if r := <-ch; r.Value != 6 {
		t.Fatalf("after the loss %+v, want 6", r)
	}
	testwait.Until(t, "the loss counted", func() bool { return subNode.Stats().Topics["t"].Gaps == 4 })
	if ts := subNode.Stats().Topics["t"]; ts.Recovered != 0 {
		t.Fatalf("%+v: nothing was recoverable", ts)
	}
}
