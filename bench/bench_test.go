package bench

import (
	"os"
	"testing"
	"time"

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

// BenchmarkSuite runs every workload: colugo (zmq transport) is the timed
// part (ns/op, allocs/op and B/op are colugo's, one op being one message
// per publisher or one request); raw zmq4, NATS and colugo in process then
// run the same workload for b.N messages, and the ratios are computed from
// this one run. Metrics: msgs/s counts deliveries; latencies are one way
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
	for _, sys := range []System{ZMQ4, NATS, ColugoInproc, TCP} {
		r, ok := res[sys]
		if !ok {
			continue
		}
		b.ReportMetric(r.MsgsPerSec(), string(sys)+"-msgs/s")
		b.ReportMetric(us(r.P50), string(sys)+"-p50-µs")
		b.ReportMetric(r.AllocsPerMsg, string(sys)+"-allocs/msg")
	}
	for _, sys := range []System{ZMQ4, NATS} {
		r := res[sys]
		if w.LatencyBound() {
			// Lower is better: colugo's latency over the other's.
			b.ReportMetric(us(c.P50)/us(r.P50), "p50-vs-"+string(sys))
			b.ReportMetric(us(c.P99)/us(r.P99), "p99-vs-"+string(sys))
			continue
		}
		b.ReportMetric(c.MsgsPerSec()/r.MsgsPerSec(), "x-"+string(sys))
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
