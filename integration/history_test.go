package integration

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/testkit"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport/zmq"
)

var historyKey = []byte("colugo history test key, 32 B!!!")

// TestHistoryRecoversAfterCut (issue 14, item 5): a publisher streams at
// about 10 kHz (a bounded count) to a subscriber on another node whose
// connection to the publisher's PUB port goes through a proxy; in the
// middle of the stream the proxy resets the connection (TCP RST, both
// processes stay up) and refuses new ones for 200 ms. With a history at
// least as deep as what was missed, the subscriber loses nothing and gets
// every message once, in order, the missed ones marked Replayed; with a
// small history, TopicStats.Gaps is exactly the messages the publisher no
// longer held. Plain and with a network key.
func TestHistoryRecoversAfterCut(t *testing.T) {
	t.Setenv(colugo.EnvKey, "")
	t.Setenv(colugo.EnvDiscovery, "") // static seeds on loopback (host-only): the program's choice must hold
	const total = 30_000              // 3 s at 10 kHz
	for _, tt := range []struct {
		name  string
		depth int // the publisher's WithHistory
		key   []byte
	}{
		{"deep", colugo.MaxHistory, nil},
		{"deep-key", colugo.MaxHistory, historyKey},
		{"shallow", 300, nil},
		{"shallow-key", 300, historyKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			recoveryRun(t, total, tt.depth, tt.key)
		})
	}
}

func recoveryRun(t *testing.T, total, depth int, key []byte) {
	// The nodes' debug log, shown when the run fails: a failed history
	// fetch says why only there.
	var logBuf syncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the nodes' log:\n%s", logBuf.String())
		}
	})
	node := func(name string, d discovery.Discovery) *colugo.Node {
		t.Helper()
		tr, err := zmq.New(zmq.WithUnixSockets(false)) // TCP only, so through the proxy
		if err != nil {
			t.Fatal(err)
		}
		opts := []colugo.NodeOption{colugo.WithTransport(tr), colugo.WithDiscovery(d), colugo.WithLogger(log)}
		if key != nil {
			opts = append(opts, colugo.WithKey(key))
		}
		n, err := colugo.NewNode(name, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	const topic = "hist/stream"
	pubNode := node("pub", discovery.Static())
	pub, err := colugo.NewPublisher[int](pubNode, topic, colugo.WithHistory(depth))
	if err != nil {
		t.Fatal(err)
	}
	// The subscriber reaches the publisher's router through a proxy that
	// never cuts, at 127.0.0.2, and so subscribes at 127.0.0.2 on the
	// described PUB port (the router's host, the described port), where
	// the cutting proxy listens.
	_, pubPort, _ := net.SplitHostPort(pubNode.Endpoint().Pub)
	routerProxy := testkit.NewProxy(t, "127.0.0.2:0", pubNode.Endpoint().Router)
	pubProxy := testkit.NewProxy(t, net.JoinHostPort("127.0.0.2", pubPort), pubNode.Endpoint().Pub)
	subNode := node("sub", discovery.Static(routerProxy.Addr()))
	ch, err := colugo.SubscribeReceived[int](t.Context(), subNode, topic,
		colugo.WithHistory(colugo.MaxHistory), colugo.WithBuffer(total))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testkit.Wait)
	defer cancel()
	if err := pub.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if pubProxy.Accepted() != 1 {
		t.Fatalf("the subscription did not go through the proxy (%d connections)", pubProxy.Accepted())
	}

	// The reader: every value, in arrival order.
	got := make([]colugo.Received[int], 0, total)
	var last atomic.Int64 // the newest seq that arrived
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range ch {
			got = append(got, r)
			last.Store(int64(r.Seq))
		}
	}()

	// The stream: 10 messages per millisecond (each tick catches up to
	// that schedule), the cut at a third.
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	var cutAt time.Time
	for i := 1; i <= total; {
		<-tick.C
		for due := min(total, int(time.Since(start)/(100*time.Microsecond))); i <= due; i++ {
			if err := pub.Publish(t.Context(), i); err != nil {
				t.Fatal(err)
			}
			if i == total/3 {
				pubProxy.Cut(200 * time.Millisecond)
				cutAt = time.Now()
			}
		}
	}
	tick.Stop()
	streamed := time.Since(start)
	testwait.Until(t, "the last message", func() bool { return last.Load() == int64(total) })
	if pubProxy.Accepted() < 2 {
		t.Fatalf("the proxy did not cut: %d connections", pubProxy.Accepted())
	}
	// Gaps and Recovered settle once the recovery fetch has been
	// delivered, which the last message waited for.
	st := subNode.Stats()
	ts, subs := st.Topics[topic], st.Subscriptions
	pst := pubNode.Stats()
	pubAuth, served := pst.AuthFailures, pst.Topics[topic].HistoryServed
	_ = subNode.Close() // closes ch: the reader returns
	<-done

	// Every seq once, in order. The cut makes one break at most: live
	// messages up to before (the last before the cut), maybe a hole (what
	// the publisher no longer held when asked), maybe replayed ones (what
	// it held), then first, the first live message after the cut, which
	// showed the gap (some replayed ones may be newer than first, when
	// their live copies had not come yet; a small history may hold none
	// of the missed ones by the time it answers).
	var replayed, missing, holes, recoveredBefore int
	var prev, before, first, firstReplayed uint64
	broken := false
	for i, r := range got {
		if r.Seq <= prev {
			t.Fatalf("message %d: seq %d after %d", i, r.Seq, prev)
		}
		if r.Value != int(r.Seq) {
			t.Fatalf("message %d: value %d, seq %d", i, r.Value, r.Seq)
		}
		if r.Seq > prev+1 {
			missing += int(r.Seq - prev - 1)
			holes++
		}
		if !broken && (r.Replayed || r.Seq > prev+1) {
			broken, before = true, prev
		}
		switch {
		case r.Replayed:
			replayed++
			if firstReplayed == 0 {
				firstReplayed = r.Seq
			}
			if first == 0 {
				recoveredBefore++
			}
		case broken && first == 0:
			first = r.Seq
		}
		prev = r.Seq
	}
	t.Logf("depth %d, key %v: %d msgs in %v (%.1f kHz), cut at %v (%d redials refused); %d delivered, %d replayed, %d missing (%s); stats: %+v",
		depth, key != nil, total, streamed.Round(time.Millisecond), float64(total)/streamed.Seconds()/1000,
		cutAt.Sub(start).Round(time.Millisecond), pubProxy.Refused(), len(got), replayed, missing, runs(got), ts)
	if holes > 1 || first == 0 {
		t.Fatalf("%d holes, first live after the cut %d: want one cut (%s)", holes, first, runs(got))
	}
	if ts.Gaps != uint64(missing) {
		t.Errorf("TopicStats.Gaps = %d, want the %d missing (%s)", ts.Gaps, missing, runs(got))
	}
	// Of the messages that did not arrive live between before and first,
	// those replayed are Recovered, and the rest are Gaps.
	if ts.Recovered != uint64(recoveredBefore) || ts.Gaps+ts.Recovered != first-before-1 {
		t.Errorf("TopicStats Recovered %d, Gaps %d; want %d recovered of the %d between %d and %d", ts.Recovered, ts.Gaps, recoveredBefore, first-before-1, before, first)
	}
	if ts.Replayed != uint64(replayed) || served < uint64(replayed) {
		t.Errorf("TopicStats Replayed %d, the publisher's HistoryServed %d; want %d", ts.Replayed, served, replayed)
	}
	if len(subs) != 1 || subs[0].Replayed != uint64(replayed) || subs[0].Recovered < ts.Recovered || subs[0].Recovered > uint64(replayed) {
		t.Errorf("SubscriptionStats %+v; want %d replayed, %d to %d recovered", subs, replayed, ts.Recovered, replayed)
	}
	if st.HistoryFailed != 0 || st.AuthFailures != 0 || pubAuth != 0 {
		t.Errorf("HistoryFailed %d, AuthFailures: sub %d, pub %d", st.HistoryFailed, st.AuthFailures, pubAuth)
	}
	if depth >= total {
		if missing != 0 || replayed == 0 || firstReplayed != before+1 {
			t.Errorf("%d messages lost, %d replayed from %d after %d, with a history of %d (%s)", missing, replayed, firstReplayed, before, depth, runs(got))
		}
		return
	}
	// A small history: the publisher held its last depth messages when
	// asked, so at most depth were replayed, right after the hole.
	if replayed > depth || missing == 0 || replayed > 0 && firstReplayed != before+uint64(missing)+1 {
		t.Errorf("%d replayed, %d missing, with a history of %d (%s)", replayed, missing, depth, runs(got))
	}
}

// runs describes got as runs of consecutive seqs, live or replayed, for
// failure messages.
func runs(got []colugo.Received[int]) string {
	s := ""
	for i := 0; i < len(got); {
		j := i
		for j+1 < len(got) && got[j+1].Seq == got[j].Seq+1 && got[j+1].Replayed == got[i].Replayed {
			j++
		}
		kind := "live"
		if got[i].Replayed {
			kind = "replayed"
		}
		s += fmt.Sprintf("%d-%d %s; ", got[i].Seq, got[j].Seq, kind)
		i = j + 1
		if len(s) > 400 {
			return s + "..."
		}
	}
	return s
}

// syncBuffer is a bytes.Buffer for several goroutines' writes, keeping
// its first 64 KiB: enough for a failure, bounded whatever is logged.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
