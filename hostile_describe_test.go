package colugo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport/wire"
)

// Garbage $describe replies: the node counts and logs them, keeps the peer
// usable where it can, and the PeerInfo decoder is fuzzed.

// logCounter is a slog handler that counts messages and keeps error texts.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
	errs []string
}

func newLogCounter() *logCounter { return &logCounter{msgs: map[string]int{}} }

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCounter) WithGroup(string) slog.Handler            { return h }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[r.Message]++
	if r.Message == "describe failed" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				h.errs = append(h.errs, a.Value.String())
			}
			return true
		})
	}
	return nil
}

func (h *logCounter) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

// answer is a fake describer's reply to one $describe.
type answer struct {
	status  uint8
	kind    wire.Kind // 0: KindReply
	payload []byte
}

// fakeDescriber registers a fake peer of id (a raw zmq4 ROUTER) in the
// registry dir and answers its i-th $describe request with answer(i). It
// returns the router's address, the index of each answer sent, and the
// registration, to update its catalog.
func fakeDescriber(t *testing.T, dir, id string, reply func(i int) answer) (string, <-chan int, *local.Registry) {
	ctx, cancel := context.WithCancel(t.Context())
	router := zmq4.NewRouter(ctx, zmq4.WithID(zmq4.SocketIdentity("fake")), zmq4.WithLogger(log.New(io.Discard, "", 0)))
	if err := router.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := router.Addr().String()
	served := make(chan int, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; {
			m, err := router.Recv()
			if err != nil {
				return
			}
			if m.Type == zmq4.CmdMsg || len(m.Frames) != 4 {
				continue
			}
			h, err := wire.Decode(m.Frames[2])
			if err != nil || h.Kind != wire.KindControl {
				continue
			}
			a := reply(i)
			kind := a.kind
			if kind == 0 {
				kind = wire.KindReply
			}
			rh := wire.Header{Kind: kind, Status: a.status, Codec: "json", Sender: id, RequestID: h.RequestID, Error: "fake"}
			if err := router.SendMulti(zmq4.NewMsgFrom(m.Frames[0], m.Frames[1], rh.Append(nil), a.payload)); err != nil {
				return
			}
			select {
			case served <- i:
			default:
			}
			i++
		}
	})
	reg := local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond))
	events, err := reg.Start(discovery.Peer{ID: id, Name: "fake", Router: addr, Catalog: "c0"})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		for range events { // the fake's own view; not needed
		}
	})
	t.Cleanup(func() {
		_ = reg.Close()
		cancel()
		_ = router.Close()
		wg.Wait()
	})
	return addr, served, reg
}

// TestGarbageDescribe registers a fake peer (a raw zmq4 ROUTER) in the
// victim's registry and answers its $describe requests with garbage, one
// kind per request, then with a valid description. The victim must log and
// skip each bad one, never list the fake before the valid one, and list it
// after.
func TestGarbageDescribe(t *testing.T) {
	dir := t.TempDir()
	logs := newLogCounter()
	victim := hostileNode(t, "victim", dir, colugo.WithLogger(slog.New(logs)))
	if _, err := colugo.Serve(victim, "math/add", add); err != nil {
		t.Fatal(err)
	}
	const fakeID = "fakepeer0001"
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	many := make([]colugo.TopicInfo, 10000)
	for i := range many {
		many[i] = colugo.TopicInfo{Name: fmt.Sprintf("t/%d", i), Codec: "json", Type: "int"}
	}
	valid := func(topics []colugo.TopicInfo, router string) []byte {
		b, _ := json.Marshal(colugo.PeerInfo{ID: fakeID, Name: "fake", Version: "9", Router: router, Pub: "127.0.0.1:1",
			Topics: topics, Services: []colugo.TopicInfo{{Name: "fake/svc", Codec: "json"}}})
		return b
	}
	garbage := []answer{
		{payload: nil},
		{payload: []byte("not json")},
		{payload: []byte("{")},
		{payload: []byte("null")},
		{payload: []byte("[]")},
		{payload: []byte(`{"id":""}`)},
		{payload: []byte(`{"id":"x"}`)},
		{payload: []byte(`{"id":5,"router":true}`)},
		{payload: []byte(`{"id":"` + fakeID + `","router":"r","topics":{"a":1}}`)},
		{payload: []byte("{\"id\":\"\xff\xfe\",\"router\":\"\x00\"}")},
		{payload: []byte(deep)},
		{payload: append(bytes.Repeat([]byte(" "), 1<<20), "{}"...)},
		{status: 5, payload: valid(nil, "x")},                // an error status with a good body
		{kind: wire.KindCancel, payload: valid(nil, "x")},    // not a reply: the transport drops it
		{payload: []byte(`{"id":"another","router":"x:1"}`)}, // another node's id at this address
	}
	final := answer{payload: valid(many, "whatever")}

	addr, served, reg := fakeDescriber(t, dir, fakeID, func(i int) answer {
		if i < len(garbage) {
			return garbage[i]
		}
		return final
	})
	// Each catalog change makes the victim describe the fake again (the
	// periodic refresh also does, every second): one answer per request.
	for i := 0; i < len(garbage); {
		select {
		case j := <-served:
			i = j + 1
			if len(victim.Peers()) != 0 {
				t.Fatalf("after garbage answer %d the victim lists %+v", j, victim.Peers())
			}
			if err := reg.Update(discovery.Peer{ID: fakeID, Name: "fake", Router: addr, Catalog: fmt.Sprint("c", i)}); err != nil {
				t.Fatal(err)
			}
		case <-time.After(wait):
			t.Fatalf("the victim stopped asking after %d answers", i)
		}
	}
	testwait.Until(t, "the valid description", func() bool {
		ps := victim.Peers()
		return len(ps) == 1 && ps[0].ID == fakeID && len(ps[0].Topics) == len(many)
	})
	logs.mu.Lock()
	errs := slicesClone(logs.errs)
	logs.mu.Unlock()
	t.Logf("describe failed %d times; e.g. %q", len(errs), errs[:min(3, len(errs))])
	// Bad JSON, missing fields and the error status fail the describe;
	// the cancel kind is dropped by the transport (the describe then times
	// out); another id and the victim's own id are accepted and set aside.
	if n := logs.count("describe failed"); n < 12 {
		t.Errorf("describe failed logged %d times, want ≥ 12", n)
	}
	if victim.Stats().Transport.RecvDropped == 0 {
		t.Error("the cancel-kind answer was not counted as dropped")
	}
	// The victim still serves and describes itself.
	if r, err := colugo.Request[AddReq, AddResp](t.Context(), victim, "math/add", AddReq{A: 1, B: 2}); err != nil || r.Sum != 3 {
		t.Fatalf("victim after garbage: %+v %v", r, err)
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// FuzzPeerInfoJSON decodes arbitrary bytes as a $describe payload (the node
// decodes it with encoding/json into PeerInfo) and checks that whatever
// decodes re-encodes stably. Seeds are real $describe payloads.
func FuzzPeerInfoJSON(f *testing.F) {
	n := describeSeeds(f)
	for _, b := range n {
		f.Add(b)
	}
	for _, s := range []string{"", "null", "{}", `{"id":"a","router":"b"}`, `{"topics":null}`, `{"topics":[null]}`,
		`{"id":"\ud800","router":"\u0000"}`, "{\"id\":\"\xff\"}", `{"topics":[{"name":1}]}`, `{"ID":"case","Router":"insensitive"}`,
		`{"id":"a","router":"b","status":{"bridge":{"site": "x", "n": [1, 2]}},"topics":[{"name":"t","relay":{"via":"nats"},"json_schema":{"type": "integer"}}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p colugo.PeerInfo
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		once, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		var q colugo.PeerInfo
		if err := json.Unmarshal(once, &q); err != nil {
			t.Fatalf("decode of re-marshalled %s: %v", once, err)
		}
		// Raw JSON (schemas, status documents) is compacted when encoded,
		// so the first round trip may change its bytes; the next may not.
		twice, err := json.Marshal(q)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("encoding is not stable:\n%s\n%s", once, twice)
		}
		var r colugo.PeerInfo
		if err := json.Unmarshal(twice, &r); err != nil || !reflect.DeepEqual(q, r) {
			t.Fatalf("round trip changed the value:\n%+v\n%+v (%v)", q, r, err)
		}
	})
}

// describeSeeds returns real $describe payloads: what json.Marshal
// gives for the PeerInfo of zmq nodes with topics, subscriptions and
// services, read back through Peers().
func describeSeeds(f *testing.F) [][]byte {
	f.Helper()
	dir := f.TempDir()
	mk := func(name string) *colugo.Node {
		n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond))))
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, b := mk("seed-a"), mk("seed-🤖")
	_, _ = colugo.NewPublisher[Pose](a, "robot/pose")
	_, _ = colugo.Serve(a, "math/add", add)
	_, _ = colugo.Subscribe[int](f.Context(), a, "sensors/température")
	deadline := time.Now().Add(wait)
	for len(b.Peers()) == 0 || len(b.Peers()[0].Services) == 0 {
		if time.Now().After(deadline) {
			f.Fatal("no peer to take seeds from")
		}
		time.Sleep(time.Millisecond)
	}
	var out [][]byte
	for _, p := range append(b.Peers(), a.Peers()...) {
		j, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

// TestDescribeTooLarge: a peer whose $describe reply is over 16 MiB (a
// valid description, padded) is not listed, each refusal counts, and the
// same description unpadded is listed.
func TestDescribeTooLarge(t *testing.T) {
	dir := t.TempDir()
	victim := hostileNode(t, "victim", dir)
	const fakeID = "fakepeer0002"
	b, _ := json.Marshal(colugo.PeerInfo{ID: fakeID, Name: "fake", Version: "9", Router: "x", Pub: "127.0.0.1:1",
		Services: []colugo.TopicInfo{{Name: "fake/svc", Codec: "json"}}})
	huge := append(bytes.Clone(b), bytes.Repeat([]byte(" "), 16<<20)...)
	_, served, _ := fakeDescriber(t, dir, fakeID, func(i int) answer {
		if i < 2 {
			return answer{payload: huge}
		}
		return answer{payload: b}
	})
	// The periodic refresh asks again every second.
	timeout := time.After(wait)
	for answered := 0; answered < 2; {
		select {
		case <-served:
			answered++
		case <-timeout:
			t.Fatalf("%d answers", answered)
		}
		if ps := victim.Peers(); len(ps) != 0 {
			t.Fatalf("a description over 16 MiB listed: %s", ps[0].Name)
		}
	}
	testwait.Until(t, "the unpadded description", func() bool { return len(victim.Peers()) == 1 })
	if n := victim.Stats().PeersRefused; n != 2 {
		t.Errorf("PeersRefused = %d, want the 2 padded answers", n)
	}
}
