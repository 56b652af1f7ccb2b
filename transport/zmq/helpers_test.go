package zmq

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo/transport"
)

// testWait bounds every wait in this package's tests.
const testWait = 10 * time.Second

// node is a listening transport closed at cleanup.
type node struct {
	*Transport
	ep transport.Endpoint
}

func listen(tb testing.TB, h transport.Handler, opts ...Option) (*node, transport.Endpoint) {
	tb.Helper()
	tr, err := New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	ep, err := tr.Listen(h)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = tr.Close() })
	return &node{Transport: tr, ep: ep}, ep
}

// nopHandler ignores everything.
type nopHandler struct{}

func (*nopHandler) HandlePublish(*transport.Message)                        {}
func (*nopHandler) HandleRequest(*transport.Message, transport.ReplyWriter) {}
func (*nopHandler) HandlePeerLost(string, error)                            {}

// recHandler records what arrives.
type recHandler struct {
	pubs chan *transport.Message
	reqs chan *transport.Message
	lost chan lostEvent

	mu        sync.Mutex
	onRequest func(*transport.Message, transport.ReplyWriter)
	block     chan struct{}
}

type lostEvent struct {
	addr string
	err  error
}

func newRec() *recHandler {
	return &recHandler{
		pubs: make(chan *transport.Message, 1<<16),
		reqs: make(chan *transport.Message, 1<<12),
		lost: make(chan lostEvent, 64),
	}
}

func (h *recHandler) HandlePublish(m *transport.Message) {
	h.mu.Lock()
	block := h.block
	h.mu.Unlock()
	if block != nil {
		<-block
	}
	c := *m // m is valid only during the call
	select {
	case h.pubs <- &c:
	default:
		panic("recHandler: pubs overflow")
	}
}

func (h *recHandler) HandleRequest(m *transport.Message, rw transport.ReplyWriter) {
	h.mu.Lock()
	on := h.onRequest
	h.mu.Unlock()
	select {
	case h.reqs <- m:
	default:
	}
	if on != nil {
		on(m, rw)
	}
}

func (h *recHandler) HandlePeerLost(addr string, err error) {
	select {
	case h.lost <- lostEvent{addr, err}:
	default:
	}
}

// recv returns the next publish or fails after testWait.
func recv(tb testing.TB, ch <-chan *transport.Message) *transport.Message {
	tb.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(testWait):
		tb.Fatal("no message within", testWait)
		return nil
	}
}

// publishNow publishes msg without waiting, as the tests before
// back-pressure did.
func publishNow(tr transport.Transport, msg *transport.Message) error {
	_, err := tr.Publish(context.Background(), msg, transport.PublishOptions{})
	return err
}
