package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/transport/zmq"
)

// Late joiners (issue 14): subscribers that start after the publisher's
// last message, and ask for it with WithLastValue. colugo only, zmq
// transport, host-local discovery (its default 100 ms poll) in a private
// directory that every process of a run shares.

// LateWorkload is a late-joiner run: a publisher with WithHistory(1)
// publishes one 64 B value, once; Subs subscriptions with WithLastValue,
// spread evenly over Nodes subscriber nodes in Procs child processes,
// each count whether the value reaches them. With SubFirst the
// subscribers start first, and the publisher starts and publishes once
// they have all subscribed; otherwise the publisher has published before
// the subscriber nodes start.
type LateWorkload struct {
	Name     string
	Subs     int
	Nodes    int
	Procs    int
	SubFirst bool
}

// LateWorkloads are the late-joiner runs of cmd/history: the 1000
// late subscribers in one process and in four, both start orders. The
// subscribers are subscriptions, 50 per node: 1000 nodes would each
// describe the 999 others through $describe, a million requests that say
// nothing about history.
var LateWorkloads = []LateWorkload{
	{Name: "late-1000-1proc-pubfirst", Subs: 1000, Nodes: 20, Procs: 1},
	{Name: "late-1000-1proc-subfirst", Subs: 1000, Nodes: 20, Procs: 1, SubFirst: true},
	{Name: "late-1000-4proc-pubfirst", Subs: 1000, Nodes: 20, Procs: 4},
	{Name: "late-1000-4proc-subfirst", Subs: 1000, Nodes: 20, Procs: 4, SubFirst: true},
}

// Quantiles summarise a set of durations.
type Quantiles struct {
	N             int
	P50, P99, Max time.Duration
}

func quantiles(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Quantiles{N: len(ds), P50: at(0.5), P99: at(0.99), Max: ds[len(ds)-1]}
}

// LateResult is what a late-joiner run measured.
type LateResult struct {
	Workload LateWorkload
	// Got counts the subscriptions that received the value (correct
	// bytes), Replayed those of them that got it from the history.
	Got, Replayed int
	// Value: from Subscribe (SubFirst: from the publisher's start) to the
	// value's arrival, per subscription that got it.
	Value Quantiles
	// Discovery: from the subscriber node's start (SubFirst: from the
	// publisher's start) until the node knew the publisher with its topic
	// (its Joined event: found in the registry and described), per node.
	Discovery Quantiles
	// After: the value's arrival after its node knew the publisher and
	// the subscription existed, per subscription: what the history fetch
	// adds to discovery (negative when the node's Joined event reached
	// the bench after the value).
	After Quantiles
	// Wrong counts values that were not the one published.
	Wrong int
}

const (
	lateTopic = "bench/latched"
	roleLate  = "late"
	// lateWait bounds the wait for the values once everything started.
	lateWait = 10 * time.Second
)

// lateValue is the published value: 64 bytes.
var lateValue = []byte("the latched value, 64 bytes, published once before anyone asked.")

// Late children are dispatched here, before main or TestMain runs
// (Child, which knows the pub/sub and request roles, reports other
// roles as unknown).
func init() {
	if os.Getenv(roleEnv) != roleLate {
		return
	}
	if err := lateChild(); err != nil {
		fmt.Fprintf(os.Stderr, "bench child %s (pid %d): %v\n", roleLate, os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// lateShare is a late child's part of a run (its "C" line).
type lateShare struct{ Subs, Nodes, Index int }

// lateReport is a late child's account ("R" line): Unix ns, 0 for never.
type lateReport struct {
	NodeStart, Known []int64 // per node
	SubNode          []int   // per subscription: its node
	SubStart, Got    []int64 // per subscription
	Replayed         []bool
	Wrong            int
}

// lateNodes makes the subscriber nodes of a share and their
// subscriptions, recording every instant; ctx ends the subscriptions.
type lateNodes struct {
	dir   string
	nodes []*colugo.Node
	rep   lateReport
	mu    sync.Mutex // rep's Known, Got, Replayed, Wrong: written by the watchers
	left  atomic.Int64
	all   chan struct{} // closed when every subscription has a value
	wg    sync.WaitGroup
}

func (l *lateNodes) start(ctx context.Context, s lateShare) error {
	l.all = make(chan struct{})
	l.left.Store(int64(s.Subs))
	if s.Subs == 0 {
		close(l.all)
	}
	l.rep = lateReport{NodeStart: make([]int64, s.Nodes), Known: make([]int64, s.Nodes),
		SubNode: make([]int, s.Subs), SubStart: make([]int64, s.Subs), Got: make([]int64, s.Subs),
		Replayed: make([]bool, s.Subs)}
	k := 0
	for j := range s.Nodes {
		l.rep.NodeStart[j] = time.Now().UnixNano()
		tr, err := zmq.New()
		if err != nil {
			return err
		}
		n, err := colugo.NewNode(fmt.Sprintf("late-sub-%d-%d", s.Index, j), colugo.WithTransport(tr),
			colugo.WithDiscovery(local.New(local.WithDir(l.dir))))
		if err != nil {
			return err
		}
		l.nodes = append(l.nodes, n)
		evs := n.Events(ctx)
		l.wg.Go(func() {
			for ev := range evs {
				if ev.Kind != discovery.Left && slices.ContainsFunc(ev.Peer.Topics, func(t colugo.TopicInfo) bool { return t.Name == lateTopic }) {
					l.mu.Lock()
					if l.rep.Known[j] == 0 {
						l.rep.Known[j] = time.Now().UnixNano()
					}
					l.mu.Unlock()
				}
			}
		})
		// This node's share of the subscriptions, the remainder spread too.
		for range s.Subs/s.Nodes + b2i(j < s.Subs%s.Nodes) {
			i := k
			k++
			l.rep.SubNode[i] = j
			l.rep.SubStart[i] = time.Now().UnixNano()
			ch, err := colugo.SubscribeReceived[[]byte](ctx, n, lateTopic, rawCodec, colugo.WithLastValue())
			if err != nil {
				return err
			}
			l.wg.Go(func() {
				first := true
				for r := range ch {
					if !first {
						continue // drained until ctx ends
					}
					first = false
					now := time.Now().UnixNano()
					l.mu.Lock()
					l.rep.Got[i], l.rep.Replayed[i] = now, r.Replayed
					if string(r.Value) != string(lateValue) {
						l.rep.Wrong++
					}
					l.mu.Unlock()
					if l.left.Add(-1) == 0 {
						close(l.all)
					}
				}
			})
		}
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// report waits until every subscription has its value and every node has
// seen the publisher's Joined event, or d has passed: a node's events come
// on a channel of their own, which can lag behind its subscriptions'
// values.
func (l *lateNodes) report(d time.Duration) lateReport {
	deadline := time.After(d)
	select {
	case <-l.all:
	case <-deadline:
	}
	for tick := time.NewTicker(time.Millisecond); ; {
		l.mu.Lock()
		known := !slices.Contains(l.rep.Known, 0)
		l.mu.Unlock()
		if known {
			tick.Stop()
			break
		}
		select {
		case <-tick.C:
			continue
		case <-deadline:
			tick.Stop()
		}
		break
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rep
	r.Known, r.Got, r.Replayed = slices.Clone(r.Known), slices.Clone(r.Got), slices.Clone(r.Replayed)
	return r
}

func (l *lateNodes) close() {
	for _, n := range slices.Backward(l.nodes) {
		_ = n.Close()
	}
	l.wg.Wait()
}

// lateChild is a child holding a share of a run's subscriber nodes.
// Protocol, after spawn's configuration line and "ready": parent "C
// {lateShare}"; parent "G": start the nodes and subscribe, child "G" when
// done; parent "E": child "R {lateReport}" once every subscription has the
// value or lateWait has passed; EOF: close and exit.
func lateChild() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cfg childConfig
	lines := make(chan string, 16)
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return errors.New("no configuration on stdin")
	}
	if err := json.Unmarshal(in.Bytes(), &cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	time.AfterFunc(max(cfg.Limit, time.Minute), func() {
		fmt.Fprintf(os.Stderr, "bench child %s (pid %d): over its bound, exiting\n", roleLate, os.Getpid())
		os.Exit(3)
	})
	go func() {
		defer close(lines)
		for in.Scan() {
			lines <- in.Text()
		}
	}()
	out := &lineWriter{w: os.Stdout}
	out.printf("ready")
	l := &lateNodes{dir: cfg.Dir}
	defer l.close()
	var share lateShare
	for line := range lines {
		cmd, arg, _ := strings.Cut(line, " ")
		switch cmd {
		case "C":
			if err := json.Unmarshal([]byte(arg), &share); err != nil {
				return fmt.Errorf("share %q: %w", arg, err)
			}
		case "G":
			if err := l.start(ctx, share); err != nil {
				return err
			}
			out.printf("G")
		case "E":
			b, err := json.Marshal(l.report(lateWait))
			if err != nil {
				return err
			}
			out.printf("R %s", b)
		}
	}
	return nil
}

// RunLate runs w once. Its error is for a run that could not be made;
// subscriptions without the value are a result (Got < Subs).
func RunLate(w LateWorkload) (_ LateResult, err error) {
	if w.Subs < 1 || w.Nodes < 1 || w.Procs < 1 || w.Nodes < w.Procs || w.Subs < w.Nodes {
		return LateResult{}, fmt.Errorf("%s: need subscriptions ≥ nodes ≥ processes ≥ 1", w.Name)
	}
	dir, err := os.MkdirTemp("", "colugo-bench-*")
	if err != nil {
		return LateResult{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	var kids []*child
	defer func() {
		for _, k := range slices.Backward(kids) {
			k.Close()
		}
	}()
	nodesBefore := 0
	for i := range w.Procs {
		k, _, err := spawn(roleLate, childConfig{Dir: dir, Limit: 2*setupTimeout + lateWait + time.Minute})
		if err != nil {
			return LateResult{}, err
		}
		kids = append(kids, k)
		// Nodes spread evenly, subscriptions in proportion (cumulative, so
		// that the shares add up to w.Subs).
		s := lateShare{Nodes: w.Nodes/w.Procs + b2i(i < w.Nodes%w.Procs), Index: i}
		s.Subs = w.Subs*(nodesBefore+s.Nodes)/w.Nodes - w.Subs*nodesBefore/w.Nodes
		nodesBefore += s.Nodes
		b, _ := json.Marshal(s)
		if err := k.send("C %s", b); err != nil {
			return LateResult{}, err
		}
	}
	everyone := func(cmd, reply string, d time.Duration) ([]string, error) {
		for _, k := range kids {
			if err := k.send("%s", cmd); err != nil {
				return nil, err
			}
		}
		var got []string
		for _, k := range kids {
			line, err := k.expect(reply, d)
			if err != nil {
				return nil, err
			}
			got = append(got, line)
		}
		return got, nil
	}
	var pubNode *colugo.Node
	defer func() {
		if pubNode != nil {
			_ = pubNode.Close()
		}
	}()
	var t0 int64
	startPub := func() error {
		t0 = time.Now().UnixNano()
		tr, err := zmq.New()
		if err != nil {
			return err
		}
		if pubNode, err = colugo.NewNode("late-pub", colugo.WithTransport(tr),
			colugo.WithDiscovery(local.New(local.WithDir(dir)))); err != nil {
			return err
		}
		pub, err := colugo.NewPublisher[[]byte](pubNode, lateTopic, rawCodec, colugo.WithHistory(1))
		if err != nil {
			return err
		}
		return pub.Publish(context.Background(), lateValue)
	}
	if !w.SubFirst {
		if err := startPub(); err != nil {
			return LateResult{}, err
		}
	}
	if _, err := everyone("G", "G", setupTimeout); err != nil {
		return LateResult{}, err
	}
	if w.SubFirst {
		if err := startPub(); err != nil {
			return LateResult{}, err
		}
	}
	lines, err := everyone("E", "R ", lateWait+setupTimeout)
	if err != nil {
		return LateResult{}, err
	}
	// Times count from each node's or subscription's start, or with
	// SubFirst from the publisher's.
	origin := func(own int64) int64 {
		if w.SubFirst {
			return t0
		}
		return own
	}
	res := LateResult{Workload: w}
	var value, disc, after []time.Duration
	for _, line := range lines {
		var rep lateReport
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "R ")), &rep); err != nil {
			return LateResult{}, fmt.Errorf("late child's report: %w", err)
		}
		res.Wrong += rep.Wrong
		for j, known := range rep.Known {
			if known != 0 {
				disc = append(disc, time.Duration(known-origin(rep.NodeStart[j])))
			}
		}
		for i, got := range rep.Got {
			if got == 0 {
				continue
			}
			res.Got++
			if rep.Replayed[i] {
				res.Replayed++
			}
			value = append(value, time.Duration(got-origin(rep.SubStart[i])))
			if known := rep.Known[rep.SubNode[i]]; known != 0 {
				after = append(after, time.Duration(got-max(known, rep.SubStart[i])))
			}
		}
	}
	res.Value, res.Discovery, res.After = quantiles(value), quantiles(disc), quantiles(after)
	return res, nil
}

// LatestCase is one Latest measurement: a fresh node calls Latest on a
// topic right after it starts.
type LatestCase string

// The Latest cases.
const (
	// LatestNothingPublished: the topic's publisher keeps history
	// (WithHistory(1)) but has published nothing: ErrNoValue.
	LatestNothingPublished LatestCase = "publisher with history, nothing published"
	// LatestNoHistory: the publisher keeps no history: ErrNoValue.
	LatestNoHistory LatestCase = "publisher without history"
	// LatestNoPublisher: nobody publishes the topic: ctx's error, here a
	// deadline of LatestDeadline.
	LatestNoPublisher LatestCase = "no publisher"
	// LatestPublisherLater: Latest is called first, then the topic's
	// publisher (WithHistory(1), nothing published) starts: Latest waits
	// for it to be found, then ErrNoValue. Times count from the
	// publisher's start.
	LatestPublisherLater LatestCase = "publisher starting after the call, nothing published"
)

// LatestDeadline is the ctx deadline of each Latest call.
const LatestDeadline = 500 * time.Millisecond

// LatestResult is what rounds of one Latest case measured.
type LatestResult struct {
	Case LatestCase
	// Errs counts the rounds by what Latest returned: "ErrNoValue",
	// "DeadlineExceeded", "value" or another error's text.
	Errs map[string]int
	// Latest: from the node's start (LatestPublisherLater: the
	// publisher's) to Latest's return. Discovery: from the same instant
	// until the node knew the publisher (Joined with the topic); none for
	// LatestNoPublisher.
	Latest, Discovery Quantiles
}

// RunLatest runs rounds of each Latest case in this process, on a
// private host-local registry.
func RunLatest(rounds int) (_ []LatestResult, err error) {
	dir, err := os.MkdirTemp("", "colugo-bench-*")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	mk := func(name string) (*colugo.Node, error) {
		tr, err := zmq.New()
		if err != nil {
			return nil, err
		}
		return colugo.NewNode(name, colugo.WithTransport(tr), colugo.WithDiscovery(local.New(local.WithDir(dir))))
	}
	topics := map[LatestCase]string{LatestNothingPublished: "bench/never", LatestNoHistory: "bench/nohistory",
		LatestNoPublisher: "bench/nobody", LatestPublisherLater: "bench/later"}
	pn, err := mk("latest-pub")
	if err != nil {
		return nil, err
	}
	defer func() { _ = pn.Close() }()
	if _, err := colugo.NewPublisher[[]byte](pn, topics[LatestNothingPublished], rawCodec, colugo.WithHistory(1)); err != nil {
		return nil, err
	}
	if _, err := colugo.NewPublisher[[]byte](pn, topics[LatestNoHistory], rawCodec); err != nil {
		return nil, err
	}
	var out []LatestResult
	for _, c := range []LatestCase{LatestNothingPublished, LatestNoHistory, LatestNoPublisher, LatestPublisherLater} {
		res := LatestResult{Case: c, Errs: map[string]int{}}
		var lat, disc []time.Duration
		for range rounds {
			t0 := time.Now()
			n, err := mk("latest-late")
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), LatestDeadline)
			known := make(chan time.Duration, 1)
			evs := n.Events(ctx)
			var wg sync.WaitGroup
			wg.Go(func() {
				for ev := range evs {
					if ev.Kind != discovery.Left && slices.ContainsFunc(ev.Peer.Topics, func(t colugo.TopicInfo) bool { return t.Name == topics[c] }) {
						select {
						case known <- time.Since(t0):
						default:
						}
					}
				}
			})
			var later *colugo.Node
			if c == LatestPublisherLater {
				done := make(chan error, 1)
				wg.Go(func() {
					_, err := colugo.Latest[[]byte](ctx, n, topics[c], rawCodec)
					done <- err
				})
				t0 = time.Now() // Latest waits for the publisher from here
				if later, err = mk("latest-later-pub"); err == nil {
					_, err = colugo.NewPublisher[[]byte](later, topics[c], rawCodec, colugo.WithHistory(1))
				}
				if err != nil {
					cancel()
					return nil, err
				}
				err = <-done
			} else {
				_, err = colugo.Latest[[]byte](ctx, n, topics[c], rawCodec)
			}
			lat = append(lat, time.Since(t0))
			cancel()
			wg.Wait()
			_ = n.Close()
			if later != nil {
				_ = later.Close()
			}
			select {
			case d := <-known:
				disc = append(disc, d)
			default:
			}
			res.Errs[errName(err)]++
		}
		res.Latest, res.Discovery = quantiles(lat), quantiles(disc)
		out = append(out, res)
	}
	return out, nil
}

func errName(err error) string {
	switch {
	case err == nil:
		return "value"
	case errors.Is(err, colugo.ErrNoValue):
		return "ErrNoValue"
	case errors.Is(err, context.DeadlineExceeded):
		return "DeadlineExceeded"
	}
	return err.Error()
}
