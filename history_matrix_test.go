package colugo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testwait"
)

// History for late joiners (issue 14): every combination of a publisher
// with or without history, a subscription with or without, both start
// orders, on one node and across two, over inproc and zmq (with and
// without a network key). Live data must always arrive; history only when
// both ask, first, in order, marked Replayed, with the original sequence
// numbers and send times; the subscriptions that did not ask get live
// messages only; a subscription that asked a publisher keeping none is
// told (ErrNoHistory, SubscriptionStats.NoHistory).

// historyTransports are the transports of the history tests: inproc
// (colugotest), zmq with a registry in a temporary directory, and the
// same with a network key.
var historyTransports = []string{"inproc", "zmq", "zmq-key"}

// historyMaker returns a function that makes nodes on tr that see each
// other: inproc (one colugotest network), zmq with a registry in a
// temporary directory, or zmq-key, the same with a network key.
func historyMaker(t *testing.T, tr string) func(name string, opts ...colugo.NodeOption) *colugo.Node {
	t.Helper()
	switch tr {
	case "inproc":
		return colugotest.NewNetwork(t).NewNode
	case "zmq", "zmq-key":
		dir := t.TempDir()
		return func(name string, opts ...colugo.NodeOption) *colugo.Node {
			t.Helper()
			base := []colugo.NodeOption{colugo.WithDiscovery(local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond)))}
			if tr == "zmq-key" {
				base = append(base, colugo.WithKey(key1))
			}
			n, err := colugo.NewNode(name, append(base, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Close() })
			return n
		}
	}
	t.Fatalf("unknown transport %q", tr)
	return nil
}

// historyNodes makes a publishing and a subscribing node on tr (the same
// node when same), the subscribing one with onErr as its error handler.
func historyNodes(t *testing.T, tr string, same bool, onErr func(error)) (pubNode, subNode *colugo.Node) {
	t.Helper()
	mk := historyMaker(t, tr)
	subNode = mk("sub", colugo.WithErrorHandler(onErr))
	if same {
		return subNode, subNode
	}
	return mk("pub"), subNode
}

// subStats returns the stats of node's subscriptions to topic.
func subStats(node *colugo.Node, topic string) []colugo.SubscriptionStats {
	var out []colugo.SubscriptionStats
	for _, s := range node.Stats().Subscriptions {
		if s.Topic == topic {
			out = append(out, s)
		}
	}
	return out
}

// historySub returns the stats of node's one subscription to topic that
// asked for history, and whether there is exactly one.
func historySub(node *colugo.Node, topic string) (colugo.SubscriptionStats, bool) {
	var found []colugo.SubscriptionStats
	for _, s := range subStats(node, topic) {
		if s.History > 0 {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return colugo.SubscriptionStats{}, false
	}
	return found[0], true
}

func TestHistoryMatrix(t *testing.T) {
	t.Setenv(colugo.EnvKey, "") // the operator's key would override ours
	subs := []struct {
		name  string
		depth int
		opts  []colugo.SubscribeOption
	}{
		{"sub-live", 0, nil},
		{"sub-history3", 3, []colugo.SubscribeOption{colugo.WithHistory(3)}},
		{"sub-last", 1, []colugo.SubscribeOption{colugo.WithLastValue()}},
	}
	for _, tr := range historyTransports {
		for _, same := range []bool{true, false} {
			place := "other-node"
			if same {
				place = "same-node"
			}
			for _, pubDepth := range []int{0, 2} {
				for _, sub := range subs {
					for _, pubFirst := range []bool{true, false} {
						order := "sub-then-pub"
						if pubFirst {
							order = "pub-then-sub"
						}
						name := fmt.Sprintf("%s/%s/pub-history%d/%s/%s", tr, place, pubDepth, sub.name, order)
						t.Run(name, func(t *testing.T) {
							historyCase(t, tr, same, pubDepth, sub.depth, sub.opts, pubFirst)
						})
					}
				}
			}
		}
	}
}

// historyCase runs one combination of TestHistoryMatrix. Next to the
// subscription under test (opts) the subscribing node has a plain one,
// which must get live messages only, and the publishing node a reference
// one, made before anything is published, which tells each message's
// original sequence number and send time.
func historyCase(t *testing.T, tr string, same bool, pubDepth, subDepth int, opts []colugo.SubscribeOption, pubFirst bool) {
	const topic = "hist/matrix"
	var noHistory atomic.Int64
	pubNode, subNode := historyNodes(t, tr, same, func(err error) {
		if errors.Is(err, colugo.ErrNoHistory) {
			noHistory.Add(1)
		}
	})
	ctx := t.Context()
	both := pubDepth > 0 && subDepth > 0
	told := subDepth > 0 && pubDepth == 0 // must get ErrNoHistory

	ref, err := colugo.SubscribeReceived[int](ctx, pubNode, topic, colugo.WithBuffer(64))
	if err != nil {
		t.Fatal(err)
	}
	sent := map[uint64]colugo.Received[int]{} // by seq, as the reference got them
	var p *colugo.Publisher[int]
	publish := func(vs ...int) {
		t.Helper()
		for _, v := range vs {
			if err := p.Publish(ctx, v); err != nil {
				t.Fatal(err)
			}
			r := colugotest.Next(t, ref, wait)
			if r.Value != v || r.Replayed {
				t.Fatalf("reference subscription got %+v, want %d live", r, v)
			}
			sent[r.Seq] = r
		}
	}
	newPub := func() {
		t.Helper()
		var popts []colugo.PublisherOption
		if pubDepth > 0 {
			popts = append(popts, colugo.WithHistory(pubDepth))
		}
		var err error
		if p, err = colugo.NewPublisher[int](pubNode, topic, popts...); err != nil {
			t.Fatal(err)
		}
	}
	var tested, plain <-chan colugo.Received[int]
	subscribe := func() {
		t.Helper()
		var err error
		if tested, err = colugo.SubscribeReceived[int](ctx, subNode, topic, append(slices.Clone(opts), colugo.WithBuffer(64))...); err != nil {
			t.Fatal(err)
		}
		if plain, err = colugo.SubscribeReceived[int](ctx, subNode, topic, colugo.WithBuffer(64)); err != nil {
			t.Fatal(err)
		}
	}
	// Subscriptions that reach the publisher: the reference, and the two
	// on the subscribing node, which another node's transport counts once.
	reach := 3
	if !same {
		reach = 2
	}
	waitReached := func() {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if err := p.WaitSubscribers(wctx, reach); err != nil {
			t.Fatalf("waiting for %d subscribers: %v (have %d)", reach, err, p.Subscribers())
		}
	}
	waitTold := func() {
		t.Helper()
		testwait.Until(t, "ErrNoHistory and SubscriptionStats.NoHistory", func() bool {
			s, ok := historySub(subNode, topic)
			return ok && slices.Contains(s.NoHistory, pubNode.ID()) && noHistory.Load() > 0
		})
	}
	// check reads want from ch: values, in order, each with the
	// reference's seq, send time and sender. The first mustReplay must be
	// marked Replayed; the others may be only when mayReplay (a message
	// published while the history was being fetched may come from the
	// history, its live copy still on its way), else they must be live.
	var replayed int
	check := func(what string, ch <-chan colugo.Received[int], want []int, mustReplay int, mayReplay bool) (got int) {
		t.Helper()
		for i, v := range want {
			r := colugotest.Next(t, ch, wait)
			orig, ok := sent[r.Seq]
			if r.Value != v || !ok || orig.Value != v || !r.SendTime.Equal(orig.SendTime) || r.Sender != pubNode.ID() {
				t.Fatalf("%s: message %d: got %+v, want value %d as published (%+v)", what, i, r, v, orig)
			}
			switch {
			case i < mustReplay && !r.Replayed:
				t.Fatalf("%s: message %d (%d) not marked Replayed", what, i, v)
			case i >= mustReplay && r.Replayed && !mayReplay:
				t.Fatalf("%s: message %d (%d) marked Replayed; want live", what, i, v)
			}
			if r.Replayed {
				got++
			}
		}
		return got
	}

	if pubFirst {
		newPub()
		publish(1, 2, 3, 4)
		subscribe()
		k := 0
		if both {
			k = min(subDepth, pubDepth, 4)
			var want []int
			for v := 4 - k + 1; v <= 4; v++ {
				want = append(want, v)
			}
			replayed += check("history", tested, want, k, false)
		}
		if told {
			waitTold()
		}
		waitReached()
		publish(5, 6, 7)
		replayed += check("live after history", tested, []int{5, 6, 7}, 0, false)
		check("plain subscription", plain, []int{5, 6, 7}, 0, false)
		if both && !same {
			// A first fetch asks for some more than it delivers (the
			// messages published after it began, which it would deliver
			// too): the publisher sends what it keeps.
			if served := pubNode.Stats().Topics[topic].HistoryServed; served != uint64(min(pubDepth, 4)) {
				t.Errorf("publisher's HistoryServed = %d, want %d", served, min(pubDepth, 4))
			}
		}
	} else {
		subscribe()
		newPub()
		waitReached()
		if told {
			waitTold()
		}
		publish(1, 2, 3, 4)
		replayed += check("live", tested, []int{1, 2, 3, 4}, 0, both)
		check("plain subscription", plain, []int{1, 2, 3, 4}, 0, false)
	}

	// What the stats say.
	if told {
		waitTold()
	}
	var asked colugo.SubscriptionStats
	for _, s := range subStats(subNode, topic) {
		switch {
		case s.History == subDepth && subDepth > 0:
			asked = s
		case s.History != 0:
			t.Errorf("a subscription asked for %d, want 0 or %d: %+v", s.History, subDepth, s)
		case s.Replayed != 0 || len(s.NoHistory) != 0:
			t.Errorf("a subscription without history: %+v", s)
		}
	}
	if subDepth > 0 {
		if asked.History != subDepth {
			t.Fatalf("no subscription with History %d in %+v", subDepth, subStats(subNode, topic))
		}
		if asked.Replayed != uint64(replayed) {
			t.Errorf("SubscriptionStats.Replayed = %d, want %d", asked.Replayed, replayed)
		}
		if !told && len(asked.NoHistory) != 0 {
			t.Errorf("NoHistory = %v, want none", asked.NoHistory)
		}
		if told && !slices.Equal(asked.NoHistory, []string{pubNode.ID()}) {
			t.Errorf("NoHistory = %v, want [%s]", asked.NoHistory, pubNode.ID())
		}
	}
	if got := subNode.Stats().Topics[topic].Replayed; got != uint64(replayed) {
		t.Errorf("TopicStats.Replayed = %d, want %d", got, replayed)
	}
	wantTold := int64(0)
	if told {
		wantTold = 1
	}
	if got := noHistory.Load(); got != wantTold {
		t.Errorf("ErrNoHistory reported %d times, want %d", got, wantTold)
	}
	if !same {
		// $describe tells the depth a node keeps (and, for a subscription,
		// asked for).
		testwait.Until(t, "the publisher's description", func() bool {
			for _, pi := range subNode.Peers() {
				if pi.ID == pubNode.ID() {
					for _, ti := range pi.Topics {
						if ti.Name == topic {
							return true
						}
					}
				}
			}
			return false
		})
		for _, pi := range subNode.Peers() {
			for _, ti := range pi.Topics {
				if pi.ID == pubNode.ID() && ti.Name == topic && ti.History != pubDepth {
					t.Errorf("the publisher describes History %d, want %d", ti.History, pubDepth)
				}
			}
		}
	}
}

// knowsPublishers waits until node knows want publishers of topic on
// other nodes (their $describe lists it).
func knowsPublishers(t *testing.T, node *colugo.Node, topic string, want int) {
	t.Helper()
	testwait.Until(t, fmt.Sprintf("%d publishers of %s", want, topic), func() bool {
		n := 0
		for _, pi := range node.Peers() {
			if slices.ContainsFunc(pi.Topics, func(ti colugo.TopicInfo) bool { return ti.Name == topic }) {
				n++
			}
		}
		return n >= want
	})
}

// latestNodes makes nodes on tr that see each other (historyMaker).
func latestNodes(t *testing.T, tr string, names ...string) []*colugo.Node {
	t.Helper()
	mk := historyMaker(t, tr)
	var out []*colugo.Node
	for _, name := range names {
		out = append(out, mk(name))
	}
	return out
}

// TestLatestAcrossPublishers: Latest returns the newest value (by send
// time) of two publishers on other nodes, and of this node's own and
// another's; ErrNoValue while they keep nothing.
func TestLatestAcrossPublishers(t *testing.T) {
	t.Setenv(colugo.EnvKey, "")
	const topic = "hist/latest"
	for _, tr := range historyTransports {
		t.Run(tr, func(t *testing.T) {
			ns := latestNodes(t, tr, "a", "b", "c")
			a, b, c := ns[0], ns[1], ns[2]
			pa, err := colugo.NewPublisher[string](a, topic, colugo.WithHistory(1))
			if err != nil {
				t.Fatal(err)
			}
			pb, err := colugo.NewPublisher[string](b, topic, colugo.WithHistory(4))
			if err != nil {
				t.Fatal(err)
			}
			// Latest asks the publishers known when it is called: each
			// asker must know the others'.
			knowsPublishers(t, c, topic, 2)
			knowsPublishers(t, a, topic, 1)
			knowsPublishers(t, b, topic, 1)
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			if v, err := colugo.Latest[string](ctx, c, topic); !errors.Is(err, colugo.ErrNoValue) {
				t.Fatalf("before any publish: %q, %v; want ErrNoValue", v, err)
			}
			latest := func(on *colugo.Node, want string, from *colugo.Node, seq uint64) {
				t.Helper()
				r, err := colugo.LatestReceived[string](ctx, on, topic)
				if err != nil || r.Value != want || r.Sender != from.ID() || r.Seq != seq || !r.Replayed || r.SendTime.IsZero() {
					t.Fatalf("Latest on %s = %+v, %v; want %q from %s, seq %d, Replayed", on.Name(), r, err, want, from.Name(), seq)
				}
			}
			publish := func(p *colugo.Publisher[string], v string) {
				t.Helper()
				before := time.Now()
				if err := p.Publish(ctx, v); err != nil {
					t.Fatal(err)
				}
				// Send times order the publishers: make the next one later
				// even on a coarse clock.
				testwait.Until(t, "the clock to move", func() bool { return time.Since(before) > time.Microsecond })
			}
			publish(pa, "a1")
			latest(c, "a1", a, 1)
			publish(pb, "b1")
			publish(pb, "b2")
			latest(c, "b2", b, 2)
			latest(a, "b2", b, 2) // its own publisher's is older
			publish(pa, "a2")
			latest(c, "a2", a, 2)
			latest(a, "a2", a, 2)
			latest(b, "a2", a, 2)
			if v, err := colugo.Latest[int](ctx, c, topic); err == nil {
				t.Fatalf("Latest[int] of strings: %v, nil error", v)
			}
		})
	}
}

// TestLatestNoValue: publishers that keep nothing (no history, or history
// and nothing published yet) make Latest return ErrNoValue promptly, each
// having answered, not at the deadline.
func TestLatestNoValue(t *testing.T) {
	t.Setenv(colugo.EnvKey, "")
	const topic = "hist/none"
	for _, tr := range historyTransports {
		t.Run(tr, func(t *testing.T) {
			mk := historyMaker(t, tr)
			ns := []*colugo.Node{mk("a"), mk("b"), mk("c"), mk("asker")}
			if _, err := colugo.NewPublisher[int](ns[0], topic); err != nil {
				t.Fatal(err)
			}
			pb, err := colugo.NewPublisher[int](ns[1], topic)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := colugo.NewPublisher[int](ns[2], topic, colugo.WithHistory(3)); err != nil {
				t.Fatal(err)
			}
			if err := pb.Publish(t.Context(), 7); err != nil { // published, not kept
				t.Fatal(err)
			}
			knowsPublishers(t, ns[3], topic, 3)
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			start := time.Now()
			v, err := colugo.Latest[int](ctx, ns[3], topic)
			took := time.Since(start)
			if !errors.Is(err, colugo.ErrNoValue) || v != 0 {
				t.Fatalf("Latest = %d, %v; want ErrNoValue", v, err)
			}
			if took > time.Second {
				t.Errorf("ErrNoValue took %v", took)
			}
			t.Logf("ErrNoValue from 3 publishers in %v", took)
			// From the very start (nothing known yet): within a few times
			// the discovery of the publishers.
			late := mk("late")
			start = time.Now()
			_, err = colugo.Latest[int](ctx, late, topic)
			t.Logf("ErrNoValue for a node that had just started: %v, in %v", err, time.Since(start))
			if !errors.Is(err, colugo.ErrNoValue) {
				t.Fatalf("Latest on a new node: %v; want ErrNoValue", err)
			}
		})
	}
}

// TestLatestNoPublisher: with no publisher of the topic at all, Latest
// waits for one until ctx's deadline and returns ctx's error.
func TestLatestNoPublisher(t *testing.T) {
	for _, tr := range []string{"inproc", "zmq"} {
		t.Run(tr, func(t *testing.T) {
			ns := latestNodes(t, tr, "a", "asker")
			if _, err := colugo.NewPublisher[int](ns[0], "hist/other"); err != nil {
				t.Fatal(err)
			}
			const d = 200 * time.Millisecond
			start := time.Now() // before the deadline is set: Latest may return the moment it passes
			ctx, cancel := context.WithTimeout(t.Context(), d)
			defer cancel()
			v, err := colugo.Latest[int](ctx, ns[1], "hist/nobody")
			if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, colugo.ErrNoValue) || took < d {
				t.Fatalf("Latest = %d, %v after %v; want DeadlineExceeded at %v", v, err, took, d)
			}
			cctx, ccancel := context.WithCancel(t.Context())
			ccancel()
			if _, err := colugo.Latest[int](cctx, ns[1], "hist/nobody"); !errors.Is(err, context.Canceled) {
				t.Fatalf("Latest with a cancelled ctx: %v", err)
			}
			if _, err := colugo.Latest[int](t.Context(), ns[1], ""); !errors.Is(err, colugo.ErrInvalidOption) {
				t.Fatalf("Latest of an invalid topic: %v", err)
			}
		})
	}
}

// TestHistoryKeepsLiveInFlight: a subscription with history whose
// publisher starts publishing the moment the subscription reaches it
// (WaitSubscribers) gets every message published from then on, whether
// it comes live or from the history: the live copies still on their way
// when the history's answer (the newest one or two only) is delivered
// must not be taken for messages the history delivered. Many rounds, as
// it depends on which comes first.
func TestHistoryKeepsLiveInFlight(t *testing.T) {
	t.Setenv(colugo.EnvKey, "")
	for _, tr := range []string{"inproc", "zmq"} {
		t.Run(tr, func(t *testing.T) {
			rounds := 40
			if tr == "inproc" {
				rounds = 1000 // fast; the race shows in one round in 100 to 300
			}
			lost := 0
			for round := range rounds {
				t.Run(fmt.Sprint(round), func(t *testing.T) { lost += liveInFlightRound(t, tr, round) })
			}
			if lost > 0 {
				t.Errorf("%d of %d rounds lost live messages", lost, rounds)
			}
		})
	}
}

func liveInFlightRound(t *testing.T, tr string, round int) (lost int) {
	t.Helper()
	topic := fmt.Sprintf("hist/inflight/%d", round)
	mk := historyMaker(t, tr)
	pubNode, subNode := mk("pub"), mk("sub")
	ch, err := colugo.SubscribeReceived[int](t.Context(), subNode, topic, colugo.WithLastValue(), colugo.WithBuffer(64))
	if err != nil {
		t.Fatal(err)
	}
	p, err := colugo.NewPublisher[int](pubNode, topic, colugo.WithHistory(2))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := p.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= 4; v++ {
		if err := p.Publish(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for {
		r := colugotest.Next(t, ch, wait)
		got = append(got, fmt.Sprintf("%d%s", r.Value, map[bool]string{true: "r"}[r.Replayed]))
		if r.Value == 4 {
			break
		}
	}
	if len(got) != 4 {
		t.Logf("round %d: got %v (r: replayed), want 1 2 3 4", round, got)
		return 1
	}
	return 0
}
