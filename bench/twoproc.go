package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// childLimit bounds the life of a child of a run bounded by lim: the
// run, its set-up and its drain, with a margin.
func childLimit(lim Limits) time.Duration {
	return min(lim.D, time.Hour) + 2*setupTimeout + drainTimeout + quietPeriod + time.Minute
}

// runPubSub2 runs a one-to-one pub/sub workload with the subscriber in a
// child process (and, for NATS, the server in another): this process
// publishes, paced by the child's progress reports unless w is a burst.
// Send stamps and arrival times are wall-clock Unix nanoseconds, which
// both processes on one host read alike.
func runPubSub2(sys System, w Workload, lim Limits) (_ Result, err error) {
	win := window(w.Size)
	if w.Pace > 0 {
		win = 1
	}
	burst := w.Burst > 0
	if burst {
		lim.N = min(lim.N, w.Burst)
	}
	h := half{pubs: true}
	if sys == Colugo {
		if h.dir, err = os.MkdirTemp("", "colugo-bench-*"); err != nil {
			return Result{}, err
		}
		defer func() { _ = os.RemoveAll(h.dir) }()
	}
	var kids []*child
	defer func() {
		for _, k := range slices.Backward(kids) {
			k.Close()
		}
	}()
	// The subscriber's system and registry: for a Bridge run, colugo on
	// site b, while this process publishes on site a.
	subSys, subDir := sys, h.dir
	var br *bridgeRig
	if sys == Bridge {
		if br, err = newBridgeRig(w, lim, false); err != nil {
			return Result{}, err
		}
		defer br.Close()
		h.dir, subSys, subDir = br.dirA, Colugo, br.dirB
		sys = Colugo // this process's half: a colugo publisher
	}
	if sys == NATS {
		k, url, err := spawn(roleNATS, childConfig{Limit: childLimit(lim)})
		if err != nil {
			return Result{}, err
		}
		kids, h.url = append(kids, k), url
	}
	rig, err := newPubSubRig(sys, w, nil, h)
	if err != nil {
		return Result{}, err
	}
	defer rig.Close()
	cfg := childConfig{Sys: subSys, W: w, Dir: subDir, URL: h.url, Base: time.Now().UnixNano(),
		Step: max(1, win/8), Limit: childLimit(lim)}
	if z, ok := rig.(*zmq4PubSub); ok {
		cfg.Addr = z.addr()
	}
	sub, _, err := spawn(roleSub, cfg)
	if err != nil {
		return Result{}, err
	}
	kids = append(kids, sub)

	// Warm up until the child has heard from the publisher.
	warm := make([]byte, w.Size)
	stamp(warm, 0, 0, flagWarm)
	for deadline := time.Now().Add(setupTimeout); ; {
		if err := rig.Publish(0, slices.Clone(warm)); err != nil {
			return Result{}, err
		}
		if _, err := sub.expect("W", 2*time.Millisecond); err == nil {
			break
		} else if errors.Is(err, errChildExited) || time.Now().After(deadline) {
			return Result{}, fmt.Errorf("subscription never became active: %w", err)
		}
	}
	ring := 2*win + 2
	if burst {
		ring = lim.N // a buffer per message, made before the clock starts
	}
	slab := make([]byte, ring*w.Size)
	bufs := make([][]byte, ring)
	for j := range bufs {
		bufs[j] = slab[j*w.Size : (j+1)*w.Size : (j+1)*w.Size]
	}
	runtime.GC()
	if err := sub.send("S"); err != nil {
		return Result{}, err
	}
	if _, err := sub.expect("S", setupTimeout); err != nil {
		return Result{}, err
	}
	m0, b0 := memSnap()
	lim.start()
	start := time.Now()
	startNs := start.UnixNano()
	stopAt := start.Add(lim.D)
	if w.Burst > 0 {
		stopAt = start.Add(max(lim.D, drainTimeout)) // a burst is its count: D does not cut it short
	}
	var sent int64
	for k := 0; k < lim.N; k++ {
		if k&63 == 0 && k > 0 && time.Now().After(stopAt) {
			break
		}
		for !burst && int64(k)-sub.progress.Load() >= int64(win) {
			select {
			case <-sub.notify:
			case <-sub.readDone:
				return Result{}, fmt.Errorf("subscriber (pid %d) exited during the run", sub.cmd.Process.Pid)
			}
		}
		if w.Pace > 0 {
			time.Sleep(w.Pace) // pacing, not synchronisation: an idle link before each message
		}
		p := bufs[k%ring]
		var t int64
		if k&sampleMask == 0 || w.Pace > 0 {
			t = time.Now().UnixNano() - cfg.Base
		}
		stamp(p, t, 0, 0)
		if err := rig.Publish(0, p); err != nil {
			return Result{}, err
		}
		sent++
	}
	if err := sub.send("E %d", sent); err != nil {
		return Result{}, err
	}
	line, err := sub.expect("D ", drainTimeout+quietPeriod+setupTimeout)
	if err != nil {
		return Result{}, err
	}
	lim.stop()
	m1, b1 := memSnap()
	var rep childReport
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "D ")), &rep); err != nil {
		return Result{}, fmt.Errorf("subscriber's report: %w", err)
	}
	pd := rig.Drops()
	d := Drops{Pub: pd.Pub + rep.Drops.Pub, Sub: pd.Sub + rep.Drops.Sub, Gaps: pd.Gaps + rep.Drops.Gaps}
	if br != nil {
		// What the bridges dropped: site a's export (its local queue, the
		// link) with the publisher's, site b's import with the
		// subscriber's.
		bd, err := br.drops()
		if err != nil {
			return Result{}, err
		}
		d.Pub += bd.Export
		d.Sub += bd.Import
	}
	if !burst && rep.Got < sent {
		return Result{}, fmt.Errorf("received %d of %d messages (drops %+v)", rep.Got, sent, d)
	}
	el := time.Since(start)
	if rep.Last > startNs {
		el = time.Duration(rep.Last - startNs) // up to the last arrival
	}
	n := max(rep.Got, 1)
	return Result{Msgs: rep.Got, Sent: sent, Bytes: rep.Got * int64(w.Size), Elapsed: el,
		P50: rep.P50, P99: rep.P99, P999: rep.P999, Drops: d,
		AllocsPerMsg: float64(m1-m0+rep.Mallocs) / float64(n),
		BytesPerMsg:  float64(b1-b0+rep.Bytes) / float64(n)}, nil
}

// req2 is a request rig whose server runs in a child process (for NATS,
// with the server in another).
type req2 struct {
	cli  reqRig
	kids []*child
	dir  string
	dirs []string // a Bridge run's two sites'
}

func (r *req2) Request(i int, p []byte) ([]byte, error) { return r.cli.Request(i, p) }

// startAllocs has the server child take its allocation counters.
func (r *req2) startAllocs() error {
	srv := r.kids[len(r.kids)-1]
	if err := srv.send("S"); err != nil {
		return err
	}
	_, err := srv.expect("S", setupTimeout)
	return err
}

// allocs reads what the server child allocated since startAllocs.
func (r *req2) allocs() (mallocs, bytes uint64, err error) {
	srv := r.kids[len(r.kids)-1]
	if err := srv.send("A"); err != nil {
		return 0, 0, err
	}
	line, err := srv.expect("A ", setupTimeout)
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(line, "A %d %d", &mallocs, &bytes); err != nil {
		return 0, 0, fmt.Errorf("server's allocations %q: %w", line, err)
	}
	return mallocs, bytes, nil
}

func (r *req2) Close() {
	if r.cli != nil {
		r.cli.Close()
	}
	for _, k := range slices.Backward(r.kids) {
		k.Close()
	}
	for _, d := range append(r.dirs, r.dir) {
		if d != "" {
			_ = os.RemoveAll(d)
		}
	}
}

// newReq2 starts the server of w in a child and connects workers clients
// to it from this process.
func newReq2(sys System, w Workload, workers int, lim Limits) (_ *req2, err error) {
	r := &req2{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	cfg := childConfig{Sys: sys, W: w, Limit: childLimit(lim)}
	server := func() (string, error) {
		k, addr, err := spawn(roleServer, cfg)
		if err != nil {
			return "", err
		}
		r.kids = append(r.kids, k)
		return addr, nil
	}
	switch sys {
	case Bridge:
		// The server on site a, spawned last (kids' last is the server),
		// the client on site b, in this process.
		br, err := newBridgeRig(w, lim, true)
		if err != nil {
			return nil, err
		}
		r.kids = append(r.kids, br.kids...) // r closes them, and removes the directories
		r.dirs = append(r.dirs, br.dirA, br.dirB)
		cfg.Sys, cfg.Dir = Colugo, br.dirA
		if _, err := server(); err != nil {
			return nil, err
		}
		if r.cli, err = colugoClient(br.dirB, w, workers); err != nil {
			return nil, err
		}
	case Colugo:
		if r.dir, err = os.MkdirTemp("", "colugo-bench-*"); err != nil {
			return nil, err
		}
		cfg.Dir = r.dir
		if _, err := server(); err != nil {
			return nil, err
		}
		if r.cli, err = colugoClient(r.dir, w, workers); err != nil {
			return nil, err
		}
	case NATS:
		k, url, err := spawn(roleNATS, childConfig{Limit: cfg.Limit})
		if err != nil {
			return nil, err
		}
		r.kids = append(r.kids, k)
		cfg.URL = url
		if _, err := server(); err != nil {
			return nil, err
		}
		c := &natsRig{}
		r.cli = c
		if err := c.start(url); err != nil {
			return nil, err
		}
		if err := c.client(w, workers); err != nil {
			return nil, err
		}
	case ZMQ4:
		addr, err := server()
		if err != nil {
			return nil, err
		}
		if r.cli, err = newZMQ4Dealers(workers, addr); err != nil {
			return nil, err
		}
	case TCP:
		addr, err := server()
		if err != nil {
			return nil, err
		}
		if r.cli, err = newTCPClients(workers, addr); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: no two-process requests", sys)
	}
	return r, nil
}

// serveHalf is a server child's side of a request workload: it serves
// the echo and returns what closes it and the address to dial (zmq4, TCP;
// colugo and NATS are found through the registry and the NATS server).
func serveHalf(cfg childConfig) (func(), string, error) {
	switch cfg.Sys {
	case Colugo:
		m, err := newNodeMaker(false, cfg.Dir)
		if err != nil {
			return nil, "", err
		}
		srv, err := m.node("bench-server-0")
		if err == nil {
			err = serveColugo(srv, cfg.W.JSON)
		}
		if err != nil {
			m.close()
			return nil, "", err
		}
		return m.close, "", nil
	case NATS:
		r := &natsRig{}
		err := r.start(cfg.URL)
		if err == nil {
			err = r.serve(cfg.W.JSON, false)
		}
		if err != nil {
			r.Close()
			return nil, "", err
		}
		return r.Close, "", nil
	case ZMQ4:
		r, err := newZMQ4Req(0)
		if err != nil {
			return nil, "", err
		}
		return r.Close, r.router.Addr().String(), nil
	case TCP:
		r, err := newTCPReq(0)
		if err != nil {
			return nil, "", err
		}
		return r.Close, r.ln.Addr().String(), nil
	}
	return nil, "", fmt.Errorf("%s: no request server", cfg.Sys)
}

// colugoClient is a colugo request client on the registry in dir, with
// workers in flight. When the client fails to start, what was made is
// still returned, so that the rig's Close ends it.
func colugoClient(dir string, w Workload, workers int) (reqRig, error) {
	m, err := newNodeMaker(false, dir)
	if err != nil {
		return nil, err
	}
	c := &colugoReq{m: m}
	return c, c.client(w, workers, 1)
}
