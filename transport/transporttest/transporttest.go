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
)

// wait bounds every wait in the suite; it is long because CI machines are
// slow and shared, and only a broken transport ever reaches it.
const wait = 10 * time.Second

// Run runs the conformance suite. newTransport returns a fresh transport
// that has not been listened on; the suite listens and closes it.
func Run(t *testing.T, newTransport func(t testing.TB) transport.Transport) {
	s := suite{newT: newTransport}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"PubSubOrder", s.pubSubOrder},
		{"HeaderRoundTrip", s.headerRoundTrip},
		{"PublishMessageReused", s.publishMessageReused},
		{"PayloadNotKept", s.payloadNotKept},
		{"TopicNotPrefix", s.topicNotPrefix},
		{"MultiPublisher", s.multiPublisher},
		{"MultiSubscriber", s.multiSubscriber},
		{"Unsubscribe", s.unsubscribe},
		{"StalledSubscriber", s.stalledSubscriber},
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
}

// handler records what a transport delivers. onRequest, when set, decides
// how requests are answered; the default echoes.
type handler struct {
	name string
	pubs chan *transport.Message
	reqs chan *transport.Message // requests and cancels, in arrival order
	lost chan string

	mu        sync.Mutex
	block     chan struct{} // when set, HandlePublish blocks on it: a stalled consumer
	onRequest func(msg *transport.Message, rw transport.ReplyWriter)
}

func (h *handler) setOnRequest(f func(msg *transport.Message, rw transport.ReplyWriter)) {
	h.mu.Lock()
	h.onRequest = f
	h.mu.Unlock()
}

func newHandler(name string) *handler {
	return &handler{
		name: name,
		pubs: make(chan *transport.Message, 1<<16),
		reqs: make(chan *transport.Message, 1<<12),
		lost: make(chan string, 64),
	}
}

func (h *handler) HandlePublish(msg *transport.Message) {
	h.mu.Lock()
	block := h.block
	h.mu.Unlock()
	if block != nil {
		<-block
	}
	m := *msg // msg is valid only during the call
	select {
	case h.pubs <- &m:
	default:
		panic("transporttest: handler buffer overflow; the test publishes too much")
	}
}

func (h *handler) HandleRequest(msg *transport.Message, rw transport.ReplyWriter) {
	select {
	case h.reqs <- msg:
	default:
	}
	if msg.Header.Kind == transport.KindCancel {
		return
	}
	h.mu.Lock()
	onRequest := h.onRequest
	h.mu.Unlock()
	if onRequest != nil {
		onRequest(msg, rw)
		return
	}
	_ = rw.Reply(reply(msg, []byte(h.name+":"+string(msg.Payload))))
}

func (h *handler) HandlePeerLost(addr string, err error) {
	select {
	case h.lost <- addr:
	default:
	}
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
	tr := s.newT(t)
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
		case m := <-sub.h.pubs:
			if m.Name == topic && m.Header.Seq == 0 {
				return
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
		m := next(t, sub.h.pubs)
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
	got := next(t, sub.h.pubs)
	if got.Name != want.Name || got.Header != want.Header || !bytes.Equal(got.Payload, want.Payload) {
		t.Fatalf("got %q %+v (%d bytes), want %q %+v (%d bytes)", got.Name, got.Header, len(got.Payload),
			want.Name, want.Header, len(want.Payload))
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
		m := next(t, sub.h.pubs)
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
			if m := next(t, sub.h.pubs); len(m.Payload) != size || !same(m.Payload, byte(i)) {
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
	if m := next(t, sub.h.pubs); m.Name != "a" || m.Header.Seq != 99 {
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
		m := next(t, sub.h.pubs)
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
			if m := next(t, sub.h.pubs); m.Header.Seq != i {
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
			m := next(t, sub.h.pubs)
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
	pub, slow, fast := s.start(t, "pub"), s.start(t, "slow"), s.start(t, "fast")
	subscribe(t, pub, slow, "t")
	subscribe(t, pub, fast, "t")
	block := make(chan struct{})
	slow.h.mu.Lock()
	slow.h.block = block
	slow.h.mu.Unlock()
	defer close(block)

	// Enough data to fill any socket buffers between pub and slow, paced by
	// the fast subscriber so that only the stalled one can fall behind.
	payload := make([]byte, 4096)
	const batches, per = 100, 100
	seq := uint64(0)
	for range batches {
		for range per {
			seq++
			if err := publishNow(pub.tr, pubMsg("t", "pub", seq, payload)); err != nil {
				t.Fatal(err)
			}
		}
		for want := seq - per + 1; want <= seq; want++ {
			if m := next(t, fast.h.pubs); m.Header.Seq != want {
				t.Fatalf("fast subscriber: seq %d, want %d", m.Header.Seq, want)
			}
		}
	}
	if d := pub.tr.Stats().SendDropped; d == 0 {
		t.Fatalf("stalled subscriber: SendDropped = 0 after %d messages of %d B", seq, len(payload))
	}
}

func (s suite) publisherLost(t *testing.T) {
	pub, sub := s.start(t, "pub"), s.start(t, "sub")
	subscribe(t, pub, sub, "t")
	_ = pub.tr.Close()
	select {
	case addr := <-sub.h.lost:
		if addr != pub.ep.Pub {
			t.Fatalf("lost %q, want %q", addr, pub.ep.Pub)
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
		req := <-srv.h.reqs
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
		case m := <-srv.h.reqs:
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
	req := <-srv.h.reqs
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
	req := <-srv.h.reqs
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
	<-srv.h.reqs
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
	<-srv.h.reqs
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
	<-srv.h.reqs
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
