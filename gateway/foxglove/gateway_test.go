package foxglove_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/gateway/foxglove"
	"github.com/colugo-go/colugo/internal/testwait"
)

func TestMain(m *testing.M) {
	if os.Getenv(colugo.EnvDiscovery) == "" {
		os.Setenv(colugo.EnvDiscovery, "local") // never mDNS from tests
	}
	goleak.VerifyTestMain(m)
}

const wait = 10 * time.Second

// rig is a network with a gateway node served over HTTP on loopback.
type rig struct {
	t    testing.TB
	net  *colugotest.Network
	node *colugo.Node
	gw   *foxglove.Gateway
	url  string
}

func newRig(t testing.TB, opts ...foxglove.Option) *rig {
	t.Helper()
	net := colugotest.NewNetwork(t)
	node := net.NewNode("gateway")
	gw, err := foxglove.New(node, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = gw.Close() })
	return &rig{t: t, net: net, node: node, gw: gw, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

type tframe struct {
	text bool
	op   string
	m    map[string]any
	b    []byte
}

// tclient is a test's Foxglove client: a coder/websocket connection whose
// frames a goroutine reads into a channel (unless it does not read).
type tclient struct {
	t      testing.TB
	c      *websocket.Conn
	frames chan tframe
	seen   map[string]map[string]any // advertised channels by topic, from frames channel read
	start  chan struct{}             // closed: a client dialled not reading starts reading
	tap    func(tframe)              // if set, sees every frame next reads
}

func (r *rig) dial(protocols []string, read bool) *tclient {
	r.t.Helper()
	c, _, err := websocket.Dial(context.Background(), r.url, &websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		r.t.Fatal(err)
	}
	c.SetReadLimit(64 << 20)
	tc := &tclient{t: r.t, c: c, frames: make(chan tframe, 4096), start: make(chan struct{})}
	if read {
		close(tc.start)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.t.Cleanup(func() { cancel(); c.CloseNow(); <-done })
	go func() {
		defer close(done)
		defer close(tc.frames)
		select {
		case <-tc.start:
		case <-ctx.Done():
			return
		}
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			f := tframe{text: typ == websocket.MessageText, b: b}
			if f.text {
				_ = json.Unmarshal(b, &f.m)
				f.op, _ = f.m["op"].(string)
			}
			select {
			case tc.frames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	return tc
}

// next returns the next frame that ok accepts, skipping others.
func (tc *tclient) next(what string, ok func(tframe) bool) tframe {
	tc.t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case f, open := <-tc.frames:
			if !open {
				tc.t.Fatalf("connection closed waiting for %s", what)
			}
			tc.note(f)
			if tc.tap != nil {
				tc.tap(f)
			}
			if ok(f) {
				return f
			}
		case <-timer.C:
			tc.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (tc *tclient) op(name string) tframe {
	tc.t.Helper()
	return tc.next(name, func(f tframe) bool { return f.op == name })
}

func (tc *tclient) send(v any) {
	tc.t.Helper()
	b, _ := json.Marshal(v)
	if err := tc.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		tc.t.Fatal(err)
	}
}

func (tc *tclient) sendRaw(text bool, b []byte) {
	tc.t.Helper()
	typ := websocket.MessageBinary
	if text {
		typ = websocket.MessageText
	}
	if err := tc.c.Write(context.Background(), typ, b); err != nil {
		tc.t.Fatal(err)
	}
}

// note keeps the channels an advertise frame read by next names, for
// channel, whatever next was waiting for.
func (tc *tclient) note(f tframe) {
	if f.op != "advertise" {
		return
	}
	if tc.seen == nil {
		tc.seen = map[string]map[string]any{}
	}
	for _, c := range f.m["channels"].([]any) {
		ch := c.(map[string]any)
		tc.seen[ch["topic"].(string)] = ch
	}
}

// channel waits for an advertised channel of topic and returns it.
func (tc *tclient) channel(topic string) map[string]any {
	tc.t.Helper()
	if ch, ok := tc.seen[topic]; ok {
		return ch
	}
	tc.next("advertise of "+topic, func(f tframe) bool {
		_, ok := tc.seen[topic]
		return ok
	})
	return tc.seen[topic]
}

func id(v any) uint32 { return uint32(v.(float64)) }

type Pose struct {
	X, Y float64
}

func TestSubprotocolsAndServerInfo(t *testing.T) {
	r := newRig(t)
	for _, p := range []string{foxglove.SubprotocolWebsocket, foxglove.SubprotocolSDK} {
		tc := r.dial([]string{p}, true)
		if got := tc.c.Subprotocol(); got != p {
			t.Errorf("offered %s, answered %q", p, got)
		}
		f := tc.op("serverInfo")
		if f.m["name"] != "colugo" || f.m["version"] != colugo.Version {
			t.Errorf("serverInfo %v", f.m)
		}
		caps := fmt.Sprint(f.m["capabilities"])
		if !strings.Contains(caps, "services") || strings.Contains(caps, "clientPublish") || strings.Contains(caps, "time") {
			t.Errorf("capabilities %s", caps)
		}
		tc.op("advertise") // always one, even empty
	}
	// No Foxglove subprotocol: refused.
	_, resp, err := websocket.Dial(context.Background(), r.url, &websocket.DialOptions{Subprotocols: []string{"chat"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no foxglove subprotocol: err %v, resp %v", err, resp)
	}
}

func TestChannelsAdvertiseAndUnadvertise(t *testing.T) {
	r := newRig(t)
	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	pubNode := r.net.NewNode("pub")
	jp, err := colugo.NewPublisher[Pose](pubNode, "pose")
	if err != nil {
		t.Fatal(err)
	}
	pp, err := colugo.NewPublisher[*wrapperspb.StringValue](pubNode, "name", colugo.WithCodec(protobuf.Codec{}))
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Close()
	rp, err := colugo.NewPublisher[[]byte](pubNode, "blob", colugo.WithCodec(rawCodec()))
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	j := tc.channel("pose")
	if j["encoding"] != "json" || j["schemaEncoding"] != "jsonschema" || !strings.Contains(j["schema"].(string), `"X"`) {
		t.Errorf("json channel %v", j)
	}
	p := tc.channel("name")
	schema, err := base64.StdEncoding.DecodeString(p["schema"].(string))
	if p["encoding"] != "protobuf" || p["schemaName"] != "google.protobuf.StringValue" || err != nil || len(schema) == 0 {
		t.Errorf("protobuf channel %v (%v)", p, err)
	}
	if b := tc.channel("blob"); b["encoding"] != foxglove.EncodingRaw {
		t.Errorf("raw channel %v", b)
	}
	if got := r.gw.Stats().Channels; got != 3 {
		t.Errorf("Stats().Channels = %d, want 3", got)
	}
	_ = jp.Close()
	f := tc.op("unadvertise")
	if ids := f.m["channelIds"].([]any); len(ids) != 1 || id(ids[0]) != id(j["id"]) {
		t.Errorf("unadvertise %v, want channel %v", f.m, j["id"])
	}
}

func TestSubscribeSharedAndMessageData(t *testing.T) {
	r := newRig(t)
	pubNode := r.net.NewNode("pub")
	pub, err := colugo.NewPublisher[Pose](pubNode, "pose")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	a := r.dial([]string{foxglove.SubprotocolSDK}, true)
	b := r.dial([]string{foxglove.SubprotocolWebsocket}, true)
	ca, cb := a.channel("pose"), b.channel("pose")
	a.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 7, "channelId": ca["id"]}}})
	b.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 9, "channelId": cb["id"]}}})
	// One colugo subscription for both clients.
	testwait.Until(t, "the gateway's subscription", func() bool { return pub.Subscribers() == 1 })
	// Each client's subscribe is taken in its own time: publish until
	// both have a message.
	before := time.Now()
	got := map[*tclient]tframe{}
	testwait.Until(t, "messageData to both clients", func() bool {
		if err := pub.Publish(context.Background(), Pose{X: 1, Y: 2}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []*tclient{a, b} {
		drain:
			for _, ok := got[tc]; !ok; _, ok = got[tc] {
				select {
				case f := <-tc.frames:
					if !f.text {
						got[tc] = f
					}
				default:
					break drain
				}
			}
		}
		return len(got) == 2
	})
	for _, c := range []struct {
		tc  *tclient
		sid uint32
	}{{a, 7}, {b, 9}} {
		f := got[c.tc]
		if len(f.b) < 13 || f.b[0] != 1 || binary.LittleEndian.Uint32(f.b[1:]) != c.sid {
			t.Fatalf("messageData %x", f.b)
		}
		ts := time.Unix(0, int64(binary.LittleEndian.Uint64(f.b[5:])))
		if ts.Before(before.Add(-time.Second)) || ts.After(time.Now()) {
			t.Errorf("timestamp %v, published after %v", ts, before)
		}
		var got Pose
		if err := json.Unmarshal(f.b[13:], &got); err != nil || got != (Pose{1, 2}) {
			t.Errorf("payload %q: %v", f.b[13:], err)
		}
	}
	testwait.Until(t, "Stats Sent 2+, Clients 2", func() bool { s := r.gw.Stats(); return s.Sent >= 2 && s.Clients == 2 })
	a.send(map[string]any{"op": "unsubscribe", "subscriptionIds": []any{7}})
	b.send(map[string]any{"op": "unsubscribe", "subscriptionIds": []any{9}})
	testwait.Until(t, "the subscription to end", func() bool { return pub.Subscribers() == 0 })
}

func TestServiceCalls(t *testing.T) {
	r := newRig(t)
	srvNode := r.net.NewNode("math")
	type args struct{ A, B int }
	s, err := colugo.Serve(srvNode, "math/add", func(_ context.Context, a args) (int, error) {
		if a.A < 0 {
			return 0, colugo.Errorf(colugo.CodeInvalidArgument, "negative %d", a.A)
		}
		return a.A + a.B, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	var svc map[string]any
	tc.next("advertiseServices", func(f tframe) bool {
		if f.op != "advertiseServices" {
			return false
		}
		svc = f.m["services"].([]any)[0].(map[string]any)
		return true
	})
	req := svc["request"].(map[string]any)
	if svc["name"] != "math/add" || req["encoding"] != "json" || !strings.Contains(req["schema"].(string), `"A"`) {
		t.Errorf("service %v", svc)
	}
	// The older spec's fields, for older clients.
	if svc["requestSchema"] != req["schema"] || svc["responseSchema"] != svc["response"].(map[string]any)["schema"] {
		t.Errorf("requestSchema/responseSchema %v", svc)
	}
	call := func(callID uint32, enc, body string) {
		b := binary.LittleEndian.AppendUint32([]byte{2}, id(svc["id"]))
		b = binary.LittleEndian.AppendUint32(b, callID)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(enc)))
		tc.sendRaw(false, append(append(b, enc...), body...))
	}
	call(1, "json", `{"A":2,"B":3}`)
	f := tc.next("serviceCallResponse", func(f tframe) bool { return !f.text && len(f.b) > 0 && f.b[0] == 3 })
	if binary.LittleEndian.Uint32(f.b[5:]) != 1 || string(f.b[13:17]) != "json" || string(f.b[17:]) != "5" {
		t.Errorf("response %q", f.b)
	}
	call(2, "json", `{"A":-1,"B":3}`)
	f = tc.op("serviceCallFailure")
	if id(f.m["callId"]) != 2 || !strings.Contains(f.m["message"].(string), "negative -1") {
		t.Errorf("failure %v", f.m)
	}
	call(3, "protobuf", `x`)
	if f = tc.op("serviceCallFailure"); id(f.m["callId"]) != 3 || !strings.Contains(f.m["message"].(string), "encoding") {
		t.Errorf("failure %v", f.m)
	}
	// The remote error is the service's answer; the wrong encoding is the
	// gateway's refusal, counted.
	if d := r.gw.Stats().Dropped; d != 1 {
		t.Errorf("Dropped = %d, want 1", d)
	}
	_ = s.Close()
	if f = tc.op("unadvertiseServices"); fmt.Sprint(f.m["serviceIds"]) != fmt.Sprintf("[%v]", svc["id"]) {
		t.Errorf("unadvertiseServices %v, want service %v", f.m, svc["id"])
	}
}

func TestClientPublish(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprint(allow), func(t *testing.T) {
			r := newRig(t, foxglove.WithAllowPublish(allow))
			subNode := r.net.NewNode("sub")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got, err := colugo.Subscribe[Pose](ctx, subNode, "cmd")
			if err != nil {
				t.Fatal(err)
			}
			tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
			caps := fmt.Sprint(tc.op("serverInfo").m["capabilities"])
			if strings.Contains(caps, "clientPublish") != allow {
				t.Errorf("capabilities %s with allow %t", caps, allow)
			}
			tc.send(map[string]any{"op": "advertise", "channels": []any{map[string]any{"id": 1, "topic": "cmd", "encoding": "json", "schemaName": "foxglove_test.Pose"}}})
			if !allow {
				if f := tc.op("status"); f.m["level"] != 2.0 {
					t.Errorf("status %v", f.m)
				}
				return
			}
			testwait.Until(t, "the subscriber to see the gateway", func() bool {
				tc.sendRaw(false, append([]byte{1, 1, 0, 0, 0}, `{"X":4,"Y":5}`...))
				select {
				case v := <-got:
					if v != (Pose{4, 5}) {
						t.Errorf("got %v", v)
					}
					return true
				default:
					return false
				}
			})
		})
	}
}

func TestTokenAndOrigin(t *testing.T) {
	r := newRig(t, foxglove.WithToken("s3cret"))
	ctx := context.Background()
	proto := []string{foxglove.SubprotocolSDK}
	_, resp, err := websocket.Dial(ctx, r.url, &websocket.DialOptions{Subprotocols: proto})
	if err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %v %v", err, resp)
	}
	_, resp, err = websocket.Dial(ctx, r.url+"?token=wrong", &websocket.DialOptions{Subprotocols: proto})
	if err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %v %v", err, resp)
	}
	for _, d := range []struct {
		url string
		h   http.Header
	}{{r.url + "?token=s3cret", nil}, {r.url, http.Header{"Authorization": {"Bearer s3cret"}}}} {
		c, _, err := websocket.Dial(ctx, d.url, &websocket.DialOptions{Subprotocols: proto, HTTPHeader: d.h})
		if err != nil {
			t.Errorf("token %v %v: %v", d.url, d.h, err)
			continue
		}
		c.CloseNow()
	}
	// A foreign origin is refused; an allowed one is not.
	h := http.Header{"Origin": {"http://evil.example"}, "Authorization": {"Bearer s3cret"}}
	if _, resp, err = websocket.Dial(ctx, r.url, &websocket.DialOptions{Subprotocols: proto, HTTPHeader: h}); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %v %v", err, resp)
	}
	r2 := newRig(t, foxglove.WithAllowedOrigins("evil.example"))
	c, _, err := websocket.Dial(ctx, r2.url, &websocket.DialOptions{Subprotocols: proto, HTTPHeader: h})
	if err != nil {
		t.Errorf("allowed origin: %v", err)
	} else {
		c.CloseNow()
	}
}

func TestBadInput(t *testing.T) {
	r := newRig(t)
	pubNode := r.net.NewNode("pub")
	pub, err := colugo.NewPublisher[Pose](pubNode, "pose")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	ch := tc.channel("pose")
	bad := []struct {
		text bool
		b    string
	}{
		{true, `{"op":`},
		{true, `{"op":"dance"}`},
		{true, `[1,2]`},
		{false, ""},
		{false, "\x02\x01\x00"},
		{false, "\x02\x01\x00\x00\x00\x01\x00\x00\x00\xff\xff\x00\x00"},
		{false, "\x09"},
		{false, "\x01\x01\x00\x00\x00{}"}, // clientPublish not allowed
		{true, `{"op":"subscribe","subscriptions":[{"id":1,"channelId":999}]}`},
	}
	for _, b := range bad {
		tc.sendRaw(b.text, []byte(b.b))
		if f := tc.op("status"); f.m["level"] != 2.0 {
			t.Errorf("%q: status %v", b.b, f.m)
		}
	}
	if d := r.gw.Stats().Dropped; d != uint64(len(bad)) {
		t.Errorf("Dropped = %d, want %d", d, len(bad))
	}
	// A subscription id in use, on another channel: refused.
	other, err := colugo.NewPublisher[Pose](pubNode, "other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	och := tc.channel("other")
	tc.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 0, "channelId": och["id"]}}})
	tc.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 0, "channelId": ch["id"]}}})
	if f := tc.op("status"); !strings.Contains(f.m["message"].(string), "id 0 in use") {
		t.Errorf("status %v", f.m)
	}
	tc.send(map[string]any{"op": "unsubscribe", "subscriptionIds": []any{0}})
	// 10,000 subscribes of one channel: one takes, the others are refused.
	const n = 10000
	for i := range n {
		tc.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": i, "channelId": ch["id"]}}})
	}
	testwait.Until(t, "every subscribe refused but one", func() bool { return r.gw.Stats().Dropped >= uint64(len(bad)+1+n-1) })
	if err := pub.Publish(context.Background(), Pose{X: 3}); err != nil {
		t.Fatal(err)
	}
	f := tc.next("messageData", func(f tframe) bool { return !f.text })
	if binary.LittleEndian.Uint32(f.b[1:]) != 0 {
		t.Errorf("messageData for subscription %d, want 0", binary.LittleEndian.Uint32(f.b[1:]))
	}
}

func TestSlowClient(t *testing.T) {
	const queue = 256 << 10
	r := newRig(t, foxglove.WithClientQueue(queue))
	pubNode := r.net.NewNode("pub")
	pub, err := colugo.NewPublisher[[]byte](pubNode, "blob", colugo.WithCodec(rawCodec()))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	slow := r.dial([]string{foxglove.SubprotocolSDK}, false)
	fast := r.dial([]string{foxglove.SubprotocolSDK}, true)
	ch := fast.channel("blob")
	sub := map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 1, "channelId": ch["id"]}}}
	// Ops of a connection are taken in order: a bad op after the
	// subscribe, counted as a drop, says the subscribe was taken.
	slow.send(sub)
	slow.sendRaw(true, []byte("{}"))
	testwait.Until(t, "the slow client's subscribe", func() bool { return r.gw.Stats().Dropped == 1 })
	fast.send(sub)
	fast.sendRaw(true, []byte("{}"))
	fast.op("status")
	payload := make([]byte, 32<<10)
	const n = 1000 // 32 MB: past the slow client's queue and the loopback socket buffers
	for i := range n {
		binary.LittleEndian.PutUint32(payload, uint32(i)+1)
		if err := pub.Publish(context.Background(), payload); err != nil {
			t.Fatal(err)
		}
		fast.next("message", func(f tframe) bool {
			return !f.text && len(f.b) == 13+len(payload) && binary.LittleEndian.Uint32(f.b[13:]) == uint32(i)+1
		})
	}
	s := r.gw.Stats()
	s.Dropped -= 2 // the bad ops
	if s.Dropped == 0 {
		t.Errorf("Stats %+v: the slow client dropped nothing", s)
	}
	// What the slow client holds is bounded by its queue: all the rest is
	// dropped. The loopback socket buffers take at most a few MiB.
	if kept := uint64(n) - s.Dropped; kept*uint64(len(payload)) > 16<<20 {
		t.Errorf("slow client kept %d messages (%d dropped)", kept, s.Dropped)
	}
	// Once it reads again, it finds one warning for the whole episode.
	close(slow.start)
	warnings := 0
	marker := []byte("marker")
	testwait.Until(t, "the slow client to catch up", func() bool {
		_ = pub.Publish(context.Background(), marker)
		for {
			select {
			case f := <-slow.frames:
				if f.op == "status" && f.m["id"] == "colugo.dropping" {
					warnings++
				}
				if !f.text && string(f.b[13:]) == "marker" {
					return true
				}
			default:
				return false
			}
		}
	})
	// One per episode: the queue may empty now and then while the socket
	// buffers still take data, each time ending an episode.
	if warnings < 1 || uint64(warnings) > s.Dropped/10 {
		t.Errorf("%d drop warnings for %d drops, want one per episode", warnings, s.Dropped)
	}
	t.Logf("%d drops, %d warnings", s.Dropped, warnings)
}

// TestLargerThanQueue: a message larger than the client's queue bound
// reaches a client that keeps up (an empty queue takes one message
// however large); before, every one was dropped.
func TestLargerThanQueue(t *testing.T) {
	r := newRig(t, foxglove.WithClientQueue(4096))
	pub, err := colugo.NewPublisher[[]byte](r.net.NewNode("pub"), "cloud", colugo.WithCodec(rawCodec()))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	ch := tc.channel("cloud")
	tc.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 1, "channelId": ch["id"]}}})
	payload := bytes.Repeat([]byte("p"), 256<<10)
	testwait.Until(t, "a 256 KiB message through a 4 KiB queue", func() bool {
		_ = pub.Publish(context.Background(), payload)
		for {
			select {
			case f := <-tc.frames:
				if !f.text && bytes.Equal(f.b[13:], payload) {
					return true
				}
			default:
				return false
			}
		}
	})
}

func rawCodec() codec.Codec { return codec.Raw{} }

func TestOptions(t *testing.T) {
	node := colugotest.NewNode(t, "gateway")
	if _, err := foxglove.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	if _, err := foxglove.New(node, foxglove.WithClientQueue(0)); err == nil {
		t.Error("WithClientQueue(0) accepted")
	}
	for _, c := range []struct {
		o    foxglove.Option
		want string
	}{
		{foxglove.WithAllowPublish(true), "WithAllowPublish(true)"},
		{foxglove.WithToken("secret"), "WithToken(…)"},
		{foxglove.WithAllowedOrigins("a.example"), `WithAllowedOrigins(["a.example"])`},
		{foxglove.WithClientQueue(5), "WithClientQueue(5)"},
	} {
		if got := c.o.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

func TestClientPublishProtobuf(t *testing.T) {
	r := newRig(t, foxglove.WithAllowPublish(true))
	subNode := r.net.NewNode("sub")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got, err := colugo.Subscribe[*wrapperspb.StringValue](ctx, subNode, "name", colugo.WithCodec(protobuf.Codec{}))
	if err != nil {
		t.Fatal(err)
	}
	fds, err := protobuf.Codec{}.Describe(wrapperspb.String(""))
	if err != nil {
		t.Fatal(err)
	}
	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	tc.send(map[string]any{"op": "advertise", "channels": []any{map[string]any{"id": 3, "topic": "name", "encoding": "protobuf",
		"schemaName": "google.protobuf.StringValue", "schema": base64.StdEncoding.EncodeToString(fds), "schemaEncoding": "protobuf"}}})
	body, err := protobuf.Codec{}.Marshal(wrapperspb.String("hi"))
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the subscriber to get the client's message", func() bool {
		tc.sendRaw(false, append([]byte{1, 3, 0, 0, 0}, body...))
		select {
		case v := <-got:
			if v.GetValue() != "hi" {
				t.Errorf("got %v", v)
			}
			return true
		default:
			return false
		}
	})
	// The gateway advertises what it publishes, and a subscriber sees it
	// with its descriptors.
	var info colugo.TopicInfo
	for _, p := range subNode.Peers() {
		for _, ti := range p.Topics {
			if ti.Name == "name" {
				info = ti
			}
		}
	}
	if info.Codec != "protobuf" || info.Type != "google.protobuf.StringValue" || len(info.Schema) == 0 {
		t.Errorf("the gateway's topic %+v", info)
	}
}

// A client that floods bad ops and reads none of the answers is
// disconnected once they pass twice its queue bound: its memory is
// bounded.
func TestFloodWithoutReadingDisconnects(t *testing.T) {
	r := newRig(t, foxglove.WithClientQueue(4096))
	tc := r.dial([]string{foxglove.SubprotocolSDK}, false)
	testwait.Until(t, "the client connected", func() bool { return r.gw.Stats().Clients == 1 })
	for i := 0; i < 10000 && r.gw.Stats().Clients == 1; i++ {
		if err := tc.c.Write(context.Background(), websocket.MessageText, []byte(`{"op":"dance"}`)); err != nil {
			break // the gateway closed the connection
		}
	}
	testwait.Until(t, "the flooding client gone", func() bool { return r.gw.Stats().Clients == 0 })
	if d := r.gw.Stats().Dropped; d == 0 || d > 10000 {
		t.Errorf("Dropped = %d", d)
	}
}
