package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/netns"
)

// TestLAN runs nodes on three simulated hosts (network namespaces joined by
// veths, inside a private namespace: no packet leaves the machine) that find
// each other with the default discovery's mDNS: pub/sub and round-robin
// requests across hosts, a SIGKILLed server reported Left within 3s while
// requests move to the survivor, and a restarted server found again.
func TestLAN(t *testing.T) {
	if role := netns.Role(t); role != "" {
		lanRole(t, role)
		return
	}
	netns.Run(t, func(t *testing.T) {
		hosts := netns.NewHosts(t, 3)
		// The default discovery, spelled out because the outer run says
		// local; each host gets its own registry directory, as separate
		// machines would, so that peers are found by mDNS alone.
		dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
		env := func(i int) []string {
			return []string{colugo.EnvDiscovery + "=local,mdns", "XDG_RUNTIME_DIR=" + dirs[i]}
		}
		srv1 := hosts[0].Start(t, "server", env(0)...)
		hosts[1].Start(t, "server", env(1)...)
		obs := hosts[2].Start(t, "observer", env(2)...)

		expect := func(p *netns.Proc, prefix string, within time.Duration) string {
			t.Helper()
			timeout := time.After(within)
			for {
				select {
				case line, ok := <-p.Lines():
					if !ok {
						t.Fatalf("child exited while waiting for %q", prefix)
					}
					t.Log(line)
					if strings.HasPrefix(line, prefix) {
						return line
					}
				case <-timeout:
					t.Fatalf("no %q within %v", prefix, within)
				}
			}
		}
		expect(srv1, "ready", wait)
		expect(obs, "joined both", wait)
		expect(obs, "ticks from both", wait)
		expect(obs, "round robin ok", wait)

		killed := time.Now()
		if err := srv1.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		expect(obs, "left h1", 3*time.Second)
		t.Logf("SIGKILL to Left across hosts: %v", time.Since(killed))
		expect(obs, "survivor ok", wait)

		hosts[0].Start(t, "server", env(0)...) // same name, new process
		expect(obs, "rejoined h1", wait)
		expect(obs, "resumed", wait)
		if err := obs.Wait(wait); err != nil {
			t.Fatalf("observer: %v", err)
		}
	})
}

// lanRole is the body of a child on a simulated host.
func lanRole(t *testing.T, role string) {
	host := netns.HostName()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // every child ends by itself
	defer cancel()
	say := func(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }
	start := time.Now()
	node, err := colugo.NewNode(host) // the default discovery: host-local plus mDNS
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	switch role {
	case "server":
		if _, err := colugo.Serve(node, "lan/who", func(context.Context, int) (string, error) { return host, nil }); err != nil {
			t.Fatal(err)
		}
		pub, err := colugo.NewPublisher[string](node, "lan/ticks")
		if err != nil {
			t.Fatal(err)
		}
		say("ready")
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = pub.Publish(ctx, host)
			}
		}

	case "observer":
		events := node.Events(ctx)
		joinedAt := map[string]time.Duration{}
		for len(joinedAt) < 2 {
			ev := <-events
			if ev.Kind == discovery.Joined {
				joinedAt[ev.Peer.Name] = time.Since(start)
			}
		}
		say("joined both: %v", joinedAt)
		ticks, err := colugo.Subscribe[string](ctx, node, "lan/ticks", colugo.WithBuffer(1024))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for len(seen) < 2 {
			seen[<-ticks] = true
		}
		say("ticks from both")
		who := func() string {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			h, err := colugo.Request[int, string](rctx, node, "lan/who", 0)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			return h
		}
		counts := map[string]int{}
		for range 10 {
			counts[who()]++
		}
		if counts["h1"] != 5 || counts["h2"] != 5 {
			t.Fatalf("round robin: %v", counts)
		}
		say("round robin ok")
		for ev := range events {
			if ev.Kind == discovery.Left && ev.Peer.Name == "h1" {
				break
			}
		}
		say("left h1")
		for range 5 {
			if h := who(); h != "h2" {
				t.Fatalf("after h1 left, request answered by %s", h)
			}
		}
		say("survivor ok")
		for ev := range events {
			if ev.Kind == discovery.Joined && ev.Peer.Name == "h1" {
				break
			}
		}
		say("rejoined h1")
		// Joined is discovery's word; a request goes to the servers the
		// node has taken in, which WaitServers waits for (a loaded machine
		// once sent all 4 to h2 between the two).
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := node.WaitServers(wctx, "lan/who", 2); err != nil {
			t.Fatalf("h1's service after its restart: %v", err)
		}
		wcancel()
		got := map[string]bool{}
		for range 4 {
			got[who()] = true
		}
		fresh := false
		deadline := time.After(10 * time.Second)
		for !fresh {
			select {
			case h := <-ticks:
				fresh = h == "h1"
			case <-deadline:
				t.Fatal("no ticks from the restarted h1")
			}
		}
		if !got["h1"] || !got["h2"] {
			t.Fatalf("after restart, requests went to %v", got)
		}
		say("resumed")
	default:
		t.Fatalf("unknown role %q", role)
	}
}
