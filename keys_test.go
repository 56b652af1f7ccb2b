package colugo_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/wire"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/zmq"
)

var (
	key1 = []byte("colugo test key number one, 32B!")
	key2 = []byte("colugo test key number two, 32B!")
)

// keyedNode makes a node on real sockets in the registry dir.
func keyedNode(t *testing.T, dir, name string, opts ...colugo.NodeOption) *colugo.Node {
	t.Helper()
	n, err := colugo.NewNode(name, append([]colugo.NodeOption{colugo.WithDiscovery(local.New(local.WithDir(dir)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func TestNetworkKey(t *testing.T) {
	t.Setenv(colugo.EnvKey, "") // the operator's key would override ours
	dir := t.TempDir()
	a := keyedNode(t, dir, "a", colugo.WithKey(key1))
	b := keyedNode(t, dir, "b", colugo.WithKey(key1))
	outsider := keyedNode(t, dir, "outsider")
	wrongKey := keyedNode(t, dir, "wrong", colugo.WithKey(key2))

	_, _ = colugo.Serve(a, "secret/add", add)
	pub, _ := colugo.NewPublisher[string](a, "secret/topic")
	ch, _ := colugo.Subscribe[string](t.Context(), b, "secret/topic")
	if got := publishUntil(t, pub, "the plans", ch); got != "the plans" {
		t.Fatalf("keyed subscriber got %q", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if r, err := colugo.Request[AddReq, AddResp](ctx, b, "secret/add", AddReq{A: 2, B: 3}); err != nil || r.Sum != 5 {
		t.Fatalf("keyed request: %+v %v", r, err)
	}

	// Nodes without the key (or with another) cannot read $describe, so
	// they never learn the catalog, and a keyed node counts their tries.
	eventually(t, "the outsiders' $describe attempts to be refused", func() bool {
		return a.Stats().AuthFailures > 0 && b.Stats().AuthFailures > 0
	})
	for _, n := range []*colugo.Node{outsider, wrongKey} {
		for _, p := range n.Peers() {
			if p.Name == "a" || p.Name == "b" {
				t.Fatalf("%s learned %s's catalog without the key", n.Name(), p.Name)
			}
		}
		short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		_, err := colugo.Request[AddReq, AddResp](short, n, "secret/add", AddReq{})
		cancel()
		if !errors.Is(err, colugo.ErrNoResponders) {
			t.Fatalf("%s calling a keyed service: %v", n.Name(), err)
		}
	}
	for _, p := range a.Peers() {
		if p.Name == "outsider" || p.Name == "wrong" {
			t.Fatalf("a keyed node took %s as a peer", p.Name)
		}
	}

	// A raw transport that dials the router directly gets no answer, and a
	// raw subscriber sees only ciphertext.
	raw, err := zmq.New()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{pubs: make(chan *transport.Message, 64)}
	if _, err := raw.Listen(rec); err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	before := a.Stats().AuthFailures
	short, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	_, err = raw.Request(short, a.Endpoint().Router, &transport.Message{Name: "secret/add", Header: wire.Header{
		Kind: transport.KindRequest, Codec: "json", Sender: "mallory", Seq: 1}, Payload: []byte(`{"A":1,"B":1}`)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unsealed request: %v, want no answer", err)
	}
	if a.Stats().AuthFailures == before {
		t.Fatal("unsealed request not counted")
	}
	if err := raw.Subscribe(a.Endpoint().Pub, "secret/topic"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for {
		_ = pub.Publish(t.Context(), "the plans")
		select {
		case m := <-rec.pubs:
			if m.Header.Flags&wire.FlagSealed == 0 || containsString(m.Payload, "the plans") {
				t.Fatalf("eavesdropper read %q (flags %d)", m.Payload, m.Header.Flags)
			}
			return
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("raw subscriber got nothing")
		}
	}
}

// TestKeyRotation moves two nodes from key1 to key2 without a restart, the
// way an operator would: every node first accepts key2, then seals with it.
func TestKeyRotation(t *testing.T) {
	t.Setenv(colugo.EnvKey, "")
	dir := t.TempDir()
	a := keyedNode(t, dir, "a", colugo.WithKey(key1, key2)) // already accepts key2
	b := keyedNode(t, dir, "b", colugo.WithKey(key1))
	_, _ = colugo.Serve(a, "svc", add)
	call := func(n *colugo.Node, d time.Duration) error {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		r, err := colugo.Request[AddReq, AddResp](ctx, n, "svc", AddReq{A: 1, B: 1})
		if err == nil && r.Sum != 2 {
			t.Fatalf("sum %d", r.Sum)
		}
		return err
	}
	if err := call(b, wait); err != nil {
		t.Fatalf("on key1: %v", err)
	}
	// b now seals with key2; a accepts it, and b still accepts a's key1.
	if err := b.SetKey(key2, key1); err != nil {
		t.Fatal(err)
	}
	if err := call(b, wait); err != nil {
		t.Fatalf("b on key2, a on key1+key2: %v", err)
	}
	// A node that knows only key2 cannot read a, which still seals with key1.
	c := keyedNode(t, dir, "c", colugo.WithKey(key2))
	if err := call(c, 300*time.Millisecond); !errors.Is(err, colugo.ErrNoResponders) {
		t.Fatalf("c (key2 only) before a moved: %v", err)
	}
	if err := a.SetKey(key2); err != nil { // the move is over: key1 is refused from now on
		t.Fatal(err)
	}
	if err := call(c, wait); err != nil {
		t.Fatalf("c after a moved: %v", err)
	}
	if err := a.SetKey([]byte("short")); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Fatalf("short key: %v", err)
	}
	plain := keyedNode(t, dir, "plain")
	if err := plain.SetKey(key1); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Fatalf("SetKey on a keyless node: %v", err)
	}
	if _, err := colugo.NewNode("x", colugo.WithKey([]byte("short"))); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Fatalf("NewNode with a short key: %v", err)
	}
}

type recorder struct{ pubs chan *transport.Message }

func (r *recorder) HandlePublish(m *transport.Message) {
	c := *m // m is valid only during the call
	select {
	case r.pubs <- &c:
	default:
	}
}
func (r *recorder) HandleRequest(*transport.Message, transport.ReplyWriter) {}
func (r *recorder) HandlePeerLost(string, error)                            {}

func containsString(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
