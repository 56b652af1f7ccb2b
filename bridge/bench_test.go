package bridge_test

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/transport/zmq"
)

// The benchmarks compare, in one process and one run, a bridged path
// (site a → its bridge → NATS → site b's bridge → site b) with NATS alone
// (a publisher and a subscriber connection, a client and a responder) and
// with plain colugo (two nodes of one site). Sites are real: zmq
// transport, host-local discovery in a directory of their own, so the two
// sites never see each other but through NATS; NATS is one embedded server
// on 127.0.0.1. All of it shares the machine's cores, so only ratios
// within one run mean much.
//
//	go test -run '^$' -bench PubSub -benchtime 20000x -count 5   # floods of b.N messages (20 MB: within the publisher's 64 MiB queue)
//	go test -run '^$' -bench 'Latency|Request' -benchtime 20000x -count 3

// benchPayload is the pub/sub payload size: the 1 KiB.
const benchPayload = 1024

// warmSeq marks the warm-up messages, which the meters do not count.
const warmSeq = ^uint64(0)

// stamp writes seq and the send time into p's first 16 bytes.
func stamp(p []byte, seq uint64) {
	binary.LittleEndian.PutUint64(p, seq)
	binary.LittleEndian.PutUint64(p[8:], uint64(time.Now().UnixNano()))
}

// meter counts what arrives, and its one-way latency (every 16th message;
// every one when paced), on one receiving goroutine.
type meter struct {
	want  uint64
	every uint64
	warm  chan struct{} // a warm-up message arrived
	each  chan struct{} // paced: a counted message arrived

	report func(*testing.B) // more metrics, at the end

	mu   sync.Mutex
	n    uint64
	last time.Time
	lats []time.Duration
}

func newMeter(want uint64, paced bool) *meter {
	m := &meter{want: want, every: 16, warm: make(chan struct{}, 1)}
	if paced {
		m.every, m.each = 1, make(chan struct{}, 1)
	}
	return m
}

func (m *meter) arrive(p []byte) {
	now := time.Now()
	if len(p) < 16 {
		return
	}
	seq := binary.LittleEndian.Uint64(p)
	if seq == warmSeq {
		select {
		case m.warm <- struct{}{}:
		default:
		}
		return
	}
	sent := time.Unix(0, int64(binary.LittleEndian.Uint64(p[8:])))
	m.mu.Lock()
	m.n++
	m.last = now
	if seq%m.every == 0 {
		m.lats = append(m.lats, now.Sub(sent))
	}
	m.mu.Unlock()
	if m.each != nil {
		m.each <- struct{}{}
	}
}

func (m *meter) snapshot() (uint64, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n, m.last
}

// warmUp publishes warm-up messages until one arrives.
func (m *meter) warmUp(b *testing.B, publish func([]byte) error) {
	b.Helper()
	p := make([]byte, benchPayload)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		stamp(p, warmSeq)
		_ = publish(p)
		select {
		case <-m.warm:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	b.Fatal("warm-up message never arrived")
}

func percentile(lats []time.Duration, q float64) time.Duration {
	if len(lats) == 0 {
		return 0
	}
	slices.Sort(lats)
	return lats[min(len(lats)-1, int(q*float64(len(lats))))]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// flood publishes b.N messages as fast as publish returns, then waits
// until all have arrived or none has for 1 s (30 s at most), and reports
// what arrived: msgs/s up to the last arrival, the one-way p50 and p99
// (queueing in the flood included) and the share delivered.
func flood(b *testing.B, m *meter, publish func([]byte) error) {
	b.Helper()
	p := make([]byte, benchPayload)
	m.warmUp(b, publish)
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for i := range b.N {
		stamp(p, uint64(i))
		_ = publish(p) // a failure is a message that will not arrive: counted as such
	}
	end := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		n, last := m.snapshot()
		if n >= uint64(b.N) || time.Now().After(end) || (!last.IsZero() && time.Since(last) > time.Second) ||
			(last.IsZero() && time.Since(start) > 5*time.Second) {
			break
		}
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	n, last := m.snapshot()
	m.mu.Lock()
	lats := slices.Clone(m.lats)
	m.mu.Unlock()
	if n > 0 {
		b.ReportMetric(float64(n)/last.Sub(start).Seconds(), "msgs/s")
		if cpu > 0 {
			// The whole process's (NATS's server included), per
			// message delivered: what the path costs, whatever its
			// stages' parallelism.
			b.ReportMetric(us(cpu)/float64(n), "cpu-µs/msg")
		}
	}
	b.ReportMetric(us(percentile(lats, 0.5)), "p50-µs")
	b.ReportMetric(us(percentile(lats, 0.99)), "p99-µs")
	b.ReportMetric(100*float64(n)/float64(b.N), "delivered-%")
	if m.report != nil {
		m.report(b)
	}
}

// paced publishes one message at a time, each once the one before has
// arrived, and reports the one-way p50 and p99 of an idle path.
func paced(b *testing.B, m *meter, publish func([]byte) error) {
	b.Helper()
	p := make([]byte, benchPayload)
	m.warmUp(b, publish)
	b.ResetTimer()
	for i := range b.N {
		stamp(p, uint64(i))
		if err := publish(p); err != nil {
			b.Fatal(err)
		}
		select {
		case <-m.each:
		case <-time.After(wait):
			b.Fatalf("message %d never arrived", i)
		}
	}
	b.StopTimer()
	m.mu.Lock()
	lats := slices.Clone(m.lats)
	m.mu.Unlock()
	b.ReportMetric(us(percentile(lats, 0.5)), "p50-µs")
	b.ReportMetric(us(percentile(lats, 0.99)), "p99-µs")
}

// benchSite returns a maker of nodes of one site: zmq transport (with
// opts), a host-local registry of its own.
func benchSite(tb testing.TB) func(name string, opts ...zmq.Option) *colugo.Node {
	dir := tb.TempDir()
	return func(name string, opts ...zmq.Option) *colugo.Node {
		tr, err := zmq.New(opts...)
		if err != nil {
			tb.Fatal(err)
		}
		n, err := colugo.NewNode(name, colugo.WithTransport(tr), colugo.WithDiscovery(local.New(local.WithDir(dir))))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = n.Close() })
		return n
	}
}

// benchBridge runs a bridge on a new node of site, until the benchmark
// ends.
func benchBridge(b *testing.B, site func(string, ...zmq.Option) *colugo.Node, cfg bridge.Config) *bridge.Bridge {
	return runBridgeOn(b, site("bridge-"+cfg.Site), cfg)
}

// bridgedPubSub sets up site a → NATS → site b for topic bench/data and
// returns the publish func (site a's publisher).
func bridgedPubSub(b *testing.B, srv *server.Server, m *meter) func([]byte) error {
	return bridgedRig(b, srv, m, nil, nil)
}

// bridgedJetStream is bridgedPubSub through a JetStream stream (on a
// server of its own, with JetStream): acked publishes from site a's
// spool, a durable consumer at site b.
func bridgedJetStream(b *testing.B, _ *server.Server, m *meter) func([]byte) error {
	return bridgedRig(b, natsServerJS(b), m, &bridge.JetStream{MaxBytes: 1 << 30}, &bridge.JetStream{})
}

func bridgedRig(b *testing.B, srv *server.Server, m *meter, exportJS, importJS *bridge.JetStream) func([]byte) error {
	siteA, siteB := benchSite(b), benchSite(b)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "bench/data", JetStream: exportJS}}
	ba := benchBridge(b, siteA, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "bench/data", JetStream: importJS}}
	bb := benchBridge(b, siteB, cb)
	m.report = func(b *testing.B) {
		// Where the losses were: site a's bridge's local queue (oldest
		// dropped), NATS (slow consumer), site b's local publish.
		ex, im := ba.Stats().Export.Drops, bb.Stats().Import.Drops
		b.ReportMetric(float64(ex.Queue+ex.Link), "drops-export")
		b.ReportMetric(float64(im.Limit+im.Failed), "drops-import")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	subNode := siteB("sub")
	ch, err := colugo.Subscribe[[]byte](ctx, subNode, "bench/data", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		b.Fatal(err)
	}
	wg.Go(func() {
		for p := range ch {
			m.arrive(p)
		}
	})
	pub, err := colugo.NewPublisher[[]byte](siteA("pub"), "bench/data", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		b.Fatal(err)
	}
	return func(p []byte) error { return pub.Publish(ctx, p) }
}

// natsPubSub: a NATS publisher and a subscriber connection, defaults.
func natsPubSub(b *testing.B, srv *server.Server, m *meter) func([]byte) error {
	sub, pub := natsClient(b, srv), natsClient(b, srv)
	if _, err := sub.Subscribe("direct.data", func(msg *nats.Msg) { m.arrive(msg.Data) }); err != nil {
		b.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	return func(p []byte) error { return pub.Publish("direct.data", p) }
}

// colugoPubSub: two nodes of one site.
func colugoPubSub(b *testing.B, _ *server.Server, m *meter) func([]byte) error {
	site := benchSite(b)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	ch, err := colugo.Subscribe[[]byte](ctx, site("sub"), "bench/data", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		b.Fatal(err)
	}
	wg.Go(func() {
		for p := range ch {
			m.arrive(p)
		}
	})
	pub, err := colugo.NewPublisher[[]byte](site("pub"), "bench/data", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		b.Fatal(err)
	}
	return func(p []byte) error { return pub.Publish(ctx, p) }
}

// exportHalf: site a → its bridge → NATS → a NATS subscriber: the first
// half of the bridged path, the part that runs on site a's host.
func exportHalf(b *testing.B, srv *server.Server, m *meter) func([]byte) error {
	site := benchSite(b)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "bench/data"}}
	benchBridge(b, site, ca)
	sub := natsClient(b, srv)
	if _, err := sub.Subscribe("colugo.t.bench.data", func(msg *nats.Msg) { m.arrive(msg.Data) }); err != nil {
		b.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	pub, err := colugo.NewPublisher[[]byte](site("pub"), "bench/data", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		b.Fatal(err)
	}
	return func(p []byte) error { return pub.Publish(ctx, p) }
}

// importHalf: a NATS publisher (with a bridge's headers) → NATS → site
// b's bridge → site b: the second half, on site b's host.
func importHalf(b *testing.B, srv *server.Server, m *meter) func([]byte) error {
	site := benchSite(b)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "bench/data"}}
	benchBridge(b, site, cb)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	ch, err := colugo.Subscribe[[]byte](ctx, site("sub"), "bench/data", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		b.Fatal(err)
	}
	wg.Go(func() {
		for p := range ch {
			m.arrive(p)
		}
	})
	pub := natsClient(b, srv)
	h := nats.Header{"Colugo-Codec": {"raw"}, "Colugo-Origin": {"a"}, "Colugo-Bridge": {"ba"}, "Colugo-Sender": {"sa"}}
	return func(p []byte) error {
		return pub.PublishMsg(&nats.Msg{Subject: "colugo.t.bench.data", Header: h, Data: p})
	}
}

var pubSubRigs = []struct {
	name string
	rig  func(*testing.B, *server.Server, *meter) func([]byte) error
}{{"bridged", bridgedPubSub}, {"nats", natsPubSub}, {"colugo", colugoPubSub}, {"export-half", exportHalf}, {"import-half", importHalf},
	{"bridged-jetstream", bridgedJetStream}}

// BenchmarkPubSub1KiB: b.N × 1 KiB published as fast as Publish returns;
// what arrives is counted.
func BenchmarkPubSub1KiB(b *testing.B) {
	for _, r := range pubSubRigs {
		b.Run(r.name, func(b *testing.B) {
			srv := natsServer(b, 0)
			m := newMeter(uint64(b.N), false)
			flood(b, m, r.rig(b, srv, m))
		})
	}
}

// BenchmarkLatency1KiB: one 1 KiB message at a time on an idle path.
func BenchmarkLatency1KiB(b *testing.B) {
	for _, r := range pubSubRigs {
		b.Run(r.name, func(b *testing.B) {
			srv := natsServer(b, 0)
			m := newMeter(uint64(b.N), true)
			paced(b, m, r.rig(b, srv, m))
		})
	}
}

// BenchmarkRequest64B: serial request round trips of 64 B: from site b
// to a service of site a through the bridges, NATS's own, and colugo's
// between two nodes of one site.
func BenchmarkRequest64B(b *testing.B) {
	echo := func(_ context.Context, p []byte) ([]byte, error) { return p, nil }
	raw := colugo.WithCodec(codec.Raw{})
	colugoCall := func(b *testing.B, cli *colugo.Node) func([]byte) ([]byte, error) {
		wctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := cli.WaitServers(wctx, "bench/echo", 1); err != nil {
			b.Fatal(err)
		}
		return func(p []byte) ([]byte, error) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return colugo.Request[[]byte, []byte](ctx, cli, "bench/echo", p, raw)
		}
	}
	rigs := []struct {
		name string
		rig  func(*testing.B, *server.Server) func([]byte) ([]byte, error)
	}{
		{"bridged", func(b *testing.B, srv *server.Server) func([]byte) ([]byte, error) {
			siteA, siteB := benchSite(b), benchSite(b)
			if _, err := colugo.Serve(siteA("server"), "bench/echo", echo, raw); err != nil {
				b.Fatal(err)
			}
			ca := cfgFor(srv, "a")
			ca.Export.Services = []bridge.Service{{Name: "bench/echo"}}
			benchBridge(b, siteA, ca)
			cb := cfgFor(srv, "b")
			cb.Import.Services = ca.Export.Services
			benchBridge(b, siteB, cb)
			return colugoCall(b, siteB("client"))
		}},
		{"nats", func(b *testing.B, srv *server.Server) func([]byte) ([]byte, error) {
			resp, cli := natsClient(b, srv), natsClient(b, srv)
			if _, err := resp.Subscribe("direct.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
				b.Fatal(err)
			}
			if err := resp.Flush(); err != nil {
				b.Fatal(err)
			}
			return func(p []byte) ([]byte, error) {
				m, err := cli.Request("direct.echo", p, time.Second)
				if err != nil {
					return nil, err
				}
				return m.Data, nil
			}
		}},
		{"colugo", func(b *testing.B, _ *server.Server) func([]byte) ([]byte, error) {
			site := benchSite(b)
			if _, err := colugo.Serve(site("server"), "bench/echo", echo, raw); err != nil {
				b.Fatal(err)
			}
			return colugoCall(b, site("client"))
		}},
	}
	for _, r := range rigs {
		b.Run(r.name, func(b *testing.B) {
			call := r.rig(b, natsServer(b, 0))
			p := make([]byte, 64)
			deadline := time.Now().Add(wait) // the bridged service appears once described over NATS
			for {
				if _, err := call(p); err == nil {
					break
				} else if time.Now().After(deadline) {
					b.Fatalf("warm-up request: %v", err)
				}
			}
			lats := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				t0 := time.Now()
				got, err := call(p)
				if err != nil || len(got) != len(p) {
					b.Fatalf("request %d: %d bytes, %v", i, len(got), err)
				}
				lats = append(lats, time.Since(t0))
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
			b.ReportMetric(us(percentile(lats, 0.5)), "p50-µs")
			b.ReportMetric(us(percentile(lats, 0.99)), "p99-µs")
		})
	}
}
