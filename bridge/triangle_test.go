package bridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

// TestTriangle: three sites, each on its own server of a three-server NATS
// cluster, all exporting and importing one topic: every subscriber gets
// every message of the other sites, and of its own, exactly once.
func TestTriangle(t *testing.T) {
	servers := natsCluster(t, 3)
	const n = 2000 // per site
	both := bridge.Lists{Topics: []bridge.Topic{{Name: "shared"}}}
	type site struct {
		name string
		b    *bridge.Bridge
		sub  <-chan string
		pub  *colugo.Publisher[string]
	}
	var sites []*site
	for i, srv := range servers {
		s := &site{name: string(rune('a' + i))}
		net := colugotest.NewNetwork(t)
		cfg := cfgFor(srv, s.name)
		cfg.Export, cfg.Import = both, both
		s.b, _ = runBridge(t, net, cfg)
		var err error
		if s.sub, err = colugo.Subscribe[string](t.Context(), net.NewNode("sub"), "shared", colugo.WithBuffer(4*n)); err != nil {
			t.Fatal(err)
		}
		s.pub, _ = colugo.NewPublisher[string](net.NewNode("pub"), "shared")
		sites = append(sites, s)
	}
	// Warm up: every site hears every other.
	for _, from := range sites {
		for _, to := range sites {
			if from != to {
				w := "warm-" + from.name
				until(t, from.name+"→"+to.name, func() { _ = from.pub.Publish(t.Context(), w) },
					recv(to.sub, func(v string) bool { return v == w }))
			}
		}
	}
	start := time.Now()
	for i := range n {
		for _, s := range sites {
			if err := s.pub.Publish(t.Context(), fmt.Sprintf("%s%d", s.name, i)); err != nil {
				t.Fatal(err)
			}
		}
		if i%200 == 199 { // a sustainable rate: let the bridges drain
			for _, s := range sites {
				w := fmt.Sprintf("%s%d", s.name, i)
				testwait.Until(t, "exported "+w, func() bool { return s.b.Stats().Export.Messages >= uint64(i+1) })
			}
		}
	}
	for _, s := range sites {
		_ = s.pub.Publish(t.Context(), "fence-"+s.name)
	}
	for _, to := range sites {
		seen := map[string]int{}
		timeout := time.After(wait)
		for seen["fence-a"] == 0 || seen["fence-b"] == 0 || seen["fence-c"] == 0 {
			select {
			case v := <-to.sub:
				seen[v]++
			case <-timeout:
				t.Fatalf("site %s: fences never arrived (%d values)", to.name, len(seen))
			}
		}
		dup, lost := 0, 0
		for _, from := range sites {
			for i := range n {
				switch seen[fmt.Sprintf("%s%d", from.name, i)] {
				case 0:
					lost++
				case 1:
				default:
					dup++
				}
			}
		}
		if dup != 0 || lost != 0 {
			t.Errorf("site %s: %d duplicates, %d lost of %d", to.name, dup, lost, 3*n)
		}
	}
	t.Logf("%d messages through a triangle in %v", 3*n, time.Since(start))
}
