// Command web measures issue 15's targets for the Foxglove gateway
// (gateway/foxglove): a 30 Hz × 2 MiB protobuf stream to one WebSocket
// client (rate, and latency added over a direct colugo subscriber), a
// 1 kHz × 1 KiB JSON stream to four clients (each client's rate and
// losses), and the time from a gateway's start to its first advertise of
// an existing topic next to a fresh node's discovery of the publisher.
//
//	cd bench && go run ./cmd/web -n 3          # about 45 s
//	go run ./cmd/web -n 1 -only proto -cpuprofile cpu.out
//
// The publisher is a child process (this command re-executed, see
// bench.Child), pacing on an absolute schedule; the gateway, the direct
// subscriber and the clients run in this process. Traffic stays on
// 127.0.0.1 and colugo's abstract Unix sockets, discovery in a private
// host-local registry directory.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/colugo-go/colugo/bench"
)

func main() {
	bench.Child() // a bench child process: runs its role and exits
	n := flag.Int("n", 3, "runs of each target (a fresh set-up each); the table gives medians")
	d := flag.Duration("d", 5*time.Second, "measured duration of each stream run (after a warm-up that every receiver saw)")
	rounds := flag.Int("rounds", 5, "gateway starts (and fresh-node discoveries) per run")
	only := flag.String("only", "", "regexp: only the targets whose name matches (proto, json, start)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (gateway, direct subscriber, clients) to this file")
	timeout := flag.Duration("timeout", 5*time.Minute, "abort the whole command after this long")
	flag.Parse()
	if os.Getenv("COLUGO_DISCOVERY") == "" {
		_ = os.Setenv("COLUGO_DISCOVERY", "local") // nothing leaves the host
	}
	time.AfterFunc(*timeout, func() {
		fmt.Fprintf(os.Stderr, "web: timed out after %v\n", *timeout)
		os.Exit(2) // children die with this process (Pdeathsig) or at their own bound
	})
	re, err := regexp.Compile(*only)
	if err != nil {
		fatal(err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	out := os.Stdout
	fmt.Fprintf(out, "Machine: %s, %d CPUs, %s/%s, %s; %s; %v per stream run, median of %d runs.\n\n", bench.CPUModel(),
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"), *d, *n)
	var t targets
	if re.MatchString("proto") {
		stream(out, &t, bench.WebProto, *n, *d)
	}
	if re.MatchString("json") {
		stream(out, &t, bench.WebJSON, *n, *d)
	}
	if re.MatchString("start") {
		start(out, &t, *n, *rounds)
	}
	t.print(out)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "web:", err)
	os.Exit(1)
}

type targets [][4]string

func (t *targets) add(target, figure, runs string, met bool) {
	*t = append(*t, [4]string{target, figure, runs, map[bool]string{true: "PASS", false: "MISS"}[met]})
}

func (t targets) print(out io.Writer) {
	if len(t) == 0 {
		return
	}
	fmt.Fprintln(out, "Targets (issue 15):\n\n| target | median of the runs | each run | result |\n|---|---|---|---|")
	for _, r := range t {
		fmt.Fprintf(out, "| %s | %s | %s | %s |\n", r[0], r[1], r[2], r[3])
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func median[T int | float64 | uint64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// each maps the runs through f and joins the figures.
func each[T any](rs []T, f func(T) string) string {
	var s []string
	for _, r := range rs {
		s = append(s, f(r))
	}
	return strings.Join(s, ", ")
}

func stream(out io.Writer, t *targets, s bench.WebStream, n int, d time.Duration) {
	count := max(2, int(d.Seconds()*float64(s.Rate)))
	var runs []bench.WebResult
	for i := range n {
		fmt.Fprintf(os.Stderr, "run %d/%d %s…\n", i+1, n, s.Name)
		rig, err := bench.NewWebRig(s)
		if err != nil {
			fatal(fmt.Errorf("%s: %w", s.Name, err))
		}
		r, err := rig.Run(count)
		rig.Close()
		if err != nil {
			fatal(fmt.Errorf("%s: %w", s.Name, err))
		}
		runs = append(runs, r)
	}
	// Per receiver, the median of each figure over the runs.
	recv := func(f func(bench.WebResult) bench.WebRecv) bench.WebRecv {
		var got, miss []int
		var rate []float64
		var p50, p99 []time.Duration
		for _, x := range runs {
			v := f(x)
			got, miss, rate, p50, p99 = append(got, v.Got), append(miss, v.Missing), append(rate, v.Rate), append(p50, v.P50), append(p99, v.P99)
		}
		return bench.WebRecv{Got: median(got), Missing: median(miss), Rate: median(rate), P50: median(p50), P99: median(p99)}
	}
	pubRate := median(mapf(runs, func(r bench.WebResult) float64 { return r.PubRate }))
	fmt.Fprintf(out, "%s: %d Hz × %d B (%s), %d measured messages per run, publisher at %.2f Hz (max lag behind its schedule %s ms)\n\n",
		s.Name, s.Rate, s.Size, s.Codec, runs[0].Published, pubRate, ms(median(mapf(runs, func(r bench.WebResult) time.Duration { return r.PubLag }))))
	fmt.Fprintln(out, "| receiver | got | missing | Hz | p50 ms | p99 ms |")
	fmt.Fprintln(out, "|---|--:|--:|--:|--:|--:|")
	row := func(name string, r bench.WebRecv) {
		fmt.Fprintf(out, "| %s | %d | %d | %.2f | %s | %s |\n", name, r.Got, r.Missing, r.Rate, ms(r.P50), ms(r.P99))
	}
	direct := recv(func(r bench.WebResult) bench.WebRecv { return r.Direct })
	row("direct colugo subscriber", direct)
	clients := make([]bench.WebRecv, s.Clients)
	for i := range s.Clients {
		clients[i] = recv(func(r bench.WebResult) bench.WebRecv { return r.Clients[i] })
		row(fmt.Sprintf("WebSocket client %d", i+1), clients[i])
	}
	gwDrop := median(mapf(runs, func(r bench.WebResult) uint64 { return r.GatewayDropped }))
	ndDrop := median(mapf(runs, func(r bench.WebResult) uint64 { return r.NodeDropped }))
	fmt.Fprintf(out, "\nGateway drops (client queues) %d, gateway node drops (its colugo subscription) %d; latency: arrival in the receiving goroutine minus the publisher's send time;"+
		" paired p50 (slowest client): per message, its arrival at the client minus at the direct subscriber, %s ms.\n\n", gwDrop, ndDrop, ms(median(mapf(runs, func(r bench.WebResult) time.Duration { return r.PairedP50 }))))

	switch s.Name {
	case bench.WebProto.Name:
		c := clients[0]
		t.add(fmt.Sprintf("%s reaches 1 client at ≥ 29 Hz", s.Name),
			fmt.Sprintf("%.2f Hz, %d missing of %d", c.Rate, c.Missing, runs[0].Published),
			each(runs, func(r bench.WebResult) string { return fmt.Sprintf("%.2f Hz", r.Clients[0].Rate) }), c.Rate >= 29)
		added := median(mapf(runs, bench.WebResult.AddedP50))
		t.add(fmt.Sprintf("%s: ≤ 5 ms added p50 over a direct subscriber", s.Name),
			fmt.Sprintf("added p50 %s ms (WebSocket p50 %s / p99 %s ms; direct p50 %s / p99 %s ms; paired p50 %s ms)", ms(added), ms(c.P50), ms(c.P99), ms(direct.P50), ms(direct.P99),
				ms(median(mapf(runs, func(r bench.WebResult) time.Duration { return r.PairedP50 })))),
			each(runs, func(r bench.WebResult) string { return ms(r.AddedP50()) + " ms" }), added <= 5*time.Millisecond)
	case bench.WebJSON.Name:
		ok := true
		var figs []string
		for i, c := range clients {
			figs = append(figs, fmt.Sprintf("client %d: %.1f Hz, %d missing", i+1, c.Rate, c.Missing))
			ok = ok && c.Rate >= 0.99*float64(s.Rate) && c.Missing == 0
		}
		t.add(fmt.Sprintf("%s at full rate to %d clients (each ≥ 99 %% of %d Hz, none missing)", s.Name, s.Clients, s.Rate),
			strings.Join(figs, "; ")+fmt.Sprintf("; gateway drops %d; added p50 %s ms (paired %s ms)", gwDrop, ms(median(mapf(runs, bench.WebResult.AddedP50))),
				ms(median(mapf(runs, func(r bench.WebResult) time.Duration { return r.PairedP50 })))),
			each(runs, func(r bench.WebResult) string {
				return "min " + fmt.Sprintf("%.1f Hz", slices.Min(mapf(r.Clients, func(c bench.WebRecv) float64 { return c.Rate })))
			}), ok)
	}
}

func mapf[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

func start(out io.Writer, t *targets, n, rounds int) {
	type run struct{ disc, adv, over time.Duration }
	var runs []run
	for i := range n {
		fmt.Fprintf(os.Stderr, "run %d/%d gateway start…\n", i+1, n)
		rig, err := bench.NewWebStartRig()
		if err != nil {
			fatal(err)
		}
		var disc, adv, over []time.Duration
		for range rounds {
			s, err := rig.Start()
			if err != nil {
				rig.Close()
				fatal(err)
			}
			disc, adv, over = append(disc, s.Discovery), append(adv, s.Advertise), append(over, s.Advertise-s.Discovery)
		}
		rig.Close()
		runs = append(runs, run{median(disc), median(adv), median(over)})
	}
	disc := median(mapf(runs, func(r run) time.Duration { return r.disc }))
	adv := median(mapf(runs, func(r run) time.Duration { return r.adv }))
	over := median(mapf(runs, func(r run) time.Duration { return r.over }))
	fmt.Fprintf(out, "Gateway start: %d rounds per run (a fresh node's discovery, then a gateway's start), median per run, then of the runs: discovery %s ms, start → first advertise %s ms.\n\n", rounds, ms(disc), ms(adv))
	t.add("start → first advertise of an existing topic ≤ discovery + 50 ms",
		fmt.Sprintf("%s ms vs discovery %s ms: %+.2f ms (median of the rounds' differences)", ms(adv), ms(disc), float64(over)/float64(time.Millisecond)),
		each(runs, func(r run) string { return fmt.Sprintf("%s vs %s ms", ms(r.adv), ms(r.disc)) }), over <= 50*time.Millisecond)
}
