// Command scale measures how throughput and round trips change with the
// number of topics, subscribers and repliers and with the message size,
// for colugo (zmq transport on 127.0.0.1) beside raw zmq4 sockets and NATS
// (an embedded nats-server) where the rigs allow. It writes every point
// as CSV and prints a markdown table; cmd/plot renders the CSV as PNG.
//
//	cd bench && go run ./cmd/scale                     # 1 s per point: about 1.5 minutes (-n 3: about 4)
//	go run ./cmd/scale -d 3s -n 3 -o scaling.csv       # 3 rounds of 3 s per point, medians
//	go run ./cmd/scale -x 'size' -s '^colugo$'         # one dimension, one system
//	go run ./cmd/plot scaling.csv -o scaling.png
//
// Dimensions (x):
//
//	topics       1, 10, 100 topics, 1 KiB, one publisher → one subscriber, messages round robin over the topics
//	subscribers  1, 4, 16 subscribers (nodes, sockets, connections), 1 KiB; msgs/s counts deliveries
//	repliers     1, 8, 32 servers of one service, 64 B: req/s with 16 requests in flight (repliers-16inflight)
//	             and round trips one at a time (repliers-serial); colugo goes round robin, NATS's queue group at random
//	size         64 B … 4 MiB, one publisher → one subscriber: MB/s
//
// Every run is bounded by -d and by a message count; traffic stays on
// 127.0.0.1 and discovery on a private host-local registry directory.
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/colugo-go/colugo/bench"
)

// point is one workload at one x of one dimension.
type point struct {
	dim     string
	x       int
	w       bench.Workload
	systems []bench.System
}

var sizes = []int{64, 1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20}

func points() []point {
	pubsub := []bench.System{bench.Colugo, bench.ZMQ4, bench.NATS}
	reqs := []bench.System{bench.Colugo, bench.NATS}
	var ps []point
	for _, t := range []int{1, 10, 100} {
		ps = append(ps, point{"topics", t, bench.Workload{Name: fmt.Sprintf("topics-%d-1KiB", t),
			Kind: bench.PubSub, Size: 1 << 10, Pubs: 1, Subs: 1, Topics: t}, pubsub})
	}
	for _, s := range []int{1, 4, 16} {
		ps = append(ps, point{"subscribers", s, bench.Workload{Name: fmt.Sprintf("fanout-1to%d-1KiB", s),
			Kind: bench.PubSub, Size: 1 << 10, Pubs: 1, Subs: s}, pubsub})
	}
	for _, r := range []int{1, 8, 32} {
		ps = append(ps, point{"repliers-16inflight", r, bench.Workload{Name: fmt.Sprintf("request-%drepliers-16inflight", r),
			Kind: bench.ReqInFlight, Size: 64, InFlight: 16, Repliers: r}, reqs})
	}
	for _, r := range []int{1, 8, 32} {
		ps = append(ps, point{"repliers-serial", r, bench.Workload{Name: fmt.Sprintf("request-%drepliers-serial", r),
			Kind: bench.ReqSerial, Size: 64, Repliers: r}, reqs})
	}
	for _, n := range sizes {
		ps = append(ps, point{"size", n, bench.Workload{Name: "pubsub-" + sizeName(n),
			Kind: bench.PubSub, Size: n, Pubs: 1, Subs: 1}, append(slices.Clone(pubsub), bench.ColugoInproc)})
	}
	return ps
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func main() {
	d := flag.Duration("d", time.Second, "measured duration of each point on each system")
	n := flag.Int("n", 1, "rounds over all points; each point keeps its median run (by throughput, by p50 for serial requests)")
	xre := flag.String("x", "", "regexp: only dimensions whose name matches (topics, subscribers, repliers-16inflight, repliers-serial, size)")
	sre := flag.String("s", "", "regexp: only systems whose name matches")
	out := flag.String("o", "scaling.csv", "write the points to this CSV file")
	md := flag.String("md", "", "also write the markdown table to this file")
	timeout := flag.Duration("timeout", 30*time.Minute, "abort the whole command after this long")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile of the runs to this file")
	flag.Parse()
	if os.Getenv("COLUGO_DISCOVERY") == "" {
		_ = os.Setenv("COLUGO_DISCOVERY", "local") // nothing leaves the host
	}
	time.AfterFunc(*timeout, func() {
		fmt.Fprintf(os.Stderr, "scale: timed out after %v\n", *timeout)
		os.Exit(2)
	})
	xf, err := regexp.Compile(*xre)
	if err != nil {
		fatal(err)
	}
	sf, err := regexp.Compile(*sre)
	if err != nil {
		fatal(err)
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
	// Rounds: each round runs every point once, so that the machine's
	// background load shifts all points alike rather than one.
	type key struct {
		p int
		s bench.System
	}
	ps := points()
	runs := map[key][]bench.Result{}
	for rep := range *n {
		for i, p := range ps {
			if !xf.MatchString(p.dim) {
				continue
			}
			for _, s := range p.systems {
				if !sf.MatchString(string(s)) || !bench.Supports(s, p.w) {
					continue
				}
				fmt.Fprintf(os.Stderr, "round %d/%d %s on %s…\n", rep+1, *n, p.w.Name, s)
				// A message bound as well as the time bound: 4 GB at
				// most per run, whatever the machine.
				r, err := bench.Run(s, p.w, bench.Limits{D: *d, N: max(1000, (4<<30)/p.w.Size)})
				if err != nil {
					fatal(err)
				}
				runs[key{i, s}] = append(runs[key{i, s}], r)
			}
		}
	}
	var rows []row
	for i, p := range ps {
		for _, s := range p.systems {
			if rs := runs[key{i, s}]; len(rs) > 0 {
				rows = append(rows, row{p.dim, p.x, p.w, bench.Median(p.w, rs)})
			}
		}
	}
	f, err := os.Create(*out)
	if err != nil {
		fatal(err)
	}
	if err := writeCSV(f, rows); err != nil {
		fatal(err)
	}
	if err := f.Close(); err != nil {
		fatal(err)
	}
	var b strings.Builder
	writeMarkdown(&b, rows, *d, *n)
	fmt.Print(b.String())
	if *md != "" {
		if err := os.WriteFile(*md, []byte(b.String()), 0o644); err != nil {
			fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "scale: wrote %s; plot it with go run ./cmd/plot %s -o scaling.png\n", *out, *out)
}

type row struct {
	dim string
	x   int
	w   bench.Workload
	r   bench.Result
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "scale:", err)
	os.Exit(1)
}

// Header is the CSV header; cmd/plot reads the columns by name.
var header = []string{"dimension", "x", "system", "workload", "size_bytes", "msgs_per_s", "mb_per_s",
	"p50_us", "p99_us", "p999_us", "allocs_per_msg", "bytes_per_msg", "msgs", "seconds"}

func writeCSV(out io.Writer, rows []row) error {
	w := csv.NewWriter(out)
	_ = w.Write(header)
	us := func(t time.Duration) string {
		return strconv.FormatFloat(float64(t)/float64(time.Microsecond), 'f', 1, 64)
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range rows {
		_ = w.Write([]string{r.dim, strconv.Itoa(r.x), string(r.r.System), r.w.Name, strconv.Itoa(r.w.Size),
			g(r.r.MsgsPerSec()), g(r.r.MBPerSec()), us(r.r.P50), us(r.r.P99), us(r.r.P999),
			strconv.FormatFloat(r.r.AllocsPerMsg, 'f', 2, 64), strconv.FormatFloat(r.r.BytesPerMsg, 'f', 0, 64),
			strconv.FormatInt(r.r.Msgs, 10), strconv.FormatFloat(r.r.Elapsed.Seconds(), 'f', 3, 64)})
	}
	w.Flush()
	return w.Error()
}

func writeMarkdown(out io.Writer, rows []row, d time.Duration, n int) {
	fmt.Fprintf(out, "Machine: %s, %d CPUs, %s/%s, %s; %s; %v per point, median of %d.\n\n",
		bench.CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		time.Now().UTC().Format("2006-01-02"), d, n)
	fmt.Fprintln(out, "| dimension | x | workload | system | msgs/s | MB/s | p50 µs | p99 µs | allocs/msg |")
	fmt.Fprintln(out, "|---|--:|---|---|--:|--:|--:|--:|--:|")
	us := func(t time.Duration) string { return fmt.Sprintf("%.1f", float64(t)/float64(time.Microsecond)) }
	for _, r := range rows {
		x := strconv.Itoa(r.x)
		if r.dim == "size" {
			x = sizeName(r.x)
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %.1f | %s | %s | %.1f |\n", r.dim, x, r.w.Name, r.r.System,
			bench.SI(r.r.MsgsPerSec()), r.r.MBPerSec(), us(r.r.P50), us(r.r.P99), r.r.AllocsPerMsg)
	}
	fmt.Fprintln(out, "\nmsgs/s counts deliveries (16 subscribers: sixteen per message) or completed requests;"+
		" pub/sub latencies are one way under full load (window queueing included), request latencies round trips;"+
		" allocs/msg is the whole process's per delivery.")
}
