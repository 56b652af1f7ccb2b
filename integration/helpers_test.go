package integration

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
)

// Helpers that the root package's tests have too (this package may use only
// the public API, so it cannot share theirs).

type AddReq struct{ A, B int }
type AddResp struct{ Sum int }

func add(_ context.Context, r AddReq) (AddResp, error) { return AddResp{Sum: r.A + r.B}, nil }

// numbered is a payload of size bytes starting with i.
func numbered(i, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// publishUntil publishes v until ch yields a value: subscriptions to other
// nodes start once discovery and the connection are up (slow joiner).
func publishUntil[T any](t *testing.T, pub *colugo.Publisher[T], v T, ch <-chan T) T {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if err := pub.Publish(t.Context(), v); err != nil {
			t.Fatal(err)
		}
		select {
		case got, ok := <-ch:
			if !ok {
				t.Fatal("subscription closed")
			}
			return got
		case <-time.After(2 * time.Millisecond):
		}
	}
	t.Fatal("no message reached the subscriber")
	panic("unreachable")
}
