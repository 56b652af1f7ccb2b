package zmq

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
)

// seqHandler counts publishes and records when the last one arrived.
type seqHandler struct {
	nopHandler
	n    atomic.Int64
	last atomic.Int64 // unix ns
}

func (h *seqHandler) HandlePublish(m *transport.Message) {
	if m.Header.Seq == 0 {
		return
	}
	h.n.Add(1)
	h.last.Store(time.Now().UnixNano())
}

// BenchmarkBurst publishes bursts as users do: as fast as Publish
// returns, no flow control of the benchmark's own, with the default
// options, to one subscriber that keeps up, over TCP and over Unix
// sockets. Each iteration is one burst; delivered-% and msgs/s (of what
// was delivered, until the last arrived) are per burst, averaged.
func BenchmarkBurst(b *testing.B) {
	for _, bc := range []struct {
		n, size int
	}{{100_000, 64}, {10_000, 1 << 10}, {1_000, 64 << 10}} {
		for _, network := range []string{"tcp", "unix"} {
			b.Run(fmt.Sprintf("%dx%dB/%s", bc.n, bc.size, network), func(b *testing.B) {
				benchBurst(b, bc.n, bc.size, network == "unix")
			})
		}
	}
}

func benchBurst(b *testing.B, n, size int, unix bool) {
	pub, ep := listen(b, &nopHandler{})
	addr := ep.Pub
	if unix {
		if ep.LocalPub == "" {
			b.Skip("no Unix sockets")
		}
		addr = ep.LocalPub
	}
	h := &seqHandler{}
	sub, _ := listen(b, h)
	if err := sub.Subscribe(addr, "burst", transport.SubscribeOptions{}); err != nil {
		b.Fatal(err)
	}
	msg := &transport.Message{Name: "burst", Header: transport.Header{
		Kind: transport.KindPublish, Codec: "raw", Sender: "bench-node",
	}, Payload: make([]byte, size)}
	testwait.Until(b, "", func() bool { return pub.Subscribers("burst") == 1 })
	var delivered, rate float64
	var dropped int
	bursts := 0
	b.SetBytes(int64(n * size))
	for b.Loop() {
		base := h.n.Load()
		start := time.Now()
		for i := 1; i <= n; i++ {
			msg.Header.Seq = uint64(i)
			res, err := pub.Publish(context.Background(), msg, transport.PublishOptions{})
			if err != nil {
				b.Fatal(err)
			}
			dropped += res.Dropped
		}
		// Wait until all arrived, or nothing more arrives for a second.
		for got, progress := h.n.Load()-base, time.Now(); got < int64(n); got = h.n.Load() - base {
			if time.Since(progress) > time.Second {
				break
			}
			time.Sleep(time.Millisecond) // polling interval
			if h.n.Load()-base > got {
				progress = time.Now()
			}
		}
		got := h.n.Load() - base
		el := time.Duration(h.last.Load() - start.UnixNano())
		delivered += 100 * float64(got) / float64(n)
		if el > 0 {
			rate += float64(got) / el.Seconds()
		}
		bursts++
	}
	b.ReportMetric(delivered/float64(bursts), "delivered-%")
	b.ReportMetric(rate/float64(bursts), "msgs/s")
	b.ReportMetric(float64(dropped)/float64(bursts), "dropped/burst")
}
