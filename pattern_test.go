package colugo_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testwait"
)

// newPub makes a publisher of T on topic, failing the test otherwise.
func newPub[T any](t *testing.T, node *colugo.Node, topic string, opts ...colugo.PublisherOption) *colugo.Publisher[T] {
	t.Helper()
	pub, err := colugo.NewPublisher[T](node, topic, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

// waitSubscribed waits until pub reaches want subscribers.
func waitSubscribed[T any](t *testing.T, pub *colugo.Publisher[T], want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := pub.WaitSubscribers(ctx, want); err != nil {
		t.Fatalf("%s: waiting for %d subscribers: %v", pub.Topic(), want, err)
	}
}

// drainClosed reads ch until it is closed, failing the test after wait.
func drainClosed[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatal("the channel did not close")
		}
	}
}

// A pattern subscription gets every matching topic of a peer, those
// published before it and those published after (late publishers), on
// one channel, with Received.Topic; topics that do not match never come.
func TestSubscribePatternPeers(t *testing.T) {
	for _, tc := range nodePairs {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tc.pair(t)
			early := newPub[Pose](t, srv, "robot/a/pose")
			other := newPub[Pose](t, srv, "robot/a/odom")
			deep := newPub[Pose](t, srv, "robot/a/b/pose")
			ch, err := colugo.SubscribePatternReceived[Pose](t.Context(), cli, "robot/*/pose")
			if err != nil {
				t.Fatal(err)
			}
			late := newPub[Pose](t, srv, "robot/b/pose") // published after the subscription began
			waitSubscribed(t, early, 1)
			waitSubscribed(t, late, 1)
			for _, p := range []*colugo.Publisher[Pose]{other, deep} {
				if n := p.Subscribers(); n != 0 {
					t.Fatalf("%s: %d subscribers, want 0", p.Topic(), n)
				}
			}
			for i := range 3 {
				for _, p := range []*colugo.Publisher[Pose]{early, other, deep, late} {
					if err := p.Publish(t.Context(), Pose{Seq: i}); err != nil {
						t.Fatal(err)
					}
				}
			}
			next := map[string]int{"robot/a/pose": 0, "robot/b/pose": 0}
			for range 6 {
				r := colugotest.Next(t, ch, wait)
				want, ok := next[r.Topic]
				if !ok {
					t.Fatalf("got a value on %q", r.Topic)
				}
				if r.Value.Seq != want || r.Sender != srv.ID() {
					t.Fatalf("%s: got seq %d from %s, want %d from %s", r.Topic, r.Value.Seq, r.Sender, want, srv.ID())
				}
				next[r.Topic]++
			}
			// A value is counted as delivered just after it is handed on:
			// the count can trail the channel by a moment.
			testwait.Until(t, "3 delivered on each subscription", func() bool {
				for _, s := range cli.Stats().Subscriptions {
					if s.Delivered != 3 {
						return false
					}
				}
				return true
			})
			var pats []string
			for _, s := range cli.Stats().Subscriptions {
				if s.Pattern != "robot/*/pose" || s.Delivered != 3 {
					t.Fatalf("subscription stats %+v", s)
				}
				pats = append(pats, s.Topic)
			}
			if !slices.Equal(pats, []string{"robot/a/pose", "robot/b/pose"}) {
				t.Fatalf("subscriptions on %v", pats)
			}
		})
	}
}

// The node's own publishers match too, before and after the subscription.
func TestSubscribePatternOwnPublishers(t *testing.T) {
	n := colugotest.NewNode(t, "solo")
	before := newPub[int](t, n, "lab/t1")
	ch, err := colugo.SubscribePatternReceived[int](t.Context(), n, "lab/**")
	if err != nil {
		t.Fatal(err)
	}
	after := newPub[int](t, n, "lab/room/t2")
	root := newPub[int](t, n, "lab") // "**" takes zero segments too
	for i, p := range []*colugo.Publisher[int]{before, after, root} {
		if err := p.Publish(t.Context(), i); err != nil {
			t.Fatal(err)
		}
		if r := colugotest.Next(t, ch, wait); r.Value != i || r.Topic != p.Topic() {
			t.Fatalf("got %d on %q, want %d on %q", r.Value, r.Topic, i, p.Topic())
		}
	}
}

// 100 topics of several peers, one channel, every message of each.
func TestSubscribePatternHundredTopics(t *testing.T) {
	for _, tc := range nodePairs {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tc.pair(t)
			var pubs []*colugo.Publisher[int]
			for i := range 50 {
				pubs = append(pubs, newPub[int](t, srv, fmt.Sprintf("fleet/r%d/pose", i)))
			}
			ch, err := colugo.SubscribePatternReceived[int](t.Context(), cli, "fleet/**", colugo.WithBuffer(1024))
			if err != nil {
				t.Fatal(err)
			}
			for i := 50; i < 100; i++ { // half of them after it began, on the subscriber's own node
				pubs = append(pubs, newPub[int](t, cli, fmt.Sprintf("fleet/r%d/pose", i)))
			}
			for _, p := range pubs {
				waitSubscribed(t, p, 1)
			}
			const per = 10
			for i := range per {
				for _, p := range pubs {
					if err := p.Publish(t.Context(), i); err != nil {
						t.Fatal(err)
					}
				}
			}
			next := map[string]int{}
			for range per * len(pubs) {
				r := colugotest.Next(t, ch, wait)
				if r.Value != next[r.Topic] {
					t.Fatalf("%s: got %d, want %d (FIFO per publisher and topic)", r.Topic, r.Value, next[r.Topic])
				}
				next[r.Topic]++
			}
			if len(next) != 100 {
				t.Fatalf("values from %d topics, want 100", len(next))
			}
			if n := len(cli.Stats().Subscriptions); n != 100 {
				t.Fatalf("%d subscription entries, want 100", n)
			}
		})
	}
}

// Subscribe keeps names literal: "*" there is a character. Only
// SubscribePattern reads it as a wildcard.
func TestSubscribeLiteralStar(t *testing.T) {
	for _, tc := range nodePairs {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tc.pair(t)
			star := newPub[string](t, srv, "robot/*/pose")
			plain := newPub[string](t, srv, "robot/a/pose")
			dstar := newPub[string](t, srv, "robot/**")
			lit, err := colugo.Subscribe[string](t.Context(), cli, "robot/*/pose")
			if err != nil {
				t.Fatal(err)
			}
			litAll, err := colugo.Subscribe[string](t.Context(), cli, "robot/**")
			if err != nil {
				t.Fatal(err)
			}
			pat, err := colugo.SubscribePatternReceived[string](t.Context(), cli, "robot/*/pose")
			if err != nil {
				t.Fatal(err)
			}
			waitSubscribed(t, star, 1) // one per node
			waitSubscribed(t, plain, 1)
			waitSubscribed(t, dstar, 1)
			for _, p := range []*colugo.Publisher[string]{plain, dstar, star} { // the literal topics' last
				if err := p.Publish(t.Context(), p.Topic()); err != nil {
					t.Fatal(err)
				}
			}
			if v := colugotest.Next(t, lit, wait); v != "robot/*/pose" {
				t.Fatalf("Subscribe(robot/*/pose) got %q first", v)
			}
			if v := colugotest.Next(t, litAll, wait); v != "robot/**" {
				t.Fatalf("Subscribe(robot/**) got %q first", v)
			}
			got := map[string]bool{}
			for range 2 {
				r := colugotest.Next(t, pat, wait)
				if r.Value != r.Topic {
					t.Fatalf("value %q on %q", r.Value, r.Topic)
				}
				got[r.Topic] = true
			}
			if !got["robot/*/pose"] || !got["robot/a/pose"] {
				t.Fatalf("the pattern got %v", got)
			}
		})
	}
}

// optPairs is nodePairs with options for the client node.
var optPairs = []struct {
	name string
	pair func(t *testing.T, opts ...colugo.NodeOption) (srv, cli *colugo.Node)
}{
	{"inproc", func(t *testing.T, opts ...colugo.NodeOption) (*colugo.Node, *colugo.Node) {
		net := colugotest.NewNetwork(t)
		return net.NewNode("srv"), net.NewNode("cli", opts...)
	}},
	{"zmq", func(t *testing.T, opts ...colugo.NodeOption) (*colugo.Node, *colugo.Node) {
		dir := t.TempDir()
		mk := func(name string, opts ...colugo.NodeOption) *colugo.Node {
			n, err := colugo.NewNode(name, append(opts, colugo.WithDiscovery(local.New(local.WithDir(dir))))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Close() })
			return n
		}
		return mk("srv"), mk("cli", opts...)
	}},
}

// A typed pattern subscription refuses the topics of another codec,
// counted and reported, and delivers the others; WithAnyCodec with
// []byte takes them all, raw, with their codec names.
func TestSubscribePatternCodecs(t *testing.T) {
	for _, tc := range optPairs {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var refused []string
			srv, cli := tc.pair(t, colugo.WithErrorHandler(func(err error) {
				var de *colugo.DecodeError
				if errors.As(err, &de) && errors.Is(err, colugo.ErrCodecMismatch) {
					mu.Lock()
					refused = append(refused, de.Topic)
					mu.Unlock()
				}
			}))
			js := newPub[Pose](t, srv, "mix/json")
			raw := newPub[[]byte](t, srv, "mix/raw", colugo.WithCodec(codec.Raw{}))
			typed, err := colugo.SubscribePatternReceived[Pose](t.Context(), cli, "mix/*")
			if err != nil {
				t.Fatal(err)
			}
			tool, err := colugo.SubscribePatternReceived[[]byte](t.Context(), cli, "mix/*", colugo.WithAnyCodec())
			if err != nil {
				t.Fatal(err)
			}
			waitSubscribed(t, js, 1)
			waitSubscribed(t, raw, 1)
			if err := raw.Publish(t.Context(), []byte("\x00not json")); err != nil {
				t.Fatal(err)
			}
			if err := js.Publish(t.Context(), Pose{X: 1, Seq: 7}); err != nil {
				t.Fatal(err)
			}
			if r := colugotest.Next(t, typed, wait); r.Topic != "mix/json" || r.Value.Seq != 7 {
				t.Fatalf("typed: got %+v", r)
			}
			got := map[string]string{}
			for range 2 {
				r := colugotest.Next(t, tool, wait)
				got[r.Topic] = r.Codec + ":" + string(r.Value)
			}
			if want := map[string]string{"mix/raw": "raw:\x00not json", "mix/json": `json:{"X":1,"Y":0,"Seq":7}`}; !maps.Equal(got, want) {
				t.Fatalf("WithAnyCodec got %q, want %q", got, want)
			}
			testwait.Until(t, "the mismatch report", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return slices.Equal(refused, []string{"mix/raw"})
			})
			st := cli.Stats()
			if st.Topics["mix/raw"].DecodeErrors != 1 || st.Topics["mix/json"].DecodeErrors != 0 {
				t.Fatalf("topic stats %+v", st.Topics)
			}
			select {
			case r := <-typed:
				t.Fatalf("typed got a second value: %+v", r)
			default:
			}
		})
	}
}

// Cancelling the ctx closes the channel and withdraws every topic's
// subscription (peers stop sending); Close closes the channel too.
func TestSubscribePatternEnd(t *testing.T) {
	for _, tc := range nodePairs {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tc.pair(t)
			pubs := []*colugo.Publisher[int]{newPub[int](t, srv, "end/a"), newPub[int](t, srv, "end/b")}
			ctx, cancel := context.WithCancel(t.Context())
			ch, err := colugo.SubscribePattern[int](ctx, cli, "end/*")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pubs {
				waitSubscribed(t, p, 1)
			}
			cancel()
			drainClosed(t, ch)
			if s := cli.Stats().Subscriptions; len(s) != 0 {
				t.Fatalf("subscriptions left: %+v", s)
			}
			testwait.Until(t, "the publishers to lose their subscriber", func() bool {
				return pubs[0].Subscribers() == 0 && pubs[1].Subscribers() == 0
			})
			if _, err := colugo.SubscribePattern[int](ctx, cli, "end/*"); !errors.Is(err, context.Canceled) {
				t.Fatalf("on an ended ctx: %v", err)
			}

			ch, err = colugo.SubscribePattern[int](t.Context(), cli, "end/**")
			if err != nil {
				t.Fatal(err)
			}
			waitSubscribed(t, pubs[0], 1)
			if err := cli.Close(); err != nil {
				t.Fatal(err)
			}
			drainClosed(t, ch)
			if _, err := colugo.SubscribePattern[int](t.Context(), cli, "end/**"); !errors.Is(err, colugo.ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
		})
	}
}

func TestSubscribePatternInvalid(t *testing.T) {
	n := colugotest.NewNode(t, "solo")
	for _, p := range []string{"", "a/**b", "pose*"} {
		if _, err := colugo.SubscribePattern[int](t.Context(), n, p); !errors.Is(err, colugo.ErrInvalidOption) {
			t.Errorf("SubscribePattern(%q): %v, want ErrInvalidOption", p, err)
		}
	}
	if _, err := colugo.SubscribePattern[int](t.Context(), n, "a/*", colugo.WithAnyCodec()); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Errorf("WithAnyCodec on int: %v, want ErrInvalidOption", err)
	}
	if _, err := colugo.SubscribePattern[int](t.Context(), n, "a/*", colugo.WithBuffer(0)); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Errorf("WithBuffer(0): %v, want ErrInvalidOption", err)
	}
	if s := n.Stats().Subscriptions; len(s) != 0 {
		t.Fatalf("subscriptions left: %+v", s)
	}
}

// WithLastValue on a pattern asks each matched topic's publishers for
// their kept value: a late joiner gets every topic's latest, replayed.
func TestSubscribePatternHistory(t *testing.T) {
	for _, tc := range nodePairs {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tc.pair(t)
			want := map[string]int{}
			for i, topic := range []string{"desc/a", "desc/b"} {
				p := newPub[int](t, srv, topic, colugo.WithHistory(1))
				for v := range 3 {
					if err := p.Publish(t.Context(), 10*i+v); err != nil {
						t.Fatal(err)
					}
				}
				want[topic] = 10*i + 2
			}
			ch, err := colugo.SubscribePatternReceived[int](t.Context(), cli, "desc/*", colugo.WithLastValue())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for range 2 {
				r := colugotest.Next(t, ch, wait)
				if !r.Replayed {
					t.Fatalf("%s: %d not replayed", r.Topic, r.Value)
				}
				got[r.Topic] = r.Value
			}
			if !maps.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for _, s := range cli.Stats().Subscriptions {
				if s.History != 1 || s.Replayed != 1 {
					t.Fatalf("subscription stats %+v", s)
				}
			}
		})
	}
}
