package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/zeroconf/v2"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/internal/netns"
)

// fakeSeedUUID is the node_uuid of the seed node TestDoctorSeed fakes.
const fakeSeedUUID = "0f1e2d3c-4b5a-4697-8877-665544332211"

// TestDoctorSeed: doctor --seed counts and lists the seed sockets it
// finds, and warns when it finds none. Two simulated hosts in a private
// network namespace (mDNS never leaves it): on h1 a child announces a
// seed node's records (a publisher and a reply server) with zeroconf, as
// the seed announces them; on h2 the binary runs doctor.
func TestDoctorSeed(t *testing.T) {
	if netns.Role(t) == "seed" {
		announceFakeSeed(t)
		return
	}
	if os.Getenv("COLUGO_TEST_BIN") == "" && !netns.Inside() {
		t.Setenv("COLUGO_TEST_BIN", binPath) // the children use this build
	}
	netns.Run(t, func(t *testing.T) {
		hosts := netns.NewHosts(t, 2)
		for _, h := range hosts {
			netns.IP(t, "-n", h.Name, "link", "set", "lo", "up")
		}
		checkOnly(t, hosts[1])
		dir := t.TempDir()
		doctor := func() string {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", hosts[1].Name, binPath, "doctor", "--seed", "--listen", "0s", "--wait", "2s")
			// mDNS inside the namespace only: h2's veth reaches h1 alone.
			cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, colugo.EnvDiscovery+"=mdns")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			t.Logf("colugo doctor --seed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
			return out.String()
		}
		if out := doctor(); !regexp.MustCompile(`(?m)^WARN +seed +no seed socket found within 2s`).MatchString(out) {
			t.Error("doctor --seed does not say it found no seed socket")
		}
		seed := hosts[0].Start(t, "seed")
		ready := time.After(30 * time.Second)
		for ok := false; !ok; {
			select {
			case l, open := <-seed.Lines():
				if !open {
					t.Fatal("the seed child ended before READY")
				}
				ok = l == "READY" // other lines: the test framework's
			case <-ready:
				t.Fatal("the seed child is not ready")
			}
		}
		out := doctor()
		for _, want := range []string{
			`(?m)^OK +seed +2 seed sockets of 1 seed nodes$`,
			`(?m)^INFO +peers +no colugo peer found \(--wait 2s\); seed nodes only \(below\)$`,
			`(?m)^INFO +seed ` + fakeSeedUUID + ` +publishes seed\.topic at 10\.77\.0\.1:45001$`,
			`(?m)^INFO +seed ` + fakeSeedUUID + ` +serves seed\.echo at 10\.77\.0\.1:45002$`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("doctor --seed: no line matching %s", want)
			}
		}
	})
}

// announceFakeSeed announces, on this host's veth, the records of a seed
// node with a publisher and a reply server (nothing listens on their
// ports: doctor only lists them), says READY and keeps them up for a
// minute at most (the test kills it before).
func announceFakeSeed(t *testing.T) {
	ifs, err := net.Interfaces() // lo and the host's veth (netns.Role checked)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ifs, func(i net.Interface) bool { return i.Flags&net.FlagLoopback == 0 })
	if i < 0 {
		t.Fatal("no veth")
	}
	iface := &ifs[i]
	addrs, err := iface.Addrs()
	if err != nil || len(addrs) == 0 {
		t.Fatalf("no address on %s: %v", iface.Name, err)
	}
	ip, _, _ := net.ParseCIDR(addrs[0].String())
	for _, s := range []struct {
		topic, kind string
		port        int
	}{{"seed.topic", "1", 45001}, {"seed.echo", "4", 45002}} {
		srv, err := zeroconf.RegisterProxy("_"+s.topic+"._"+fakeSeedUUID, "_colugo._tcp", "local.", s.port, "seedhost",
			[]string{ip.String()}, []string{"topic=" + s.topic, "socket_type=" + s.kind, "node_uuid=" + fakeSeedUUID}, []net.Interface{*iface})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
	}
	fmt.Println("READY")
	select {
	case <-t.Context().Done():
	case <-time.After(time.Minute):
	}
}

// checkOnly fails t unless h's only interfaces are lo and its veth, before
// the binary runs mDNS there.
func checkOnly(t *testing.T, h *netns.Host) {
	t.Helper()
	out, err := exec.Command("ip", "-n", h.Name, "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip -n %s link show: %v", h.Name, err)
	}
	for l := range strings.Lines(string(out)) {
		if f := strings.Fields(l); len(f) >= 2 {
			if name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@"); name != "lo" && name != h.Iface {
				t.Fatalf("host %s has interface %q besides lo and %s: refusing to run mDNS there", h.Name, name, h.Iface)
			}
		}
	}
}
