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
// throughput), and the same to a direct colugo subscriber for comparison.
func BenchmarkMessageData(b *testing.B) {
	for _, size := range []int{1 << 10, 2 << 20} {
		b.Run(fmt.Sprintf("gateway/%dB", size), func(b *testing.B) {
			r := newRig(b)
			pub, err := colugo.NewPublisher[[]byte](r.net.NewNode("pub"), "blob", colugo.WithCodec(rawCodec()))
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
			ch := tc.channel("blob")
			tc.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 1, "channelId": ch["id"]}}})
			tc.sendRaw(true, []byte("{}"))
			tc.op("status") // the subscribe was taken
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if err := pub.Publish(context.Background(), payload); err != nil {
					b.Fatal(err)
				}
				tc.next("message", func(f tframe) bool { return !f.text })
			}
		})
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
