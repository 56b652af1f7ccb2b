package bench

import (
	"testing"
	"time"
)

// TestLateJoinSmoke: every late subscription gets the value, replayed from
// the publisher's history, in both start orders, over two processes.
func TestLateJoinSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, subFirst := range []bool{false, true} {
		w := LateWorkload{Name: "late-smoke", Subs: 40, Nodes: 4, Procs: 2, SubFirst: subFirst}
		r, err := RunLate(w)
		if err != nil {
			t.Fatal(err)
		}
		if r.Got != w.Subs || r.Replayed != w.Subs || r.Wrong != 0 {
			t.Errorf("sub first %v: %d of %d got the value (%d replayed, %d wrong)", subFirst, r.Got, w.Subs, r.Replayed, r.Wrong)
		}
		if r.Discovery.N != w.Nodes || r.After.N != r.Got || r.Value.P50 <= 0 {
			t.Errorf("sub first %v: %d nodes' discovery, %d after discovery, value p50 %v", subFirst, r.Discovery.N, r.After.N, r.Value.P50)
		}
	}
}

// TestLatestSmoke: Latest on a topic nobody published ends with ErrNoValue
// once the publisher is known, and with no publisher at ctx's deadline.
func TestLatestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	rs, err := RunLatest(2)
	if err != nil {
		t.Fatal(err)
	}
	want := map[LatestCase]string{LatestNothingPublished: "ErrNoValue", LatestNoHistory: "ErrNoValue",
		LatestNoPublisher: "DeadlineExceeded", LatestPublisherLater: "ErrNoValue"}
	if len(rs) != len(want) {
		t.Fatalf("%d cases, want %d", len(rs), len(want))
	}
	for _, r := range rs {
		if r.Errs[want[r.Case]] != 2 {
			t.Errorf("%s: %v, want 2 × %s", r.Case, r.Errs, want[r.Case])
		}
		if r.Case == LatestNoPublisher && r.Latest.P50 < LatestDeadline {
			t.Errorf("%s: returned after %v, before the deadline", r.Case, r.Latest.P50)
		}
		if r.Case != LatestNoPublisher && r.Latest.P50 >= LatestDeadline {
			t.Errorf("%s: took %v, the deadline", r.Case, r.Latest.P50)
		}
	}
}

// BenchmarkLateJoin runs the late-joiner case with b.N late subscriptions
// (at most 2000; -benchtime 1000x is the target run, and the smoke
// run's 1x is one subscriber) over up to 20 nodes in two processes,
// publisher first. Metrics: got-% (must be 100), Subscribe → value p50 and
// p99, the nodes' discovery p50/p99 and the value's p99 after discovery.
func BenchmarkLateJoin(b *testing.B) {
	n := min(b.N, 2000)
	w := LateWorkload{Name: "late", Subs: n, Nodes: min(n, 20), Procs: min(n, 2)}
	r, err := RunLate(w)
	if err != nil {
		b.Fatal(err)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(100*float64(r.Got)/float64(n), "got-%")
	b.ReportMetric(ms(r.Value.P50), "value-p50-ms")
	b.ReportMetric(ms(r.Value.P99), "value-p99-ms")
	b.ReportMetric(ms(r.Discovery.P50), "discovery-p50-ms")
	b.ReportMetric(ms(r.Discovery.P99), "discovery-p99-ms")
	b.ReportMetric(ms(r.After.P99), "after-discovery-p99-ms")
	if r.Got < n {
		b.Errorf("%d of %d late subscribers got the value", r.Got, n)
	}
}
