package colugotest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNodesOnOneNetworkTalk(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	a, b := net.NewNode("a"), net.NewNode("b")
	_, err := colugo.Serve(a, "echo", func(_ context.Context, s string) (string, error) { return "echo " + s, nil })
	if err != nil {
		t.Fatal(err)
	}
	got, err := colugo.Request[string, string](t.Context(), b, "echo", "hi")
	if err != nil || got != "echo hi" {
		t.Fatalf("got %q, %v", got, err)
	}
	// Package-level NewNode with the same tb shares one network.
	c, d := colugotest.NewNode(t, "c"), colugotest.NewNode(t, "d")
	_, _ = colugo.Serve(c, "who", func(context.Context, int) (string, error) { return "c", nil })
	if got, err := colugo.Request[int, string](t.Context(), d, "who", 0); err != nil || got != "c" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestSeparateNetworksAreIsolated(t *testing.T) {
	t.Parallel()
	a := colugotest.NewNetwork(t).NewNode("a")
	b := colugotest.NewNetwork(t).NewNode("b")
	_, _ = colugo.Serve(a, "svc", func(context.Context, int) (int, error) { return 1, nil })
	_, err := colugo.Request[int, int](t.Context(), b, "svc", 0, colugo.WithFailFast())
	if err == nil {
		t.Fatal("a node reached a service on another network")
	}
}

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestNext(t *testing.T) {
	t.Parallel()
	ch := make(chan int, 1)
	ch <- 7
	if got := colugotest.Next(t, ch, time.Second); got != 7 {
		t.Fatalf("got %d", got)
	}
	f := &fakeTB{TB: t}
	colugotest.Next(f, ch, time.Millisecond)
	if f.msg == "" {
		t.Fatal("Next did not fail on timeout")
	}
	close(ch)
	f.msg = ""
	colugotest.Next(f, ch, time.Second)
	if f.msg == "" {
		t.Fatal("Next did not fail on a closed channel")
	}
}

// TestWaitDiscovered: a node that joins a network knows its members once
// WaitDiscovered returns.
func TestWaitDiscovered(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	const members = 30
	for i := range members {
		net.NewNode(fmt.Sprint("m", i))
	}
	late := net.NewNode("late")
	if err := late.WaitDiscovered(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(late.Peers()); got != members {
		t.Errorf("after WaitDiscovered: %d peers, want %d", got, members)
	}
}
