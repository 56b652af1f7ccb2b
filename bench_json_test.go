package colugo_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// The default codec (JSON) measured as most users run it, against colugo's
// own Raw codec in the same run and with the same rigs as BenchmarkPubSub
// and BenchmarkRequest: "x-raw" is JSON's rate (or latency) over Raw's.

// pose64 is a small message that encodes to about 64 bytes of JSON.
type pose64 struct {
	X, Y, Z float64
	Seq     uint64
	Frame   string
}

func newPose64(i int) pose64 {
	return pose64{X: 12.5, Y: -3.75, Z: 0.0625, Seq: 1_000_000 + uint64(i), Frame: "base_link"}
}

// stdJSON is the JSON codec as it was: encoding/json alone. The benchmarks
// run it too, so that the gain shows in the same run.
type stdJSON struct{}

func (stdJSON) Name() string                       { return "json" }
func (stdJSON) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (stdJSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// BenchmarkPubSubJSON64 streams pose64 values with the default codec
// between two nodes, with BenchmarkPubSub's flow control (a window of
// messages in flight), then 64 B Raw messages the same way, then pose64
// values with encoding/json alone.
func BenchmarkPubSubJSON64(b *testing.B) {
	b.ReportAllocs()
	rate := jsonPubSub(b, b.N, true, codec.JSON{})
	raw := colugoPubSub(b, 64, b.N, false)
	std := jsonPubSub(b, b.N, false, stdJSON{})
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(raw, "raw-msgs/s")
	b.ReportMetric(rate/raw, "x-raw")
	b.ReportMetric(std/raw, "stdjson-x-raw")
}

// jsonPubSub is colugoPubSub for pose64 with a JSON codec.
func jsonPubSub(b *testing.B, n int, timed bool, c codec.Codec) float64 {
	b.StopTimer()
	pn, sn := zmqPair(b)
	ctx := b.Context()
	pub, err := colugo.NewPublisher[pose64](pn, "bench/json", colugo.WithCodec(c))
	if err != nil {
		b.Fatal(err)
	}
	ch, err := colugo.Subscribe[pose64](ctx, sn, "bench/json", colugo.WithCodec(c),
		colugo.WithBuffer(4*window), colugo.WithDropPolicy(colugo.DropNewest))
	if err != nil {
		b.Fatal(err)
	}
	warmUp(b, func() { _ = pub.Publish(ctx, newPose64(0)) }, func() bool { return len(ch) > 0 })
	for len(ch) > 0 {
		<-ch
	}
	before := sn.Stats().Topics["bench/json"]
	var got atomic.Int64
	var bad atomic.Int64
	credits := make(chan struct{}, window)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := range ch {
			<-credits
			if v.Frame != "base_link" {
				bad.Add(1)
			}
			if got.Add(1) == int64(n) {
				return
			}
		}
	}()
	if timed {
		b.StartTimer()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		credits <- struct{}{}
		if err := pub.Publish(ctx, newPose64(i)); err != nil {
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
	if st := sn.Stats().Topics["bench/json"]; st.Dropped > before.Dropped || st.Gaps > before.Gaps {
		b.Fatalf("lost messages: %+v", st)
	}
	if bad.Load() != 0 {
		b.Fatalf("%d messages decoded wrong", bad.Load())
	}
	return float64(n) / el.Seconds()
}

// BenchmarkRequestJSON64 makes pose64 echo requests with the default codec,
// then 64 B Raw echo requests, then pose64 echo requests with encoding/json
// alone, between two nodes.
func BenchmarkRequestJSON64(b *testing.B) {
	srvNode, cliNode := zmqPair(b)
	ctx := b.Context()
	if _, err := colugo.Serve(srvNode, "bench/json-echo", func(_ context.Context, p pose64) (pose64, error) { return p, nil }); err != nil {
		b.Fatal(err)
	}
	std := colugo.WithCodec(stdJSON{})
	if _, err := colugo.Serve(srvNode, "bench/std-echo", func(_ context.Context, p pose64) (pose64, error) { return p, nil }, std); err != nil {
		b.Fatal(err)
	}
	raw := colugo.WithCodec(codec.Raw{})
	if _, err := colugo.Serve(srvNode, "bench/raw-echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil }, raw); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64)
	if _, err := colugo.Request[pose64, pose64](ctx, cliNode, "bench/json-echo", newPose64(0)); err != nil {
		b.Fatal(err)
	}
	if _, err := colugo.Request[[]byte, []byte](ctx, cliNode, "bench/raw-echo", payload, raw); err != nil {
		b.Fatal(err)
	}
	if _, err := colugo.Request[pose64, pose64](ctx, cliNode, "bench/std-echo", newPose64(0), std); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		in := newPose64(i)
		out, err := colugo.Request[pose64, pose64](ctx, cliNode, "bench/json-echo", in)
		if err != nil {
			b.Fatal(err)
		}
		if out != in {
			b.Fatalf("echo: got %+v, want %+v", out, in)
		}
		lat = append(lat, time.Since(t0))
	}
	perOp := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	p50, _ := percentiles(lat)
	lat = lat[:0]
	rawStart := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := colugo.Request[[]byte, []byte](ctx, cliNode, "bench/raw-echo", payload, raw); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	rawPerOp := time.Since(rawStart) / time.Duration(b.N)
	rawP50, _ := percentiles(lat)
	lat = lat[:0]
	stdStart := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := colugo.Request[pose64, pose64](ctx, cliNode, "bench/std-echo", newPose64(i), std); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	stdPerOp := time.Since(stdStart) / time.Duration(b.N)
	stdP50, _ := percentiles(lat)
	b.ReportMetric(us(p50), "p50-µs")
	b.ReportMetric(us(rawP50), "raw-p50-µs")
	b.ReportMetric(float64(rawPerOp), "raw-ns/op")
	b.ReportMetric(float64(perOp)/float64(rawPerOp), "x-raw")
	b.ReportMetric(us(p50)/us(rawP50), "p50-x-raw")
	b.ReportMetric(float64(stdPerOp)/float64(rawPerOp), "stdjson-x-raw")
	b.ReportMetric(us(stdP50)/us(rawP50), "stdjson-p50-x-raw")
}
