// Package bench runs the same workloads over colugo (zmq transport on
// 127.0.0.1 and the in-process transport), raw zmq4 sockets and NATS (an
// embedded nats-server), in one process, so that their ratios can be read
// from one run on one machine. It is a separate module so that NATS stays
// out of colugo's dependencies.
//
// Paced throughput runs are flow-controlled: a publisher never has more
// than a window of messages unreceived by any subscriber; it waits when it
// has, and subscribers wake it every window/8 messages (not every message,
// so that the harness adds no goroutine hand-off per message). Every
// system therefore runs loss-free at the pace of its slowest stage, and
// the figure is sustained throughput, not queue growth.
//
// Burst runs (Workload.Burst) are not: the publisher publishes as fast as
// Publish returns, as users write it, and the figure is the share
// delivered. Two-process runs (Workload.Procs) put the subscriber or the
// server in a child process (this binary re-executed, see Child), as
// deployments run.
//
// Every run is bounded both in messages and in time, and talks over
// 127.0.0.1 (or colugo's abstract Unix sockets) only.
package bench

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// System is one of the implementations compared.
type System string

// The systems.
const (
	Colugo       System = "colugo"        // colugo, zmq transport, TCP on 127.0.0.1, host-local discovery
	ZMQ4         System = "zmq4"          // raw github.com/go-zeromq/zmq4 sockets
	NATS         System = "nats"          // nats.go clients of an embedded nats-server
	ColugoInproc System = "colugo-inproc" // colugo on transport/inproc: the in-process ceiling
	TCP          System = "tcp"           // requests only: length-prefixed echo over plain TCP, the floor
	// Bridge: two colugo sites joined by colugo's NATS bridge, site a,
	// its bridge, nats-server, site b's bridge and site b each in a
	// process of its own (sys_bridge.go); Bridged workloads only.
	Bridge System = "bridge"
)

// Systems lists every system, colugo first. TCP runs the request
// workloads only.
var Systems = []System{Colugo, ZMQ4, NATS, ColugoInproc, TCP, Bridge}

// Supports reports whether sys runs w: TCP runs requests with one
// replier only, and colugo-inproc runs requests with one replier only
// (its seed discovery knows one server) and nothing across processes;
// two-process workloads are one to one; JSON workloads run on colugo and
// NATS; Bridged workloads run on Bridge, NATS and colugo only (JetStream
// ones on Bridge only), and Bridge runs nothing else.
func Supports(sys System, w Workload) bool {
	if w.Bridged || sys == Bridge {
		// The bridge's rows, next to direct NATS and colugo's own hop;
		// the JetStream rows next to the bridge's plain ones.
		if w.JetStream {
			return sys == Bridge
		}
		return w.Bridged && (sys == Bridge || sys == NATS || sys == Colugo)
	}
	if w.twoProc() && (sys == ColugoInproc || w.Pubs > 1 || w.Subs > 1 || w.topics() > 1 || w.repliers() > 1) {
		return false // two-process rigs are one to one
	}
	if w.JSON && (sys == ZMQ4 || sys == TCP) {
		return false // no codec there to compare
	}
	if w.history() && sys != Colugo && sys != ColugoInproc {
		return false // colugo's own feature: its history-off twin is the comparison
	}
	switch sys {
	case TCP:
		return w.Kind != PubSub && w.repliers() == 1
	case ColugoInproc, ZMQ4:
		return w.Kind == PubSub || w.repliers() == 1
	}
	return true
}

// Kind is the shape of a workload.
type Kind int

// Workload kinds.
const (
	PubSub      Kind = iota // Pubs publishers → Subs subscribers, Size bytes
	ReqSerial               // one request at a time, RTT percentiles
	ReqInFlight             // InFlight requests in flight at once
)

// Workload describes one benchmark.
type Workload struct {
	Name     string
	Kind     Kind
	Size     int // payload bytes, at least 64
	Pubs     int // PubSub
	Subs     int // PubSub
	InFlight int // ReqInFlight
	// Topics (PubSub; 0 means 1): each publisher publishes on this many
	// topics in turn, and each subscriber subscribes to all of them.
	Topics int
	// Repliers (requests; 0 means 1): this many servers (nodes,
	// connections, ROUTER sockets) answer the service; the client spreads
	// its requests over them (colugo: round robin).
	Repliers int
	// Pace (PubSub), when set, makes a latency workload: each publisher
	// sends one message, waits until every subscriber has it, then lets the
	// link sit idle for Pace before the next, and every message is timed.
	Pace time.Duration
	// Burst (PubSub), when set, makes an unpaced burst: each publisher
	// publishes this many messages (fewer if Limits.N says so; Limits.D
	// does not cut a burst short, drainTimeout does) as fast as Publish
	// returns, with no flow control, each in a buffer of its own;
	// subscribers count until they have all or nothing arrived for
	// quietPeriod. Loss does not fail the run: Result says what arrived
	// and what each system counted as dropped. Every system runs with its
	// defaults (colugo: Subscribe's default buffer and drop policy, no
	// WithZeroCopy; NATS: default pending limits).
	Burst int
	// Procs is 2 for a two-process workload: the subscriber (pub/sub) or
	// the server (requests) runs in a child process; for NATS the server
	// runs in a third. Zero or 1: everything in this process.
	Procs int
	// JSON runs colugo with its default codec (codec.JSON) on a Sample,
	// and NATS with encoding/json on the same struct, instead of raw
	// bytes. Size is then nominal: a Sample encodes to about 64 B.
	JSON bool
	// History (colugo, Raw) puts WithHistory(History) on every publisher
	// and SubHistory on every subscription (0: none); such a workload is
	// its history-off twin (same name without the -hist suffix) with that
	// option only.
	History, SubHistory int
	// Bridged marks the bridge's workloads (issue 18): two-process, one
	// to one, run on Bridge (colugo → bridge → NATS → bridge → colugo, five
	// processes) and, for comparison in the same run, direct NATS (its
	// server in a third process) and colugo (one hop between two
	// processes).
	Bridged bool
	// JetStream (with Bridged) carries the topic through a JetStream
	// entry instead (acked exports into a stream, a durable consumer on
	// site b; the nats-server with JetStream on): run on Bridge only, its
	// twin is the row without it.
	JetStream bool
}

func (w Workload) history() bool { return w.History > 0 || w.SubHistory > 0 }

// LatencyBound says that w measures latency (lower is better), not
// throughput: serial requests and paced pub/sub.
func (w Workload) LatencyBound() bool { return w.Kind == ReqSerial || w.Pace > 0 }

func (w Workload) twoProc() bool { return w.Procs == 2 }

func (w Workload) topics() int   { return max(w.Topics, 1) }
func (w Workload) repliers() int { return max(w.Repliers, 1) }

// Workloads are the workloads of the suite, in table order.
var Workloads = []Workload{
	{Name: "pubsub-64B", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1},
	{Name: "pubsub-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 1},
	{Name: "pubsub-64KiB", Kind: PubSub, Size: 64 << 10, Pubs: 1, Subs: 1},
	{Name: "pubsub-1MiB", Kind: PubSub, Size: 1 << 20, Pubs: 1, Subs: 1},
	{Name: "fanout-1to4-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 4},
	{Name: "fanin-4to1-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 4, Subs: 1},
	{Name: "pubsub-64B-paced", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, Pace: 200 * time.Microsecond},
	{Name: "request-64B-serial", Kind: ReqSerial, Size: 64},
	{Name: "request-64B-16inflight", Kind: ReqInFlight, Size: 64, InFlight: 16},

	// Unpaced bursts, one process.
	{Name: "burst-64B", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, Burst: 100_000},
	{Name: "burst-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 1, Burst: 10_000},
	{Name: "burst-64KiB", Kind: PubSub, Size: 64 << 10, Pubs: 1, Subs: 1, Burst: 1_000},
	// Two processes: publisher | subscriber, requester | server.
	{Name: "2p-pubsub-64B", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, Procs: 2},
	{Name: "2p-pubsub-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 1, Procs: 2},
	{Name: "2p-burst-64B", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, Burst: 100_000, Procs: 2},
	{Name: "2p-burst-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 1, Burst: 10_000, Procs: 2},
	{Name: "2p-burst-64KiB", Kind: PubSub, Size: 64 << 10, Pubs: 1, Subs: 1, Burst: 1_000, Procs: 2},
	{Name: "2p-request-64B-serial", Kind: ReqSerial, Size: 64, Procs: 2},
	{Name: "2p-request-64B-16inflight", Kind: ReqInFlight, Size: 64, InFlight: 16, Procs: 2},
	// The default codec (colugo) and encoding/json (NATS) on a Sample.
	{Name: "json-pubsub-64B", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, JSON: true},
	{Name: "json-burst-64B", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, Burst: 100_000, JSON: true},
	{Name: "json-request-64B-serial", Kind: ReqSerial, Size: 64, JSON: true},
	{Name: "2p-json-pubsub-64B", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, Procs: 2, JSON: true},
	{Name: "2p-json-request-64B-serial", Kind: ReqSerial, Size: 64, Procs: 2, JSON: true},
	// History on the publisher (issue 14: ≤ 10 % slower than the same rows
	// without, at 64 B), the subscriber asking for none.
	{Name: "2p-burst-64B-hist1", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, Burst: 100_000, Procs: 2, History: 1},
	{Name: "2p-pubsub-64B-hist1", Kind: PubSub, Size: 64, Pubs: 1, Subs: 1, Procs: 2, History: 1},
	// Across two sites through NATS (issue 18): 20,000 × 1 KiB published as
	// fast as Publish returns (what arrives is counted), one 1 KiB message
	// at a time on an idle path, serial requests.
	{Name: "bridge-pubsub-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 1, Burst: 20_000, Procs: 2, Bridged: true},
	{Name: "bridge-latency-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 1, Pace: 200 * time.Microsecond, Procs: 2, Bridged: true},
	{Name: "bridge-request-64B-serial", Kind: ReqSerial, Size: 64, Procs: 2, Bridged: true},
	// The same topic rows through JetStream (store-and-forward).
	{Name: "bridge-js-pubsub-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 1, Burst: 20_000, Procs: 2, Bridged: true, JetStream: true},
	{Name: "bridge-js-latency-1KiB", Kind: PubSub, Size: 1 << 10, Pubs: 1, Subs: 1, Pace: 200 * time.Microsecond, Procs: 2, Bridged: true, JetStream: true},
}

// Limits bounds a run: it stops after N messages (per publisher, or
// requests in total) or after D, whichever comes first.
type Limits struct {
	N int
	D time.Duration
	// Start and Stop, when set, are called around the measured phase (a
	// benchmark's ResetTimer and StopTimer), from Run's goroutine.
	Start, Stop func()
}

func (l Limits) start() {
	if l.Start != nil {
		l.Start()
	}
}

func (l Limits) stop() {
	if l.Stop != nil {
		l.Stop()
	}
}

// Result is what one run of one workload on one system measured.
type Result struct {
	System   System
	Workload string
	// Msgs counts deliveries (a message delivered to four subscribers
	// counts four times) or completed requests.
	Msgs    int64
	Bytes   int64 // payload bytes delivered
	Elapsed time.Duration
	// Latency: one way for pub/sub (a sample of messages, publish to the
	// subscriber's goroutine, queueing in the window included), round trip
	// for requests.
	P50, P99, P999 time.Duration
	// Allocations of the whole process during the run, per message
	// (publisher and subscriber sides; for NATS the server's too; with
	// two processes, both).
	AllocsPerMsg, BytesPerMsg float64
	// Pub/sub: Sent is the deliveries expected (messages published times
	// subscribers), Msgs those that arrived; they differ in burst runs
	// only (a paced run that loses anything fails). Drops is what the
	// system itself counted.
	Sent  int64
	Drops Drops
	// Procs is the number of processes the run used (1 or 2, 4 for
	// Bridge; a NATS server process is not counted).
	Procs int
}

// Drops is what a system counted as lost in a pub/sub run. Raw zmq4
// counts nothing: its loss shows only as Sent − Msgs.
type Drops struct {
	// Pub: colugo, per publishing node the largest of its
	// Transport.SendDropped, its Transport.Subscribers' Dropped and its
	// topics' Dropped (one loss may be counted in each); NATS, slow-consumer and other asynchronous
	// errors on the publishing connections.
	Pub uint64
	// Sub: colugo, the subscribing nodes' topics' Dropped (the
	// subscription's drop policy); NATS, the subscriptions' Dropped
	// (pending limits) and the subscribers' asynchronous errors.
	Sub uint64
	// Gaps: colugo, the subscribing nodes' topics' Gaps (missing from a
	// publisher's sequence).
	Gaps uint64
}

// DeliveredPct is the share of the expected deliveries that arrived, in
// per cent (100 when nothing was expected).
func (r Result) DeliveredPct() float64 {
	if r.Sent <= 0 {
		return 100
	}
	return 100 * float64(r.Msgs) / float64(r.Sent)
}

// MsgsPerSec is deliveries (or requests) per second.
func (r Result) MsgsPerSec() float64 { return float64(r.Msgs) / r.Elapsed.Seconds() }

// MBPerSec is payload megabytes (10⁶) delivered per second.
func (r Result) MBPerSec() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }

// Run runs w on sys within lim.
func Run(sys System, w Workload, lim Limits) (Result, error) {
	if lim.N <= 0 {
		lim.N = 1 << 40
	}
	if lim.D <= 0 {
		lim.D = 24 * time.Hour
	}
	if !Supports(sys, w) {
		return Result{System: sys, Workload: w.Name}, fmt.Errorf("%s/%s: not supported", sys, w.Name)
	}
	var r Result
	var err error
	switch {
	case w.Kind == PubSub && w.twoProc():
		r, err = runPubSub2(sys, w, lim)
	case w.Kind == PubSub:
		r, err = runPubSub(sys, w, lim)
	case w.Kind == ReqSerial || w.Kind == ReqInFlight:
		r, err = runRequests(sys, w, lim)
	default:
		err = fmt.Errorf("unknown workload kind %d", w.Kind)
	}
	r.System, r.Workload, r.Procs = sys, w.Name, max(w.Procs, 1)
	if sys == Bridge {
		r.Procs = 4 // two sites, two bridges (and NATS's server)
	}
	if err != nil {
		return r, fmt.Errorf("%s/%s: %w", sys, w.Name, err)
	}
	return r, nil
}

// Payload layout: bytes 0–7 a send stamp (ns since the run's base, 0 for
// unsampled messages), byte 8 the publisher's index, byte 9 flags.
const (
	flagWarm   = 1 // a warm-up message: not counted
	sampleMask = 15
	// setupTimeout bounds discovery, connection and subscription.
	setupTimeout = 15 * time.Second
	// quietPeriod ends a burst run's wait for the last messages: nothing
	// arrived for this long, so what is missing is lost.
	quietPeriod = time.Second
)

// drainTimeout bounds the wait for the last messages of a run (a
// variable for the tests).
var drainTimeout = 30 * time.Second

// window is the number of messages a publisher may have in flight to one
// subscriber: 512, fewer for large messages (16 MiB in flight at most).
func window(size int) int { return min(512, max(8, (16<<20)/size)) }

// pubSubRig is one system set up for a pub/sub workload. The rig calls the
// receive function given to its constructor with a stream index,
// sub*Topics + topic, from at most one goroutine per stream at a time.
type pubSubRig interface {
	// Publish sends p from publisher i, on its topics in turn (Publish for
	// one i is called from one goroutine). p stays untouched until every
	// subscriber has received it.
	Publish(i int, p []byte) error
	// Check reports messages a system dropped or lost, after a run.
	Check() error
	// Drops reads what the system counted as dropped.
	Drops() Drops
	Close()
}

// half says which side of a pub/sub rig a process builds and where it
// finds the other: both in one process, or one of them in each of two.
type half struct {
	pubs, subs bool
	dir        string // colugo: the shared host-local registry ("" = a private one)
	url        string // nats: the server's URL ("" = an embedded one)
	addr       string // zmq4, subscribers only: the PUB socket's address
}

var both = half{pubs: true, subs: true}

// testRigs holds the package tests' own systems (one process only).
var testRigs map[System]func(Workload, recvFunc) (pubSubRig, error)

type recvFunc func(stream int, p []byte)

func newPubSubRig(sys System, w Workload, recv recvFunc, h half) (pubSubRig, error) {
	switch sys {
	case Colugo:
		return newColugoPubSub(w, recv, false, h)
	case ColugoInproc:
		return newColugoPubSub(w, recv, true, h)
	case ZMQ4:
		return newZMQ4PubSub(w, recv, h)
	case NATS:
		return newNATSPubSub(w, recv, h)
	}
	if f := testRigs[sys]; f != nil {
		return f(w, recv)
	}
	return nil, fmt.Errorf("unknown system %q", sys)
}

// stamp writes the header of a payload.
func stamp(p []byte, t int64, pub int, flags byte) {
	for i := range 8 {
		p[i] = byte(t >> (8 * i))
	}
	p[8], p[9] = byte(pub), flags
}

func stampOf(p []byte) int64 {
	var t int64
	for i := range 8 {
		t |= int64(p[i]) << (8 * i)
	}
	return t
}

// memSnap reads the process's allocation counters.
func memSnap() (mallocs, bytes uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs, ms.TotalAlloc
}

func runPubSub(sys System, w Workload, lim Limits) (Result, error) {
	win := window(w.Size)
	if w.Pace > 0 {
		win = 1
	}
	if w.Burst > 0 {
		lim.N = min(lim.N, w.Burst)
		win = 1 << 30 // no flow control
	}
	base := time.Now()
	// got[pub][sub] counts what sub received from pub; notify[pub] wakes
	// a waiting publisher. step ≤ win, so a publisher with a full window
	// is always woken: its window's messages cross a multiple of step.
	step := int64(max(1, win/8))
	got := make([][]atomic.Int64, w.Pubs)
	notify := make([]chan struct{}, w.Pubs)
	for i := range got {
		got[i] = make([]atomic.Int64, w.Subs)
		notify[i] = make(chan struct{}, 1)
	}
	type subState struct {
		got  atomic.Int64
		warm atomic.Uint64 // bit i: a warm-up message from publisher i arrived
		lat  []time.Duration
		last atomic.Int64 // burst: when the latest message arrived, ns since base
	}
	// One state per stream (subscriber × topic): the rig may deliver a
	// subscriber's topics from several goroutines.
	nt := w.topics()
	subs := make([]*subState, w.Subs*nt)
	for i := range subs {
		subs[i] = &subState{lat: make([]time.Duration, 0, max(1024, (1<<16)/nt))}
	}
	recv := func(stream int, p []byte) {
		s, sub := subs[stream], stream/nt
		if len(p) < 10 {
			return
		}
		if p[9]&flagWarm != 0 {
			s.warm.Or(1 << p[8])
			return
		}
		if t := stampOf(p); t != 0 && len(s.lat) < cap(s.lat) {
			s.lat = append(s.lat, time.Duration(int64(time.Since(base))-t))
		}
		if w.Burst > 0 {
			s.last.Store(int64(time.Since(base)))
		}
		if got[p[8]][sub].Add(1)%step == 0 {
			select {
			case notify[p[8]] <- struct{}{}:
			default:
			}
		}
		s.got.Add(1)
	}
	rig, err := newPubSubRig(sys, w, recv, both)
	if err != nil {
		return Result{}, err
	}
	defer rig.Close()

	// Warm up: every publisher sends until every subscriber heard from it.
	all := uint64(1)<<w.Pubs - 1
	warmMsg := make([]byte, w.Size)
	deadline := time.Now().Add(setupTimeout)
	for ready := false; !ready; {
		for i := range w.Pubs {
			for range nt { // once on each of its topics
				m := slices.Clone(warmMsg)
				stamp(m, 0, i, flagWarm)
				if err := rig.Publish(i, m); err != nil {
					return Result{}, err
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
		ready = true
		for _, s := range subs {
			ready = ready && s.warm.Load() == all
		}
		if !ready && time.Now().After(deadline) {
			return Result{}, errors.New("subscriptions never became active")
		}
	}
	time.Sleep(20 * time.Millisecond) // let stray warm-up messages land

	ring := 2*win + 2
	if w.Burst > 0 {
		ring = lim.N // a buffer per message, made before the clock starts
	}
	rings := make([][][]byte, w.Pubs)
	for i := range rings {
		slab := make([]byte, ring*w.Size)
		rings[i] = make([][]byte, ring)
		for j := range rings[i] {
			rings[i][j] = slab[j*w.Size : (j+1)*w.Size : (j+1)*w.Size]
		}
	}
	runtime.GC()
	m0, b0 := memSnap()
	lim.start()
	start := time.Now()
	stopAt := start.Add(lim.D)
	if w.Burst > 0 {
		stopAt = start.Add(max(lim.D, drainTimeout)) // a burst is its count: D does not cut it short
	}
	sent := make([]int64, w.Pubs)
	errs := make([]error, w.Pubs)
	var wg sync.WaitGroup
	for i := range w.Pubs {
		wg.Go(func() {
			r := rings[i]
			for k := 0; k < lim.N; k++ {
				if k&63 == 0 && k > 0 && time.Now().After(stopAt) {
					break
				}
				for j := range got[i] {
					for w.Burst == 0 && int64(k)-got[i][j].Load() >= int64(win) {
						<-notify[i]
					}
				}
				if w.Pace > 0 {
					time.Sleep(w.Pace) // pacing, not synchronisation: an idle link before each message
				}
				p := r[k%ring]
				var t int64
				if k&sampleMask == 0 || w.Pace > 0 {
					t = int64(time.Since(base))
				}
				stamp(p, t, i, 0)
				if err := rig.Publish(i, p); err != nil {
					errs[i] = err
					break
				}
				sent[i]++
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	var total int64
	for _, n := range sent {
		total += n
	}
	want := total * int64(w.Subs)
	received := func() int64 {
		var n int64
		for _, s := range subs {
			n += s.got.Load()
		}
		return n
	}
	got1 := waitFor(want, received, w.Burst > 0)
	el := time.Since(start)
	lim.stop()
	m1, b1 := memSnap()
	if w.Burst > 0 {
		// The rate is of what arrived, up to the last arrival (not the
		// quiet period after it).
		var last int64
		for _, s := range subs {
			last = max(last, s.last.Load())
		}
		el = max(time.Duration(last)-start.Sub(base), time.Microsecond)
	} else {
		if got1 < want {
			return Result{}, fmt.Errorf("received %d of %d messages: %w", got1, want, rig.Check())
		}
		if err := rig.Check(); err != nil {
			return Result{}, err
		}
	}
	var lat []time.Duration
	for _, s := range subs {
		lat = append(lat, s.lat...)
	}
	n := max(got1, 1)
	r := Result{Msgs: got1, Sent: want, Bytes: got1 * int64(w.Size), Elapsed: el, Drops: rig.Drops(),
		AllocsPerMsg: float64(m1-m0) / float64(n), BytesPerMsg: float64(b1-b0) / float64(n)}
	r.P50, r.P99, r.P999 = percentiles(lat)
	return r, nil
}

// waitFor polls received until it reaches want and returns the last
// count: a paced run waits up to drainTimeout, a burst until nothing has
// arrived for quietPeriod (within drainTimeout too).
func waitFor(want int64, received func() int64, burst bool) int64 {
	drain := time.Now().Add(drainTimeout)
	n, moved := received(), time.Now()
	for n < want {
		now := time.Now()
		if now.After(drain) || (burst && now.Sub(moved) > quietPeriod) {
			break
		}
		time.Sleep(50 * time.Microsecond) // polling with a deadline
		if m := received(); m != n {
			n, moved = m, time.Now()
		}
	}
	return n
}

// reqRig is one system set up for requests: Request blocks until the echo
// of p arrives; worker is in [0, InFlight).
type reqRig interface {
	Request(worker int, p []byte) ([]byte, error)
	Close()
}

func newReqRig(sys System, w Workload, lim Limits) (reqRig, error) {
	workers := max(w.InFlight, 1)
	if w.twoProc() {
		return newReq2(sys, w, workers, lim)
	}
	switch sys {
	case Colugo:
		return newColugoReq(w, workers, w.repliers(), false)
	case ColugoInproc:
		return newColugoReq(w, workers, 1, true)
	case ZMQ4:
		return newZMQ4Req(workers)
	case NATS:
		return newNATSReq(w, workers, w.repliers())
	case TCP:
		return newTCPReq(workers)
	}
	return nil, fmt.Errorf("unknown system %q", sys)
}

func runRequests(sys System, w Workload, lim Limits) (Result, error) {
	rig, err := newReqRig(sys, w, lim)
	if err != nil {
		return Result{}, err
	}
	defer rig.Close()
	workers := max(w.InFlight, 1)
	payloads := make([][]byte, workers)
	for i := range payloads {
		payloads[i] = make([]byte, w.Size)
		payloads[i][8] = byte(i)
	}
	// Warm up every worker's path (connections, first allocations; with
	// several repliers, round robin reaches each of them).
	for range 10 * w.repliers() {
		for i := range workers {
			if _, err := rig.Request(i, payloads[i]); err != nil {
				return Result{}, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	runtime.GC()
	r2, twoProc := rig.(*req2)
	if twoProc {
		if err := r2.startAllocs(); err != nil {
			return Result{}, err
		}
	}
	m0, b0 := memSnap()
	lim.start()
	start := time.Now()
	stopAt := start.Add(lim.D)
	var issued, done atomic.Int64
	lats := make([][]time.Duration, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<16)
			for k := 0; ; k++ {
				if issued.Add(1) > int64(lim.N) || (k&15 == 0 && time.Now().After(stopAt)) {
					break
				}
				t0 := time.Now()
				rep, err := rig.Request(i, payloads[i])
				if err != nil {
					errs[i] = err
					break
				}
				if len(rep) != w.Size || rep[8] != byte(i) {
					errs[i] = fmt.Errorf("bad reply: %d bytes", len(rep))
					break
				}
				done.Add(1)
				if d := time.Since(t0); len(lat) < cap(lat) {
					lat = append(lat, d)
				} else {
					lat[k%cap(lat)] = d // a sample of the latest
				}
			}
			lats[i] = lat
		})
	}
	wg.Wait()
	el := time.Since(start)
	lim.stop()
	m1, b1 := memSnap()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	if twoProc {
		// The server's allocations too, as in one process.
		sm, sb, err := r2.allocs()
		if err != nil {
			return Result{}, err
		}
		m1, b1 = m1+sm, b1+sb
	}
	var lat []time.Duration
	for _, l := range lats {
		lat = append(lat, l...)
	}
	n := max(done.Load(), 1)
	r := Result{Msgs: n, Bytes: n * int64(w.Size), Elapsed: el,
		AllocsPerMsg: float64(m1-m0) / float64(n), BytesPerMsg: float64(b1-b0) / float64(n)}
	r.P50, r.P99, r.P999 = percentiles(lat)
	return r, nil
}

func percentiles(lat []time.Duration) (p50, p99, p999 time.Duration) {
	if len(lat) == 0 {
		return 0, 0, 0
	}
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return at(0.50), at(0.99), at(0.999)
}

// Median picks the median of several runs of w: by p50 for latency
// workloads (lower is better), by deliveries then throughput for bursts,
// by throughput otherwise.
func Median(w Workload, rs []Result) Result {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Result) int {
		if w.LatencyBound() {
			return cmp.Compare(a.P50, b.P50)
		}
		if c := cmp.Compare(a.Msgs, b.Msgs); w.Burst > 0 && c != 0 {
			return c
		}
		return cmp.Compare(a.MsgsPerSec(), b.MsgsPerSec())
	})
	return rs[len(rs)/2]
}

// SI formats a rate with k/M suffixes, for tables.
func SI(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// CPUModel names this machine's processor (from /proc/cpuinfo), or its
// architecture where that cannot be read.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
