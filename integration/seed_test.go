package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/mdns"
	"github.com/colugo-go/colugo/internal/netns"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
)

// The seed is the Python colugo (pickledgator/colugo at c2756d4, MIT),
// kept unpatched in testdata/seed/seed-colugo with the three patches that
// make it run on Debian 12's python3-zmq, python3-tornado and
// python3-zeroconf. It sends mDNS, so it runs only inside the private
// network namespaces of internal/netns.

const (
	seedPython = "/usr/bin/python3"
	// envRequireSeed makes the seed tests fail, rather than skip, where the
	// seed cannot run (CI sets it).
	envRequireSeed = "COLUGO_REQUIRE_SEED"
)

// needSeed skips t (or fails it when COLUGO_REQUIRE_SEED is set) unless
// network namespaces, the seed's Python modules and a patch tool are
// available. It runs in the parent, before netns.Run.
func needSeed(t *testing.T) {
	t.Helper()
	var why []string
	if err := netns.Available(); err != nil {
		why = append(why, err.Error())
	}
	if out, err := exec.Command(seedPython, "-c", "import zmq, tornado, zeroconf").CombinedOutput(); err != nil {
		why = append(why, fmt.Sprintf("%s cannot import zmq, tornado and zeroconf (Debian packages python3-zmq, python3-tornado, python3-zeroconf): %v: %s",
			seedPython, err, strings.TrimSpace(string(out))))
	}
	if _, err := exec.LookPath("git"); err != nil {
		why = append(why, "git (to apply the seed's patches) not found")
	}
	if len(why) == 0 {
		return
	}
	if os.Getenv(envRequireSeed) != "" {
		t.Fatalf("%s is set but the seed cannot run: %s", envRequireSeed, strings.Join(why, "; "))
	}
	t.Skipf("skipping: the seed cannot run here (set %s=1 to make this a failure): %s", envRequireSeed, strings.Join(why, "; "))
}

// prepareSeed copies testdata/seed into a temporary directory and applies
// the seed's patches to the copy; it returns the directory to put on
// PYTHONPATH (it also holds seednode.py).
func prepareSeed(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "seed")
	src := filepath.Join("testdata", "seed")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy the seed: %v", err)
	}
	root := filepath.Join(dst, "seed-colugo")
	patches, err := filepath.Glob(filepath.Join(root, "patches", "*.diff"))
	if err != nil || len(patches) != 3 {
		t.Fatalf("seed patches: %v %v", patches, err)
	}
	slices.Sort(patches)
	for _, p := range patches {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		cmd := exec.CommandContext(ctx, "git", "apply", "-p1", p)
		cmd.Dir = root
		// Outside any repository git apply works like patch(1); the
		// ceiling keeps it from finding one above the temporary directory.
		cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dst))
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("git apply %s: %v: %s", filepath.Base(p), err, out)
		}
	}
	return dst
}

// seedProc is a running seednode.py.
type seedProc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // stdout, closed at exit
	done  chan struct{}
	err   error // exit status, once done is closed

	mu  sync.Mutex
	all []string // every stdout line so far
}

// startSeed runs testdata/seed/seednode.py with args on host h (made by
// netns.NewHosts inside netns.Run), after checking that h's only
// interfaces are lo and its veth, or, when h is nil, in netns.Run's own
// namespace (whose only interface Run checked to be lo). At cleanup it
// closes the process's stdin (a publisher then stops, sending goodbyes),
// then kills it by its pid if it is still running after 5 s.
func startSeed(t *testing.T, h *netns.Host, dir, name string, args ...string) *seedProc {
	t.Helper()
	return startSeedScript(t, h, dir, "seednode.py", name, args...)
}

// startSeedScript is startSeed for another Python program of
// testdata/seed (script is its path there).
func startSeedScript(t *testing.T, h *netns.Host, dir, script, name string, args ...string) *seedProc {
	t.Helper()
	if !netns.Inside() {
		t.Fatal("the seed sends mDNS: run it only inside netns.Run")
	}
	argv := append([]string{filepath.Join(dir, script)}, args...)
	cmd := exec.Command(seedPython, argv...)
	if h != nil {
		checkHostInterfaces(t, h)
		cmd = exec.Command("ip", append([]string{"netns", "exec", h.Name, seedPython}, argv...)...)
	} else {
		netns.CheckInterfaces(t, "lo")
	}
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(dir, "seed-colugo"), "PYTHONUNBUFFERED=1")
	cmd.Stderr = &seedLog{t: t, prefix: name + " stderr: "}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &seedProc{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.all = append(p.all, sc.Text())
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default: // nobody reads that many: all keeps them
			}
		}
		close(p.lines)
		p.err = cmd.Wait()
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// checkHostInterfaces fails t unless host h's network namespace has no
// interface but lo and h.Iface.
func checkHostInterfaces(t *testing.T, h *netns.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "-n", h.Name, "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip -n %s link show: %v", h.Name, err)
	}
	for l := range strings.Lines(string(out)) {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name != "lo" && name != h.Iface {
			t.Fatalf("host %s has interface %q besides lo and %s: refusing to start the seed there", h.Name, name, h.Iface)
		}
	}
}

// seedHosts makes n simulated hosts (netns.NewHosts) fit for seed nodes:
// lo up, and a default route through the veth, since a seed node binds
// and announces the source address of its route to 10.255.255.255 (and
// 127.0.0.1 when it has none, which no other host can reach).
func seedHosts(t *testing.T, n int) []*netns.Host {
	t.Helper()
	hosts := netns.NewHosts(t, n)
	for _, h := range hosts {
		netns.IP(t, "-n", h.Name, "link", "set", "lo", "up")
		netns.IP(t, "-n", h.Name, "route", "add", "default", "dev", h.Iface)
	}
	return hosts
}

// stop closes the process's stdin and waits for it to exit, killing it
// (by pid) after 5 s.
func (p *seedProc) stop(t *testing.T) {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Logf("%s still running 5 s after its stdin closed: killing pid %d", p.name, p.cmd.Process.Pid)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// expect returns the first stdout line starting with prefix, failing t if
// the process exits or d passes first.
func (p *seedProc) expect(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s exited (%v) before printing %q; it printed %q", p.name, p.err, prefix, p.output())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("%s printed no %q within %v; it printed %q", p.name, prefix, d, p.output())
		}
	}
}

// output returns every stdout line so far.
func (p *seedProc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.all)
}

// exceptions returns the EXCEPTION lines printed so far: an exception that
// escaped a thread of the seed (its zeroconf browser, say) or was logged.
func (p *seedProc) exceptions() []string {
	var out []string
	for _, l := range p.output() {
		if strings.HasPrefix(l, "EXCEPTION") {
			out = append(out, l)
		}
	}
	return out
}

// seedLog sends a seed process's stderr to the test log, a line at a time.
type seedLog struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *seedLog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.t.Log(w.prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// hostileNames are colugo node names that hurt seed nodes when colugo-go
// shared their service type: '_' (the seed splits instance names on it;
// robot_ + 45 x made it build a name over 63 bytes and killed its
// browser thread), 63-byte names, dots (label boundaries), non-ASCII, and
// names shaped like seed instances.
var hostileNames = []string{
	"robot_" + strings.Repeat("x", 45),
	"_x._y",
	strings.Repeat("n", 63),
	"a.b.c.d.e.f",
	"ünïcødé-ノード",
	strings.Repeat("é", 31) + "_",
	"_colugo._tcp",
	"_harm.topic._10330126-eedb-11f1-b22a-adb5f266efc5",
	"_",
	"robot_arm.v2_",
}

// TestSeedDoNoHarm: colugo-go nodes on the LAN, whatever their names, do
// not slow down or break seed nodes' discovery. Three simulated hosts in a
// private network namespace: a real seed publisher (topic harm.topic, a
// message every 10 ms) runs on h1 throughout; rounds alternate a seed
// subscriber on h2 alone, and the same while h3 runs 10 colugo-go nodes
// (mDNS discovery, hostileNames) that have found each other. Each
// subscriber reports its discovery time (Node made → first message). Pass:
// every subscriber gets its messages, no seed thread dies or logs an
// error, the seed's browser handles no record but the seed's own, and the
// median discovery time with colugo-go nodes is within 300 ms of the
// median without.
//
// While colugo-go announced the seed's _colugo._tcp this failed: each
// colugo-go record cost every seed browser about 1 s, and robot_+45 x
// killed it.
func TestSeedDoNoHarm(t *testing.T) {
	if role := netns.Role(t); role != "" {
		hostileRole(t, role)
		return
	}
	needSeed(t)
	netns.Run(t, func(t *testing.T) {
		hosts := seedHosts(t, 3)
		dir := prepareSeed(t)

		const topic, count, rounds = "harm.topic", 20, 5
		pub := startSeed(t, hosts[0], dir, "seed-pub", "pub", topic, "10")
		pub.expect(t, "READY", 20*time.Second)

		// The seed's responder answers a question at most about once a
		// second: a subscriber that asks within a second of the previous
		// asker gets no answer and finds the publisher only with its second
		// query, 1 s later (measured: alternating 0.01 s and 1.1 s with
		// subscribers 0.65 s apart, 0.01 s every time 1.5 s apart; on one
		// host, the answer to the first query, unicast to port 5353, also
		// reaches another process's socket as often as not). Subscribers
		// start this long after the previous one is done, so that the
		// figures show colugo-go's effect and not the seed's own limits.
		const spacing = 1500 * time.Millisecond
		lastDone := time.Now()
		var alone, with []time.Duration
		var foreign []string
		measure := func(label string) time.Duration {
			t.Helper()
			time.Sleep(time.Until(lastDone.Add(spacing))) // pacing of the measurement, see spacing
			defer func() { lastDone = time.Now() }()
			sub := startSeed(t, hosts[1], dir, "seed-sub-"+label, "sub", topic, strconv.Itoa(count), "15")
			first := sub.expect(t, "FIRST ", 20*time.Second)
			sub.expect(t, "DONE ", 20*time.Second)
			sub.stop(t)
			if sub.err != nil {
				t.Errorf("%s: %v", sub.name, sub.err)
			}
			if ex := sub.exceptions(); len(ex) > 0 {
				t.Errorf("%s: %q", sub.name, ex)
			}
			for _, l := range sub.output() {
				if f := strings.Fields(l); len(f) == 3 && f[0] == "BROWSED" && !strings.HasPrefix(f[2], "_"+topic+"._") {
					foreign = append(foreign, label+": "+l)
				}
			}
			secs, err := strconv.ParseFloat(strings.TrimPrefix(first, "FIRST "), 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", sub.name, first, err)
			}
			d := time.Duration(secs * float64(time.Second))
			t.Logf("%s: first message %v after the seed Node was made", label, d)
			return d
		}

		for r := range rounds {
			alone = append(alone, measure(fmt.Sprintf("alone-%d", r)))

			// mDNS only: the nodes must find each other the way they are
			// found by everyone else on the LAN.
			p := hosts[2].Start(t, "hostile", colugo.EnvDiscovery+"=mdns")
			expectLine(t, p, "READY", 4*wait)
			with = append(with, measure(fmt.Sprintf("with-%d", r)))
			if err := p.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			expectLine(t, p, "CLOSED", wait)
			if err := p.Wait(wait); err != nil {
				t.Fatalf("colugo-go nodes: %v", err)
			}
		}
		if ex := pub.exceptions(); len(ex) > 0 {
			t.Errorf("seed publisher: %q", ex)
		}
		for _, l := range pub.output() { // the publisher's browser saw every round
			if f := strings.Fields(l); len(f) == 3 && f[0] == "BROWSED" && !strings.HasPrefix(f[2], "_"+topic+"._") {
				foreign = append(foreign, "publisher: "+l)
			}
		}
		if len(foreign) > 0 {
			t.Errorf("the seed's browser handled records that are not seed records (%d):\n%s", len(foreign), strings.Join(foreign, "\n"))
		}
		ma, mw := median(alone), median(with)
		t.Logf("seed subscriber discovery time over %d rounds: alone median %v %v; with %d colugo-go nodes median %v %v",
			rounds, ma, roundAll(alone), len(hostileNames), mw, roundAll(with))
		if mw > ma+300*time.Millisecond {
			t.Errorf("with colugo-go nodes the seed's median discovery time is %v, alone %v: more than 300 ms worse", mw, ma)
		}
	})
}

// expectLine returns the first line of p's stdout starting with prefix,
// failing t if p's stdout closes or d passes first.
func expectLine(t *testing.T, p *netns.Proc, prefix string, d time.Duration) string {
	t.Helper()
	timeout := time.After(d)
	var other []string // the child's test output: why it failed
	for {
		select {
		case l, ok := <-p.Lines():
			if !ok {
				t.Fatalf("child exited before printing %q; it printed %q", prefix, other)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
			other = append(other, l)
		case <-timeout:
			t.Fatalf("child printed no %q within %v; it printed %q", prefix, d, other)
		}
	}
}

// hostileRole is the body of TestSeedDoNoHarm's child on h3: one colugo-go
// node per hostileNames (the discovery COLUGO_DISCOVERY gives: mDNS), READY
// once the first has found all the others over mDNS, then CLOSED once
// SIGINT came and every node is closed.
func hostileRole(t *testing.T, role string) {
	if role != "hostile" {
		t.Fatalf("unknown role %q", role)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	defer signal.Stop(stop)
	nodes := make([]*colugo.Node, len(hostileNames))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, name := range hostileNames {
		wg.Go(func() { nodes[i], errs[i] = colugo.NewNode(name) })
	}
	wg.Wait()
	defer closeAll(t, nodes)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("colugo-go nodes: %v", err)
	}
	// 3 × wait: ten nodes' announcements and $describes on a machine
	// loaded by a full race run.
	if !testwait.For(3*wait, func() bool { return len(nodes[0].Peers()) == len(nodes)-1 }) {
		t.Fatalf("the colugo-go nodes did not find each other over mDNS within %v: the first sees %d", 3*wait, len(nodes[0].Peers()))
	}
	fmt.Println("READY")
	select {
	case <-stop:
	case <-time.After(time.Minute): // every child ends by itself
		t.Error("no SIGINT from the parent within a minute")
	}
	closeAll(t, nodes)
	nodes = nil
	fmt.Println("CLOSED")
}

func closeAll(t *testing.T, nodes []*colugo.Node) {
	t.Helper()
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n == nil {
			continue
		}
		wg.Go(func() {
			if err := n.Close(); err != nil {
				t.Errorf("close %q: %v", n.Name(), err)
			}
		})
	}
	wg.Wait()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// TestSeedDirectory: mdns.SeedDirectory against real seed nodes, in a
// private network namespace (lo only). A seed publisher is reported
// Joined with its address and kept while it lives, Left at its goodbye; a
// restarted one (new uuid, new port) is a new Joined; one killed (no
// goodbye) is Left when its records expire; a seed reply server is a
// SeedRep; and a seed subscriber finds
// the record Announce makes for a Go PUB socket and receives from it.
func TestSeedDirectory(t *testing.T) {
	needSeed(t)
	netns.Run(t, func(t *testing.T) {
		netns.CheckInterfaces(t, "lo")
		dir := prepareSeed(t)
		const expiry = 3 * time.Second
		d := mdns.NewSeedDirectory(mdns.WithInterfaces("lo"), mdns.WithRefreshInterval(500*time.Millisecond), mdns.WithExpiry(expiry))
		events, err := d.Start()
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := d.Close(); err != nil {
				t.Error(err)
			}
		}()
		next := func(kind discovery.EventKind, within time.Duration) discovery.SeedSocket {
			t.Helper()
			select {
			case ev := <-events:
				if ev.Kind != kind {
					t.Fatalf("seed event %v %+v, want %v", ev.Kind, ev.Socket, kind)
				}
				return ev.Socket
			case <-time.After(within):
				t.Fatalf("no %v seed event within %v", kind, within)
			}
			panic("unreachable")
		}
		quiet := func(within time.Duration) {
			t.Helper()
			select {
			case ev := <-events:
				t.Fatalf("unexpected seed event %v %+v", ev.Kind, ev.Socket)
			case <-time.After(within):
			}
		}

		const topic = "dir.topic"
		began := time.Now()
		pub := startSeed(t, nil, dir, "seed-pub", "pub", topic, "100")
		s := next(discovery.Joined, wait)
		t.Logf("seed publisher Joined %v after its process started", time.Since(began).Round(time.Millisecond))
		port := strings.TrimPrefix(pub.expect(t, "READY ", wait), "READY ")
		if s.Kind != discovery.SeedPub || s.Topic != topic || s.Addr != "127.0.0.1:"+port || s.Instance != "_"+topic+"._"+s.UUID {
			t.Fatalf("seed publisher %+v (port %s)", s, port)
		}
		quiet(2*expiry + time.Second) // browse rounds keep a live seed socket
		began = time.Now()
		pub.stop(t) // stdin closed: Node.stop, goodbyes
		if left := next(discovery.Left, wait); left != s {
			t.Fatalf("Left %+v, want %+v", left, s)
		}
		el := time.Since(began)
		t.Logf("seed publisher Left %v after its stdin closed", el.Round(time.Millisecond))
		if el > expiry/2 {
			t.Errorf("Left %v after the seed stopped: its goodbye was missed (expiry %v)", el, expiry)
		}

		pub2 := startSeed(t, nil, dir, "seed-pub-2", "pub", topic, "100")
		s2 := next(discovery.Joined, wait)
		if s2.UUID == s.UUID || s2.Instance == s.Instance || s2.Topic != topic {
			t.Fatalf("restarted seed publisher %+v, first %+v", s2, s)
		}
		t.Logf("restarted seed publisher: %s, then %s", s.Addr, s2.Addr)
		began = time.Now()
		if err := pub2.cmd.Process.Kill(); err != nil { // a crash: no goodbye
			t.Fatal(err)
		}
		if left := next(discovery.Left, expiry+wait); left != s2 {
			t.Fatalf("Left %+v, want %+v", left, s2)
		}
		t.Logf("killed seed publisher Left %v after SIGKILL (expiry %v)", time.Since(began).Round(time.Millisecond), expiry)

		// A seed reply server is a SeedRep socket.
		rep := startSeed(t, nil, dir, "seed-rep", "rep", "dir.svc")
		r := next(discovery.Joined, wait)
		rport := strings.TrimPrefix(rep.expect(t, "READY ", wait), "READY ")
		if r.Kind != discovery.SeedRep || r.Topic != "dir.svc" || r.Addr != "127.0.0.1:"+rport {
			t.Fatalf("seed reply server %+v (port %s)", r, rport)
		}
		rep.stop(t)
		if left := next(discovery.Left, wait); left != r {
			t.Fatalf("Left %+v, want %+v", left, r)
		}

		// A Go PUB socket announced seed-style: a seed subscriber finds it.
		gport := rawPub(t, "127.0.0.1", "go-pub")
		withdraw, err := d.Announce("go.topic", discovery.SeedPub, gport)
		if err != nil {
			t.Fatal(err)
		}
		sub := startSeed(t, nil, dir, "seed-sub", "sub", "go.topic", "20", "15")
		first := sub.expect(t, "FIRST ", 20*time.Second)
		sub.expect(t, "DONE ", 20*time.Second)
		t.Logf("seed subscriber of a Go PUB announced by Announce: %s s", strings.TrimPrefix(first, "FIRST "))
		quiet(200 * time.Millisecond) // never our own record
		if err := withdraw(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*seedProc{pub, pub2, rep, sub} {
			if ex := p.exceptions(); len(ex) > 0 {
				t.Errorf("%s: %q", p.name, ex)
			}
		}
		t.Logf("seed directory stats: %+v", d.Stats())
	})
}

// rawPub listens on ip as a ZMTP 3.0 PUB socket written by hand
// (zmtptest): to every subscriber that connects it sends one-frame
// messages "<prefix> N" every 10 ms, as a seed publisher does, until the
// test ends. It returns the port.
func rawPub(t *testing.T, ip, prefix string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			wg.Go(func() {
				defer nc.Close()
				stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
				defer stop()
				if _, err := nc.Write(append(zmtptest.Greeting(), zmtptest.Ready("PUB")...)); err != nil {
					return
				}
				p := zmtptest.NewPeer(nc)
				if _, err := io.ReadFull(p.R, make([]byte, 64)); err != nil {
					return
				}
				if fl, _, err := p.Frame(); err != nil || fl&zmtptest.Command == 0 {
					return // no READY
				}
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for n := 0; ; n++ {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						if _, err := nc.Write(zmtptest.Msg([]byte(fmt.Sprintf("%s %d", prefix, n)))); err != nil {
							return
						}
					}
				}
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// TestSeedDirectoryAcrossHosts: the same across simulated hosts, as on a
// LAN: a seed publisher on h1 is reported with h1's address, and a seed
// subscriber on h2 receives from a Go PUB socket that the directory (on
// the bridge, 10.77.0.254) announces.
func TestSeedDirectoryAcrossHosts(t *testing.T) {
	needSeed(t)
	netns.Run(t, func(t *testing.T) {
		hosts := seedHosts(t, 2)
		netns.IP(t, "addr", "add", "10.77.0.254/24", "dev", "br0")
		netns.CheckInterfaces(t, "lo", "br0", "v1p", "v2p")
		dir := prepareSeed(t)
		d := mdns.NewSeedDirectory(mdns.WithInterfaces("br0"))
		events, err := d.Start()
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := d.Close(); err != nil {
				t.Error(err)
			}
		}()
		pub := startSeed(t, hosts[0], dir, "seed-pub", "pub", "far.topic", "100")
		port := strings.TrimPrefix(pub.expect(t, "READY ", wait), "READY ")
		select {
		case ev := <-events:
			if ev.Kind != discovery.Joined || ev.Socket.Topic != "far.topic" || ev.Socket.Addr != hosts[0].IP+":"+port {
				t.Fatalf("seed event %v %+v, want Joined far.topic at %s:%s", ev.Kind, ev.Socket, hosts[0].IP, port)
			}
		case <-time.After(wait):
			t.Fatal("no Joined for the seed publisher on h1")
		}

		gport := rawPub(t, "10.77.0.254", "go-pub")
		if _, err := d.Announce("go.topic", discovery.SeedPub, gport); err != nil {
			t.Fatal(err)
		}
		sub := startSeed(t, hosts[1], dir, "seed-sub", "sub", "go.topic", "20", "15")
		first := sub.expect(t, "FIRST ", 20*time.Second)
		sub.expect(t, "DONE ", 20*time.Second)
		t.Logf("seed subscriber on h2 of a Go PUB announced from the bridge: %s s", strings.TrimPrefix(first, "FIRST "))
		for _, p := range []*seedProc{pub, sub} {
			if ex := p.exceptions(); len(ex) > 0 {
				t.Errorf("%s: %q", p.name, ex)
			}
		}
	})
}
