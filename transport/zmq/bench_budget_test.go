package zmq

import (
	"context"
	"fmt"
	"testing"

	"github.com/colugo-go/colugo/transport"
)

// BenchmarkRequestLarge measures large requests echoed back: both ends
// read a payload over the receive budget's free size, through growing
// buffers and a reservation (issue #11), so this is their cost.
func BenchmarkRequestLarge(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			srv, _ := listen(b, &echoHandler{})
			cli, _ := listen(b, &nopHandler{})
			msg := &transport.Message{Name: "bench/svc", Header: transport.Header{
				Kind: transport.KindRequest, Codec: "raw", Sender: "bench-node",
			}, Payload: make([]byte, size), Exclusive: true}
			ctx := context.Background()
			if _, err := cli.Request(ctx, srv.ep.Router, msg); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cli.Request(ctx, srv.ep.Router, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
