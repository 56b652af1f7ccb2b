package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport/wire"
	"github.com/colugo-go/colugo/transport/zmq"
)

// The hostile-peer load test (issue #11): a victim node in one process, an
// attacker in another (both this test binary re-executed), and a legitimate
// peer plus a newcomer in the test process, all on loopback and the
// victim's own abstract Unix sockets, with a private host-local registry.
//
// The attacker runs, at once and each bounded in count, rate and time:
// idle connections that finish the handshake and keep themselves alive with
// PINGs (ramped up first), sockets that never finish the handshake (silent,
// a greeting only, or a greeting trickled), connections trickling one giant
// frame, a subscription flood, big requests to a slow service, handshake
// churn, and the handshakes that crash zmq4 (READY whose Socket-Type is
// absent, FOO or dealer). Meanwhile the legitimate peer calls the victim's
// service and both publish to each other, at fixed rates. Both run zmq's
// defaults but for a longer peer timeout (loadPeerTimeout); the newcomer
// runs every default.
//
// What must hold: the victim stays alive and refuses every crash handshake
// (closes its connection); the pair loses no message (counted by sequence)
// and no request; request p99 stays under loadP99Bound; the victim's peak
// RSS (VmHWM) and Go heap stay under loadRSSBound (only the heap under
// -race, whose shadow memory inflates RSS); a node started during the
// attack sees the victim join within loadJoinBound and completes its first
// request under a 1 s deadline.
//
// Short form (default, skipped by -short): about 12 s (15 to 20 s under
// -race), 2000 idle connections. COLUGO_HOSTILE_LONG=1: 60 s of attack, 8000 idle
// connections and more of everything. COLUGO_HOSTILE_ATTACKS selects
// attacks (comma-separated names from loadAttacks, or "-crash" style
// exclusions) to measure them one at a time, e.g. on code where the crash
// handshakes still kill the victim.

const (
	loadRoleEnv = "COLUGO_LOAD_ROLE" // "victim" or "attacker": which helper this process is
	loadDirEnv  = "COLUGO_LOAD_DIR"  // the victim's registry directory
	loadPlanEnv = "COLUGO_LOAD_PLAN" // the attacker's plan, JSON
	loadLongEnv = "COLUGO_HOSTILE_LONG"
	loadSelEnv  = "COLUGO_HOSTILE_ATTACKS"

	// loadRSSBound bounds the victim's peak RSS (VmHWM) and Go heap
	// through the whole test. The transport's memory budgets of issue #11
	// total 392 MiB with their defaults (receive, handler and send bytes
	// 128 MiB each, subscriptions 8 MiB); 512 MiB adds room for the runtime
	// and the connections, and is half the smallest Raspberry Pi's memory.
	// Without those budgets (28b1359) the short form reaches 700 MiB of RSS
	// and 1.2 GiB of heap.
	loadRSSBound = 512 << 20
	// loadP99Bound bounds the legitimate pair's request p99 during the
	// attack: generous, since the machine (2 shared cores) also runs the
	// attacker and other tests.
	loadP99Bound = 3 * time.Second
	// loadJoinBound bounds the time a new node takes to see the victim
	// join: the registry poll (10 ms here), a handshake and a $describe,
	// with room for a loaded machine (up to 0.65 s seen at load average
	// 20), yet under zmq's 2 s handshake timeout, so a node let in only
	// when the silent handshakes time out (28b1359: 2.0 s) fails. Its
	// first request then gets 1 s.
	loadJoinBound = 1500 * time.Millisecond
	// loadPeerTimeout replaces zmq's 2 s peer timeout on the victim and the
	// legitimate peer (every other default stays): with the attacker, the
	// victim and the test on 2 shared cores that other tests also use
	// (load averages of 20 were seen), a heartbeat can come 2 s late
	// before the attack even starts; the connection dropped for it loses
	// messages, which would fail the test for the machine's sake. The
	// newcomer keeps every default.
	loadPeerTimeout = 10 * time.Second
	// loadRate is the interval of each legitimate publisher and requester:
	// a moderate fixed rate (200 msg/s each), so any loss is the node's,
	// not a slow reader's.
	loadRate = 5 * time.Millisecond
)

// loadAttacks names the attacks of the plan, in the order they are reported.
var loadAttacks = []string{"idle", "silent", "trickle", "subflood", "bigreq", "churn", "crash"}

// loadPlan is what the attacker does. Every count is a bound, and Duration
// bounds them all in time.
type loadPlan struct {
	Targets  loadTargets
	Attacks  []string // the enabled subset of loadAttacks
	Duration time.Duration

	Idle        int   // established connections held open (PING every second)
	Silent      int   // connections that never finish the handshake
	SilentRate  int   // their redials per second, at most
	Trickle     int   // connections trickling one TrickleSize frame
	TrickleSize int64 // announced frame size
	SubConns    int   // SUB connections of the subscription flood
	SubsPerConn int   // distinct prefixes per SUB connection
	BigConns    int   // connections sending big requests to load/slow
	BigPerRound int   // requests each sends before reading replies
	BigSize     int   // bytes per big request
	Churn       int   // full handshakes opened and closed, in total
	ChurnPar    int   // churn workers
	ChurnRate   int   // churn handshakes per second, at most
}

// loadTargets are the victim's listeners: TCP host:port and abstract Unix
// socket names ("@colugo-…"), router and pub.
type loadTargets struct {
	Router, Pub, LocalRouter, LocalPub string
}

func (ts loadTargets) routers() []string { return loadNonEmpty(ts.Router, ts.LocalRouter) }
func (ts loadTargets) pubs() []string    { return loadNonEmpty(ts.Pub, ts.LocalPub) }
func (ts loadTargets) all() []string {
	return loadNonEmpty(ts.Router, ts.Pub, ts.LocalRouter, ts.LocalPub)
}

func loadNonEmpty(ss ...string) []string {
	return slices.DeleteFunc(ss, func(s string) bool { return s == "" })
}

// check refuses any target that is not loopback TCP or one of colugo's own
// abstract sockets: the attacker never sends a byte anywhere else.
func (ts loadTargets) check() error {
	for _, a := range ts.all() {
		if strings.HasPrefix(a, "@colugo-") {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("target %q is not loopback", a)
		}
	}
	return nil
}

func loadPlanFor(long bool, attacks []string) loadPlan {
	if long {
		return loadPlan{Attacks: attacks, Duration: 60 * time.Second,
			Idle: 8000, Silent: 1000, SilentRate: 200, Trickle: 24, TrickleSize: 64 << 20, SubConns: 8, SubsPerConn: 20000,
			BigConns: 8, BigPerRound: 8, BigSize: 8 << 20, Churn: 10000, ChurnPar: 16, ChurnRate: 100}
	}
	return loadPlan{Attacks: attacks, Duration: 8 * time.Second,
		Idle: 2000, Silent: 300, SilentRate: 200, Trickle: 8, TrickleSize: 64 << 20, SubConns: 4, SubsPerConn: 5000,
		BigConns: 4, BigPerRound: 6, BigSize: 4 << 20, Churn: 2000, ChurnPar: 8, ChurnRate: 100}
}

// selectedAttacks reads COLUGO_HOSTILE_ATTACKS: empty means all, "a,b"
// means only those, "-a,-b" means all but those.
func selectedAttacks(t *testing.T) []string {
	v := strings.TrimSpace(os.Getenv(loadSelEnv))
	if v == "" {
		return slices.Clone(loadAttacks)
	}
	var in, out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		name := strings.TrimPrefix(f, "-")
		if !slices.Contains(loadAttacks, name) {
			t.Fatalf("%s: unknown attack %q (have %v)", loadSelEnv, name, loadAttacks)
		}
		if strings.HasPrefix(f, "-") {
			out = append(out, name)
		} else {
			in = append(in, name)
		}
	}
	if len(in) == 0 {
		in = slices.Clone(loadAttacks)
	}
	return slices.DeleteFunc(in, func(a string) bool { return slices.Contains(out, a) })
}

// loadStat is one status line of the victim.
type loadStat struct {
	At          time.Duration // since the victim started
	RSS, HWM    int64         // VmRSS, VmHWM in bytes
	Heap        uint64        // runtime HeapInuse
	Goroutines  int
	FDs         int
	Published   int // ticks published so far
	PubLast     int // sequence number of the last one (-1: none)
	BackGot     int // distinct sequence numbers received from the legitimate peer
	BackFirst   int // first of them (-1: none yet)
	BackMax     int // highest of them
	Refused     uint64
	RecvDropped uint64
	SendDropped uint64
}

// hostileLoadRole is a child process of TestHostileLoad, the victim or
// the attacker (COLUGO_LOAD_ROLE).
func hostileLoadRole(t *testing.T) {
	switch os.Getenv(loadRoleEnv) {
	case "victim":
		runLoadVictim(t)
	case "attacker":
		runLoadAttacker(t)
	default:
		t.Fatalf("%s=%q: want victim or attacker", loadRoleEnv, os.Getenv(loadRoleEnv))
	}
}

// runLoadVictim serves load/add and load/slow, publishes load/ticks every
// loadRate, counts load/back by sequence, and prints a status line every
// 250 ms. "stop" on stdin stops its publisher (it then prints "final" with
// the count); stdin's end, or its lifetime bound, ends it.
func runLoadVictim(t *testing.T) {
	node := loadNode(t, "victim", os.Getenv(loadDirEnv))
	if _, err := colugo.Serve(node, "load/add", add); err != nil {
		t.Fatal(err)
	}
	// The slow service holds each request (and its payload) for up to a
	// second: the big-request attack's target.
	if _, err := colugo.Serve(node, "load/slow", func(ctx context.Context, b []byte) ([]byte, error) {
		tm := time.NewTimer(time.Second)
		defer tm.Stop()
		select {
		case <-ctx.Done():
		case <-tm.C:
		}
		return []byte(strconv.Itoa(len(b))), nil
	}, colugo.WithCodec(codec.Raw{})); err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[int](node, "load/ticks")
	if err != nil {
		t.Fatal(err)
	}
	back, err := colugo.Subscribe[int](t.Context(), node, "load/back", colugo.WithBuffer(1<<15))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seqs loadSeqs
	var published atomic.Int64
	var pubLast atomic.Int64
	pubLast.Store(-1)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute) // lifetime bound
	defer cancel()
	wg.Go(func() {
		for {
			select {
			case v, ok := <-back:
				if !ok {
					return
				}
				mu.Lock()
				seqs.add(v)
				mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	})
	stopPub := make(chan struct{})
	pubDone := make(chan struct{})
	wg.Go(func() {
		defer close(pubDone)
		tick := time.NewTicker(loadRate)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopPub:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := pub.Publish(ctx, i); err == nil {
					published.Add(1)
					pubLast.Store(int64(i))
				}
			}
		}
	})
	var outMu sync.Mutex
	say := func(kind string, v any) {
		b, _ := json.Marshal(v)
		outMu.Lock()
		fmt.Fprintf(os.Stdout, "%s %s\n", kind, b)
		outMu.Unlock()
	}
	start := time.Now()
	stat := func() loadStat {
		s := loadProcStatus()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st := node.Stats().Transport
		mu.Lock()
		got, first, last := seqs.n, seqs.first, seqs.max
		mu.Unlock()
		fds, _ := os.ReadDir("/proc/self/fd")
		return loadStat{At: time.Since(start), RSS: s["VmRSS"], HWM: s["VmHWM"], Heap: ms.HeapInuse,
			Goroutines: runtime.NumGoroutine(), FDs: len(fds), Published: int(published.Load()), PubLast: int(pubLast.Load()),
			BackGot: got, BackFirst: first, BackMax: last,
			Refused: st.ConnsRefused, RecvDropped: st.RecvDropped, SendDropped: st.SendDropped}
	}
	ep := node.Endpoint()
	say("ready", loadTargets{Router: ep.Router, Pub: ep.Pub,
		LocalRouter: strings.TrimPrefix(ep.LocalRouter, "unix:"), LocalPub: strings.TrimPrefix(ep.LocalPub, "unix:")})
	stdin := make(chan string)
	go func() { // not waited for: it ends when stdin does
		defer close(stdin)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			select {
			case stdin <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			say("stat", stat())
		case line, ok := <-stdin:
			if !ok {
				cancel()
				return
			}
			if line == "stop" {
				close(stopPub)
				<-pubDone
				say("final", stat())
			}
		}
	}
}

// loadNode is hostileNode with loadPeerTimeout.
func loadNode(t *testing.T, name, dir string) *colugo.Node {
	t.Helper()
	tr, err := zmq.New(zmq.WithPeerTimeout(loadPeerTimeout))
	if err != nil {
		t.Fatal(err)
	}
	return chaosNode(t, name, dir, colugo.WithTransport(tr))
}

// loadSeqs counts distinct non-negative sequence numbers.
type loadSeqs struct {
	seen       []bool
	n          int
	first, max int
}

func (s *loadSeqs) add(v int) {
	if v < 0 || v > 1<<24 {
		return
	}
	if len(s.seen) == 0 {
		s.first, s.max = v, v
	}
	if v >= len(s.seen) {
		s.seen = append(s.seen, make([]bool, v+1-len(s.seen)+1024)...)
	}
	if !s.seen[v] {
		s.seen[v] = true
		s.n++
	}
	s.first, s.max = min(s.first, v), max(s.max, v)
}

// lost is how many numbers between the first and the last seen are missing.
func (s *loadSeqs) lost() int {
	if s.n == 0 {
		return 0
	}
	return s.max - s.first + 1 - s.n
}

// loadProcStatus returns the kB fields of /proc/self/status, in bytes.
func loadProcStatus() map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(v, " kB") {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, " kB")), 10, 64); err == nil {
			out[k] = n << 10
		}
	}
	return out
}

// loadChild is a helper process of TestHostileLoad: its stdout lines go to
// lines, the tail of its stderr is kept for the failure message, and exited
// closes when it has ended.
type loadChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *loadTail
	exited chan struct{}
	err    error // valid once exited is closed
}

// startLoadChild runs hostileLoadRole with env added. At cleanup its
// stdin closes; a patient child gets wait to end by itself, any other is
// killed at once (by its PID) if still running.
func startLoadChild(t *testing.T, patient bool, env ...string) *loadChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRole$", "-test.timeout=15m")
	cmd.Env = append(os.Environ(), append([]string{roleEnv + "=hostile-load", colugo.EnvDiscovery + "=local"}, env...)...)
	c := &loadChild{cmd: cmd, lines: make(chan string, 4096), stderr: &loadTail{max: 16 << 10}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // the test stopped reading: drop status lines rather than block the child
			}
		}
	}()
	go func() {
		<-read // Wait closes stdout: read it all first
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = c.stdin.Close()
		grace := wait
		if !patient {
			grace = 0
		}
		select {
		case <-c.exited:
		case <-time.After(grace):
			_ = cmd.Process.Kill() // our child, by its PID
			<-c.exited
		}
	})
	return c
}

// dead describes how the child ended, with its last words.
func (c *loadChild) dead() string {
	return fmt.Sprintf("exited: %v; stderr tail:\n%s", c.err, c.stderr.String())
}

// loadTail keeps the last max bytes written to it.
type loadTail struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (w *loadTail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *loadTail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// loadLatencies collects the request latencies of one phase.
type loadLatencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *loadLatencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *loadLatencies) summary() (n int, p50, p99, worst time.Duration) {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	if len(d) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(d)
	return len(d), d[len(d)/2], d[(len(d)*99)/100], d[len(d)-1]
}

// The phases of TestHostileLoad; the warm-up (until traffic flows both
// ways) is not reported.
const (
	loadWarmup = iota
	loadBefore
	loadDuring
	loadAfter
	loadPhases
)

var loadPhaseNames = [loadPhases]string{"warm-up", "before", "during", "after"}

// TestHostileLoad is issue #11's hostile-peer load test; see the top of
// this file. The victim's peak RSS must stay under loadRSSBound (512 MiB)
// and the pair's request p99 during the attack under loadP99Bound (3 s).
func TestHostileLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test of 15 s (60 s with " + loadLongEnv + "=1)")
	}
	long := os.Getenv(loadLongEnv) == "1"
	plan := loadPlanFor(long, selectedAttacks(t))
	baseline := 2 * time.Second
	if long {
		baseline = 5 * time.Second
	}
	dir := t.TempDir()

	// The victim, and its status lines.
	victim := startLoadChild(t, true, loadRoleEnv+"=victim", loadDirEnv+"="+dir)
	var targets loadTargets
	var statMu sync.Mutex
	var stats []loadStat
	var final loadStat
	gotFinal := make(chan struct{})
	readyc := make(chan struct{})
	go func() { // ends when the victim's stdout closes
		for line := range victim.lines {
			kind, body, _ := strings.Cut(line, " ")
			switch kind {
			case "ready":
				if json.Unmarshal([]byte(body), &targets) == nil {
					close(readyc)
				}
			case "stat", "final":
				var s loadStat
				if json.Unmarshal([]byte(body), &s) != nil {
					continue
				}
				statMu.Lock()
				stats = append(stats, s)
				if kind == "final" {
					final = s
					close(gotFinal)
				}
				statMu.Unlock()
			}
		}
	}()
	lastStat := func() loadStat {
		statMu.Lock()
		defer statMu.Unlock()
		if len(stats) == 0 {
			return loadStat{}
		}
		return stats[len(stats)-1]
	}
	// alive fails the test at once if the victim died.
	alive := func(what string) {
		t.Helper()
		select {
		case <-victim.exited:
			t.Fatalf("the victim died %s: %s", what, victim.dead())
		default:
		}
	}
	select {
	case <-readyc:
	case <-victim.exited:
		t.Fatalf("victim did not start: %s", victim.dead())
	case <-time.After(wait):
		t.Fatal("victim not ready")
	}
	if err := targets.check(); err != nil {
		t.Fatal(err)
	}
	plan.Targets = targets

	// The legitimate peer: requests in a closed loop, load/back published
	// at a fixed rate, load/ticks counted by sequence.
	good := loadNode(t, "good", dir)
	goodEvents := good.Events(t.Context())
	if err := loadWaitJoined(goodEvents, "victim", wait, victim.exited); err != nil {
		t.Fatal(err)
	}
	ticks, err := colugo.Subscribe[int](t.Context(), good, "load/ticks", colugo.WithBuffer(1<<15))
	if err != nil {
		t.Fatal(err)
	}
	backPub, err := colugo.NewPublisher[int](good, "load/back")
	if err != nil {
		t.Fatal(err)
	}
	var phase atomic.Int32
	var lat [loadPhases]loadLatencies
	var tickCount, backCount [loadPhases]atomic.Int64
	var reqFailed atomic.Int64
	var firstErr atomic.Value
	var tickMu sync.Mutex
	var tickSeqs loadSeqs
	var backSent, backLast atomic.Int64
	backLast.Store(-1)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	stopLegit := func() { cancel(); wg.Wait() }
	t.Cleanup(stopLegit)
	stopBack := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(loadRate)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-stopBack:
				return
			case <-tick.C:
				if err := backPub.Publish(ctx, i); err == nil {
					backSent.Add(1)
					backLast.Store(int64(i))
					backCount[phase.Load()].Add(1)
				}
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case v, ok := <-ticks:
				if !ok {
					return
				}
				tickMu.Lock()
				tickSeqs.add(v)
				tickMu.Unlock()
				tickCount[phase.Load()].Add(1)
			case <-ctx.Done():
				return
			}
		}
	})
	// Requests at a fixed rate too (each requester one per loadRate, so
	// 400/s in all): a closed loop at full speed would take the CPU the victim
	// needs and measure the machine rather than the victim.
	const requesters = 2
	for w := range requesters {
		wg.Go(func() {
			tick := time.NewTicker(loadRate)
			defer tick.Stop()
			for i := 0; i < 10_000_000; i++ { // bounded; ends at stopLegit
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				start := time.Now()
				r, err := colugo.Request[AddReq, AddResp](rctx, good, "load/add", AddReq{A: i, B: w})
				d := time.Since(start)
				rcancel()
				switch {
				case ctx.Err() != nil:
				case err != nil || r.Sum != i+w:
					reqFailed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("request %d/%d: %+v %v", w, i, r, err))
				default:
					lat[phase.Load()].add(d)
				}
			}
		})
	}
	// Both directions flow before the baseline starts.
	testwait.Until(t, "the legitimate traffic to flow", func() bool {
		alive("before the attack")
		tickMu.Lock()
		n := tickSeqs.n
		tickMu.Unlock()
		s := lastStat()
		return n > 0 && s.BackGot > 0 && lat[loadWarmup].len() > 0
	})

	// Before: the baseline.
	phase.Store(loadBefore)
	loadSleep(t, baseline, victim)
	before := lastStat()

	// During: the attacker runs for plan.Duration.
	pj, _ := json.Marshal(plan)
	phase.Store(loadDuring)
	attackStart := time.Now()
	attacker := startLoadChild(t, false, loadRoleEnv+"=attacker", loadPlanEnv+"="+string(pj))
	var attackerReport string
	attackerUp := make(chan struct{})
	attackerDone := make(chan struct{})
	attackerOut := make(chan struct{}) // closed once all it printed was read: it has exited
	go func() {
		defer close(attackerOut)
		for line := range attacker.lines {
			kind, body, _ := strings.Cut(line, " ")
			switch kind {
			case "attacking":
				close(attackerUp)
			case "done":
				attackerReport = body
				close(attackerDone)
			}
		}
	}()
	select {
	case <-attackerUp:
	case <-attackerOut:
		select {
		case <-attackerUp:
		default:
			<-attacker.exited
			t.Fatalf("the attacker ended early: %s", attacker.dead())
		}
	case <-victim.exited:
		t.Fatalf("the victim died as the attack started: %s", victim.dead())
	case <-time.After(2 * plan.Duration):
		t.Fatalf("the attacker did not start its attacks within %v", 2*plan.Duration)
	}
	upAfter := time.Since(attackStart)

	// A brand-new node joins during the attack and calls within a second.
	newcomer := chaosNode(t, "newcomer", dir)
	joinStart := time.Now()
	if err := loadWaitJoined(newcomer.Events(t.Context()), "victim", loadJoinBound, victim.exited); err != nil {
		alive("while the newcomer joined")
		t.Errorf("the newcomer, started %v into the attack: %v", upAfter, err)
	} else {
		joinTook := time.Since(joinStart)
		nctx, ncancel := context.WithTimeout(t.Context(), time.Second)
		callStart := time.Now()
		r, err := colugo.Request[AddReq, AddResp](nctx, newcomer, "load/add", AddReq{A: 40, B: 2})
		callTook := time.Since(callStart)
		ncancel()
		if err != nil || r.Sum != 42 {
			alive("before the newcomer's first request")
			t.Errorf("the newcomer's first request (1 s deadline, %v after joining): %+v %v", callTook, r, err)
		}
		t.Logf("newcomer (started %v into the attack): saw the victim join in %v, first request took %v", upAfter, joinTook, callTook)
	}

	select {
	case <-attackerOut:
	case <-victim.exited:
		t.Fatalf("the victim died during the attack: %s", victim.dead())
	case <-time.After(2*plan.Duration + wait):
		t.Fatal("the attacker did not finish")
	}
	<-attacker.exited // its stdout is closed: it is exiting
	select {
	case <-attackerDone:
	default:
		t.Fatalf("the attacker ended without its report: %s", attacker.dead())
	}
	if attacker.err != nil {
		t.Errorf("attacker: %s", attacker.dead())
	}
	alive("during the attack")
	attackEnd := time.Now()

	// After: traffic goes on; then both publishers stop and every message
	// published must arrive.
	phase.Store(loadAfter)
	loadSleep(t, baseline/2, victim)
	after := lastStat()
	close(stopBack)
	if _, err := io.WriteString(victim.stdin, "stop\n"); err != nil {
		t.Fatalf("victim: %v: %s", err, victim.dead())
	}
	select {
	case <-gotFinal:
	case <-victim.exited:
		t.Fatalf("the victim died: %s", victim.dead())
	case <-time.After(wait):
		t.Fatal("no final report from the victim")
	}
	testwait.Until(t, "every tick to arrive", func() bool {
		tickMu.Lock()
		defer tickMu.Unlock()
		return tickSeqs.max >= final.PubLast
	})
	sent, last := int(backSent.Load()), int(backLast.Load())
	testwait.Until(t, "every load/back message to arrive", func() bool {
		alive("at the end")
		return lastStat().BackMax >= last
	})
	endStat := lastStat()
	stopLegit()
	// The victim closes its node and ends by itself: a race, a leaked
	// goroutine (goleak) or a hang there fails the test too.
	_ = victim.stdin.Close()
	select {
	case <-victim.exited:
		if victim.err != nil {
			t.Errorf("the victim did not end cleanly: %s", victim.dead())
		}
	case <-time.After(wait):
		t.Errorf("the victim did not end within %v of its stdin closing", wait)
	}

	// Figures.
	statMu.Lock()
	var peak loadStat
	for _, s := range stats {
		if s.At >= before.At {
			peak.RSS, peak.HWM, peak.Heap = max(peak.RSS, s.RSS), max(peak.HWM, s.HWM), max(peak.Heap, s.Heap)
			peak.Goroutines, peak.FDs = max(peak.Goroutines, s.Goroutines), max(peak.FDs, s.FDs)
		}
	}
	statMu.Unlock()
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	t.Logf("attack plan: %s", pj)
	var rep struct {
		Ramp    time.Duration
		Attacks map[string]loadFigures
	}
	if err := json.Unmarshal([]byte(attackerReport), &rep); err != nil {
		t.Fatalf("attacker's report %q: %v", attackerReport, err)
	}
	t.Logf("attacker: idle ramp %v, then %v of attacks", rep.Ramp, plan.Duration)
	for _, name := range plan.Attacks {
		f := rep.Attacks[name]
		t.Logf("  %-8s dials %d, handshakes %d, closed by the victim %d, failed %d, bytes sent %d, replies %d; first error: %s",
			name, f.Dials, f.Handshakes, f.Closed, f.Errors, f.Sent, f.Replies, f.FirstErr)
	}
	t.Logf("victim before: RSS %s, HWM %s, heap %s, %d goroutines, %d fds", mib(before.RSS), mib(before.HWM), mib(int64(before.Heap)), before.Goroutines, before.FDs)
	t.Logf("victim during (peak): RSS %s, HWM %s, heap %s, %d goroutines, %d fds", mib(peak.RSS), mib(peak.HWM), mib(int64(peak.Heap)), peak.Goroutines, peak.FDs)
	t.Logf("victim after: RSS %s, HWM %s, heap %s, %d goroutines, %d fds; ConnsRefused %d, RecvDropped %d, SendDropped %d",
		mib(after.RSS), mib(after.HWM), mib(int64(after.Heap)), after.Goroutines, after.FDs, endStat.Refused, endStat.RecvDropped, endStat.SendDropped)
	spans := [loadPhases]time.Duration{0, baseline, attackEnd.Sub(attackStart), baseline / 2}
	for p := loadBefore; p < loadPhases; p++ {
		n, p50, p99, worst := lat[p].summary()
		sec := spans[p].Seconds()
		t.Logf("pair %-6s (%.1fs): %d requests (%.0f/s), p50 %v, p99 %v, max %v; ticks to the peer %.0f/s, back to the victim %.0f/s",
			loadPhaseNames[p], sec, n, float64(n)/sec, p50, p99, worst, float64(tickCount[p].Load())/sec, float64(backCount[p].Load())/sec)
	}
	tickMu.Lock()
	ticksLost, ticksGot := tickSeqs.lost(), tickSeqs.n
	tickMu.Unlock()
	t.Logf("pub/sub: victim published %d ticks, the peer got %d distinct, lost %d; the peer published %d, the victim got %d, lost %d",
		final.Published, ticksGot, ticksLost, sent, endStat.BackGot, endStat.BackMax-endStat.BackFirst+1-endStat.BackGot)

	// Assertions.
	if f := reqFailed.Load(); f != 0 {
		t.Errorf("%d legitimate requests failed; first: %v", f, firstErr.Load())
	}
	if ticksLost != 0 {
		t.Errorf("the peer lost %d of the victim's ticks", ticksLost)
	}
	if lost := endStat.BackMax - endStat.BackFirst + 1 - endStat.BackGot; lost != 0 {
		t.Errorf("the victim lost %d of the peer's messages", lost)
	}
	if _, _, p99, _ := lat[loadDuring].summary(); p99 > loadP99Bound {
		t.Errorf("request p99 during the attack %v, want under %v", p99, loadP99Bound)
	}
	// The race detector's shadow memory multiplies RSS (5-10x, says its
	// documentation), so under -race only the Go heap is bounded. The heap
	// bound applies always: memory the victim allocated but did not touch
	// (a frame buffer allocated at its announced size) is heap, not RSS.
	if hwm := max(endStat.HWM, peak.HWM); hwm > loadRSSBound && !loadRace() {
		t.Errorf("victim's peak RSS %s, want under %s", mib(hwm), mib(loadRSSBound))
	}
	if heap := int64(peak.Heap); heap > loadRSSBound {
		t.Errorf("victim's peak Go heap %s, want under %s", mib(heap), mib(loadRSSBound))
	}
	if slices.Contains(plan.Attacks, "crash") {
		// Each crash handshake must be refused: its connection closed by
		// the victim, which lives on.
		f := rep.Attacks["crash"]
		if want := int64(3 * len(targets.all())); f.Dials != want || f.Closed != want {
			t.Errorf("crash handshakes: %d sent, %d closed by the victim; want %d and %d", f.Dials, f.Closed, want, want)
		}
	}
}

// loadRace reports whether this binary was built with -race.
func loadRace() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func (l *loadLatencies) len() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.d) }

// loadSleep lets the load run for d, failing at once if the victim dies.
func loadSleep(t *testing.T, d time.Duration, victim *loadChild) {
	t.Helper()
	select {
	case <-time.After(d):
	case <-victim.exited:
		t.Fatalf("the victim died: %s", victim.dead())
	}
}

// loadWaitJoined waits for a Joined event of the peer called name, within a
// bound, or until died closes.
func loadWaitJoined(evs <-chan colugo.PeerEvent, name string, within time.Duration, died <-chan struct{}) error {
	timeout := time.After(within)
	for {
		select {
		case ev := <-evs:
			if ev.Kind == discovery.Joined && ev.Peer.Name == name {
				return nil
			}
		case <-died:
			return fmt.Errorf("%s died before it joined", name)
		case <-timeout:
			return fmt.Errorf("%s did not join within %v", name, within)
		}
	}
}

// ---- the attacker ----

// loadCounters are one attack's figures.
type loadCounters struct {
	Dials      atomic.Int64 // connections opened
	Handshakes atomic.Int64 // handshakes completed
	Closed     atomic.Int64 // connections the victim closed
	Errors     atomic.Int64 // dials or handshakes that failed
	Sent       atomic.Int64 // bytes sent after the handshake
	Replies    atomic.Int64 // replies read (bigreq)
	firstErr   atomic.Value // string: the first dial or handshake error
}

func (c *loadCounters) failed(err error) {
	c.Errors.Add(1)
	c.firstErr.CompareAndSwap(nil, err.Error())
}

// loadFigures is loadCounters as JSON.
type loadFigures struct {
	Dials, Handshakes, Closed, Errors, Sent, Replies int64
	FirstErr                                         string `json:",omitempty"`
}

func (c *loadCounters) MarshalJSON() ([]byte, error) {
	f := loadFigures{Dials: c.Dials.Load(), Handshakes: c.Handshakes.Load(), Closed: c.Closed.Load(),
		Errors: c.Errors.Load(), Sent: c.Sent.Load(), Replies: c.Replies.Load()}
	f.FirstErr, _ = c.firstErr.Load().(string)
	return json.Marshal(f)
}

// loadReport is the attacker's last line: how long the idle ramp took,
// and each attack's counters.
type loadReport struct {
	Ramp    time.Duration
	Attacks map[string]*loadCounters
}

// loadAttacker holds what every attack shares: its contexts (every
// connection closes when its context ends), the goroutines, the counters.
type loadAttacker struct {
	base     context.Context // the test's: outlives the attacks
	ctx      context.Context // the attacks': ends when their time is up
	deadline time.Time       // ctx's
	wg       sync.WaitGroup
	started  *sync.WaitGroup // the current phase's attacks' first rounds
	counters map[string]*loadCounters
}

// runLoadAttacker runs the plan's attacks at once after ramping up the idle
// connections, prints "attacking" when every attack has made its first
// round, and "done" with the counters when the plan's duration has passed.
func runLoadAttacker(t *testing.T) {
	var plan loadPlan
	if err := json.Unmarshal([]byte(os.Getenv(loadPlanEnv)), &plan); err != nil {
		t.Fatal(err)
	}
	if err := plan.Targets.check(); err != nil {
		t.Fatal(err)
	}
	loadRaiseNoFile(uint64(plan.Idle + plan.Silent + plan.Trickle + plan.SubConns + plan.BigConns + plan.ChurnPar + 256))
	// The idle ramp takes up to plan.Duration, then every attack runs for
	// plan.Duration: 2*plan.Duration bounds it all.
	ctx, cancel := context.WithTimeout(t.Context(), 2*plan.Duration)
	defer cancel()
	a := &loadAttacker{base: t.Context(), ctx: ctx, started: new(sync.WaitGroup), counters: map[string]*loadCounters{}}
	a.deadline, _ = ctx.Deadline()
	for _, name := range loadAttacks {
		a.counters[name] = &loadCounters{}
	}
	on := func(name string) bool { return slices.Contains(plan.Attacks, name) }
	ts := plan.Targets

	// Idle connections first, at most 64 handshakes at a time, so that they
	// are established (and can be counted) before the rest begins.
	start := time.Now()
	if on("idle") {
		a.idle(plan.Idle, ts, plan.Duration)
	}
	ramp := time.Since(start)
	stop := time.AfterFunc(plan.Duration, cancel)
	defer stop.Stop()
	// The memory attacks connect before the handshake floods start, so
	// that a victim whose handshake slots those fill (28b1359) still
	// meets them.
	if on("trickle") {
		a.trickle(plan.Trickle, plan.TrickleSize, ts)
	}
	if on("subflood") {
		a.subflood(plan.SubConns, plan.SubsPerConn, ts)
	}
	if on("bigreq") {
		a.bigreq(plan.BigConns, plan.BigPerRound, plan.BigSize, ts)
	}
	memory := a.started
	a.waitStarted(memory, plan.Duration/4)
	a.started = new(sync.WaitGroup) // a WaitGroup is not reused while waited for
	if on("silent") {
		a.silent(plan.Silent, plan.SilentRate, ts)
	}
	if on("churn") {
		a.churn(plan.Churn, plan.ChurnPar, plan.ChurnRate, ts)
	}
	if on("crash") {
		// Halfway through the attack, so that the other figures come
		// first: today these kill the victim.
		a.crash(ts, plan.Duration/2)
	}
	a.waitStarted(memory, plan.Duration)
	a.waitStarted(a.started, plan.Duration)
	fmt.Println("attacking")
	<-ctx.Done()
	a.wg.Wait()
	b, _ := json.Marshal(loadReport{Ramp: ramp, Attacks: a.counters})
	fmt.Println("done", string(b))
}

// waitStarted waits until every slot counted in started has made its first
// round, or for within at most, or until time is up.
func (a *loadAttacker) waitStarted(started *sync.WaitGroup, within time.Duration) {
	done := make(chan struct{})
	a.wg.Go(func() { started.Wait(); close(done) })
	tm := time.NewTimer(within)
	defer tm.Stop()
	select {
	case <-done:
	case <-tm.C:
	case <-a.ctx.Done():
	}
}

// loadRaiseNoFile raises the soft RLIMIT_NOFILE to want, within the hard limit.
func loadRaiseNoFile(want uint64) {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil || r.Cur >= want {
		return
	}
	r.Cur = min(want, r.Max)
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
}

// dial connects to a target (TCP host:port or an abstract "@…" socket);
// the connection closes when ctx ends.
func (a *loadAttacker) dial(ctx context.Context, addr string, c *loadCounters) (net.Conn, error) {
	network := "tcp"
	if strings.HasPrefix(addr, "@") {
		network = "unix"
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		if ctx.Err() == nil {
			c.failed(err)
		}
		return nil, err
	}
	c.Dials.Add(1)
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	return &loadConn{Conn: nc, stop: stop}, nil
}

// loadConn releases its AfterFunc on Close.
type loadConn struct {
	net.Conn
	stop func() bool
}

func (c *loadConn) Close() error { c.stop(); return c.Conn.Close() }

// handshake does a NULL ZMTP handshake as socketType and reads the
// victim's greeting and READY.
func (a *loadAttacker) handshake(nc net.Conn, socketType string, c *loadCounters) (*zmtptest.Peer, error) {
	p := zmtptest.NewPeer(nc)
	_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := nc.Write(append(zmtptest.Greeting(), zmtptest.Ready(socketType)...))
	if err == nil {
		_, err = io.ReadFull(p.R, make([]byte, 64))
	}
	if err == nil {
		var body []byte
		_, body, err = p.Frame()
		if err == nil && !bytes.HasPrefix(body, []byte("\x05READY")) {
			err = fmt.Errorf("no READY: %q", body)
		}
	}
	_ = nc.SetReadDeadline(a.deadline)
	if err != nil {
		if a.ctx.Err() == nil {
			c.failed(err)
		}
		return nil, err
	}
	c.Handshakes.Add(1)
	return p, nil
}

// connect dials addr and shakes hands as the socket type that suits it.
func (a *loadAttacker) connect(addr string, ts loadTargets, c *loadCounters) (*zmtptest.Peer, error) {
	nc, err := a.dial(a.ctx, addr, c)
	if err != nil {
		return nil, err
	}
	typ := "DEALER"
	if addr == ts.Pub || addr == ts.LocalPub {
		typ = "SUB"
	}
	p, err := a.handshake(nc, typ, c)
	if err != nil {
		_ = nc.Close()
	}
	return p, err
}

// slots runs n copies of slot, each at most rounds times and until the
// attack's time is up. first is called once per slot after its first round.
func (a *loadAttacker) slots(n, rounds int, started *sync.WaitGroup, slot func(i int, first func())) {
	started.Add(n)
	for i := range n {
		a.wg.Go(func() {
			var once sync.Once
			first := func() { once.Do(started.Done) }
			defer first()
			for r := 0; r < rounds && a.ctx.Err() == nil; r++ {
				slot(i, first)
			}
		})
	}
}

// pace returns a func that waits for the next of rate tokens a second and
// reports false when time is up: the connection rate of an attack is
// bounded, so that the test measures the victim's defences and not only
// two shared cores' worth of CPU.
func (a *loadAttacker) pace(rate int) func() bool {
	tokens := make(chan struct{})
	a.wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-a.ctx.Done():
				return
			case <-tick.C:
				select {
				case tokens <- struct{}{}:
				default: // nobody waiting: the token is lost, the rate a bound
				}
			}
		}
	})
	return func() bool {
		select {
		case <-tokens:
			return true
		case <-a.ctx.Done():
			return false
		}
	}
}

var loadPing = zmtptest.Frame(zmtptest.Command, []byte("\x04PING\x00\x00"))

// hold keeps p open, answering nothing and sending a PING each second so
// the victim's heartbeat check does not drop it, until the victim closes it
// or time is up. (The victim's own PINGs arrive twice a second, so a read
// timeout alone would never come.)
func (a *loadAttacker) hold(p *zmtptest.Peer, c *loadCounters) {
	buf := make([]byte, 4096)
	lastPing := time.Now()
	for a.ctx.Err() == nil {
		if time.Since(lastPing) >= time.Second {
			if _, err := p.Conn.Write(loadPing); err != nil {
				break
			}
			lastPing = time.Now()
		}
		_ = p.Conn.SetReadDeadline(lastPing.Add(time.Second))
		if _, err := p.R.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			break
		}
	}
	if a.ctx.Err() == nil {
		c.Closed.Add(1)
	}
}

// idle holds n established connections, spread over every listener, and
// waits until each has been tried once (at most 64 handshakes at a time),
// or for within at most.
func (a *loadAttacker) idle(n int, ts loadTargets, within time.Duration) {
	c := a.counters["idle"]
	addrs := ts.all()
	sem := make(chan struct{}, 64)
	var ramp sync.WaitGroup
	a.slots(n, 3, &ramp, func(i int, first func()) {
		select {
		case sem <- struct{}{}:
		case <-a.ctx.Done():
			return
		}
		p, err := a.connect(addrs[i%len(addrs)], ts, c)
		<-sem
		first()
		if err != nil {
			return
		}
		defer p.Conn.Close()
		a.hold(p, c)
	})
	// The ramp ends when every slot made its first try, or after within.
	done := make(chan struct{})
	a.wg.Go(func() { ramp.Wait(); close(done) })
	tm := time.NewTimer(within)
	defer tm.Stop()
	select {
	case <-done:
	case <-tm.C:
	}
}

// silent opens n connections that never finish the handshake, each
// redialled (at most rate redials a second in all) when the victim closes
// it: a third send nothing, a third only the greeting, a third trickle the
// greeting a byte every 100 ms.
func (a *loadAttacker) silent(n, rate int, ts loadTargets) {
	c := a.counters["silent"]
	addrs := ts.all()
	next := a.pace(rate)
	a.slots(n, 50, a.started, func(i int, first func()) {
		defer next() // paces the redial
		nc, err := a.dial(a.ctx, addrs[i%len(addrs)], c)
		first()
		if err != nil {
			return
		}
		defer nc.Close()
		switch i % 3 {
		case 1:
			_, _ = nc.Write(zmtptest.Greeting())
		case 2:
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for _, b := range zmtptest.Greeting() {
				select {
				case <-tick.C:
				case <-a.ctx.Done():
					return
				}
				if _, err := nc.Write([]byte{b}); err != nil {
					break
				}
			}
		}
		_, _ = io.Copy(io.Discard, nc) // until the victim closes it, or time is up
		if a.ctx.Err() == nil {
			c.Closed.Add(1)
		}
	})
}

// trickle opens n connections that announce one frame of size bytes and
// send 16 bytes of it every 100 ms.
func (a *loadAttacker) trickle(n int, size int64, ts loadTargets) {
	c := a.counters["trickle"]
	addrs := append(ts.routers(), ts.pubs()...)
	a.slots(n, 10, a.started, func(i int, first func()) {
		p, err := a.connect(addrs[i%len(addrs)], ts, c)
		first()
		if err != nil {
			return
		}
		defer p.Conn.Close()
		hdr := binary.BigEndian.AppendUint64([]byte{zmtptest.Long}, uint64(size))
		if _, err := p.Conn.Write(hdr); err != nil {
			c.Closed.Add(1)
			return
		}
		chunk := bytes.Repeat([]byte{'t'}, 16)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for sent := int64(0); sent < size; sent += int64(len(chunk)) {
			select {
			case <-a.ctx.Done():
				return
			case <-tick.C:
			}
			if _, err := p.Conn.Write(chunk); err != nil {
				if a.ctx.Err() == nil {
					c.Closed.Add(1)
				}
				return
			}
			c.Sent.Add(int64(len(chunk)))
		}
	})
}

// subflood sends per distinct subscriptions on each of conns SUB
// connections, then holds them.
func (a *loadAttacker) subflood(conns, per int, ts loadTargets) {
	c := a.counters["subflood"]
	addrs := ts.pubs()
	a.slots(conns, 3, a.started, func(i int, first func()) {
		p, err := a.connect(addrs[i%len(addrs)], ts, c)
		first() // started once connected: the victim may rightly stop reading
		if err != nil {
			return
		}
		defer p.Conn.Close()
		var b []byte
		for j := range per {
			b = append(b, zmtptest.Frame(0, fmt.Appendf(nil, "\x01flood/%d/%06d/%s", i, j, strings.Repeat("p", 48)))...)
			if len(b) > 64<<10 || j == per-1 {
				if _, err := p.Conn.Write(b); err != nil {
					if a.ctx.Err() == nil {
						c.Closed.Add(1)
					}
					return
				}
				c.Sent.Add(int64(len(b)))
				b = b[:0]
			}
		}
		a.hold(p, c)
	})
}

// bigreq sends rounds of per requests of size bytes each to load/slow
// (which holds each for a second) on each of conns connections, reading
// the replies between rounds.
func (a *loadAttacker) bigreq(conns, per, size int, ts loadTargets) {
	c := a.counters["bigreq"]
	addrs := ts.routers()
	payload := bytes.Repeat([]byte{'b'}, size)
	name := wire.AppendName(nil, "load/slow")
	a.slots(conns, 3, a.started, func(i int, first func()) {
		p, err := a.connect(addrs[i%len(addrs)], ts, c)
		first() // started once connected: the victim may rightly stop reading
		if err != nil {
			return
		}
		defer p.Conn.Close()
		for id := uint64(1); a.ctx.Err() == nil; {
			for range per {
				h := wire.Header{Kind: wire.KindRequest, Codec: "raw", Sender: "attacker", SendTime: time.Now().UnixNano(),
					RequestID: id, Deadline: int64(2 * time.Second)}
				id++
				if _, err := p.Conn.Write(zmtptest.Msg(name, h.Append(nil), payload)); err != nil {
					if a.ctx.Err() == nil {
						c.Closed.Add(1)
					}
					return
				}
				c.Sent.Add(int64(size))
			}
			for got := 0; got < per; {
				fl, _, err := p.Frame()
				if err != nil {
					if a.ctx.Err() == nil {
						c.Closed.Add(1)
					}
					return
				}
				if fl&(zmtptest.Command|zmtptest.More) == 0 { // the last frame of a reply
					got++
					c.Replies.Add(1)
				}
			}
		}
	})
}

// churn opens and closes full handshakes, total at most, par at a time
// and rate per second at most.
func (a *loadAttacker) churn(total, par, rate int, ts loadTargets) {
	c := a.counters["churn"]
	addrs := ts.all()
	var n atomic.Int64
	next := a.pace(rate)
	a.slots(par, 1, a.started, func(i int, first func()) {
		for j := 0; n.Add(1) <= int64(total) && next(); j++ {
			p, err := a.connect(addrs[(i+j)%len(addrs)], ts, c)
			if j == 0 {
				first()
			}
			if err == nil {
				_ = p.Conn.Close()
			}
		}
	})
}

// crash sends, after delay, the READYs that make zmq4 panic (Socket-Type
// absent, unknown, lowercase) to every listener, all at once, and counts
// those the victim closes within 3 s of the handshake.
func (a *loadAttacker) crash(ts loadTargets, delay time.Duration) {
	c := a.counters["crash"]
	noType := zmtptest.Frame(zmtptest.Command, []byte("\x05READY\x08Identity\x00\x00\x00\x00"))
	for _, addr := range ts.all() {
		for _, ready := range [][]byte{noType, zmtptest.Ready("FOO"), zmtptest.Ready("dealer")} {
			a.wg.Go(func() {
				tm := time.NewTimer(delay)
				defer tm.Stop()
				select {
				case <-tm.C:
				case <-a.ctx.Done():
					return
				}
				// Its own bound, past the other attacks' end: on a loaded
				// machine a dial may time out and need another try.
				ctx, cancel := context.WithTimeout(a.base, 10*time.Second)
				defer cancel()
				var nc net.Conn
				var err error
				for try := 0; try < 5 && ctx.Err() == nil; try++ {
					if nc, err = a.dial(ctx, addr, c); err == nil {
						break
					}
				}
				if err != nil {
					return
				}
				defer nc.Close()
				_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
				if _, err := nc.Write(append(zmtptest.Greeting(), ready...)); err == nil {
					c.Sent.Add(int64(64 + len(ready)))
				}
				var ne net.Error
				_, err = io.Copy(io.Discard, nc)
				if ctx.Err() == nil && (err == nil || !errors.As(err, &ne) || !ne.Timeout()) {
					c.Closed.Add(1) // EOF or a reset: the victim closed it
				}
			})
		}
	}
}
