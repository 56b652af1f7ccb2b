package colugo_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/internal/zmtptest"
	zmqt "github.com/colugo-go/colugo/transport/zmq"
)

// A flood of distinct subscriptions from a raw SUB: the time it takes stays
// linear in their count, and publishing on other topics is not stalled.

// floodSize is the number of subscriptions of the flood: 1000 by default,
// COLUGO_FLOOD for the 10k of the manual run (each costs O(n) at the node,
// see TestSubscriptionFloodIsLinear, so 10k take seconds under -race).
func floodSize() int {
	if n, err := strconv.Atoi(os.Getenv("COLUGO_FLOOD")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// subscriptionFlood sends n distinct subscriptions, one junk frame and a
// real subscription to victim's pub port from a raw SUB and waits for the
// first message of the real one. It returns how long that took and the time
// of 2000 publishes on another topic before and during the flood.
func subscriptionFlood(t *testing.T, victim *colugo.Node, n int) (took, before, during time.Duration) {
	t.Helper()
	bench := func() time.Duration {
		pub, err := colugo.NewPublisher[int](victim, "hostile/bench")
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		start := time.Now()
		for i := range 2000 {
			_ = pub.Publish(t.Context(), i)
		}
		return time.Since(start)
	}
	before = bench()
	p := zmtptest.Dial(t, victim.Endpoint().Pub, "SUB")
	defer p.Conn.Close()
	var b []byte
	for i := range n {
		b = append(b, zmtptest.Frame(0, fmt.Appendf(nil, "\x01flood/%05d/%s", i, strings.Repeat("p", 40)))...)
	}
	b = append(b, zmtptest.Frame(0, []byte("\x05junk"))...) // not a subscription: dropped
	b = append(b, zmtptest.Frame(0, []byte("\x01hostile/ticks\x00"))...)
	d0 := victim.Stats().Transport.RecvDropped
	start := time.Now()
	p.Write(t, b)
	f := p.Msg(t) // the node read every subscription before this one
	took = time.Since(start)
	if len(f) != 3 || string(f[0]) != "hostile/ticks\x00" {
		t.Fatalf("got %q", f)
	}
	if got := victim.Stats().Transport.RecvDropped - d0; got != 1 {
		t.Errorf("RecvDropped grew by %d, want 1 (the junk)", got)
	}
	during = bench()
	return took, before, during
}

// TestSubscriptionFloodIsLinear: n subscriptions from one peer cost O(n)
// in all (the transport once rebuilt its prefix list on each one: 4000
// took 0.8-1.3 s, 16000 would take about 20 s). The bound is absolute and
// generous, so a loaded machine does not fail it, while the quadratic
// version would; the ratio of two sizes is only logged, since small times
// are noisy.
func TestSubscriptionFloodIsLinear(t *testing.T) {
	dir := t.TempDir()
	// The default subscription limits stop a flood at 1024 prefixes per
	// connection (zmq.WithSubscriptionLimits); this test measures the cost
	// of processing many, so it lifts them.
	tr, err := zmqt.New(zmqt.WithSubscriptionLimits(1<<16, 64<<20, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	victim := hostileNode(t, "victim", dir, colugo.WithTransport(tr))
	good := hostileNode(t, "good", dir)
	_, _ = colugo.Serve(victim, "math/add", add)
	l := startLegit(t, victim, good)
	small, _, _ := subscriptionFlood(t, victim, 1000)
	large, before, during := subscriptionFlood(t, victim, 16000)
	l.progress(t, 5)
	t.Logf("1000 subscriptions: %v, 16000: %v (x%.1f; linear is x16); publishes x%.1f slower with 17000 prefixes",
		small, large, float64(large)/float64(small), float64(during)/float64(before))
	if large > 5*time.Second {
		t.Errorf("16000 subscriptions took %v: not linear", large)
	}
}
