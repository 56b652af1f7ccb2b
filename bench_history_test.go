package colugo_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// BenchmarkPublishHistory measures what a publisher's history costs: the
// same loss-free 64 B stream (zmq transport, two nodes, the window of
// BenchmarkPubSub) with no history, WithHistory(1) and WithHistory(1000)
// on the publisher; the subscriber asks for none. ns/op and allocs/op are
// per message, both nodes together.
func BenchmarkPublishHistory(b *testing.B) {
	for _, c := range []struct {
		name  string
		depth int
	}{{"off", 0}, {"history-1", 1}, {"history-1000", 1000}} {
		b.Run(c.name+"/64B", func(b *testing.B) {
			b.ReportAllocs()
			rate := historyStream(b, 64, b.N, c.depth)
			b.ReportMetric(rate, "msgs/s")
		})
	}
}

// historyStream streams n Raw messages of size bytes from a publisher
// keeping depth messages (0: none) and returns the loss-free rate; only
// the stream is timed.
func historyStream(b *testing.B, size, n, depth int) float64 {
	b.StopTimer()
	pn, sn := zmqPair(b)
	ctx := b.Context()
	opts := []colugo.PublisherOption{colugo.WithCodec(codec.Raw{})}
	if depth > 0 {
		opts = append(opts, colugo.WithHistory(depth))
	}
	pub, err := colugo.NewPublisher[[]byte](pn, "bench/h", opts...)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := colugo.Subscribe[[]byte](ctx, sn, "bench/h", colugo.WithCodec(codec.Raw{}),
		colugo.WithBuffer(4*window), colugo.WithDropPolicy(colugo.DropNewest))
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, size)
	warmUp(b, func() { _ = pub.Publish(ctx, payload) }, func() bool { return len(ch) > 0 })
	for len(ch) > 0 {
		<-ch
	}
	before := sn.Stats().Topics["bench/h"]
	var got atomic.Int64
	credits := make(chan struct{}, window)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
			<-credits
			if got.Add(1) == int64(n) {
				return
			}
		}
	}()
	b.StartTimer()
	start := time.Now()
	for range n {
		credits <- struct{}{}
		if err := pub.Publish(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Fatalf("received %d of %d", got.Load(), n)
	}
	el := time.Since(start)
	b.StopTimer()
	if st := sn.Stats().Topics["bench/h"]; st.Dropped > before.Dropped || st.Gaps > before.Gaps {
		b.Fatalf("lost messages: %+v", st)
	}
	if depth > 0 {
		if d := publishedDepth(sn, pn.ID(), "bench/h"); d != depth {
			b.Fatalf("the publisher advertises history %d, want %d: the option did nothing", d, depth)
		}
	}
	return float64(n) / el.Seconds()
}

// publishedDepth is the history depth node id advertises for topic, as
// n sees it in $describe.
func publishedDepth(n *colugo.Node, id, topic string) int {
	for _, p := range n.Peers() {
		if p.ID != id {
			continue
		}
		for _, t := range p.Topics {
			if t.Name == topic {
				return t.History
			}
		}
	}
	return -1
}

// BenchmarkLateJoiner measures a late joiner's wait for the latched value:
// one op is Subscribe(WithLastValue) on a topic whose publisher
// (WithHistory(1)) published its one value before, up to the value's
// arrival. The subscribing node already knows the publisher (discovery is
// not in the figure; bench/cmd/history measures it with it): on another
// node (zmq, its Unix socket), and on the publisher's own node.
func BenchmarkLateJoiner(b *testing.B) {
	for _, where := range []string{"other-node", "same-node"} {
		b.Run(where, func(b *testing.B) {
			pn, sn := zmqPair(b)
			if where == "same-node" {
				sn = pn
			}
			ctx := b.Context()
			raw := colugo.WithCodec(codec.Raw{})
			pub, err := colugo.NewPublisher[[]byte](pn, "bench/latched", raw, colugo.WithHistory(1))
			if err != nil {
				b.Fatal(err)
			}
			value := []byte("the latched value, 64 bytes long ...............................")
			if err := pub.Publish(ctx, value); err != nil {
				b.Fatal(err)
			}
			join := func() (time.Duration, colugo.Received[[]byte]) {
				sctx, cancel := context.WithCancel(ctx)
				defer cancel()
				t0 := time.Now()
				ch, err := colugo.SubscribeReceived[[]byte](sctx, sn, "bench/latched", raw, colugo.WithLastValue())
				if err != nil {
					b.Fatal(err)
				}
				var r colugo.Received[[]byte]
				select {
				case r = <-ch:
				case <-time.After(10 * time.Second):
					b.Fatal("no latched value within 10 s")
				}
				d := time.Since(t0)
				cancel()
				for range ch { // closed once the subscription is gone
				}
				return d, r
			}
			// The first join waits for discovery; the rest find the
			// publisher known.
			if _, r := join(); !r.Replayed || string(r.Value) != string(value) {
				b.Fatalf("first late joiner got %q (replayed %v)", r.Value, r.Replayed)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				d, r := join()
				if !r.Replayed {
					b.Fatal("the value was not replayed")
				}
				lat = append(lat, d)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
			b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
		})
	}
}
