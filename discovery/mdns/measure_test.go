package mdns_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/mdns"
	"github.com/colugo-go/colugo/internal/netns"
)

// The measurements behind the figures in the package notes. They take
// minutes, so they run only when COLUGO_MDNS_MEASURE=1; always inside the
// namespace harness.

func measureOnly(t *testing.T) {
	if os.Getenv("COLUGO_MDNS_MEASURE") == "" && !netns.Inside() && netns.Role(t) == "" {
		t.Skip("skipping: set COLUGO_MDNS_MEASURE=1 to measure")
	}
}

// TestMeasureLatency: 20 runs of (second instance's Start → Joined on the
// first) and (Close → Left on the other), on lo.
func TestMeasureLatency(t *testing.T) {
	measureOnly(t)
	inNS(t, func(t *testing.T) {
		const runs = 20
		var join, left []time.Duration
		for i := range runs {
			a := quiet(t, peer("a", 7001, 7002, ""))
			bSelf := peer("b", 7101+i, 7102+i, "")
			began := time.Now()
			b := quiet(t, bSelf)
			waitEvent(t, a, discovery.Joined, bSelf.ID, timeout)
			join = append(join, time.Since(began))
			time.Sleep(200 * time.Millisecond)
			began = time.Now()
			_ = b.d.Close()
			waitEvent(t, a, discovery.Left, bSelf.ID, timeout)
			left = append(left, time.Since(began))
			_ = a.d.Close()
		}
		t.Logf("start→Joined over %d runs: %s", runs, summary(join))
		t.Logf("Close→Left over %d runs: %s", runs, summary(left))
	})
}

func quiet(t *testing.T, self discovery.Peer) *node {
	d := mdns.New(mdns.WithInterfaces("lo"))
	ev, err := d.Start(self)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return &node{d: d, self: self, events: ev}
}

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("min %v, median %v, max %v", s[0].Round(10*time.Microsecond),
		s[len(s)/2].Round(10*time.Microsecond), s[len(s)-1].Round(10*time.Microsecond))
}

// TestMeasurePackets: N simulated hosts (N = 2 and 3) each run an idle
// Discovery for 70 s; tcpdump on the bridge counts mDNS packets by source
// over the last 60 s (after start-up).
func TestMeasurePackets(t *testing.T) {
	measureOnly(t)
	if role := netns.Role(t); role != "" {
		runHostNode(t, role)
		return
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("skipping: tcpdump not found (Debian package tcpdump)")
	}
	netns.Run(t, func(t *testing.T) {
		const n = 3
		hosts := netns.NewHosts(t, n)
		netns.CheckInterfaces(t, "lo", "br0", "v1p", "v2p", "v3p")
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
		defer cancel()
		dump := exec.CommandContext(ctx, "tcpdump", "-i", "br0", "-n", "-l", "-tt", "udp", "port", "5353")
		out, err := dump.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := dump.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var pkts []string // "<unix time> <src>"
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) > 3 && (f[1] == "IP" || f[1] == "IP6") {
					mu.Lock()
					pkts = append(pkts, f[0]+" "+f[2])
					mu.Unlock()
				}
			}
		}()
		time.Sleep(time.Second)
		began := time.Now()
		var procs []*netns.Proc
		for i, h := range hosts {
			p := h.Start(t, "node", fmt.Sprintf("NODE_ID=m%d%08x", i, os.Getpid()), "NODE_LIFE=70s")
			procs = append(procs, p)
			go func() {
				for range p.Lines() {
				}
			}()
		}
		for _, p := range procs {
			if err := p.Wait(90 * time.Second); err != nil {
				t.Error(err)
			}
		}
		cancel()
		<-done
		_ = dump.Wait()
		from, to := began.Add(10*time.Second), began.Add(70*time.Second)
		count := map[string]int{}
		mu.Lock()
		for _, p := range pkts {
			ts, src, _ := strings.Cut(p, " ")
			var sec, usec int64
			if _, err := fmt.Sscanf(ts, "%d.%d", &sec, &usec); err != nil {
				continue
			}
			at := time.Unix(sec, usec*1000)
			if at.Before(from) || !at.Before(to) {
				continue
			}
			ip := src[:strings.LastIndexByte(src, '.')]
			if strings.Contains(ip, ":") {
				ip = "all IPv6"
			}
			count[ip]++
		}
		mu.Unlock()
		t.Logf("%d idle nodes, mDNS packets sent per node in 60 s (t=10..70 s): %v (IPv6 packets, all nodes together: zeroconf answers on both families)", n, count)
	})
}
