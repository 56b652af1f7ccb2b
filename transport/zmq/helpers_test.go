package zmq

import (
	"context"
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
