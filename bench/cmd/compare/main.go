// Command compare runs the bench suite (colugo over TCP and in process, raw
// zmq4 sockets, NATS with an embedded server) in one process and prints one
// markdown table with the machine named.
//
//	cd bench && go run ./cmd/compare                # every workload, 2 s per system
//	go run ./cmd/compare -d 5s -n 3                 # median of 3 runs of 5 s
//	go run ./cmd/compare -w 'pubsub-64B|request' -s colugo -cpuprofile cpu.out
//
// Every run is bounded by -d (and the whole command by -timeout); traffic
// stays on 127.0.0.1.
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
	timeout := flag.Duration("timeout", 20*time.Minute, "abort the whole command after this long")
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
	fmt.Fprintln(out, "| workload | system | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | allocs/msg | B/msg | ÷ zmq4 | ÷ NATS |")
	fmt.Fprintln(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	us := func(t time.Duration) string { return fmt.Sprintf("%.1f", float64(t)/float64(time.Microsecond)) }
	for _, w := range ws {
		res := map[bench.System]bench.Result{}
		for _, s := range ss {
			if rs := runs[w.Name+"/"+string(s)]; len(rs) > 0 {
				res[s] = bench.Median(w, rs)
			}
		}
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
			if s == bench.Colugo || s == bench.ColugoInproc {
				rz, rn = ratio(r, bench.ZMQ4), ratio(r, bench.NATS)
			}
			fmt.Fprintf(out, "| %s | %s | %s | %.1f | %s | %s | %s | %.1f | %.0f | %s | %s |\n",
				w.Name, s, bench.SI(r.MsgsPerSec()), r.MBPerSec(), us(r.P50), us(r.P99), us(r.P999),
				r.AllocsPerMsg, r.BytesPerMsg, rz, rn)
		}
	}
	fmt.Fprintln(out, "\nmsgs/s counts deliveries (fan-out: four per message) or completed requests; latencies are one way"+
		" (publish to the subscriber's goroutine, a sample of messages, window queueing included) for pub/sub and round trips"+
		" for requests; allocs/msg and B/msg are the whole process's (NATS: its server's included) per delivery;"+
		" ÷ columns: colugo's figure over the other's (msgs/s; p50 round trip for serial requests, lower is better).")
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
