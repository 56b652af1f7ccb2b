package zmq

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo/transport"
)

// countHandler counts publishes and wakes the publisher every 64 of them.
type countHandler struct {
	nopHandler
	n      atomic.Int64
	notify chan struct{}
}

func (h *countHandler) HandlePublish(*transport.Message) {
	if h.n.Add(1)%64 == 0 {
		select {
		case h.notify <- struct{}{}:
		default:
		}
	}
}

// echoHandler answers every request with its own payload.
type echoHandler struct{ nopHandler }

func (*echoHandler) HandleRequest(msg *transport.Message, rw transport.ReplyWriter) {
	if msg.Header.Kind == transport.KindCancel {
		return
	}
	r := transport.Message{Name: msg.Name, Header: transport.Header{
		Kind: transport.KindReply, Codec: msg.Header.Codec, RequestID: msg.Header.RequestID,
	}, Payload: msg.Payload}
	_ = rw.Reply(&r)
}

func benchPubSub(b *testing.B, size int) {
	benchPubSubOn(b, size, func(transport.Endpoint) {})
}

// benchPubSubOn is benchPubSub, with setup run on the publisher's
// endpoint before the subscriber connects.
func benchPubSubOn(b *testing.B, size int, setup func(transport.Endpoint), opts ...Option) {
	pub, ep := listen(b, &nopHandler{}, opts...)
	setup(ep)
	h := &countHandler{notify: make(chan struct{}, 1)}
	sub, _ := listen(b, h, opts...)
	if err := sub.Subscribe(pub.ep.Pub, "bench/topic", transport.SubscribeOptions{}); err != nil {
		b.Fatal(err)
	}
	msg := &transport.Message{Name: "bench/topic", Header: transport.Header{
		Kind: transport.KindPublish, Codec: "raw", Sender: "bench-node", Seq: 1,
	}, Payload: make([]byte, size)}
	// Publish until the subscription is live (the slow joiner).
	waitFor(b, func() bool { _ = publishNow(pub, msg); return h.n.Load() > 0 })
	// A window of messages in flight, so that nothing is dropped and the
	// subscriber's pace is measured. A batch counts in the send queue until
	// its write returns, which on a loaded machine can be after the
	// subscriber has handled it: the queue may then hold more than a
	// window, so a window is a quarter of the queue (with 768, runs on a
	// loaded machine dropped and stalled).
	// (The window was DefaultSendQueue/4 while that was 1024; the queue
	// is bounded by bytes first now, so the window stays 256 messages, and
	// a quarter of the byte bound for large ones.)
	window := int64(min(256, DefaultSendQueueBytes/4/max(size, 1)))
	base := h.n.Load()
	var sent int64
	b.ReportAllocs()
	b.SetBytes(int64(size))
	start := time.Now()
	// A lost connection (a heartbeat starved on a loaded machine) would
	// leave messages that never arrive: every wait is bounded.
	stall := func() {
		select {
		case <-h.notify:
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("stalled: %d sent, %d received, publisher %+v, subscriber %+v", sent, h.n.Load()-base, pub.Stats(), sub.Stats())
		}
	}
	for b.Loop() {
		for sent-(h.n.Load()-base) >= window {
			stall()
		}
		_ = publishNow(pub, msg)
		sent++
	}
	for h.n.Load()-base < sent {
		stall()
	}
	el := time.Since(start)
	b.ReportMetric(float64(sent)/el.Seconds(), "msgs/s")
	if d := pub.Stats().SendDropped; d != 0 {
		b.Fatalf("%d messages dropped", d)
	}
}

func BenchmarkPubSub64(b *testing.B)  { benchPubSub(b, 64) }
func BenchmarkPubSub1K(b *testing.B)  { benchPubSub(b, 1024) }
func BenchmarkPubSub64K(b *testing.B) { benchPubSub(b, 64<<10) }
func BenchmarkPubSub1M(b *testing.B)  { benchPubSub(b, 1<<20) }

func BenchmarkRequestRTT64(b *testing.B) {
	srv, _ := listen(b, &echoHandler{})
	cli, _ := listen(b, &nopHandler{})
	ctx := context.Background()
	msg := &transport.Message{Name: "bench/svc", Header: transport.Header{
		Kind: transport.KindRequest, Codec: "raw", Sender: "bench-node",
	}, Payload: make([]byte, 64)}
	if _, err := cli.Request(ctx, srv.ep.Router, msg); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := cli.Request(ctx, srv.ep.Router, msg); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t0))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRequestParallel measures requests in flight at once on one
// connection.
func BenchmarkRequestParallel(b *testing.B) {
	srv, _ := listen(b, &echoHandler{})
	cli, _ := listen(b, &nopHandler{})
	msg := &transport.Message{Name: "bench/svc", Header: transport.Header{
		Kind: transport.KindRequest, Codec: "raw", Sender: "bench-node",
	}, Payload: make([]byte, 64)}
	if _, err := cli.Request(context.Background(), srv.ep.Router, msg); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cli.Request(context.Background(), srv.ep.Router, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
