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

// historyNodes makes a publishing and a subscribing node on tr (the same
// node when same), the subscribing one with onErr as its error handler.
func historyNodes(t *testing.T, tr string, same bool, onErr func(error)) (pubNode, subNode *colugo.Node) {
	t.Helper()
	var mk func(name string, opts ...colugo.NodeOption) *colugo.Node
	switch tr {
	case "inproc":
		mk = colugotest.NewNetwork(t).NewNode
	case "zmq", "zmq-key":
		dir := t.TempDir()
		mk = func(name string, opts ...colugo.NodeOption) *colugo.Node {
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
	default:
		t.Fatalf("unknown transport %q", tr)
	}
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
		if tested, err = colugo.SubscribeReceived[int](ctx, subNode, topic, append(opts, colugo.WithBuffer(64))...); err != nil {
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
	// reference's seq, send time and sender. Replayed is required for the
	// first replayed ones, allowed on the next mayReplay ones when they
	// follow replayed ones (a message published while the history was
	// being fetched may come in the history), and refused elsewhere.
	var replayed int
	check := func(what string, ch <-chan colugo.Received[int], want []int, mustReplay, mayReplay int) (got int) {
		t.Helper()
		inReplay := true
		for i, v := range want {
			r := colugotest.Next(t, ch, wait)
			orig, ok := sent[r.Seq]
			if r.Value != v || !ok || orig.Value != v || !r.SendTime.Equal(orig.SendTime) || r.Sender != pubNode.ID() {
				t.Fatalf("%s: message %d: got %+v, want value %d as published (%+v)", what, i, r, v, orig)
			}
			switch {
			case i < mustReplay && !r.Replayed:
				t.Fatalf("%s: message %d (%d) not marked Replayed", what, i, v)
			case r.Replayed && (i >= mustReplay+mayReplay || !inReplay):
				t.Fatalf("%s: message %d (%d) marked Replayed; want live (replayed: first %d, up to %d)", what, i, v, mustReplay, mustReplay+mayReplay)
			}
			inReplay = r.Replayed
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
			replayed += check("history", tested, want, k, 0)
		}
		if told {
			waitTold()
		}
		waitReached()
		publish(5, 6, 7)
		replayed += check("live after history", tested, []int{5, 6, 7}, 0, 0)
		check("plain subscription", plain, []int{5, 6, 7}, 0, 0)
		if both && !same {
			if served := pubNode.Stats().Topics[topic].HistoryServed; served != uint64(k) {
				t.Errorf("publisher's HistoryServed = %d, want %d", served, k)
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
		may := 0
		if both {
			may = 4 // the history fetched may have caught some
		}
		replayed += check("live", tested, []int{1, 2, 3, 4}, 0, may)
		check("plain subscription", plain, []int{1, 2, 3, 4}, 0, 0)
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
