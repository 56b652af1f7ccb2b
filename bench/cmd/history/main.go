// Command history measures issue 14's targets for history: the cost of a
// publisher's WithHistory(1) at 64 B against the same rows without (two
// processes, unpaced bursts and loss-free paced streams, in one run, runs
// interleaved), 1000 late subscribers with WithLastValue (one process and
// four, both start orders: how many get the value and how long it takes
// next to discovery), and Latest on a topic nobody published (time to
// ErrNoValue next to discovery; with no publisher, ctx's deadline).
//
//	cd bench && go run ./cmd/history          # about 1 minute
//	go run ./cmd/history -n 5 -d 2s -rounds 50
//
// Everything runs on 127.0.0.1, colugo's abstract Unix sockets and a
// private host-local registry directory; children are this command
// re-executed (see bench.Child), each bounded in time.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/colugo-go/colugo/bench"
)

func main() {
	bench.Child() // the other side of a two-process workload: runs it and exits
	n := flag.Int("n", 3, "runs of each throughput row and of each late-joiner case; the median is shown")
	d := flag.Duration("d", 2*time.Second, "measured duration of each paced throughput run")
	rounds := flag.Int("rounds", 20, "Latest calls per case, each from a new node")
	only := flag.String("only", "", "regexp: only the parts whose name matches (throughput, late, latest)")
	timeout := flag.Duration("timeout", 30*time.Minute, "abort the whole command after this long")
	flag.Parse()
	if os.Getenv("COLUGO_DISCOVERY") == "" {
		_ = os.Setenv("COLUGO_DISCOVERY", "local") // nothing leaves the host
	}
	time.AfterFunc(*timeout, func() {
		fmt.Fprintf(os.Stderr, "history: timed out after %v\n", *timeout)
		os.Exit(2)
	})
	re, err := regexp.Compile(*only)
	if err != nil {
		fatal(err)
	}
	out := os.Stdout
	fmt.Fprintf(out, "Machine: %s, %d CPUs, %s/%s, %s; %s; median of %d.\n\n", bench.CPUModel(), runtime.NumCPU(),
		runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"), *n)
	var t targets
	if re.MatchString("throughput") {
		throughput(out, &t, *n, *d)
	}
	if re.MatchString("late") {
		late(out, &t, *n)
	}
	if re.MatchString("latest") {
		latest(out, &t, *rounds)
	}
	t.print(out)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "history:", err)
	os.Exit(1)
}

type targets [][3]string

func (t *targets) add(target, figure string, met bool) {
	*t = append(*t, [3]string{target, figure, map[bool]string{true: "yes", false: "no"}[met]})
}

func (t targets) print(out io.Writer) {
	if len(t) == 0 {
		return
	}
	fmt.Fprintln(out, "\nTargets (issue 14), from the tables above:\n\n| target | this run | met? |\n|---|---|---|")
	for _, r := range t {
		fmt.Fprintf(out, "| %s | %s | %s |\n", r[0], r[1], r[2])
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)) }

// throughput runs each history row and its history-off twin, n times
// interleaved, on colugo.
func throughput(out io.Writer, t *targets, n int, d time.Duration) {
	var ws []bench.Workload
	byName := map[string]bench.Workload{}
	for _, w := range bench.Workloads {
		byName[w.Name] = w
	}
	for _, w := range bench.Workloads {
		if w.History > 0 && w.SubHistory == 0 {
			off, ok := byName[strings.TrimSuffix(w.Name, fmt.Sprintf("-hist%d", w.History))]
			if ok {
				ws = append(ws, off, w)
			}
		}
	}
	runs := map[string][]bench.Result{}
	for rep := range n {
		for _, w := range ws {
			fmt.Fprintf(os.Stderr, "run %d/%d %s…\n", rep+1, n, w.Name)
			r, err := bench.Run(bench.Colugo, w, bench.Limits{D: d})
			if err != nil {
				fatal(err)
			}
			runs[w.Name] = append(runs[w.Name], r)
		}
	}
	fmt.Fprintln(out, "| workload | publisher history | sent | delivered % | msgs/s | p50 µs | p99 µs | allocs/msg | B/msg | gaps | msgs/s of the runs | ÷ history off |")
	fmt.Fprintln(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	med := map[string]bench.Result{}
	for i, w := range ws {
		r := bench.Median(w, runs[w.Name])
		med[w.Name] = r
		ratio := ""
		if i%2 == 1 {
			off := med[ws[i-1].Name]
			x := r.MsgsPerSec() / off.MsgsPerSec()
			ratio = fmt.Sprintf("%.2f", x)
			kind := "paced, loss-free"
			if w.Burst > 0 {
				kind = "unpaced burst, delivered msgs/s"
			}
			t.add(fmt.Sprintf("WithHistory(1) at 64 B ≤ 10 %% slower (%s, %s)", w.Name, kind),
				fmt.Sprintf("%.2f× (%s vs %s msgs/s; %.1f vs %.1f %% delivered)", x, bench.SI(r.MsgsPerSec()),
					bench.SI(off.MsgsPerSec()), r.DeliveredPct(), off.DeliveredPct()), x >= 0.9)
		}
		var each []string
		for _, x := range runs[w.Name] {
			each = append(each, bench.SI(x.MsgsPerSec()))
		}
		fmt.Fprintf(out, "| %s | %d | %d | %.1f | %s | %s | %s | %.1f | %.0f | %d | %s | %s |\n", w.Name, w.History, r.Sent,
			r.DeliveredPct(), bench.SI(r.MsgsPerSec()), us(r.P50), us(r.P99), r.AllocsPerMsg, r.BytesPerMsg, r.Drops.Gaps,
			strings.Join(each, ", "), ratio)
	}
	fmt.Fprintln(out, "\nPublisher and subscriber in two processes (zmq transport, Unix socket), colugo Raw; the"+
		" subscriber asks for no history. Bursts: 100,000 × 64 B as fast as Publish returns, msgs/s of what was delivered;"+
		" paced: the loss-free window of the 2p-pubsub rows. Median of the runs, history on and off interleaved.")
	fmt.Fprintln(out)
}

// late runs each late-joiner case n times and shows the median run by
// p99 of Subscribe → value (the worst run if any lost a value).
func late(out io.Writer, t *targets, n int) {
	fmt.Fprintln(out, "| case | got the value | replayed | Subscribe → value p50 / p99 / max ms | discovery p50 / p99 / max ms | value after discovery p50 / p99 ms |")
	fmt.Fprintln(out, "|---|--:|--:|--:|--:|--:|")
	for _, w := range bench.LateWorkloads {
		var rs []bench.LateResult
		for rep := range n {
			fmt.Fprintf(os.Stderr, "run %d/%d %s…\n", rep+1, n, w.Name)
			r, err := bench.RunLate(w)
			if err != nil {
				fatal(err)
			}
			rs = append(rs, r)
		}
		r, worst := rs[0], rs[0]
		for _, x := range rs {
			if x.Got < worst.Got {
				worst = x
			}
		}
		sortBy(rs)
		r = rs[len(rs)/2]
		if worst.Got < w.Subs {
			r = worst
		}
		fmt.Fprintf(out, "| %s | %d/%d | %d | %s / %s / %s | %s / %s / %s | %s / %s |\n", w.Name, r.Got, w.Subs, r.Replayed,
			ms(r.Value.P50), ms(r.Value.P99), ms(r.Value.Max), ms(r.Discovery.P50), ms(r.Discovery.P99), ms(r.Discovery.Max),
			ms(r.After.P50), ms(r.After.P99))
		min, max := rs[0], rs[len(rs)-1]
		t.add(w.Name+": 1000/1000 get the last value", fmt.Sprintf("%d/%d (worst of %d runs)", worst.Got, w.Subs, n), worst.Got == w.Subs && worst.Wrong == 0)
		t.add(w.Name+": Subscribe → value ≤ discovery + 5 ms (p50, p99)",
			fmt.Sprintf("p50 %s ≤ %s + 5, p99 %s ≤ %s + 5 ms (runs' p99 %s–%s ms)", ms(r.Value.P50), ms(r.Discovery.P50),
				ms(r.Value.P99), ms(r.Discovery.P99), ms(min.Value.P99), ms(max.Value.P99)),
			r.Value.P50 <= r.Discovery.P50+5*time.Millisecond && r.Value.P99 <= r.Discovery.P99+5*time.Millisecond)
		// Stricter: per subscription, what the value took once its node
		// knew the publisher (the fetch and its queueing at the publisher).
		t.add(w.Name+": value ≤ 5 ms after discovery, per subscription (p50, p99)",
			fmt.Sprintf("p50 %s, p99 %s ms", ms(r.After.P50), ms(r.After.P99)), r.After.P99 <= 5*time.Millisecond)
	}
	fmt.Fprintln(out, "\nA publisher (WithHistory(1)) publishes one 64 B value once; 1000 subscriptions with WithLastValue"+
		" on 20 nodes (50 each) in 1 or 4 child processes, zmq transport, host-local discovery (100 ms poll). pubfirst: the"+
		" value is published before the subscriber nodes start, times count from each Subscribe (discovery: from each node's"+
		" start); subfirst: everyone has subscribed before the publisher starts, times count from the publisher's start."+
		" Discovery ends at the node's Joined event for the publisher (found and described). After discovery: per"+
		" subscription, its value's arrival after both its node knew the publisher and it had subscribed. The run shown is the median by p99.")
	fmt.Fprintln(out)
}

func sortBy(rs []bench.LateResult) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Value.P99 < rs[j-1].Value.P99; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func latest(out io.Writer, t *targets, rounds int) {
	fmt.Fprintf(os.Stderr, "Latest, %d rounds per case…\n", rounds)
	rs, err := bench.RunLatest(rounds)
	if err != nil {
		fatal(err)
	}
	fmt.Fprintln(out, "| Latest on a topic with | returned | start → return p50 / p99 ms | start → publisher known p50 / p99 ms |")
	fmt.Fprintln(out, "|---|---|--:|--:|")
	for _, r := range rs {
		var got []string
		for k, v := range r.Errs {
			got = append(got, fmt.Sprintf("%d × %s", v, k))
		}
		disc := "–"
		if r.Discovery.N > 0 {
			disc = ms(r.Discovery.P50) + " / " + ms(r.Discovery.P99)
		}
		fmt.Fprintf(out, "| %s | %s | %s / %s | %s |\n", r.Case, strings.Join(got, ", "), ms(r.Latest.P50), ms(r.Latest.P99), disc)
		switch r.Case {
		case bench.LatestNothingPublished, bench.LatestNoHistory, bench.LatestPublisherLater:
			t.add("Latest, "+string(r.Case)+": ErrNoValue within 2× discovery (p50, p99)",
				fmt.Sprintf("%d/%d ErrNoValue; p50 %s vs %s ms, p99 %s vs %s ms", r.Errs["ErrNoValue"], rounds,
					ms(r.Latest.P50), ms(r.Discovery.P50), ms(r.Latest.P99), ms(r.Discovery.P99)),
				r.Errs["ErrNoValue"] == rounds && r.Latest.P50 <= 2*r.Discovery.P50 && r.Latest.P99 <= 2*r.Discovery.P99)
		case bench.LatestNoPublisher:
			t.add("Latest, no publisher: ctx's deadline", fmt.Sprintf("%d/%d DeadlineExceeded at %s ms (deadline %s)",
				r.Errs["DeadlineExceeded"], rounds, ms(r.Latest.P50), ms(bench.LatestDeadline)), r.Errs["DeadlineExceeded"] == rounds)
		}
	}
	fmt.Fprintf(out, "\nEach round: a new node (zmq, host-local discovery) calls Latest right after it starts, ctx deadline %v;"+
		" the publisher's node was registered before (the last row: it starts just after the call). Times from the new node's start (the last row: from the publisher's).\n", bench.LatestDeadline)
}
