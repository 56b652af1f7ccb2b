package colugo

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/zmq"
)

// subscribeRecorder is a transport that records the options of each
// Subscribe.
type subscribeRecorder struct {
	transport.Transport
	mu   sync.Mutex
	last map[string]transport.SubscribeOptions
	subs int
}

func (r *subscribeRecorder) Subscribe(addr, topic string, opts transport.SubscribeOptions) error {
	r.mu.Lock()
	r.last[topic] = opts
	r.subs++
	r.mu.Unlock()
	return r.Transport.Subscribe(addr, topic, opts)
}

func (r *subscribeRecorder) get(topic string) (transport.SubscribeOptions, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[topic], r.subs
}

// TestSubscribeAsksBackPressure: a node asks its peers' publishers for
// back-pressure on a topic while it has a Block subscription of it, and
// subscribes again when that changes.
func TestSubscribeAsksBackPressure(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, tr transport.Transport) *Node {
		opts := []NodeOption{WithDiscovery(local.New(local.WithDir(dir)))}
		if tr != nil {
			opts = append(opts, WithTransport(tr))
		}
		n, err := NewNode(name, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	zt, err := zmq.New(zmq.WithHost("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &subscribeRecorder{Transport: zt, last: map[string]transport.SubscribeOptions{}}
	a, b := mk("a", nil), mk("b", rec)
	if _, err := NewPublisher[int](a, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := Subscribe[int](t.Context(), b, "t"); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "a subscription", func() bool { _, n := rec.get("t"); return n > 0 })
	if o, _ := rec.get("t"); o.BackPressure {
		t.Fatal("DropOldest subscription asked for back-pressure")
	}
	ctx, cancel := context.WithCancel(t.Context())
	if _, err := Subscribe[int](ctx, b, "t", WithDropPolicy(Block(time.Second))); err != nil {
		t.Fatal(err)
	}
	if o, _ := rec.get("t"); !o.BackPressure {
		t.Fatal("a Block subscription did not ask for back-pressure")
	}
	cancel()
	testwait.Until(t, "a subscription without back-pressure again", func() bool { o, _ := rec.get("t"); return !o.BackPressure })
}

// TestQueueDefaults: the documented defaults of a subscription's channel
// and queue.
func TestQueueDefaults(t *testing.T) {
	n, err := NewNode("n", WithDiscovery(local.New(local.WithDir(t.TempDir()))))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ch, err := Subscribe[int](t.Context(), n, "t")
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	k := n.subs["t"][0].q.(*chanSink[int])
	n.mu.Unlock()
	if cap(ch) != 64 || k.max != DefaultQueueBytes || DefaultQueueBytes != 64<<20 || n.subs["t"][0].policy != DropOldest {
		t.Fatalf("buffer %d, queue bound %d, policy %v; want 64, 64 MiB, DropOldest", cap(ch), k.max, n.subs["t"][0].policy)
	}
	if _, err := Subscribe[int](t.Context(), n, "t", WithQueueBytes(-1)); err == nil {
		t.Fatal("a negative queue bound was accepted")
	}
	if _, err := NewPublisher[int](n, "t", WithBackPressure(-time.Second)); err == nil {
		t.Fatal("a negative back-pressure wait was accepted")
	}
}
