package zmq

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
)

// BenchmarkSeedPubSub64: 64-byte seed frames from a SeedPublisher to a
// SeedSubscribe over TCP, published as fast as Publish returns; what
// arrives is counted (a seed publisher drops for a full queue, as the
// node's does).
func BenchmarkSeedPubSub64(b *testing.B) {
	tr, _ := listen(b, &nopHandler{})
	pub, err := tr.SeedPublisher()
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	stop, err := tr.SeedSubscribe(seedAddr(pub.Port()), func([]byte) { got.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	testwait.Until(b, "the subscriber", func() bool { return pub.Subscribers() == 1 })
	payload := bytes.Repeat([]byte("x"), 64)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var dropped int
	for range b.N {
		_, d, err := pub.Publish(payload)
		if err != nil {
			b.Fatal(err)
		}
		dropped += d
	}
	want := int64(b.N - dropped)
	testwait.Until(b, "the messages", func() bool { return got.Load() >= want })
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(100*float64(got.Load())/float64(b.N), "delivered-%")
}

// BenchmarkSeedRequestRTT64: serial 64-byte SeedRequests to a SeedServe
// over TCP, each a [id8, "", body] round trip through a handler
// goroutine.
func BenchmarkSeedRequestRTT64(b *testing.B) {
	tr, _ := listen(b, &nopHandler{})
	srv, err := tr.SeedServe(seedEchoHandler, transport.SeedServeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	addr := seedAddr(srv.Port())
	payload := bytes.Repeat([]byte("x"), 64)
	if _, err := tr.SeedRequest(b.Context(), addr, payload); err != nil { // dial outside the timing
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := tr.SeedRequest(b.Context(), addr, payload); err != nil {
			b.Fatal(err)
		}
	}
}
