package zmq

import (
	"testing"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/transporttest"
)

// conformance makes the suite's transports: fast heartbeats, and the
// defaults otherwise (or a small send queue); wrap adapts each.
func conformance(wrap func(*Transport) transport.Transport) transporttest.Factories {
	mk := func(tb testing.TB, opts ...Option) transport.Transport {
		tr, err := New(append([]Option{WithHeartbeatInterval(100 * time.Millisecond), WithPeerTimeout(time.Second)}, opts...)...)
		if err != nil {
			tb.Fatal(err)
		}
		return wrap(tr)
	}
	return transporttest.Factories{
		New:      func(tb testing.TB) transport.Transport { return mk(tb) },
		NewQueue: func(tb testing.TB, queueBytes int) transport.Transport { return mk(tb, WithSendQueueBytes(queueBytes)) },
	}
}

func TestConformance(t *testing.T) {
	transporttest.RunFactories(t, conformance(func(tr *Transport) transport.Transport { return tr }))
}

// unixOnly advertises a transport's Unix socket addresses as its only
// ones, so the suite runs over Unix domain sockets.
type unixOnly struct{ *Transport }

func (u unixOnly) Listen(h transport.Handler) (transport.Endpoint, error) {
	ep, err := u.Transport.Listen(h)
	if err != nil {
		return ep, err
	}
	return transport.Endpoint{Router: ep.LocalRouter, Pub: ep.LocalPub}, nil
}

func TestConformanceUnix(t *testing.T) {
	probe, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ep, err := probe.Listen(&nopHandler{})
	_ = probe.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ep.LocalRouter == "" {
		t.Skip("no Unix domain sockets on this system")
	}
	transporttest.RunFactories(t, conformance(func(tr *Transport) transport.Transport { return unixOnly{tr} }))
}
