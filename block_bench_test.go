package colugo_test

import (
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// BenchmarkPublishLocalBlockStalled: Publish on a node that has a stalled
// Block(200ms) subscription of its own (a recorder behind a slow disk), to
// a subscriber on another node. Publish must not wait for the stalled one:
// msgs/s is the Publish rate, remote-msgs/s what reached the other node.
func BenchmarkPublishLocalBlockStalled(b *testing.B) {
	pn, sn := zmqPair(b)
	ctx := b.Context()
	raw := colugo.WithCodec(codec.Raw{})
	if _, err := colugo.Subscribe[[]byte](ctx, pn, "bench/t", raw, colugo.WithBuffer(1),
		colugo.WithDropPolicy(colugo.Block(200*time.Millisecond))); err != nil {
		b.Fatal(err)
	}
	ch, err := colugo.Subscribe[[]byte](ctx, sn, "bench/t", raw, colugo.WithBuffer(4096), colugo.WithDropPolicy(colugo.DropNewest))
	if err != nil {
		b.Fatal(err)
	}
	pub, err := colugo.NewPublisher[[]byte](pn, "bench/t", raw)
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.WaitSubscribers(ctx, 2); err != nil {
		b.Fatal(err)
	}
	received := make(chan int)
	go func() {
		n := 0
		for range ch {
			n++
		}
		received <- n
	}()
	payload := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		_ = pub.Publish(ctx, payload)
	}
	el := b.Elapsed()
	_ = sn.Close() // closes ch
	n := <-received
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(n)/el.Seconds(), "remote-msgs/s")
}
