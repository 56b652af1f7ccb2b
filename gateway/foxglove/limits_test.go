package foxglove_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/gateway/foxglove"
	"github.com/colugo-go/colugo/internal/testkit"
	"github.com/colugo-go/colugo/internal/testwait"
)

// TestTopicBudget: while the fan-out is held up, flooded topics queue no
// more than the gateway's budget together (plus one message each), each
// dropping its own oldest, counted in the node's Stats; each holds at most
// one more message in its channel. Once the fan-out resumes the client gets
// each topic's newest message and the budget is given back.
func TestTopicBudget(t *testing.T) {
	const topics, size, n = 4, 1 << 10, 200
	entry := size + colugo.QueueEntryOverhead
	budget := 16 * entry // a quarter of what one topic alone would queue
	r := newRig(t, foxglove.WithTopicBudget(budget))
	b := r.gw.TopicBudget()
	if b.Max() != budget {
		t.Fatalf("budget %d, want %d", b.Max(), budget)
	}
	pubNode := r.net.NewNode("pub")
	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	var pubs []*colugo.Publisher[[]byte]
	var subs []any
	for i := range topics {
		name := fmt.Sprint("t", i)
		p, err := colugo.NewPublisher[[]byte](pubNode, name, colugo.WithCodec(rawCodec()))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		pubs = append(pubs, p)
		subs = append(subs, map[string]any{"id": i, "channelId": tc.channel(name)["id"]})
	}
	tc.send(map[string]any{"op": "subscribe", "subscriptions": subs})
	// Each topic delivers a message 0 before the flood: what is published
	// then reaches the gateway.
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for _, p := range pubs {
		if err := p.WaitSubscribers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, testkit.Numbered(0, size)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint32]bool{}
	tc.next("message 0 of every topic", func(f tframe) bool {
		if !f.text {
			seen[binary.LittleEndian.Uint32(f.b[1:])] = true
		}
		return len(seen) == topics
	})
	received := func() (sum int) {
		st := r.node.Stats()
		for i := range topics {
			sum += int(st.Topics[fmt.Sprint("t", i)].Received)
		}
		return sum
	}

	release := r.gw.HoldFanOut()
	held := true
	defer func() {
		if held {
			release()
		}
	}()
	maxUsed := 0
	for i := 1; i <= n; i++ {
		for _, p := range pubs {
			if err := p.Publish(t.Context(), testkit.Numbered(i, size)); err != nil {
				t.Fatal(err)
			}
			maxUsed = max(maxUsed, b.Used())
		}
	}
	testwait.Until(t, "the flood at the gateway", func() bool {
		maxUsed = max(maxUsed, b.Used())
		return received() == topics*(n+1)
	})
	limit := budget + topics*entry
	if maxUsed > limit || maxUsed < budget-entry {
		t.Errorf("the budget counted at most %d bytes, want %d to %d (the budget full, and one message each past it)", maxUsed, budget-entry, limit)
	}
	st := r.node.Stats()
	var dropped, queued, queuedBytes int
	for _, s := range st.Subscriptions {
		if s.Policy != colugo.DropOldest {
			t.Errorf("%s: policy %v, want DropOldest", s.Topic, s.Policy)
		}
		if s.Dropped == 0 || st.Topics[s.Topic].Dropped != s.Dropped {
			t.Errorf("%s: dropped %d (topic %d), want some, all of the topic's", s.Topic, s.Dropped, st.Topics[s.Topic].Dropped)
		}
		// Beyond the queue's bytes, one message waits in the channel.
		if outside := s.Queued - s.QueuedBytes/entry; outside > 1 {
			t.Errorf("%s: %d messages held outside the budget, want at most 1", s.Topic, outside)
		}
		dropped += int(s.Dropped)
		queued += s.Queued
		queuedBytes += s.QueuedBytes
	}
	if len(st.Subscriptions) != topics {
		t.Fatalf("%d subscriptions, want %d", len(st.Subscriptions), topics)
	}
	// The queues' own count, whatever the budget says.
	if queuedBytes > limit {
		t.Errorf("the topics' queues hold %d bytes together, want at most %d", queuedBytes, limit)
	}
	t.Logf("budget %d B (%d messages): at most %d B counted, %d B queued, %d messages held, %d of %d dropped",
		budget, budget/entry, maxUsed, queuedBytes, queued, dropped, topics*n)

	release()
	held = false
	// DropOldest: the newest stay, and come in order.
	last := map[uint32]int{}
	done := 0
	tc.next("every topic's newest message", func(f tframe) bool {
		if f.text {
			return false
		}
		sid, seq := binary.LittleEndian.Uint32(f.b[1:]), int(binary.BigEndian.Uint32(f.b[13:]))
		if seq <= last[sid] {
			t.Fatalf("subscription %d: message %d after %d", sid, seq, last[sid])
		}
		last[sid] = seq
		if seq == n {
			done++
		}
		return done == topics
	})
	testwait.Until(t, "the budget given back", func() bool { return b.Used() == 0 })
	if s := r.gw.Stats(); s.Dropped != 0 {
		t.Errorf("gateway Stats %+v: the topics' drops are the node's", s)
	}
}

// TestLimitOptions: the defaults are the documented ones, and bounds
// below 1 are refused.
func TestLimitOptions(t *testing.T) {
	node := colugotest.NewNode(t, "gateway")
	if foxglove.DefaultTopicBudget != 64<<20 || foxglove.DefaultMaxClients != 32 {
		t.Errorf("DefaultTopicBudget %d, DefaultMaxClients %d; want 64 MiB, 32", foxglove.DefaultTopicBudget, foxglove.DefaultMaxClients)
	}
	gw, err := foxglove.New(node)
	if err != nil {
		t.Fatal(err)
	}
	if got := gw.TopicBudget().Max(); got != foxglove.DefaultTopicBudget {
		t.Errorf("default budget %d, want DefaultTopicBudget", got)
	}
	_ = gw.Close()
	for _, o := range []foxglove.Option{foxglove.WithTopicBudget(0), foxglove.WithTopicBudget(-1), foxglove.WithMaxClients(0), foxglove.WithMaxClients(-5)} {
		if gw, err := foxglove.New(node, o); err == nil || !strings.Contains(err.Error(), o.String()) {
			t.Errorf("%v: %v, want refused", o, err)
			if gw != nil {
				_ = gw.Close()
			}
		}
	}
	for _, c := range []struct {
		o    foxglove.Option
		want string
	}{
		{foxglove.WithTopicBudget(5), "WithTopicBudget(5)"},
		{foxglove.WithMaxClients(3), "WithMaxClients(3)"},
	} {
		if got := c.o.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

// TestMaxClients: past WithMaxClients a connection is refused with 503 and
// counted; a client leaving frees its place.
func TestMaxClients(t *testing.T) {
	const most = 2
	r := newRig(t, foxglove.WithMaxClients(most))
	var tcs []*tclient
	for range most {
		tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
		tc.op("serverInfo")
		tcs = append(tcs, tc)
	}
	dial := func() (*websocket.Conn, *http.Response, error) {
		return websocket.Dial(context.Background(), r.url, &websocket.DialOptions{Subprotocols: []string{foxglove.SubprotocolSDK}})
	}
	for i := range 3 {
		c, resp, err := dial()
		if err == nil {
			c.CloseNow()
			t.Fatalf("connection %d past %d taken", most+i+1, most)
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("connection past the bound: %v %v, want 503", err, resp)
		}
	}
	if s := r.gw.Stats(); s.Refused != 3 || s.Clients != most {
		t.Errorf("Stats %+v, want 3 refused, %d clients", s, most)
	}
	tcs[0].c.CloseNow()
	testwait.Until(t, "the client gone", func() bool { return r.gw.Stats().Clients == most-1 })
	c, _, err := dial()
	if err != nil {
		t.Fatalf("a place freed, refused: %v", err)
	}
	c.CloseNow()
}

// TestCallBytesInFlight: a client's calls in flight hold at most
// MaxCallBytes of requests together; one past it is refused, and taken
// once the others end.
func TestCallBytesInFlight(t *testing.T) {
	r := newRig(t)
	srvNode := r.net.NewNode("svc")
	arrived, release := make(chan int, 8), make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	s, err := colugo.Serve(srvNode, "slow", func(ctx context.Context, v string) (int, error) {
		arrived <- len(v)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return len(v), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	var svc uint32
	tc.next("advertiseServices", func(f tframe) bool {
		if f.op == "advertiseServices" {
			svc = id(f.m["services"].([]any)[0].(map[string]any)["id"])
		}
		return f.op == "advertiseServices"
	})
	// Three requests of 40% of the bound each: two fit, the third does not.
	body, _ := json.Marshal(strings.Repeat("x", foxglove.MaxCallBytes*2/5))
	call := func(callID uint32) {
		b := binary.LittleEndian.AppendUint32([]byte{2}, svc)
		b = binary.LittleEndian.AppendUint32(b, callID)
		b = binary.LittleEndian.AppendUint32(b, 4)
		tc.sendRaw(false, append(append(b, "json"...), body...))
	}
	call(1)
	call(2)
	for range 2 {
		colugotest.Next(t, arrived, wait)
	}
	call(3)
	f := tc.op("serviceCallFailure")
	if id(f.m["callId"]) != 3 || !strings.Contains(f.m["message"].(string), "in flight") {
		t.Errorf("failure %v, want call 3 refused", f.m)
	}
	close(release)
	released = true
	answered := map[uint32]bool{}
	tc.next("the answers of calls 1 and 2", func(f tframe) bool {
		if !f.text && f.b[0] == 3 {
			answered[binary.LittleEndian.Uint32(f.b[5:])] = true
		}
		return len(answered) == 2
	})
	call(4)
	f = tc.next("the answer of call 4", func(f tframe) bool { return !f.text && f.b[0] == 3 || f.op == "serviceCallFailure" })
	if f.text || binary.LittleEndian.Uint32(f.b[5:]) != 4 {
		t.Errorf("call 4: %v %q", f.m, f.b)
	}
	if d := r.gw.Stats().Dropped; d != 1 {
		t.Errorf("Dropped = %d, want 1 (call 3)", d)
	}
}

// TestClientSchemaBound: a client's channels' schemas hold at most
// MaxClientSchemas together; a channel past it is refused, and taken once
// another is unadvertised.
func TestClientSchemaBound(t *testing.T) {
	r := newRig(t, foxglove.WithAllowPublish(true))
	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	tc.op("advertise")
	// A valid JSON Schema of 60% of the bound.
	schema := `{"description":"` + strings.Repeat("x", foxglove.MaxClientSchemas*3/5) + `"}`
	adv := func(chID int, topic string) {
		tc.send(map[string]any{"op": "advertise", "channels": []any{map[string]any{"id": chID, "topic": topic, "encoding": "json",
			"schemaName": "T", "schema": schema, "schemaEncoding": "jsonschema"}}})
	}
	adv(1, "a")
	tc.channel("a")
	adv(2, "b")
	if f := tc.op("status"); f.m["level"] != 2.0 || !strings.Contains(f.m["message"].(string), "schemas") {
		t.Errorf("status %v, want the second schema refused", f.m)
	}
	tc.send(map[string]any{"op": "unadvertise", "channelIds": []any{1}})
	tc.op("unadvertise")
	adv(2, "b")
	if ch := tc.channel("b"); ch["schema"] != schema {
		t.Errorf("channel b's schema of %d bytes, want %d", len(ch["schema"].(string)), len(schema))
	}
}
