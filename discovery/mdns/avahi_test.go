package mdns_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/netns"
	"github.com/colugo-go/colugo/internal/testwait"
)

// The avahi tools the interop test needs, with their Debian packages.
var avahiTools = []struct{ bin, pkg string }{
	{"avahi-daemon", "avahi-daemon"},
	{"avahi-browse", "avahi-utils"},
	{"avahi-publish", "avahi-utils"},
	{"dbus-daemon", "dbus-daemon"},
}

// A system bus of our own: anyone may own any name and send anything (the
// only clients are the test's avahi processes).
const busConf = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
`

// avahi-daemon's configuration: IPv4 only, nothing published but what the
// test asks for, no wide-area or reflector.
const avahiConf = `[server]
host-name=avahi-peer
use-ipv4=yes
use-ipv6=no
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
enable-reflector=no
`

// daemon starts a long-running process and, at cleanup, kills it (by its
// pid) and waits for it. Its output goes to the test log.
func daemon(t *testing.T, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	w := &tlog{t: t}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd
}

// TestInteropAvahi: avahi-daemon 0.8 (Debian avahi-daemon, with
// avahi-utils and a private dbus-daemon) runs on simulated host h2, our
// node on h1 (avahi ignores mDNS packets from its own addresses, so the two
// cannot share lo). avahi-browse -rpt lists our node with its port and TXT;
// a service published with avahi-publish is found by our node, kept past
// several expiries, and reported Left when avahi withdraws it.
func TestInteropAvahi(t *testing.T) {
	// Rounds 1.5 s apart: avahi (like python-zeroconf) multicasts a record
	// at most once a second, so rounds 1 s apart could find some answers
	// suppressed.
	switch netns.Role(t) {
	case "node":
		runHostNode(t, "node")
		return
	case "avahi":
		runAvahi(t)
		return
	}
	var missing []string
	for _, tool := range avahiTools {
		if _, err := exec.LookPath(tool.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool.bin, tool.pkg))
		}
	}
	if len(missing) > 0 {
		t.Skipf("skipping: not installed: %s", strings.Join(missing, ", "))
	}
	t.Parallel() // its own namespaces; mostly waiting
	netns.Run(t, func(t *testing.T) {
		hosts := netns.NewHosts(t, 2)
		netns.CheckInterfaces(t, "lo", "br0", "v1p", "v2p")
		id := fmt.Sprintf("gonode%08x", os.Getpid())
		type line struct {
			host, text string
			at         time.Time
		}
		lines := make(chan line, 256)
		var wg sync.WaitGroup
		procs := []*netns.Proc{
			hosts[0].Start(t, "node", "NODE_ID="+id, "NODE_LIFE=13s", "NODE_REFRESH=1500ms", "NODE_EXPIRY=3200ms"),
			hosts[1].Start(t, "avahi", "NODE_ID="+id),
		}
		for i, p := range procs {
			wg.Go(func() {
				for l := range p.Lines() {
					lines <- line{hosts[i].Name, l, time.Now()}
				}
			})
		}
		go func() { wg.Wait(); close(lines) }()
		var joined, withdrawn, left time.Time
		listed := false
		wantBrowse := fmt.Sprintf("AVAHI =;v2;IPv4;h1-%s;_colugo-go._tcp;local;colugo-%s.local;10.77.0.1;7000;", id, id)
		for l := range lines { // bounded: both children exit
			t.Logf("%s: %s", l.host, l.text)
			switch {
			case strings.HasPrefix(l.text, "EVENT joined avahiid1 10.77.0.2:7601 avahi-node"):
				joined = l.at
			case strings.HasPrefix(l.text, "EVENT left avahiid1 "):
				left = l.at
				_ = procs[1].Signal(syscall.SIGUSR1) // runAvahi may stop now
			case strings.HasPrefix(l.text, "EVENT "):
				t.Errorf("unexpected %s", l.text)
			case l.text == "WITHDRAWN":
				withdrawn = l.at
			case strings.HasPrefix(l.text, wantBrowse):
				txt := strings.Fields(strings.TrimPrefix(l.text, wantBrowse))
				slices.Sort(txt)
				wantTXT := []string{`"id=` + id + `"`, `"pub=7001"`, `"v=1"`}
				if !slices.Equal(txt, wantTXT) {
					t.Errorf("avahi-browse TXT %q, want %q", txt, wantTXT)
				}
				listed = true
			}
		}
		for _, p := range procs {
			if err := p.Wait(timeout); err != nil {
				t.Errorf("child: %v", err)
			}
		}
		if !listed {
			t.Errorf("avahi-browse did not list %q...", wantBrowse)
		}
		switch {
		case joined.IsZero():
			t.Fatal("our node never saw avahi's service")
		case withdrawn.IsZero():
			t.Fatal("avahi child did not withdraw its service")
		case left.IsZero():
			t.Fatal("no Left after avahi withdrew its service")
		case left.Before(withdrawn):
			t.Fatalf("Left %v before avahi withdrew its service", withdrawn.Sub(left))
		}
		t.Logf("avahi's service kept %v (expiry 3.2 s), Left %v after it was withdrawn",
			withdrawn.Sub(joined).Round(time.Millisecond), left.Sub(withdrawn).Round(time.Millisecond))
		if kept := withdrawn.Sub(joined); kept < 6400*time.Millisecond {
			t.Errorf("avahi's service was up only %v after Joined, want at least 2 expiries", kept)
		}
	})
}

// runAvahi is the avahi host's side of TestInteropAvahi: a private D-Bus
// system bus and avahi-daemon on this host's veth; it publishes a colugo
// instance, prints what avahi-browse -rpt lists ("AVAHI <line>") once it
// lists the Go node (NODE_ID), keeps the instance published for 9 s,
// withdraws it ("WITHDRAWN") and stops when the parent signals (SIGUSR1)
// that the Go node reported it Left.
func runAvahi(t *testing.T) {
	leftSeen := make(chan os.Signal, 1)
	signal.Notify(leftSeen, syscall.SIGUSR1)
	defer signal.Stop(leftSeen)
	// ip netns exec gave us a mount namespace of our own: a tmpfs on /run
	// hides the machine's /run/avahi-daemon (pid file and socket).
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "mount", "-t", "tmpfs", "colugo-avahi", "/run").CombinedOutput(); err != nil {
		t.Fatalf("mount a private /run for avahi-daemon: %v: %s", err, out)
	}
	if err := os.MkdirAll("/run/avahi-daemon", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	busEnv := []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + sock}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	daemon(t, nil, "dbus-daemon", "--config-file="+write("bus.conf", fmt.Sprintf(busConf, sock)), "--nofork", "--nopidfile")
	if !testwait.For(timeout, func() bool { _, err := os.Stat(sock); return err == nil }) {
		t.Fatal("dbus-daemon did not create its socket")
	}
	conf := strings.Replace(avahiConf, "[server]\n", "[server]\nallow-interfaces="+os.Getenv("COLUGO_NETNS_IFACE")+"\n", 1)
	daemon(t, busEnv, "avahi-daemon", "--no-drop-root", "--no-chroot", "--no-rlimits", "-f", write("avahi.conf", conf))
	if !testwait.For(timeout, func() bool { _, err := os.Stat("/run/avahi-daemon/socket"); return err == nil }) {
		t.Fatal("avahi-daemon did not start")
	}
	pub := daemon(t, busEnv, "avahi-publish", "-s", "avahi-node-avahiid1", "_colugo-go._tcp", "7601",
		"v=1", "id=avahiid1", "pub=7602", "cat=avcat")
	began := time.Now()
	// Browse until avahi lists the Go node resolved (it probes and
	// announces, and the Go node starts, meanwhile), within timeout.
	resolved := ";h1-" + os.Getenv("NODE_ID") + ";"
	deadline := time.Now().Add(timeout)
	var out []byte
	for attempt := 0; attempt < 50 && time.Now().Before(deadline); attempt++ {
		bctx, bcancel := context.WithDeadline(t.Context(), deadline)
		browse := exec.CommandContext(bctx, "avahi-browse", "-rpt", "_colugo-go._tcp")
		browse.Env = append(os.Environ(), busEnv...)
		browse.Stderr = &tlog{t: t}
		var err error
		out, err = browse.Output()
		bcancel()
		if err != nil {
			t.Errorf("avahi-browse: %v", err)
			break
		}
		if slices.ContainsFunc(strings.Split(string(out), "\n"), func(l string) bool {
			return strings.HasPrefix(l, "=;") && strings.Contains(l, resolved)
		}) {
			break
		}
	}
	for l := range strings.Lines(string(out)) {
		fmt.Println("AVAHI", strings.TrimRight(l, "\n"))
	}
	time.Sleep(time.Until(began.Add(9 * time.Second))) // the time kept published: what the test measures, not synchronisation
	_ = pub.Process.Signal(syscall.SIGTERM)
	_ = pub.Wait()
	fmt.Println("WITHDRAWN")
	select { // the Go node reports Left before we go (and avahi-daemon with us)
	case <-leftSeen:
	case <-time.After(timeout):
		t.Error("no SIGUSR1 from the parent: it saw no Left within", timeout)
	}
}
