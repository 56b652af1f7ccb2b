package colugotest_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

// The history semantics (WithHistory, WithLastValue, Latest) on the fake
// network, so that users can rely on it to unit-test their late joiners.

const wait = 5 * time.Second

var testKey = colugo.WithKey([]byte("0123456789abcdef0123456789abcdef"))

// pair returns a publishing and a subscribing node on one network: two
// nodes, or the same node twice; with a network key when keyed.
func pair(t *testing.T, sameNode, keyed bool) (pubNode, subNode *colugo.Node) {
	t.Helper()
	var opts []colugo.NodeOption
	if keyed {
		opts = append(opts, testKey)
	}
	net := colugotest.NewNetwork(t)
	pubNode = net.NewNode("robot", opts...)
	if sameNode {
		return pubNode, pubNode
	}
	return pubNode, net.NewNode("viewer", opts...)
}

type variant struct {
	name            string
	sameNode, keyed bool
}

var variants = []variant{
	{"other-node", false, false},
	{"same-node", true, false},
	{"other-node-keyed", false, true},
}

func checkReceived(t *testing.T, got colugo.Received[string], value string, seq uint64, replayed bool, sender string) {
	t.Helper()
	if got.Value != value || got.Seq != seq || got.Replayed != replayed || got.Sender != sender {
		t.Fatalf("got %q seq %d replayed %v from %s, want %q seq %d replayed %v from %s",
			got.Value, got.Seq, got.Replayed, got.Sender, value, seq, replayed, sender)
	}
}

// TestLateJoinerGetsLastValue: published before the subscriber existed,
// the last value comes at once, replayed, with its original sequence
// number; then the live ones, with no duplicate in between.
func TestLateJoinerGetsLastValue(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			pn, sn := pair(t, v.sameNode, v.keyed)
			ctx := t.Context()
			pub, err := colugo.NewPublisher[string](pn, "robot/description", colugo.WithHistory(1))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"draft", "final"} {
				if err := pub.Publish(ctx, s); err != nil {
					t.Fatal(err)
				}
			}

			got, err := colugo.SubscribeReceived[string](ctx, sn, "robot/description", colugo.WithLastValue())
			if err != nil {
				t.Fatal(err)
			}
			checkReceived(t, colugotest.Next(t, got, wait), "final", 2, true, pn.ID())

			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			if err := pub.WaitSubscribers(wctx, 1); err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, "update"); err != nil {
				t.Fatal(err)
			}
			// FIFO per publisher: a duplicate of "final" would come first.
			checkReceived(t, colugotest.Next(t, got, wait), "update", 3, false, pn.ID())

			st := statsOf(sn, "robot/description")
			if st.History != 1 || st.Replayed != 1 || len(st.NoHistory) != 0 {
				t.Errorf("subscription stats %+v: want History 1, Replayed 1, no NoHistory", st)
			}
		})
	}
}

// TestSubscriberFirstGetsValueOnce: the other start order. The subscriber
// asks before the publisher exists; the value reaches it exactly once,
// live or from the history depending on which the publish beat.
func TestSubscriberFirstGetsValueOnce(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			pn, sn := pair(t, v.sameNode, v.keyed)
			ctx := t.Context()
			got, err := colugo.SubscribeReceived[string](ctx, sn, "robot/mode", colugo.WithLastValue())
			if err != nil {
				t.Fatal(err)
			}
			pub, err := colugo.NewPublisher[string](pn, "robot/mode", colugo.WithHistory(1))
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, "docking"); err != nil {
				t.Fatal(err)
			}
			first := colugotest.Next(t, got, wait)
			checkReceived(t, first, "docking", 1, first.Replayed, pn.ID())

			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			if err := pub.WaitSubscribers(wctx, 1); err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, "charging"); err != nil {
				t.Fatal(err)
			}
			checkReceived(t, colugotest.Next(t, got, wait), "charging", 2, false, pn.ID())
		})
	}
}

// TestHistoryDepth: a subscription gets at most what the publisher keeps
// (its newest, oldest first) even when it asks for more, and one without
// history gets live messages only.
func TestHistoryDepth(t *testing.T) {
	t.Parallel()
	pn, sn := pair(t, false, false)
	ctx := t.Context()
	pub, err := colugo.NewPublisher[string](pn, "robot/waypoints", colugo.WithHistory(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"dock", "door", "hall", "lab", "bench"} {
		if err := pub.Publish(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	deep, err := colugo.SubscribeReceived[string](ctx, sn, "robot/waypoints", colugo.WithHistory(10))
	if err != nil {
		t.Fatal(err)
	}
	live, err := colugo.SubscribeReceived[string](ctx, sn, "robot/waypoints")
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []string{"hall", "lab", "bench"} {
		checkReceived(t, colugotest.Next(t, deep, wait), w, uint64(3+i), true, pn.ID())
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := pub.WaitSubscribers(wctx, 1); err != nil { // one node, however many subscriptions
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "window"); err != nil {
		t.Fatal(err)
	}
	checkReceived(t, colugotest.Next(t, deep, wait), "window", 6, false, pn.ID())
	// Nothing published before it: its first value is the live one.
	checkReceived(t, colugotest.Next(t, live, wait), "window", 6, false, pn.ID())
}

// TestNoHistoryStillLive: asking a publisher that keeps no history never
// stops its live data; the subscription is told why it got no history.
func TestNoHistoryStillLive(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	pn := net.NewNode("robot")
	errs := make(chan error, 16)
	sn := net.NewNode("viewer", colugo.WithErrorHandler(func(err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	ctx := t.Context()
	pub, err := colugo.NewPublisher[string](pn, "robot/mode") // no WithHistory
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "lost"); err != nil { // nobody subscribed: gone
		t.Fatal(err)
	}
	got, err := colugo.SubscribeReceived[string](ctx, sn, "robot/mode", colugo.WithLastValue())
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := pub.WaitSubscribers(wctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	checkReceived(t, colugotest.Next(t, got, wait), "live", 2, false, pn.ID())
	for err := colugotest.Next(t, errs, wait); !errors.Is(err, colugo.ErrNoHistory); err = colugotest.Next(t, errs, wait) {
		t.Logf("other error: %v", err)
	}
	if st := statsOf(sn, "robot/mode"); st.History != 1 || !slices.Equal(st.NoHistory, []string{pn.ID()}) {
		t.Errorf("subscription stats %+v: want History 1, NoHistory [%s]", st, pn.ID())
	}
}

// TestLatest: the newest value across publishers; ErrNoValue when they all
// keep none; ctx's error when there is no publisher at all.
func TestLatest(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	a, b, tool := net.NewNode("a"), net.NewNode("b"), net.NewNode("tool")
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()

	t.Run("no-publisher", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := colugo.Latest[string](ctx, tool, "nobody/publishes"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
	})

	t.Run("no-value", func(t *testing.T) {
		// One keeps history but has published nothing, one keeps none.
		if _, err := colugo.NewPublisher[string](a, "robot/goal", colugo.WithHistory(1)); err != nil {
			t.Fatal(err)
		}
		nh, err := colugo.NewPublisher[string](b, "robot/goal")
		if err != nil {
			t.Fatal(err)
		}
		if err := nh.Publish(ctx, "not kept"); err != nil {
			t.Fatal(err)
		}
		waitPublishers(t, tool, "robot/goal", a.ID(), b.ID())
		if _, err := colugo.Latest[string](ctx, tool, "robot/goal"); !errors.Is(err, colugo.ErrNoValue) {
			t.Fatalf("got %v, want ErrNoValue", err)
		}
	})

	t.Run("newest", func(t *testing.T) {
		pa, err := colugo.NewPublisher[string](a, "robot/map", colugo.WithHistory(1))
		if err != nil {
			t.Fatal(err)
		}
		pb, err := colugo.NewPublisher[string](b, "robot/map", colugo.WithHistory(4))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct {
			pub *colugo.Publisher[string]
			v   string
		}{{pa, "a1"}, {pb, "b1"}, {pb, "b2"}, {pa, "a2"}} {
			if err := p.pub.Publish(ctx, p.v); err != nil {
				t.Fatal(err)
			}
		}
		waitPublishers(t, tool, "robot/map", a.ID(), b.ID())
		got, err := colugo.LatestReceived[string](ctx, tool, "robot/map")
		if err != nil {
			t.Fatal(err)
		}
		checkReceived(t, got, "a2", 2, true, a.ID())
		// From the publisher's own node, too, once it knows the other.
		waitPublishers(t, b, "robot/map", a.ID())
		if v, err := colugo.Latest[string](ctx, b, "robot/map"); err != nil || v != "a2" {
			t.Fatalf("Latest on b: %q, %v; want a2", v, err)
		}
	})
}

// waitPublishers waits until node knows that each of ids publishes topic,
// so that Latest asks all of them (it asks the publishers known once the
// first is).
func waitPublishers(t *testing.T, node *colugo.Node, topic string, ids ...string) {
	t.Helper()
	testwait.Until(t, node.Name()+" knowing the publishers of "+topic, func() bool {
		known := map[string]bool{}
		for _, p := range node.Peers() {
			for _, ti := range p.Topics {
				if ti.Name == topic {
					known[p.ID] = true
				}
			}
		}
		for _, id := range ids {
			if !known[id] {
				return false
			}
		}
		return true
	})
}

// statsOf returns the stats of node's only subscription to topic.
func statsOf(node *colugo.Node, topic string) colugo.SubscriptionStats {
	for _, s := range node.Stats().Subscriptions {
		if s.Topic == topic {
			return s
		}
	}
	return colugo.SubscriptionStats{}
}

// TestViewerStartsLate is the package documentation's example, verbatim
// (TestDocExample checks that they stay the same).
func TestViewerStartsLate(t *testing.T) {
	net := colugotest.NewNetwork(t)
	robot := net.NewNode("robot")
	pub, err := colugo.NewPublisher[string](robot, "robot/description", colugo.WithHistory(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(t.Context(), "<robot/>"); err != nil { // before the viewer exists
		t.Fatal(err)
	}

	viewer := net.NewNode("viewer") // the late joiner
	got, err := colugo.Subscribe[string](t.Context(), viewer, "robot/description", colugo.WithLastValue())
	if err != nil {
		t.Fatal(err)
	}
	if d := colugotest.Next(t, got, time.Second); d != "<robot/>" {
		t.Fatalf("got %q", d)
	}
	if d, err := colugo.Latest[string](t.Context(), viewer, "robot/description"); d != "<robot/>" || err != nil {
		t.Fatalf("Latest: %q, %v", d, err)
	}
}

// TestDocExample checks that the late-joiner example in doc.go is the code
// of TestViewerStartsLate, so that the documented test is a tested one.
func TestDocExample(t *testing.T) {
	t.Parallel()
	const fn = "func TestViewerStartsLate("
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for l := range strings.Lines(string(doc)) {
		code, ok := strings.CutPrefix(l, "//\t")
		if ok && (len(documented) > 0 || strings.HasPrefix(code, fn)) {
			documented = append(documented, code)
		} else if len(documented) > 0 && strings.TrimSpace(l) != "//" {
			break
		} else if len(documented) > 0 {
			documented = append(documented, "\n") // a blank line inside the code
		}
	}
	src, err := os.ReadFile("history_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	i := strings.Index(s, "\n"+fn)
	if i < 0 || len(documented) == 0 {
		t.Fatalf("%s found in doc.go: %v, in history_test.go: %v", fn, len(documented) > 0, i >= 0)
	}
	j := strings.Index(s[i:], "\n}\n")
	got := strings.TrimRight(strings.Join(documented, ""), "\n") + "\n" // the comment's blank line after the code
	if want := s[i+1 : i+j+3]; got != want {
		t.Errorf("doc.go's example differs from TestViewerStartsLate:\n--- doc.go\n%s--- history_test.go\n%s", got, want)
	}
}
