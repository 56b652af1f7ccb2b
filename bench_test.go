package colugo_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/transport/zmq"
)

// Benchmarks compare colugo over TCP (zmq transport, 127.0.0.1) with raw
// zmq4 sockets doing the same work in the same process and report the
// ratio: this machine is shared and noisy, so only same-run ratios mean much.

// window bounds messages in flight in throughput runs, so that both sides
// measure sustained, loss-free throughput rather than queue growth.
const window = 512

// zmqPair returns two connected nodes on real sockets with a private
// host-local registry.
func zmqPair(b *testing.B, opts ...colugo.NodeOption) (pubNode, subNode *colugo.Node) {
	b.Helper()
	dir := b.TempDir()
	mk := func(name string) *colugo.Node {
		tr, err := zmq.New()
		if err != nil {
			b.Fatal(err)
		}
		n, err := colugo.NewNode(name, append([]colugo.NodeOption{colugo.WithTransport(tr),
			colugo.WithDiscovery(local.New(local.WithDir(dir)))}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = n.Close() })
		return n
	}
	return mk("bench-pub"), mk("bench-sub")
}

// smokeN is the fewest iterations whose comparisons (ratios against zmq4
// or plaintext) a benchmark reports: the CI run's -benchtime 1x is a smoke
// run, and a one-message ratio would read like a measurement.
const smokeN = 100

// smoke reports whether b is a smoke run, too short to compare.
func smoke(b *testing.B) bool { return b.N < smokeN }

func BenchmarkPubSub(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			rate := colugoPubSub(b, size, b.N, true)
			b.ReportMetric(rate, "msgs/s")
			b.ReportMetric(rate*float64(size)/1e6, "MB/s")
			if smoke(b) {
				return
			}
			raw := rawPubSub(b, size, b.N)
			b.ReportMetric(raw, "zmq4-msgs/s")
			b.ReportMetric(rate/raw, "ratio-vs-zmq4")
		})
	}
}

// BenchmarkPubSubSealed measures the cost of a network key (WithKey): the
// same stream sealed and plain, in the same run.
func BenchmarkPubSubSealed(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			b.Setenv(colugo.EnvKey, "")
			sealed := colugoPubSub(b, size, b.N, true, colugo.WithKey([]byte("benchmark key, 32 bytes long!!!!")))
			b.ReportMetric(sealed, "msgs/s")
			if smoke(b) {
				return
			}
			plain := colugoPubSub(b, size, b.N, false)
			b.ReportMetric(plain, "plain-msgs/s")
			b.ReportMetric(sealed/plain, "ratio-vs-plain")
		})
	}
}

// colugoPubSub streams n Raw messages of size bytes between two nodes and
// returns the loss-free rate. timed says whether the benchmark timer runs.
func colugoPubSub(b *testing.B, size, n int, timed bool, opts ...colugo.NodeOption) float64 {
	b.StopTimer()
	payload := make([]byte, size)
	pn, sn := zmqPair(b, opts...)
	ctx := b.Context()
	pub, err := colugo.NewPublisher[[]byte](pn, "bench/t", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		b.Fatal(err)
	}
	ch, err := colugo.Subscribe[[]byte](ctx, sn, "bench/t", colugo.WithCodec(codec.Raw{}),
		colugo.WithBuffer(4*window), colugo.WithDropPolicy(colugo.DropNewest))
	if err != nil {
		b.Fatal(err)
	}
	warmUp(b, func() { _ = pub.Publish(ctx, payload) }, func() bool { return len(ch) > 0 })
	for len(ch) > 0 {
		<-ch
	}
	before := sn.Stats().Topics["bench/t"]
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
	if timed {
		b.StartTimer()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
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
	if st := sn.Stats().Topics["bench/t"]; st.Dropped > before.Dropped || st.Gaps > before.Gaps {
		b.Fatalf("lost messages: %+v", st)
	}
	return float64(n) / el.Seconds()
}

// warmUp repeats send until arrived reports true: subscriptions start
// asynchronously (discovery, connection, subscription message).
func warmUp(b *testing.B, send func(), arrived func() bool) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !arrived() {
		if time.Now().After(deadline) {
			b.Fatal("subscription never became active")
		}
		send()
		time.Sleep(time.Millisecond)
	}
}

// rawPubSub measures zmq4 PUB→SUB sockets with the same frames and window.
func rawPubSub(b *testing.B, size, n int) float64 {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := zmq4.NewPub(ctx)
	defer pub.Close()
	if err := pub.Listen("tcp://127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	sub := zmq4.NewSub(ctx)
	defer sub.Close()
	if err := sub.Dial("tcp://" + pub.Addr().String()); err != nil {
		b.Fatal(err)
	}
	if err := sub.SetOption(zmq4.OptionSubscribe, "bench/t\x00"); err != nil {
		b.Fatal(err)
	}
	topic, hdr, payload := []byte("bench/t\x00"), make([]byte, 40), make([]byte, size)
	var got atomic.Int64
	credits := make(chan struct{}, window)
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := sub.Recv()
			if err != nil {
				return
			}
			if len(m.Frames) == 1 { // warm-up
				select {
				case <-first:
				default:
					close(first)
				}
				continue
			}
			<-credits
			if got.Add(1) == int64(n) {
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for warm := false; !warm; {
		_ = pub.Send(zmq4.NewMsg([]byte("bench/t\x00")))
		select {
		case <-first:
			warm = true
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatal("raw zmq4 subscription never became active")
		}
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		credits <- struct{}{}
		// PUB keeps the slices it is given: fresh frames per message.
		if err := pub.SendMulti(zmq4.NewMsgFrom(topic, slices.Clone(hdr), slices.Clone(payload))); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Fatalf("raw zmq4: received %d of %d", got.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds()
}

func BenchmarkRequest(b *testing.B) {
	b.Run("64B", func(b *testing.B) {
		srvNode, cliNode := zmqPair(b)
		ctx := b.Context()
		if _, err := colugo.Serve(srvNode, "bench/echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil },
			colugo.WithCodec(codec.Raw{})); err != nil {
			b.Fatal(err)
		}
		payload := make([]byte, 64)
		raw := colugo.WithCodec(codec.Raw{})
		if _, err := colugo.Request[[]byte, []byte](ctx, cliNode, "bench/echo", payload, raw); err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if _, err := colugo.Request[[]byte, []byte](ctx, cliNode, "bench/echo", payload, raw); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		p50, p99 := percentiles(lat)
		b.ReportMetric(us(p50), "p50-µs")
		b.ReportMetric(us(p99), "p99-µs")
		if smoke(b) {
			return
		}
		rp50, rp99 := rawRequest(b, b.N)
		b.ReportMetric(us(rp50), "zmq4-p50-µs")
		b.ReportMetric(us(rp99), "zmq4-p99-µs")
		b.ReportMetric(us(p50)/us(rp50), "p50-ratio-vs-zmq4")
	})
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// rawRequest measures zmq4 DEALER→ROUTER echo round trips.
func rawRequest(b *testing.B, n int) (p50, p99 time.Duration) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	router := zmq4.NewRouter(ctx, zmq4.WithID(zmq4.SocketIdentity("router")))
	defer router.Close()
	if err := router.Listen("tcp://127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	dealer := zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity("dealer")))
	defer dealer.Close()
	if err := dealer.Dial("tcp://" + router.Addr().String()); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := router.Recv()
			if err != nil {
				return
			}
			if err := router.SendMulti(m); err != nil {
				return
			}
		}
	}()
	defer func() { _ = router.Close(); <-done }()
	name, hdr, payload := []byte("bench/echo\x00"), make([]byte, 40), make([]byte, 64)
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n+1; i++ {
		t0 := time.Now()
		if err := dealer.SendMulti(zmq4.NewMsgFrom(name, hdr, payload)); err != nil {
			b.Fatal(err)
		}
		if _, err := dealer.Recv(); err != nil {
			b.Fatal(err)
		}
		if i > 0 { // the first includes connection set-up
			lat = append(lat, time.Since(t0))
		}
	}
	return percentiles(lat)
}
