// Command compare runs the bench suite (colugo over TCP and in process, raw
// zmq4 sockets, NATS with an embedded server) and prints markdown tables
// with the machine named: one for the paced workloads, one for the bursts.
// Two-process workloads (2p-) re-execute this command as their other side
// (see bench.Child).
//
//	cd bench && go run ./cmd/compare                # every workload, 2 s per system
//	go run ./cmd/compare -d 5s -n 3                 # median of 3 runs of 5 s
//	go run ./cmd/compare -w 'pubsub-64B|request' -s colugo -cpuprofile cpu.out
//	go run ./cmd/compare -w '^(pubsub-64B|request-64B-serial)$|burst|2p-|json' -n 3
//	                                                # the burst, two-process and JSON rows, their Raw
//	                                                # counterparts and a table of issue 12's targets
//	go run ./cmd/compare -w '^bridge-' -n 3        # the bridge's rows (issue 18) and its targets
//
// Every run is bounded by -d (and the whole command by -timeout); traffic
// stays on 127.0.0.1 and colugo's abstract Unix sockets.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/colugo-go/colugo/bench"
)

func main() {
	bench.Child() // the other side of a two-process workload: runs it and exits
	d := flag.Duration("d", 2*time.Second, "measured duration of each workload on each system")
	n := flag.Int("n", 1, "runs of each workload on each system; the table shows the median")
	wre := flag.String("w", "", "regexp: only workloads whose name matches")
	sre := flag.String("s", "", "regexp: only systems whose name matches")
	timeout := flag.Duration("timeout", time.Hour, "abort the whole command after this long")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile of the runs to this file")
	memprof := flag.String("memprofile", "", "write an allocation profile to this file at the end")
	flag.Parse()
	if os.Getenv("COLUGO_DISCOVERY") == "" {
		_ = os.Setenv("COLUGO_DISCOVERY", "local") // nothing leaves the host
	}
	time.AfterFunc(*timeout, func() {
		fmt.Fprintf(os.Stderr, "compare: timed out after %v\n", *timeout)
		os.Exit(2)
	})
	wf, err := regexp.Compile(*wre)
	if err != nil {
		fatal(err)
	}
	sf, err := regexp.Compile(*sre)
	if err != nil {
		fatal(err)
	}
	if *memprof != "" {
		runtime.MemProfileRate = 4096
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}

	var ws []bench.Workload
	for _, w := range bench.Workloads {
		if wf.MatchString(w.Name) {
			ws = append(ws, w)
		}
	}
	var ss []bench.System
	for _, s := range bench.Systems {
		if sf.MatchString(string(s)) {
			ss = append(ss, s)
		}
	}
	runs := map[string][]bench.Result{}
	for rep := range *n {
		for _, w := range ws {
			for _, s := range ss {
				if !bench.Supports(s, w) {
					continue
				}
				fmt.Fprintf(os.Stderr, "run %d/%d %s on %s…\n", rep+1, *n, w.Name, s)
				r, err := bench.Run(s, w, bench.Limits{D: *d})
				if err != nil {
					fatal(err)
				}
				k := w.Name + "/" + string(s)
				runs[k] = append(runs[k], r)
			}
		}
	}
	if *memprof != "" {
		f, err := os.Create(*memprof)
		if err != nil {
			fatal(err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			fatal(err)
		}
		_ = f.Close()
	}
	printTable(os.Stdout, ws, ss, runs, *d, *n)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "compare:", err)
	os.Exit(1)
}

func printTable(out io.Writer, ws []bench.Workload, ss []bench.System, runs map[string][]bench.Result, d time.Duration, n int) {
	fmt.Fprintf(out, "Machine: %s, %d CPUs, %s/%s, Linux %s, %s; %s; %v per run, median of %d.\n\n",
		bench.CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, kernel(), runtime.Version(),
		time.Now().UTC().Format("2006-01-02"), d, n)
	var paced, bursts []bench.Workload
	for _, w := range ws {
		if w.Burst > 0 {
			bursts = append(bursts, w)
		} else {
			paced = append(paced, w)
		}
	}
	if len(paced) > 0 {
		printPaced(out, paced, ss, runs)
	}
	if len(bursts) > 0 {
		if len(paced) > 0 {
			fmt.Fprintln(out)
		}
		printBursts(out, bursts, ss, runs)
	}
	printTargets(out, ws, runs)
	printBridgeTargets(out, ws, runs)
}

// printTargets prints issue 12's targets for the rows of this run that
// measure them (nothing if none do).
func printTargets(out io.Writer, ws []bench.Workload, runs map[string][]bench.Result) {
	byName := map[string]bench.Workload{}
	for _, w := range ws {
		byName[w.Name] = w
	}
	get := func(name string, s bench.System) (bench.Result, bool) {
		w, ok := byName[name]
		if !ok || len(runs[name+"/"+string(s)]) == 0 {
			return bench.Result{}, false
		}
		return bench.Median(w, runs[name+"/"+string(s)]), true
	}
	var rows [][3]string
	add := func(target, figure string, met bool) {
		rows = append(rows, [3]string{target, figure, map[bool]string{true: "yes", false: "no"}[met]})
	}
	for _, w := range ws {
		if w.Burst == 0 || w.JSON || w.Bridged {
			continue
		}
		if c, ok := get(w.Name, bench.Colugo); ok {
			add(w.Name+": 100 % delivered", fmt.Sprintf("%.1f %% (%d of %d)", c.DeliveredPct(), c.Msgs, c.Sent), c.Msgs == c.Sent)
		}
	}
	for _, name := range []string{"2p-pubsub-64B", "2p-pubsub-1KiB"} {
		c, ok1 := get(name, bench.Colugo)
		n, ok2 := get(name, bench.NATS)
		if ok1 && ok2 {
			x := c.MsgsPerSec() / n.MsgsPerSec()
			add(name+" ≥ 1.3× NATS msgs/s, 100 % delivered",
				fmt.Sprintf("%.2f× (%s vs %s msgs/s), %.1f %%", x, bench.SI(c.MsgsPerSec()), bench.SI(n.MsgsPerSec()), c.DeliveredPct()),
				x >= 1.3 && c.Msgs == c.Sent)
		}
	}
	if c, ok := get("2p-request-64B-serial", bench.Colugo); ok {
		if n, ok := get("2p-request-64B-serial", bench.NATS); ok {
			x := float64(c.P50) / float64(n.P50)
			add("2p-request-64B-serial p50 ≤ 0.6× NATS", fmt.Sprintf("%.2f× (%s vs %s µs)", x, us(c.P50), us(n.P50)), x <= 0.6)
		}
		if t, ok := get("2p-request-64B-serial", bench.TCP); ok {
			x := float64(c.P50) / float64(t.P50)
			add("2p-request-64B-serial p50 ≤ 1.5× TCP echo", fmt.Sprintf("%.2f× (%s vs %s µs)", x, us(c.P50), us(t.P50)), x <= 1.5)
		}
	}
	if c, ok := get("2p-request-64B-16inflight", bench.Colugo); ok {
		if n, ok := get("2p-request-64B-16inflight", bench.NATS); ok {
			x := c.MsgsPerSec() / n.MsgsPerSec()
			add("2p-request-64B-16inflight ≥ 1.5× NATS req/s", fmt.Sprintf("%.2f× (%s vs %s)", x, bench.SI(c.MsgsPerSec()), bench.SI(n.MsgsPerSec())), x >= 1.5)
		}
	}
	for _, pair := range [][2]string{{"json-pubsub-64B", "pubsub-64B"}, {"2p-json-pubsub-64B", "2p-pubsub-64B"}} {
		j, ok1 := get(pair[0], bench.Colugo)
		r, ok2 := get(pair[1], bench.Colugo)
		if ok1 && ok2 {
			x := j.MsgsPerSec() / r.MsgsPerSec()
			add(pair[0]+" ≥ 0.5× colugo's "+pair[1], fmt.Sprintf("%.2f× (%s vs %s msgs/s)", x, bench.SI(j.MsgsPerSec()), bench.SI(r.MsgsPerSec())), x >= 0.5)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(out, "\nTargets (issue 12), from the tables above:")
	fmt.Fprintln(out, "\n| target | this run | met? |\n|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(out, "| %s | %s | %s |\n", r[0], r[1], r[2])
	}
}

// printBridgeTargets prints issue 18's targets for the bridge's rows of
// this run (nothing if it has none): each bridged figure against direct
// NATS (and colugo's own hop) measured in the same run.
func printBridgeTargets(out io.Writer, ws []bench.Workload, runs map[string][]bench.Result) {
	byName := map[string]bench.Workload{}
	for _, w := range ws {
		byName[w.Name] = w
	}
	get := func(name string, ss ...bench.System) ([]bench.Result, bool) {
		w, ok := byName[name]
		var rs []bench.Result
		for _, s := range ss {
			if !ok || len(runs[name+"/"+string(s)]) == 0 {
				return nil, false
			}
			rs = append(rs, bench.Median(w, runs[name+"/"+string(s)]))
		}
		return rs, true
	}
	var rows [][3]string
	add := func(target, figure string, met bool) {
		rows = append(rows, [3]string{target, figure, map[bool]string{true: "yes", false: "no"}[met]})
	}
	if rs, ok := get("bridge-pubsub-1KiB", bench.Bridge, bench.NATS); ok {
		b, n := rs[0], rs[1]
		x := b.MsgsPerSec() / n.MsgsPerSec()
		add("bridge-pubsub-1KiB ≥ 0.5× direct NATS msgs/s (delivered)",
			fmt.Sprintf("%.2f× (%s vs %s msgs/s; %.1f %% vs %.1f %% delivered)", x, bench.SI(b.MsgsPerSec()), bench.SI(n.MsgsPerSec()),
				b.DeliveredPct(), n.DeliveredPct()), x >= 0.5)
	}
	if rs, ok := get("bridge-latency-1KiB", bench.Bridge, bench.NATS); ok {
		b, n := rs[0], rs[1]
		added := b.P50 - n.P50
		add("bridge-latency-1KiB: added p50 (bridged − NATS) ≤ 2× NATS's own hop",
			fmt.Sprintf("%s µs added (%s vs %s µs): %.2f× NATS's hop", us(added), us(b.P50), us(n.P50), float64(added)/float64(n.P50)),
			added <= 2*n.P50)
	}
	if rs, ok := get("bridge-request-64B-serial", bench.Bridge, bench.NATS, bench.Colugo); ok {
		b, n, c := rs[0], rs[1], rs[2]
		bound := n.P50 + 2*c.P50
		add("bridge-request-64B-serial p50 ≤ NATS p50 + 2 colugo round trips",
			fmt.Sprintf("%s vs %s µs (NATS %s + 2 × colugo %s)", us(b.P50), us(bound), us(n.P50), us(c.P50)), b.P50 <= bound)
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(out, "\nTargets (issue 18, the bridge), from the tables above:")
	fmt.Fprintln(out, "\n| target | this run | met? |\n|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(out, "| %s | %s | %s |\n", r[0], r[1], r[2])
	}
}

func us(t time.Duration) string { return fmt.Sprintf("%.1f", float64(t)/float64(time.Microsecond)) }

// medians picks each system's median result of w.
func medians(w bench.Workload, ss []bench.System, runs map[string][]bench.Result) map[bench.System]bench.Result {
	res := map[bench.System]bench.Result{}
	for _, s := range ss {
		if rs := runs[w.Name+"/"+string(s)]; len(rs) > 0 {
			res[s] = bench.Median(w, rs)
		}
	}
	return res
}

// printBursts prints the burst workloads: what arrived of an unpaced
// burst, how fast, and what each system counted as dropped.
func printBursts(out io.Writer, ws []bench.Workload, ss []bench.System, runs map[string][]bench.Result) {
	fmt.Fprintln(out, "| burst | system | procs | sent | delivered | delivered % | msgs/s | p50 µs | p99 µs | pub drops | sub drops | gaps | ÷ NATS |")
	fmt.Fprintln(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, w := range ws {
		res := medians(w, ss, runs)
		for _, s := range ss {
			r, ok := res[s]
			if !ok {
				continue
			}
			rn := ""
			if o, ok := res[bench.NATS]; ok && s != bench.NATS {
				rn = fmt.Sprintf("%.2f", r.MsgsPerSec()/o.MsgsPerSec())
			}
			drop := func(n uint64) string {
				if s == bench.ZMQ4 {
					return "–" // counts nothing
				}
				return fmt.Sprint(n)
			}
			fmt.Fprintf(out, "| %s | %s | %d | %d | %d | %.1f | %s | %s | %s | %s | %s | %s | %s |\n",
				w.Name, s, r.Procs, r.Sent, r.Msgs, r.DeliveredPct(), bench.SI(r.MsgsPerSec()), us(r.P50), us(r.P99),
				drop(r.Drops.Pub), drop(r.Drops.Sub), drop(r.Drops.Gaps), rn)
		}
	}
	fmt.Fprintln(out, "\nBursts: one publisher publishes sent messages as fast as Publish returns, no flow control, each"+
		" in a buffer of its own, every system with its defaults; the subscriber counts until it has all or nothing arrived"+
		" for 1 s. msgs/s is of what was delivered, up to the last arrival; latency (one way, a sample) includes the queueing"+
		" of the burst; drops are what each system counted (colugo: the publisher's SendDropped, per-connection or topic"+
		" Dropped, whichever is largest, the subscriber's Dropped and Gaps; NATS: slow-consumer errors and Dropped; raw zmq4 counts nothing;"+
		" bridge: also site a's bridge's export drops in pub drops and site b's bridge's import drops in sub drops); ÷ NATS: delivered msgs/s.")
}

func printPaced(out io.Writer, ws []bench.Workload, ss []bench.System, runs map[string][]bench.Result) {
	fmt.Fprintln(out, "| workload | system | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | allocs/msg | B/msg | ÷ zmq4 | ÷ NATS |")
	fmt.Fprintln(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, w := range ws {
		res := medians(w, ss, runs)
		ratio := func(r bench.Result, other bench.System) string {
			o, ok := res[other]
			if !ok {
				return ""
			}
			if w.LatencyBound() {
				return fmt.Sprintf("%.2f (p50)", float64(r.P50)/float64(o.P50))
			}
			return fmt.Sprintf("%.2f", r.MsgsPerSec()/o.MsgsPerSec())
		}
		for _, s := range ss {
			r, ok := res[s]
			if !ok {
				continue
			}
			rz, rn := "", ""
			switch s {
			case bench.Colugo, bench.ColugoInproc:
				rz, rn = ratio(r, bench.ZMQ4), ratio(r, bench.NATS)
			case bench.Bridge:
				rn = ratio(r, bench.NATS)
			}
			fmt.Fprintf(out, "| %s | %s | %s | %.1f | %s | %s | %s | %.1f | %.0f | %s | %s |\n",
				w.Name, s, bench.SI(r.MsgsPerSec()), r.MBPerSec(), us(r.P50), us(r.P99), us(r.P999),
				r.AllocsPerMsg, r.BytesPerMsg, rz, rn)
		}
	}
	fmt.Fprintln(out, "\nmsgs/s counts deliveries (fan-out: four per message) or completed requests; latencies are one way"+
		" (publish to the subscriber's goroutine, a sample of messages, window queueing included) for pub/sub and round trips"+
		" for requests; allocs/msg and B/msg are the whole process's (NATS: its server's included) per delivery; 2p- rows:"+
		" publisher | subscriber and client | server in two processes (NATS: its server in a third), allocations of both"+
		" (not of the NATS server's process); bridge- rows: bridge is colugo site a → its bridge → NATS → site b's bridge"+
		" → site b, five processes, allocations of site a's and site b's (not of the bridges' or NATS's), next to direct NATS"+
		" (three processes) and colugo (two); json- rows: colugo's default codec, NATS with encoding/json;"+
		" ÷ columns: colugo's figure over the other's (msgs/s; p50 round trip for serial requests, lower is better).")
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
