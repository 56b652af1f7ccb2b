package zmq

import (
	"testing"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/transporttest"
)

func TestConformance(t *testing.T) {
	transporttest.Run(t, func(tb testing.TB) transport.Transport {
		tr, err := New(WithHeartbeatInterval(100*time.Millisecond), WithPeerTimeout(time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		return tr
	})
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
	transporttest.Run(t, func(tb testing.TB) transport.Transport {
		tr, err := New(WithHeartbeatInterval(100*time.Millisecond), WithPeerTimeout(time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		return unixOnly{tr}
	})
}
