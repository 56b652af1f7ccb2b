package bench

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/colugo-go/colugo/codec"

	"go.uber.org/goleak"
)

// zmq4's PUB socket starts a writer goroutine that Close does not stop
// (shared/notes/zmq4.md §1): the only goroutine allowed to outlive a test.
func TestMain(m *testing.M) {
	Child() // the other side of a two-process workload: runs it and exits
	if os.Getenv("COLUGO_DISCOVERY") == "" {
		_ = os.Setenv("COLUGO_DISCOVERY", "local") // nothing leaves the host
	}
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"))
}

// competitorLimit bounds each competitor's run in a benchmark: b.N
// messages, or this long.
const competitorLimit = 20 * time.Second

// BenchmarkSuite runs every workload (bursts of at most b.N messages;
// two-process workloads start this test binary as their other side):
// colugo (zmq transport) is the timed part (ns/op, allocs/op and B/op are colugo's, one op being one message
// per publisher or one request); raw zmq4, NATS and colugo in process then
// run the same workload for b.N messages, and the ratios are computed from
// this one run (for the bridge- rows: the bridged path and direct NATS). Metrics: msgs/s counts deliveries; latencies are one way
// for pub/sub (a sample of messages) and round trips for requests;
// allocs/msg and B/msg count the whole process per delivery.
func BenchmarkSuite(b *testing.B) {
	for _, w := range Workloads {
		b.Run(w.Name, func(b *testing.B) {
			b.ReportAllocs()
			res := map[System]Result{}
			for _, sys := range Systems {
				if !Supports(sys, w) {
					continue
				}
				lim := Limits{N: b.N, D: competitorLimit}
				if sys == Colugo {
					lim = Limits{N: b.N, D: 10 * time.Minute, Start: b.ResetTimer, Stop: b.StopTimer}
				}
				r, err := Run(sys, w, lim)
				if err != nil {
					b.Fatal(err)
				}
				res[sys] = r
			}
			report(b, w, res)
		})
	}
}

func report(b *testing.B, w Workload, res map[System]Result) {
	c := res[Colugo]
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(c.MsgsPerSec(), "msgs/s")
	b.ReportMetric(c.MBPerSec(), "MB/s")
	b.ReportMetric(us(c.P50), "p50-µs")
	b.ReportMetric(us(c.P99), "p99-µs")
	b.ReportMetric(us(c.P999), "p999-µs")
	b.ReportMetric(c.AllocsPerMsg, "allocs/msg")
	b.ReportMetric(c.BytesPerMsg, "B/msg")
	for _, sys := range []System{ZMQ4, NATS, ColugoInproc, TCP, Bridge} {
		r, ok := res[sys]
		if !ok {
			continue
		}
		b.ReportMetric(r.MsgsPerSec(), string(sys)+"-msgs/s")
		b.ReportMetric(us(r.P50), string(sys)+"-p50-µs")
		b.ReportMetric(r.AllocsPerMsg, string(sys)+"-allocs/msg")
	}
	if w.Burst > 0 {
		// Loss is the figure of a burst, not a failure.
		b.ReportMetric(c.DeliveredPct(), "delivered-%")
		for _, sys := range []System{ZMQ4, NATS, ColugoInproc, Bridge} {
			if r, ok := res[sys]; ok {
				b.ReportMetric(r.DeliveredPct(), string(sys)+"-delivered-%")
			}
		}
	}
	for _, sys := range []System{ZMQ4, NATS} {
		r, ok := res[sys]
		if !ok {
			continue
		}
		if w.LatencyBound() {
			// Lower is better: colugo's latency over the other's.
			b.ReportMetric(us(c.P50)/us(r.P50), "p50-vs-"+string(sys))
			b.ReportMetric(us(c.P99)/us(r.P99), "p99-vs-"+string(sys))
			continue
		}
		b.ReportMetric(c.MsgsPerSec()/r.MsgsPerSec(), "x-"+string(sys))
	}
	if r, n := res[Bridge], res[NATS]; r.Msgs > 0 && n.Msgs > 0 {
		// The bridged path against direct NATS (issue 18's targets).
		if w.LatencyBound() {
			b.ReportMetric(us(r.P50)/us(n.P50), "bridge-p50-vs-nats")
		} else {
			b.ReportMetric(r.MsgsPerSec()/n.MsgsPerSec(), "bridge-x-nats")
		}
	}
}

// TestWorkloadsSmoke runs every workload on every system briefly, so that
// `go test` alone checks the rigs work and shut down without leaks.
func TestWorkloadsSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, w := range Workloads {
		for _, sys := range Systems {
			if !Supports(sys, w) {
				continue
			}
			t.Run(w.Name+"/"+string(sys), func(t *testing.T) {
				r, err := Run(sys, w, Limits{N: 200, D: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				if r.Msgs == 0 {
					t.Fatal("no messages")
				}
			})
		}
	}
}

// TestScaleSmoke runs the shapes cmd/scale adds (several topics, several
// repliers) briefly on every system that supports them.
func TestScaleSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ws := []Workload{
		{Name: "topics-10-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 2, Topics: 10},
		{Name: "request-4repliers-16inflight", Kind: ReqInFlight, Size: 64, InFlight: 16, Repliers: 4},
		{Name: "request-4repliers-serial", Kind: ReqSerial, Size: 64, Repliers: 4},
	}
	for _, w := range ws {
		for _, sys := range Systems {
			if !Supports(sys, w) {
				continue
			}
			t.Run(w.Name+"/"+string(sys), func(t *testing.T) {
				r, err := Run(sys, w, Limits{N: 500, D: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				if r.Msgs == 0 {
					t.Fatal("no messages")
				}
			})
		}
	}
}

// lossyRig delivers the warm-up and every other message of a run, at once
// from Publish, and counts the rest as dropped by the publisher.
type lossyRig struct {
	recv    recvFunc
	k       int
	dropped uint64
}

func (r *lossyRig) Publish(_ int, p []byte) error {
	if p[9]&flagWarm == 0 {
		if r.k++; r.k%2 == 0 {
			r.dropped++
			return nil
		}
	}
	r.recv(0, p)
	return nil
}

func (r *lossyRig) Check() error {
	if r.dropped > 0 {
		return fmt.Errorf("lossy: %d dropped", r.dropped)
	}
	return nil
}

func (r *lossyRig) Drops() Drops { return Drops{Pub: r.dropped} }
func (r *lossyRig) Close()       {}

const lossy System = "lossy"

func init() {
	testRigs = map[System]func(Workload, recvFunc) (pubSubRig, error){
		lossy: func(_ Workload, recv recvFunc) (pubSubRig, error) { return &lossyRig{recv: recv}, nil },
	}
}

// TestBurstReportsLoss: a burst that loses half its messages is a result
// (sent, delivered, the system's drop count), not a failure, and the wait
// for the missing half ends after the quiet period; a paced run that
// loses messages fails.
func TestBurstReportsLoss(t *testing.T) {
	w := Workload{Name: "burst-test", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, Burst: 1000}
	t0 := time.Now()
	r, err := Run(lossy, w, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > quietPeriod+5*time.Second {
		t.Errorf("the burst took %v: the quiet period did not end the wait", el)
	}
	if r.Sent != 1000 || r.Msgs != 500 || r.Drops.Pub != 500 || r.DeliveredPct() != 50 {
		t.Errorf("sent %d, delivered %d (%.1f %%), drops %+v; want 1000, 500 (50 %%), 500 at the publisher",
			r.Sent, r.Msgs, r.DeliveredPct(), r.Drops)
	}
	if r.Elapsed <= 0 || r.Elapsed > time.Since(t0)-quietPeriod {
		t.Errorf("elapsed %v counts the quiet period", r.Elapsed)
	}
	// Limits.N caps a burst; Limits.D does not cut it short.
	if r, err := Run(lossy, w, Limits{N: 10}); err != nil || r.Sent != 10 {
		t.Errorf("N 10: sent %d, %v", r.Sent, err)
	}
	if r, err := Run(lossy, w, Limits{D: time.Nanosecond}); err != nil || r.Sent != 1000 {
		t.Errorf("D 1ns: sent %d, %v", r.Sent, err)
	}
	w.Burst, w.Name = 0, "paced-test"
	defer func(d time.Duration) { drainTimeout = d }(drainTimeout)
	drainTimeout = 2 * time.Second
	if _, err := Run(lossy, w, Limits{N: 100}); err == nil {
		t.Error("a paced run that lost half its messages did not fail")
	}
}

// TestSampleSize: the JSON workloads' Sample encodes, with colugo's
// default codec, to about 64 bytes, and carries the harness header.
func TestSampleSize(t *testing.T) {
	p := make([]byte, 64)
	stamp(p, 0, 3, flagWarm)
	s := sampleOf(p, 123456)
	b, err := codec.JSON{}.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 56 || len(b) > 72 {
		t.Errorf("a Sample encodes to %d bytes: %s", len(b), b)
	}
	q := s.payload(make([]byte, 64))
	if q[8] != 3 || q[9] != flagWarm || stampOf(q) != 0 {
		t.Errorf("header not carried: % x", q[:10])
	}
}

// TestBridgeSupports: the bridge's workloads run on the bridge, direct
// NATS and colugo only, and the bridge runs nothing else.
func TestBridgeSupports(t *testing.T) {
	n := 0
	for _, w := range Workloads {
		for _, sys := range Systems {
			if sys != Bridge && !w.Bridged {
				continue // the other rows: not this test's
			}
			want := w.Bridged && (sys == Bridge || sys == NATS && !w.JetStream || sys == Colugo && !w.JetStream)
			if got := Supports(sys, w); got != want {
				t.Errorf("Supports(%s, %s) = %v", sys, w.Name, got)
			}
			if sys == Bridge && Supports(sys, w) {
				n++
			}
		}
	}
	if n != 5 {
		t.Errorf("bridge runs %d workloads, want 5", n)
	}
}
