// Command soak publishes at full rate, with no flow control, to one fast and
// one slow subscriber over colugo's zmq transport on 127.0.0.1, and prints
// the process's RSS, heap and goroutine count over time: they must stay
// flat while the slow subscriber loses messages.
//
//	cd bench && go run ./cmd/soak             # 60 s
//	go run ./cmd/soak -d 10m -every 30s
//
// The slow subscriber takes one value per -slow and, with -policy block
// (the default), holds its connection for up to -block on a full channel,
// so that the publisher's per-connection queue fills and drops: the
// hardest case for memory. -policy oldest drops at the subscriber instead.
// It exits 1 when the goroutine count or RSS grew.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/transport/zmq"
)

type sample struct {
	t          time.Duration
	rss, heap  uint64
	goroutines int
}

func main() {
	d := flag.Duration("d", 60*time.Second, "how long to run")
	every := flag.Duration("every", 5*time.Second, "print interval")
	size := flag.Int("size", 1024, "payload bytes")
	slow := flag.Duration("slow", 2*time.Millisecond, "the slow subscriber takes one value per this")
	policy := flag.String("policy", "block", "slow subscriber's drop policy: block or oldest")
	block := flag.Duration("block", 50*time.Millisecond, "with -policy block: how long a delivery may wait")
	flag.Parse()
	if os.Getenv("COLUGO_DISCOVERY") == "" {
		_ = os.Setenv("COLUGO_DISCOVERY", "local") // nothing leaves the host
	}
	if err := run(*d, *every, *size, *slow, *policy, *block); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(d, every time.Duration, size int, slow time.Duration, policy string, block time.Duration) error {
	var slowPolicy colugo.DropPolicy
	switch policy {
	case "block":
		slowPolicy = colugo.Block(block)
	case "oldest":
		slowPolicy = colugo.DropOldest
	default:
		return fmt.Errorf("unknown policy %q", policy)
	}
	dir, err := os.MkdirTemp("", "colugo-soak-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var nodes []*colugo.Node
	defer func() {
		for i := len(nodes) - 1; i >= 0; i-- {
			_ = nodes[i].Close()
		}
	}()
	mk := func(name string) (*colugo.Node, error) {
		tr, err := zmq.New()
		if err != nil {
			return nil, err
		}
		n, err := colugo.NewNode(name, colugo.WithTransport(tr), colugo.WithDiscovery(local.New(local.WithDir(dir))))
		if err == nil {
			nodes = append(nodes, n)
		}
		return n, err
	}
	pn, err := mk("soak-pub")
	if err != nil {
		return err
	}
	fn, err := mk("soak-fast")
	if err != nil {
		return err
	}
	sn, err := mk("soak-slow")
	if err != nil {
		return err
	}
	raw := colugo.WithCodec(codec.Raw{})
	pub, err := colugo.NewPublisher[[]byte](pn, "soak/t", raw)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fast, err := colugo.Subscribe[[]byte](ctx, fn, "soak/t", raw, colugo.WithBuffer(1024))
	if err != nil {
		return err
	}
	slowCh, err := colugo.Subscribe[[]byte](ctx, sn, "soak/t", raw, colugo.WithBuffer(64), colugo.WithDropPolicy(slowPolicy))
	if err != nil {
		return err
	}
	var published, fastGot, slowGot atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		for range fast {
			fastGot.Add(1)
		}
	})
	wg.Go(func() {
		t := time.NewTicker(slow)
		defer t.Stop()
		for range slowCh {
			slowGot.Add(1)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
	})
	payload := make([]byte, size)
	wg.Go(func() {
		for ctx.Err() == nil {
			for range 256 {
				if err := pub.Publish(ctx, payload); err != nil {
					return
				}
			}
			published.Add(256)
		}
	})

	fmt.Printf("soak: %v, %d B payloads, one fast subscriber and one slow (one value per %v, policy %s); %s, %d CPUs, %s\n\n",
		d, size, slow, policy, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Println("| t | RSS MiB | heap MiB | goroutines | published/s | fast got/s | slow got/s | pub send-dropped | slow sub dropped |")
	fmt.Println("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var samples []sample
	var lastP, lastF, lastS int64
	last := start
	for now := range tick.C {
		el := now.Sub(last)
		last = now
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s := sample{t: now.Sub(start), rss: rss(), heap: ms.HeapInuse, goroutines: runtime.NumGoroutine()}
		samples = append(samples, s)
		p, f, sl := published.Load(), fastGot.Load(), slowGot.Load()
		rate := func(n, prev int64) string { return fmt.Sprintf("%.1f k", float64(n-prev)/el.Seconds()/1e3) }
		fmt.Printf("| %v | %.1f | %.1f | %d | %s | %s | %s | %d | %d |\n",
			s.t.Round(time.Second), mib(s.rss), mib(s.heap), s.goroutines,
			rate(p, lastP), rate(f, lastF), rate(sl, lastS),
			pn.Stats().Transport.SendDropped, sn.Stats().Topics["soak/t"].Dropped)
		lastP, lastF, lastS = p, f, sl
		if s.t >= d {
			break
		}
	}
	cancel()
	return verdict(samples)
}

// verdict compares the first half of the samples (after the first, the
// warm-up) with the second: goroutines must not grow, RSS not by more than
// a quarter plus 8 MiB.
func verdict(s []sample) error {
	if len(s) < 3 {
		fmt.Println("\ntoo short to judge")
		return nil
	}
	s = s[1:]
	half := len(s) / 2
	maxOf := func(xs []sample) (rss uint64, g int) {
		for _, x := range xs {
			rss, g = max(rss, x.rss), max(g, x.goroutines)
		}
		return
	}
	r1, g1 := maxOf(s[:half])
	r2, g2 := maxOf(s[half:])
	fmt.Printf("\nRSS max %.1f → %.1f MiB, goroutines max %d → %d (first half → second half, after warm-up)\n", mib(r1), mib(r2), g1, g2)
	if g2 > g1 {
		return fmt.Errorf("goroutines grew: %d → %d", g1, g2)
	}
	if float64(r2) > 1.25*float64(r1)+8<<20 {
		return fmt.Errorf("RSS grew: %.1f → %.1f MiB", mib(r1), mib(r2))
	}
	fmt.Println("flat: yes")
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// rss reads VmRSS from /proc/self/status (0 where there is none).
func rss() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
