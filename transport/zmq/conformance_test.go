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
