package foxglove_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/gateway/foxglove"
)

// BenchmarkMessageData times one message from a colugo publisher to a
// WebSocket client through the gateway, one at a time (latency, not
// throughput), the same to four clients (one op: every client has it),
// and to a direct colugo subscriber for comparison. In process, on
// colugotest's network; bench/cmd/web measures issue 15's targets across
// processes.
func BenchmarkMessageData(b *testing.B) {
	for _, size := range []int{1 << 10, 2 << 20} {
		b.Run(fmt.Sprintf("gateway/%dB", size), func(b *testing.B) { benchGateway(b, size, 1) })
		if size == 1<<10 {
			b.Run(fmt.Sprintf("gateway-4clients/%dB", size), func(b *testing.B) { benchGateway(b, size, 4) })
		}
		b.Run(fmt.Sprintf("direct/%dB", size), func(b *testing.B) {
			r := newRig(b)
			pub, err := colugo.NewPublisher[[]byte](r.net.NewNode("pub"), "blob", colugo.WithCodec(rawCodec()))
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got, err := colugo.Subscribe[[]byte](ctx, r.node, "blob", colugo.WithAnyCodec())
			if err != nil {
				b.Fatal(err)
			}
			if err := pub.WaitSubscribers(ctx, 1); err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if err := pub.Publish(ctx, payload); err != nil {
					b.Fatal(err)
				}
				<-got
			}
		})
	}
}

// benchGateway publishes size-byte messages one at a time to clients
// WebSocket clients subscribed through the gateway; an op ends when every
// client has the message.
func benchGateway(b *testing.B, size, clients int) {
	r := newRig(b)
	pub, err := colugo.NewPublisher[[]byte](r.net.NewNode("pub"), "blob", colugo.WithCodec(rawCodec()))
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	var tcs []*tclient
	for range clients {
		tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
		ch := tc.channel("blob")
		tc.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 1, "channelId": ch["id"]}}})
		tc.sendRaw(true, []byte("{}"))
		tc.op("status") // the subscribe was taken
		tcs = append(tcs, tc)
	}
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := pub.Publish(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
		for _, tc := range tcs {
			tc.next("message", func(f tframe) bool { return !f.text })
		}
	}
}
