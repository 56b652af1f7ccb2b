// Package testkit holds the test helpers that the root package's tests and
// the integration tests share: a service's types and handler, payloads that
// say their number, publishing until a subscriber is connected, and whether
// the race detector is on. It uses only colugo's public API.
package testkit

import (
	"context"
	"encoding/binary"
	"runtime/debug"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
)

// Wait bounds every wait of the tests that use these helpers; it is long
// because CI machines are slow and shared, and only a broken node reaches it.
const Wait = 10 * time.Second

// AddReq and AddResp are the "math/add" service's types; Add serves it.
type (
	AddReq  struct{ A, B int }
	AddResp struct{ Sum int }
)

// Add is the "math/add" handler.
func Add(_ context.Context, r AddReq) (AddResp, error) { return AddResp{Sum: r.A + r.B}, nil }

// Numbered is a payload of size bytes (at least 4) starting with i, big endian.
func Numbered(i, size int) []byte {
	b := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(b, uint32(i))
	return b[:size:size]
}

// PublishUntil publishes v until ch yields a value, and returns it:
// subscriptions to other nodes start once discovery and the connection are
// up (the slow joiner). It fails the test after Wait.
func PublishUntil[T any](t *testing.T, pub *colugo.Publisher[T], v T, ch <-chan T) T {
	t.Helper()
	deadline := time.Now().Add(Wait)
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

// RaceOn reports whether the binary was built with the race detector.
func RaceOn() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}
