// Package transporttest is the conformance suite for transport.Transport
// implementations. transport/zmq and transport/inproc both run it, so the
// in-process fake cannot drift from the real thing.
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, func(t testing.TB) transport.Transport { return mytransport.New() })
//	}
package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// wait bounds every wait in the suite; it is long because CI machines are
// slow and shared, and only a broken transport ever reaches it.
const wait = 10 * time.Second

// Run runs the conformance suite. newTransport returns a fresh transport
// that has not been listened on; the suite listens and closes it. The
// cases that need a small send queue are skipped: see [RunFactories].
func Run(t *testing.T, newTransport func(t testing.TB) transport.Transport) {
	RunFactories(t, Factories{New: newTransport})
}

// Factories make the transports the suite tests; the suite listens on and
// closes each.
type Factories struct {
	// New returns a fresh transport with its default options.
	New func(t testing.TB) transport.Transport
	// NewQueue returns a fresh transport whose send queue for each
	// subscriber holds about queueBytes bytes (its other options as New's),
	// for the cases about full queues and back-pressure; they are skipped
	// when it is nil.
	NewQueue func(t testing.TB, queueBytes int) transport.Transport
}

// RunFactories runs the conformance suite with the transports f makes.
func RunFactories(t *testing.T, f Factories) {
	s := suite{newT: f.New, newQ: f.NewQueue}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"PubSubOrder", s.pubSubOrder},
		{"HeaderRoundTrip", s.headerRoundTrip},
		{"HeaderExtensions", s.headerExtensions},
		{"RequestExtensions", s.requestExtensions},
		{"PublishMessageReused", s.publishMessageReused},
		{"PayloadNotKept", s.payloadNotKept},
		{"TopicNotPrefix", s.topicNotPrefix},
		{"MultiPublisher", s.multiPublisher},
		{"MultiSubscriber", s.multiSubscriber},
		{"Unsubscribe", s.unsubscribe},
		{"StalledSubscriber", s.stalledSubscriber},
		{"Sync", s.sync},
		{"Burst64B", s.burst(100_000, 64)},
		{"Burst1KiB", s.burst(10_000, 1<<10)},
		{"Burst64KiB", s.burst(1_000, 64<<10)},
		{"BackPressureSlowHandler", s.backPressureSlowHandler},
		{"BackPressureStalled", s.backPressureStalled},
		{"NoBackPressureNeverWaits", s.noBackPressureNeverWaits},
		{"BackPressureCtx", s.backPressureCtx},
		{"PublisherLost", s.publisherLost},
		{"RequestReply", s.requestReply},
		{"RequestRouting", s.requestRouting},
		{"ManyInFlight", s.manyInFlight},
		{"RequestDeadline", s.requestDeadline},
		{"RequestCancel", s.requestCancel},
		{"ReplierLost", s.replierLost},
		{"Disconnect", s.disconnect},
		{"UnknownRouter", s.unknownRouter},
		{"Close", s.close},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	newT func(t testing.TB) transport.Transport
	newQ func(t testing.TB, queueBytes int) transport.Transport
}

// handler is the suite's Recorder: it has a name, answers requests with
// an echo by default (setOnRequest(nil) restores it) and hands cancels to
// no onRequest func.
type handler struct {
	*Recorder
	name string
}

// setOnRequest makes f decide how requests (not cancels) are answered; a
// nil f restores the echo.
func (h *handler) setOnRequest(f func(msg *transport.Message, rw transport.ReplyWriter)) {
	if f == nil {
		f = func(msg *transport.Message, rw transport.ReplyWriter) {
			_ = rw.Reply(reply(msg, []byte(h.name+":"+string(msg.Payload))))
		}
	}
	h.SetOnRequest(func(msg *transport.Message, rw transport.ReplyWriter) {
		if msg.Header.Kind != transport.KindCancel {
			f(msg, rw)
		}
	})
}

func newHandler(name string) *handler {
	h := &handler{Recorder: NewRecorder(), name: name}
	h.setOnRequest(nil)
	return h
}

func reply(req *transport.Message, payload []byte) *transport.Message {
	return &transport.Message{Name: req.Name, Header: transport.Header{
		Kind: transport.KindReply, Codec: req.Header.Codec, Sender: "replier",
		RequestID: req.Header.RequestID,
	}, Payload: payload}
}

type node struct {
	tr transport.Transport
	ep transport.Endpoint
	h  *handler
}

func (s suite) start(t *testing.T, name string) *node {
	t.Helper()
	return s.listen(t, name, s.newT(t))
}

// startQueue starts a node whose send queues hold about queueBytes; it
// skips the test when the suite has no NewQueue.
func (s suite) startQueue(t *testing.T, name string, queueBytes int) *node {
	t.Helper()
	if s.newQ == nil {
		t.Skip("no Factories.NewQueue: cannot make a small send queue")
	}
	return s.listen(t, name, s.newQ(t, queueBytes))
}

func (s suite) listen(t *testing.T, name string, tr transport.Transport) *node {
	t.Helper()
	h := newHandler(name)
	ep, err := tr.Listen(h)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return &node{tr: tr, ep: ep, h: h}
}

func pubMsg(topic, sender string, seq uint64, payload []byte) *transport.Message {
	return &transport.Message{Name: topic, Header: transport.Header{
		Kind: transport.KindPublish, Codec: "raw", Sender: sender, Seq: seq,
		SendTime: time.Now().UnixNano(),
	}, Payload: payload}
}

// subscribe subscribes sub to topic at pub and returns once messages flow:
// subscriptions are asynchronous on real sockets (the slow joiner), so it
// publishes warm-up messages (Seq 0) until one arrives. Tests ignore Seq 0.
func subscribe(t *testing.T, pub, sub *node, topic string) {
	t.Helper()
	if err := sub.tr.Subscribe(pub.ep.Pub, topic, transport.SubscribeOptions{}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if err := publishNow(pub.tr, pubMsg(topic, pub.h.name, 0, nil)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		select {
		case m := <-sub.h.Publishes:
			if m.Name == topic && m.Header.Seq == 0 {
				return
			}
			if m.Header.Seq == 0 { // a late warm-up of a topic subscribed before
				continue
			}
			t.Fatalf("unexpected message before warm-up: %q seq %d", m.Name, m.Header.Seq)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("subscription to %q never became active", topic)
}

// next returns the next message with Seq != 0.
func next(t *testing.T, ch <-chan *transport.Message) *transport.Message {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case m := <-ch:
			if m.Header.Seq != 0 {
				return m
			}
		case <-timeout:
			t.Fatal("no message within", wait)
			return nil
		}
	}
}

func (s suite) pubSubOrder(t *testing.T) {
	pub, sub := s.start(t, "pub"), s.start(t, "sub")
	subscribe(t, pub, sub, "robot/pose")
	const n = 500
	for i := uint64(1); i <= n; i++ {
		if err := publishNow(pub.tr, pubMsg("robot/pose", "pub", i, []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(1); i <= n; i++ {
		m := next(t, sub.h.Publishes)
		if m.Header.Seq != i || string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: got seq %d payload %q", i, m.Header.Seq, m.Payload)
		}
	}
}

func (s suite) headerRoundTrip(t *testing.T) {
	pub, sub := s.start(t, "pub"), s.start(t, "sub")
	subscribe(t, pub, sub, "t")
	want := transport.Message{Name: "t", Header: transport.Header{
		Kind: transport.KindPublish, Flags: 3, Codec: "json", Type: "main.Pose",
		Sender: "node-1234", Seq: 1 << 40, SendTime: 1_700_000_000_123_456_789,
	}, Payload: bytes.Repeat([]byte{0, 1, 0xff}, 1000)}
	if err := publishNow(pub.tr, &want); err != nil {
		t.Fatal(err)
	}
	got := next(t, sub.h.Publishes)
	if got.Name != want.Name || got.Header != want.Header || !bytes.Equal(got.Payload, want.Payload) {
		t.Fatalf("got %q %+v (%d bytes), want %q %+v (%d bytes)", got.Name, got.Header, len(got.Payload),
			want.Name, want.Header, len(want.Payload))
	}
}

// testExt is an extension block with a metadata entry and an entry of a
// type no decoder knows.
func testExt() string {
	b := wire.AppendMetadataEntry(nil, "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	b = wire.AppendExt(b, 250, "a future field")
	return string(wire.AppendMetadataEntry(b, "k", "v"))
}

// headerExtensions: Header.Ext (per-message metadata) reaches a
// subscriber of the same transport, byte for byte, and a publish without
// extensions arrives without them.
func (s suite) headerExtensions(t *testing.T) {
	pub, sub := s.start(t, "pub"), s.start(t, "sub")
	subscribe(t, pub, sub, "t")
	want := pubMsg("t", "pub", 1, []byte("x"))
	want.Header.Ext = testExt()
	if err := publishNow(pub.tr, want); err != nil {
		t.Fatal(err)
	}
	got := next(t, sub.h.Publishes)
	if got.Header != want.Header {
		t.Fatalf("got %+v, want %+v", got.Header, want.Header)
	}
	plain := pubMsg("t", "pub", 2, []byte("y"))
	if err := publishNow(pub.tr, plain); err != nil {
		t.Fatal(err)
	}
	if got := next(t, sub.h.Publishes); got.Header.Ext != "" {
		t.Fatalf("extensions %q on a publish without any", got.Header.Ext)
	}
	if n := pub.tr.Stats().ExtStripped; n != 0 {
		t.Fatalf("ExtStripped = %d between two transports that decode extensions", n)
	}
}

// requestExtensions: a request's and a reply's extensions reach the other
// side.
func (s suite) requestExtensions(t *testing.T) {
	cli, srv := s.start(t, "cli"), s.start(t, "srv")
	ext := testExt()
	srv.h.setOnRequest(func(msg *transport.Message, rw transport.ReplyWriter) {
		r := reply(msg, []byte(msg.Header.Ext))
		r.Header.Ext = string(wire.AppendMetadataEntry(nil, "reply", "yes"))
		_ = rw.Reply(r)
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m, err := cli.tr.Request(ctx, srv.ep.Router, &transport.Message{Name: "svc", Header: transport.Header{
		Kind: transport.KindRequest, Codec: "raw", Sender: "cli", Ext: ext,
	}, Payload: []byte("q")})
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != ext {
		t.Fatalf("the handler saw extensions %q, want %q", m.Payload, ext)
	}
	if want := string(wire.AppendMetadataEntry(nil, "reply", "yes")); m.Header.Ext != want {
		t.Fatalf("reply extensions %q, want %q", m.Header.Ext, want)
	}
}

// publishMessageReused: Publish does not keep its *Message, so a caller
// may reuse it at once (the node does, for every Publish).
func (s suite) publishMessageReused(t *testing.T) {
	pub, sub := s.start(t, "pub"), s.start(t, "sub")
	subscribe(t, pub, sub, "t")
	var msg transport.Message
	const n = 100
	for i := uint64(1); i <= n; i++ {
		msg = *pubMsg("t", "pub", i, []byte(fmt.Sprint(i)))
		if err := publishNow(pub.tr, &msg); err != nil {
			t.Fatal(err)
		}
		msg = transport.Message{Name: "overwritten", Header: transport.Header{Seq: 1 << 60, Sender: "x"}}
	}
	for i := uint64(1); i <= n; i++ {
		m := next(t, sub.h.Publishes)
		if m.Name != "t" || m.Header.Seq != i || m.Header.Sender != "pub" || string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q seq %d from %q payload %q", i, m.Name, m.Header.Seq, m.Header.Sender, m.Payload)
		}
	}
}

// payloadNotKept: Publish, Request and Reply keep nothing of the caller's
// payload, small or large, so a caller may reuse its buffer at once.
func (s suite) payloadNotKept(t *testing.T) {
	pub, sub := s.start(t, "pub"), s.start(t, "sub")
	subscribe(t, pub, sub, "t")
	same := func(b []byte, v byte) bool { return len(b) > 0 && bytes.Count(b, []byte{v}) == len(b) }
	seq := uint64(0)
	for _, size := range []int{64, 64 << 10} {
		buf := make([]byte, size)
		const n = 20
		for i := range n {
			for j := range buf {
				buf[j] = byte(i)
			}
			seq++
			if err := publishNow(pub.tr, pubMsg("t", "pub", seq, buf)); err != nil {
				t.Fatal(err)
			}
			for j := range buf { // the caller reuses its buffer at once
				buf[j] = 0xEE
			}
		}
		for i := range n {
			if m := next(t, sub.h.Publishes); len(m.Payload) != size || !same(m.Payload, byte(i)) {
				t.Fatalf("%d-byte message %d: payload changed after Publish (%d bytes, first %x)", size, i, len(m.Payload), m.Payload[:1])
			}
		}
	}
	cli, srv := s.start(t, "cli"), s.start(t, "srv")
	srv.h.setOnRequest(func(msg *transport.Message, rw transport.ReplyWriter) {
		out := bytes.Repeat([]byte{7}, len(msg.Payload))
		if err := rw.Reply(&transport.Message{Name: msg.Name, Header: transport.Header{
			Kind: transport.KindReply, Codec: "raw", RequestID: msg.Header.RequestID,
		}, Payload: out}); err != nil {
			t.Error(err)
		}
		for j := range out { // the replier reuses its buffer at once
			out[j] = 0xEE
		}
	})
	for _, size := range []int{64, 64 << 10} {
		m, err := request(t, cli, srv.ep, string(make([]byte, size)), wait)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Payload) != size || !same(m.Payload, 7) {
			t.Fatalf("%d-byte reply changed after Reply", size)
		}
	}
}

func (s suite) topicNotPrefix(t *testing.T) {
	pub, sub := s.start(t, "pub"), s.start(t, "sub")
	subscribe(t, pub, sub, "a")
	for i := uint64(1); i <= 10; i++ {
		_ = publishNow(pub.tr, pubMsg("ab", "pub", i, nil))
		_ = publishNow(pub.tr, pubMsg("a_b", "pub", i, nil))
		_ = publishNow(pub.tr, pubMsg("b", "pub", i, nil))
	}
	_ = publishNow(pub.tr, pubMsg("a", "pub", 99, nil))
	if m := next(t, sub.h.Publishes); m.Name != "a" || m.Header.Seq != 99 {
		t.Fatalf("subscriber of %q got %q seq %d", "a", m.Name, m.Header.Seq)
	}
}

func (s suite) multiPublisher(t *testing.T) {
	p1, p2, sub := s.start(t, "p1"), s.start(t, "p2"), s.start(t, "sub")
	subscribe(t, p1, sub, "t")
	subscribe(t, p2, sub, "t")
	const n = 300
	var wg sync.WaitGroup
	for _, p := range []*node{p1, p2} {
		wg.Go(func() {
			for i := uint64(1); i <= n; i++ {
				_ = publishNow(p.tr, pubMsg("t", p.h.name, i, nil))
			}
		})
	}
	wg.Wait()
	last := map[string]uint64{}
	for range 2 * n {
		m := next(t, sub.h.Publishes)
		if m.Header.Seq != last[m.Header.Sender]+1 {
			t.Fatalf("from %s: seq %d after %d", m.Header.Sender, m.Header.Seq, last[m.Header.Sender])
		}
		last[m.Header.Sender] = m.Header.Seq
	}
}

func (s suite) multiSubscriber(t *testing.T) {
	pub := s.start(t, "pub")
	subs := []*node{s.start(t, "s1"), s.start(t, "s2"), s.start(t, "s3")}
	for _, sub := range subs {
		subscribe(t, pub, sub, "t")
	}
	const n = 300
	for i := uint64(1); i <= n; i++ {
		_ = publishNow(pub.tr, pubMsg("t", "pub", i, nil))
	}
	for _, sub := range subs {
		for i := uint64(1); i <= n; i++ {
			if m := next(t, sub.h.Publishes); m.Header.Seq != i {
				t.Fatalf("%s: seq %d, want %d", sub.h.name, m.Header.Seq, i)
			}
		}
	}
}

func (s suite) unsubscribe(t *testing.T) {
	pub, sub := s.start(t, "pub"), s.start(t, "sub")
	subscribe(t, pub, sub, "a")
	subscribe(t, pub, sub, "b") // keeps the connection up after "a" goes
	if err := sub.tr.Unsubscribe(pub.ep.Pub, "a"); err != nil {
		t.Fatal(err)
	}
	// The unsubscription reaches a socket publisher asynchronously: publish
	// a then b until a round comes through with b alone.
	deadline := time.Now().Add(wait)
	for seq := uint64(1); time.Now().Before(deadline); seq++ {
		_ = publishNow(pub.tr, pubMsg("a", "pub", seq, nil))
		_ = publishNow(pub.tr, pubMsg("b", "pub", seq, nil))
		sawA := false
		for {
			m := next(t, sub.h.Publishes)
			if m.Name == "a" {
				sawA = true
				continue
			}
			if m.Header.Seq == seq {
				break
			}
		}
		if !sawA {
			return
		}
	}
	t.Fatal("still receiving a topic after Unsubscribe")
}

func (s suite) stalledSubscriber(t *testing.T) {
	pub, slow, fast := s.startQueue(t, "pub", 64<<10), s.start(t, "slow"), s.start(t, "fast")
	subscribe(t, pub, slow, "t")
	subscribe(t, pub, fast, "t")
	defer slow.h.Block()()

	// Enough data to fill any socket buffers between pub and slow, paced by
	// the fast subscriber so that only the stalled one can fall behind.
	payload := make([]byte, 4096)
	// A batch takes a quarter of the publisher's 64 KiB queue: the last one may
	// still be counted there (its write done, not yet accounted for).
	const batches, per = 2500, 4
	seq := uint64(0)
	for range batches {
		for range per {
			seq++
			res, err := pub.tr.Publish(context.Background(), pubMsg("t", "pub", seq, payload), transport.PublishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Subscribers != 2 || res.Dropped > 1 {
				t.Fatalf("message %d: %+v, want 2 subscribers, at most 1 dropped (%+v)", seq, res, pub.tr.Stats())
			}
		}
		for want := seq - per + 1; want <= seq; want++ {
			select {
			case m := <-fast.h.Publishes:
				if m.Header.Seq != want {
					t.Fatalf("fast subscriber: seq %d, want %d", m.Header.Seq, want)
				}
			case <-time.After(wait):
				t.Fatalf("fast subscriber: no seq %d within %v (%+v)", want, wait, pub.tr.Stats())
			}
		}
	}
	st := pub.tr.Stats()
	if st.SendDropped == 0 {
		t.Fatalf("stalled subscriber: SendDropped = 0 after %d messages of %d B", seq, len(payload))
	}
	// Counted where it happened: on the stalled connection, not the other.
	var slowDrops, fastDrops uint64
	for _, c := range st.Subscribers {
		if c.Slow {
			slowDrops += c.Dropped
		} else {
			fastDrops += c.Dropped
		}
	}
	if len(st.Subscribers) != 2 || slowDrops != st.SendDropped || fastDrops != 0 {
		t.Fatalf("Stats().Subscribers = %+v, want 2 connections, the slow one with all %d drops", st.Subscribers, st.SendDropped)
	}
}

// sync: a transport.Syncer's Sync returns once what was queued before it
// for the subscribers that asked for back-pressure has been handed on,
// also under a steady flow (what comes meanwhile is not waited for); it
// waits while such a subscriber is stalled with messages from before it
// in its queue, and never for a stalled subscriber of the other kind.
func (s suite) sync(t *testing.T) {
	pub := s.startQueue(t, "pub", 64<<10)
	sy, ok := pub.tr.(transport.Syncer)
	if !ok {
		t.Skip("not a transport.Syncer")
	}
	best, reliable := s.start(t, "best"), s.start(t, "reliable")
	subscribe(t, pub, best, "best")
	subscribeBP(t, pub, reliable, "reliable")
	syncWithin := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return sy.Sync(ctx)
	}
	// A steady flow to both: a publisher that never stops while Sync is
	// called.
	stop, flowing := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flowing)
		payload := make([]byte, 256)
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, topic := range []string{"best", "reliable"} {
				_, _ = pub.tr.Publish(context.Background(), pubMsg(topic, "pub", seq, payload), transport.PublishOptions{})
			}
		}
	}()
	for i := range 20 {
		if err := syncWithin(wait); err != nil {
			close(stop)
			t.Fatalf("Sync %d under a steady flow: %v", i, err)
		}
	}
	close(stop)
	<-flowing
	// fill publishes to a stalled subscriber until its queue stays full
	// (every publish dropped for 100 ms: the socket buffers between are
	// full too), so that messages from before Sync wait in it.
	fill := func(topic string) {
		payload := make([]byte, 4096)
		deadline := time.Now().Add(wait)
		var fullSince time.Time
		for seq := uint64(1); fullSince.IsZero() || time.Since(fullSince) < 100*time.Millisecond; seq++ {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the stalled subscriber's queue never stayed full (%d messages of %d B): %+v", topic, seq, len(payload), pub.tr.Stats())
			}
			res, err := pub.tr.Publish(context.Background(), pubMsg(topic, "pub", seq, payload), transport.PublishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case res.Dropped == 0:
				fullSince = time.Time{}
			case fullSince.IsZero():
				fullSince = time.Now()
			}
		}
	}
	block(t, best)
	fill("best")
	if err := syncWithin(wait); err != nil {
		t.Fatalf("Sync with a stalled subscriber that did not ask for back-pressure: %v", err)
	}
	release := block(t, reliable)
	// A writer that got no CPU for the 100 ms of fill may still find room
	// in the socket buffers: then Sync returns, and more is published.
	// Once they are full, Sync must wait.
	for attempt := 0; ; attempt++ {
		fill("reliable")
		err := syncWithin(100 * time.Millisecond)
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil || attempt == 20 {
			t.Fatalf("Sync with a stalled back-pressure subscriber's queue full: %v after %d fills, want the deadline", err, attempt+1)
		}
	}
	release()
	if err := syncWithin(wait); err != nil {
		t.Fatalf("Sync once the back-pressure subscriber reads again: %v", err)
	}
}

// counter is a sink that checks that publishes arrive in order, none
// missing, and counts them.
type counter struct {
	mu    sync.Mutex
	n     uint64
	bad   string
	done  chan struct{} // closed when n reaches want
	want  uint64
	delay time.Duration // per message: a slow consumer
}

func newCounter(want uint64) *counter { return &counter{want: want, done: make(chan struct{})} }

func (c *counter) take(m *transport.Message) {
	if m.Header.Seq == 0 { // warm-up
		return
	}
	if c.delay > 0 {
		time.Sleep(c.delay) // the consumer's work, not synchronisation
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Header.Seq != c.n+1 && c.bad == "" {
		c.bad = fmt.Sprintf("seq %d after %d", m.Header.Seq, c.n)
	}
	c.n = m.Header.Seq
	if c.n == c.want {
		close(c.done)
	}
}

func (c *counter) count() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// await waits until the counter has all it wants.
func (c *counter) await(t *testing.T, what string) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(wait):
		t.Fatalf("%s: %d of %d received within %v", what, c.count(), c.want, wait)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bad != "" {
		t.Fatalf("%s: %s", what, c.bad)
	}
}

// burst: a subscriber that keeps up receives every message of a burst
// published as fast as Publish returns, with the default queues.
func (s suite) burst(n, size int) func(*testing.T) {
	return func(t *testing.T) {
		pub, sub := s.start(t, "pub"), s.start(t, "sub")
		subscribe(t, pub, sub, "burst")
		c := newCounter(uint64(n))
		sub.h.SetOnPublish(c.take)
		payload := make([]byte, size)
		var dropped int
		start := time.Now()
		for i := 1; i <= n; i++ {
			res, err := pub.tr.Publish(context.Background(), pubMsg("burst", "pub", uint64(i), payload), transport.PublishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			dropped += res.Dropped
		}
		published := time.Since(start)
		c.await(t, fmt.Sprintf("burst of %d × %d B (published in %v, %d dropped)", n, size, published, dropped))
		if dropped != 0 || pub.tr.Stats().SendDropped != 0 {
			t.Fatalf("burst of %d × %d B: %d dropped", n, size, dropped)
		}
		t.Logf("%d × %d B: published in %v, all received in %v", n, size, published, time.Since(start))
	}
}

// backPressureSlowHandler: with back-pressure, a subscriber slower than
// its publisher receives every message, and the publisher is slowed to
// its pace instead of dropping.
func (s suite) backPressureSlowHandler(t *testing.T) {
	pub, sub := s.startQueue(t, "pub", 64<<10), s.start(t, "sub")
	subscribeBP(t, pub, sub, "t")
	// 64 KiB messages, 128 MiB in all: more than any socket buffers hold
	// between the two, so most must wait for the consumer.
	const n = 2000
	c := newCounter(n)
	c.delay = 200 * time.Microsecond
	sub.h.SetOnPublish(c.take)
	payload := make([]byte, 64<<10)
	for i := uint64(1); i <= n; i++ {
		res, err := pub.tr.Publish(context.Background(), pubMsg("t", "pub", i, payload), transport.PublishOptions{MaxWait: wait})
		if err != nil {
			t.Fatal(err)
		}
		if res.Subscribers != 1 || res.Dropped != 0 {
			t.Fatalf("message %d: %+v, want 1 subscriber, 0 dropped", i, res)
		}
	}
	if got := c.count(); got < n/2 {
		t.Fatalf("the publisher finished with %d of %d consumed: it was not slowed to the consumer's pace", got, n)
	}
	c.await(t, "back-pressured stream")
	if d := pub.tr.Stats().SendDropped; d != 0 {
		t.Fatalf("SendDropped = %d", d)
	}
}

// subscribeBP is subscribe with back-pressure.
func subscribeBP(t *testing.T, pub, sub *node, topic string) {
	t.Helper()
	subscribe(t, pub, sub, topic)
	if err := sub.tr.Subscribe(pub.ep.Pub, topic, transport.SubscribeOptions{BackPressure: true}); err != nil {
		t.Fatal(err)
	}
	// The option travels behind the subscription on a socket: wait until
	// the publisher shows it.
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, c := range pub.tr.Stats().Subscribers {
			if c.BackPressure > 0 {
				return
			}
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	t.Fatal("the publisher never saw the back-pressure request")
}

// block makes n's handler block until the returned func is called (also
// at cleanup).
func block(t *testing.T, n *node) func() {
	release := n.h.Block()
	t.Cleanup(release)
	return release
}

// fill publishes to a stalled subscriber, paced by the others (each
// message waits for fast, if not nil), until a publish misses one; it
// returns that publish's result and how long it took.
func fill(t *testing.T, pub, fast *node, seq *uint64, opts transport.PublishOptions) (transport.PublishResult, time.Duration) {
	t.Helper()
	payload := make([]byte, 16<<10)
	for range 100_000 {
		*seq++
		start := time.Now()
		res, err := pub.tr.Publish(context.Background(), pubMsg("t", "pub", *seq, payload), opts)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if fast != nil {
			if m := next(t, fast.h.Publishes); m.Header.Seq != *seq {
				t.Fatalf("fast subscriber: seq %d, want %d", m.Header.Seq, *seq)
			}
		}
		if res.Dropped > 0 {
			return res, took
		}
	}
	t.Fatal("the stalled subscriber's queue never filled")
	return transport.PublishResult{}, 0
}

// backPressureStalled: a stalled back-pressure subscriber costs one
// MaxWait, then is demoted (later publishes do not wait for it) and its
// misses are counted, while a subscriber without back-pressure gets
// everything; once it drains, its drop episode ends.
func (s suite) backPressureStalled(t *testing.T) {
	pub, slow, fast := s.startQueue(t, "pub", 64<<10), s.start(t, "slow"), s.start(t, "fast")
	subscribeBP(t, pub, slow, "t")
	subscribe(t, pub, fast, "t")
	release := block(t, slow)
	const maxWait = 300 * time.Millisecond
	opts := transport.PublishOptions{MaxWait: maxWait}
	var seq uint64
	res, took := fill(t, pub, fast, &seq, opts)
	if res.Subscribers != 2 || res.Dropped != 1 || took < maxWait*9/10 {
		t.Fatalf("publish that found the queue full: %+v after %v, want 2 subscribers, 1 dropped after MaxWait %v", res, took, maxWait)
	}
	payload := make([]byte, 16<<10)
	for range 5 { // demoted: no more waiting
		seq++
		start := time.Now()
		res, err := pub.tr.Publish(context.Background(), pubMsg("t", "pub", seq, payload), opts)
		if took := time.Since(start); err != nil || res.Subscribers != 2 || res.Dropped != 1 || took > maxWait/2 {
			t.Fatalf("publish to a demoted subscriber: %+v, %v after %v", res, err, took)
		}
		if m := next(t, fast.h.Publishes); m.Header.Seq != seq {
			t.Fatalf("fast subscriber: seq %d, want %d", m.Header.Seq, seq)
		}
	}
	st := pub.tr.Stats()
	var bp *transport.SubscriberStats
	for i, c := range st.Subscribers {
		if c.BackPressure == 1 {
			bp = &st.Subscribers[i]
		} else if c.Dropped != 0 || c.Slow {
			t.Fatalf("the subscriber without back-pressure: %+v", c)
		}
	}
	if len(st.Subscribers) != 2 || bp == nil || !bp.Slow || bp.Dropped != 6 || bp.Topics != 1 || st.SendDropped != 6 {
		t.Fatalf("Stats after 6 misses: %+v", st)
	}
	// Released, the subscriber drains its queue, and the next message
	// that reaches it ends the episode.
	release()
	deadline := time.Now().Add(wait)
	for slowNow := true; slowNow; {
		if time.Now().After(deadline) {
			t.Fatal("the drained subscriber is still slow")
		}
		seq++
		if _, err := pub.tr.Publish(context.Background(), pubMsg("t", "pub", seq, payload), transport.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		next(t, fast.h.Publishes)
		slowNow = false
		for _, c := range pub.tr.Stats().Subscribers {
			slowNow = slowNow || c.Slow
		}
	}
}

// noBackPressureNeverWaits: a subscriber that did not ask for
// back-pressure never makes Publish wait, whatever MaxWait says.
func (s suite) noBackPressureNeverWaits(t *testing.T) {
	pub, slow := s.startQueue(t, "pub", 64<<10), s.start(t, "slow")
	subscribe(t, pub, slow, "t")
	block(t, slow)
	var seq uint64
	res, took := fill(t, pub, nil, &seq, transport.PublishOptions{MaxWait: wait})
	if res.Subscribers != 1 || res.Dropped != 1 || took > wait/4 {
		t.Fatalf("publish to a full subscriber without back-pressure: %+v after %v", res, took)
	}
}

// backPressureCtx: ctx ends a wait for a back-pressure subscriber; the
// message is then missed and counted.
func (s suite) backPressureCtx(t *testing.T) {
	pub, slow := s.startQueue(t, "pub", 64<<10), s.start(t, "slow")
	subscribeBP(t, pub, slow, "t")
	block(t, slow)
	payload := make([]byte, 16<<10)
	for seq := uint64(1); seq < 100_000; seq++ { // until the queue is full
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		res, err := pub.tr.Publish(ctx, pubMsg("t", "pub", seq, payload), transport.PublishOptions{MaxWait: wait})
		took := time.Since(start)
		cancel()
		if err == nil && res.Dropped == 0 {
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) || took > wait/4 || res.Subscribers != 1 || res.Dropped != 1 {
			t.Fatalf("Publish with a 50ms ctx and MaxWait %v to a full queue: %+v, %v after %v; want 1 subscriber, 1 dropped, DeadlineExceeded", wait, res, err, took)
		}
		return
	}
	t.Fatal("the stalled subscriber's queue never filled")
}

func (s suite) publisherLost(t *testing.T) {
	pub, sub := s.start(t, "pub"), s.start(t, "sub")
	subscribe(t, pub, sub, "t")
	_ = pub.tr.Close()
	select {
	case lost := <-sub.h.PeerLost:
		if lost.Addr != pub.ep.Pub {
			t.Fatalf("lost %q, want %q", lost.Addr, pub.ep.Pub)
		}
	case <-time.After(wait):
		t.Fatal("HandlePeerLost not called after the publisher closed")
	}
}

func request(t *testing.T, from *node, to transport.Endpoint, payload string, timeout time.Duration) (*transport.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return from.tr.Request(ctx, to.Router, &transport.Message{Name: "svc", Header: transport.Header{
		Kind: transport.KindRequest, Codec: "raw", Sender: from.h.name, Deadline: int64(timeout),
	}, Payload: []byte(payload)})
}

func (s suite) requestReply(t *testing.T) {
	cli, srv := s.start(t, "cli"), s.start(t, "srv")
	for i := range 3 { // the connection is reused
		m, err := request(t, cli, srv.ep, fmt.Sprint("hello", i), wait)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Kind != transport.KindReply || string(m.Payload) != fmt.Sprint("srv:hello", i) {
			t.Fatalf("reply %v %q", m.Header.Kind, m.Payload)
		}
		req := <-srv.h.Requests
		if req.Name != "svc" || req.Header.Sender != "cli" || req.Header.Deadline <= 0 || req.Header.RequestID != m.Header.RequestID {
			t.Fatalf("request as received: %q %+v; reply id %d", req.Name, req.Header, m.Header.RequestID)
		}
	}
}

func (s suite) requestRouting(t *testing.T) {
	cli, a, b := s.start(t, "cli"), s.start(t, "a"), s.start(t, "b")
	for range 5 {
		for _, srv := range []*node{a, b} {
			m, err := request(t, cli, srv.ep, "x", wait)
			if err != nil {
				t.Fatal(err)
			}
			if want := srv.h.name + ":x"; string(m.Payload) != want {
				t.Fatalf("request to %s answered %q", srv.h.name, m.Payload)
			}
		}
	}
}

// manyInFlight proves requests are not lockstep: the replier answers only
// once it holds all of them, in reverse order.
func (s suite) manyInFlight(t *testing.T) {
	cli, srv := s.start(t, "cli"), s.start(t, "srv")
	const n = 32
	type held struct {
		msg *transport.Message
		rw  transport.ReplyWriter
	}
	var mu sync.Mutex
	var all []held
	srv.h.setOnRequest(func(msg *transport.Message, rw transport.ReplyWriter) {
		mu.Lock()
		defer mu.Unlock()
		all = append(all, held{msg, rw})
		if len(all) == n {
			for i := n - 1; i >= 0; i-- {
				_ = all[i].rw.Reply(reply(all[i].msg, all[i].msg.Payload))
			}
		}
	})
	errs := make(chan error, n)
	for i := range n {
		go func() {
			m, err := request(t, cli, srv.ep, fmt.Sprint(i), wait)
			if err == nil && string(m.Payload) != fmt.Sprint(i) {
				err = fmt.Errorf("request %d got reply %q", i, m.Payload)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// expectCancel waits for a cancel with id at the replier.
func expectCancel(t *testing.T, srv *node, id uint64) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case m := <-srv.h.Requests:
			if m.Header.Kind == transport.KindCancel && m.Header.RequestID == id {
				return
			}
		case <-timeout:
			t.Fatalf("replier never saw a cancel for request %d", id)
		}
	}
}

func silent(srv *node) { srv.h.setOnRequest(func(*transport.Message, transport.ReplyWriter) {}) }

func (s suite) requestDeadline(t *testing.T) {
	cli, srv := s.start(t, "cli"), s.start(t, "srv")
	silent(srv)
	start := time.Now()
	_, err := request(t, cli, srv.ep, "x", 100*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 100*time.Millisecond+wait/4 {
		t.Fatalf("request returned %v after a 100ms deadline", el)
	}
	req := <-srv.h.Requests
	expectCancel(t, srv, req.Header.RequestID)
}

func (s suite) requestCancel(t *testing.T) {
	cli, srv := s.start(t, "cli"), s.start(t, "srv")
	silent(srv)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := cli.tr.Request(ctx, srv.ep.Router, &transport.Message{Name: "svc",
			Header: transport.Header{Kind: transport.KindRequest, Sender: "cli"}})
		errc <- err
	}()
	req := <-srv.h.Requests
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	expectCancel(t, srv, req.Header.RequestID)
}

func (s suite) replierLost(t *testing.T) {
	cli, srv := s.start(t, "cli"), s.start(t, "srv")
	silent(srv)
	errc := make(chan error, 1)
	go func() { _, err := request(t, cli, srv.ep, "x", wait); errc <- err }()
	<-srv.h.Requests
	_ = srv.tr.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, transport.ErrPeerLost) {
			t.Fatalf("err = %v, want ErrPeerLost", err)
		}
	case <-time.After(wait):
		t.Fatal("request still waiting after its replier closed")
	}
}

func (s suite) disconnect(t *testing.T) {
	cli, srv := s.start(t, "cli"), s.start(t, "srv")
	silent(srv)
	errc := make(chan error, 1)
	go func() { _, err := request(t, cli, srv.ep, "x", wait); errc <- err }()
	<-srv.h.Requests
	cli.tr.Disconnect(srv.ep.Router)
	if err := <-errc; !errors.Is(err, transport.ErrPeerLost) {
		t.Fatalf("err = %v, want ErrPeerLost", err)
	}
	srv.h.setOnRequest(nil)
	if _, err := request(t, cli, srv.ep, "again", wait); err != nil {
		t.Fatalf("request after Disconnect: %v", err)
	}
}

func (s suite) unknownRouter(t *testing.T) {
	cli, gone := s.start(t, "cli"), s.start(t, "gone")
	_ = gone.tr.Close()
	start := time.Now()
	_, err := request(t, cli, gone.ep, "x", wait)
	if err == nil {
		t.Fatal("request to a closed router succeeded")
	}
	if time.Since(start) > wait/2 {
		t.Fatalf("request to a closed router took %v", time.Since(start))
	}
}

func (s suite) close(t *testing.T) {
	cli, srv := s.start(t, "cli"), s.start(t, "srv")
	silent(srv)
	errc := make(chan error, 1)
	go func() { _, err := request(t, cli, srv.ep, "x", wait); errc <- err }()
	<-srv.h.Requests
	if err := cli.tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("in-flight request: err = %v, want ErrClosed", err)
	}
	if err := cli.tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := request(t, cli, srv.ep, "x", wait); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Request after Close: %v", err)
	}
	if err := publishNow(cli.tr, pubMsg("t", "cli", 1, nil)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if err := cli.tr.Subscribe(srv.ep.Pub, "t", transport.SubscribeOptions{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// publishNow publishes msg without waiting for back-pressure.
func publishNow(tr transport.Transport, msg *transport.Message) error {
	_, err := tr.Publish(context.Background(), msg, transport.PublishOptions{})
	return err
}
