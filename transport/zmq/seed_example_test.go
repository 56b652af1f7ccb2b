package zmq_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/transporttest"
	"github.com/colugo-go/colugo/transport/zmq"
)

// A seed reply server and a request to it, as a seed RequestClient would
// send one: the handler's reply, or the error reply when it fails.
func ExampleTransport_SeedServe() {
	tr, err := zmq.New()
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	if _, err := tr.Listen(transporttest.NewRecorder()); err != nil {
		panic(err)
	}
	srv, err := tr.SeedServe(func(_ context.Context, p []byte) ([]byte, error) {
		if len(p) == 0 {
			return nil, fmt.Errorf("empty request")
		}
		return []byte(strings.ToUpper(string(p))), nil
	}, transport.SeedServeOptions{ErrorReply: []byte("error")})
	if err != nil {
		panic(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(srv.Port()) // what the seed-style record announces
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, req := range []string{"hello", ""} {
		reply, err := tr.SeedRequest(ctx, addr, []byte(req))
		fmt.Printf("%q -> %q %v\n", req, reply, err)
	}
	// Output:
	// "hello" -> "HELLO" <nil>
	// "" -> "error" <nil>
}
