package colugo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/transport/zmq"
)

// shutdownPair returns two nodes that find each other: on the in-process
// transport, or on zmq over loopback with a registry in a temporary
// directory.
func shutdownPair(t *testing.T, kind string) (a, b *colugo.Node) {
	t.Helper()
	if kind == "inproc" {
		net := colugotest.NewNetwork(t)
		return net.NewNode("a"), net.NewNode("b")
	}
	dir := t.TempDir()
	mk := func(name string) *colugo.Node {
		tr, err := zmq.New(zmq.WithHost("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir))), colugo.WithTransport(tr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	return mk("a"), mk("b")
}

func TestShutdownLetsHandlersFinish(t *testing.T) {
	for _, kind := range []string{"inproc", "zmq"} {
		t.Run(kind, func(t *testing.T) {
			srv, cli := shutdownPair(t, kind)
			started, release := make(chan struct{}), make(chan struct{})
			var releaseOnce sync.Once
			free := func() { releaseOnce.Do(func() { close(release) }) }
			t.Cleanup(free) // before the nodes' Close, which waits for the handler
			if _, err := colugo.Serve(srv, "work", func(_ context.Context, job string) (string, error) {
				if job != "slow" {
					return "fast", nil
				}
				close(started)
				<-release
				return "done", nil
			}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			slow := make(chan error, 1)
			go func() {
				got, err := colugo.Request[string, string](ctx, cli, "work", "slow")
				if err == nil && got != "done" {
					err = errors.New("slow request answered " + got)
				}
				slow <- err
			}()
			<-started
			shut := make(chan error, 1)
			go func() { shut <- srv.Shutdown(ctx) }()

			// New requests are refused with CodeUnavailable once it drains.
			for {
				_, err := colugo.Request[string, string](ctx, cli, "work", "fast")
				if colugo.CodeOf(err) == colugo.CodeUnavailable {
					break
				}
				if err != nil {
					t.Fatalf("request while shutting down: %v, want CodeUnavailable", err)
				}
				if ctx.Err() != nil {
					t.Fatal("requests were never refused during Shutdown")
				}
			}
			if _, err := colugo.NewPublisher[int](srv, "late"); !errors.Is(err, colugo.ErrClosed) {
				t.Fatalf("NewPublisher during Shutdown: %v, want ErrClosed", err)
			}
			if _, err := colugo.Subscribe[int](ctx, srv, "late"); !errors.Is(err, colugo.ErrClosed) {
				t.Fatalf("Subscribe during Shutdown: %v, want ErrClosed", err)
			}
			select {
			case err := <-shut:
				t.Fatalf("Shutdown returned (%v) while a handler was running", err)
			default:
			}
			free()
			if err := <-slow; err != nil {
				t.Fatalf("the running request: %v", err)
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if _, err := colugo.NewPublisher[int](srv, "after"); !errors.Is(err, colugo.ErrClosed) {
				t.Fatalf("NewPublisher after Shutdown: %v", err)
			}
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatalf("second Shutdown: %v", err)
			}
		})
	}
}

// TestShutdownFlushesBurst: a burst published just before Shutdown reaches
// a subscriber on another node whole; Close alone would cut the queued
// tail.
func TestShutdownFlushesBurst(t *testing.T) {
	for _, kind := range []string{"inproc", "zmq"} {
		t.Run(kind, func(t *testing.T) {
			pubNode, subNode := shutdownPair(t, kind)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			got, err := colugo.Subscribe[[]byte](ctx, subNode, "burst", colugo.WithCodec(codec.Raw{}))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := colugo.NewPublisher[[]byte](pubNode, "burst", colugo.WithCodec(codec.Raw{}))
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.WaitSubscribers(ctx, 1); err != nil {
				t.Fatal(err)
			}
			const n, size = 20_000, 1 << 10
			for i := range n {
				b := make([]byte, size)
				b[0] = byte(i)
				if err := pub.Publish(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			if err := pubNode.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			for i := range n {
				select {
				case v := <-got:
					if v[0] != byte(i) {
						t.Fatalf("message %d: got %d", i, v[0])
					}
				case <-ctx.Done():
					t.Fatalf("received %d of %d messages published before Shutdown (publisher %+v, subscriber %+v)", i, n, pubNode.Stats().Topics["burst"], subNode.Stats().Topics["burst"])
				}
			}
		})
	}
}

// TestShutdownBoundedByCtx: a handler that outlasts Shutdown's ctx is
// cancelled, and Shutdown returns ctx's error with the node closed.
func TestShutdownBoundedByCtx(t *testing.T) {
	srv, cli := shutdownPair(t, "inproc")
	started := make(chan struct{})
	if _, err := colugo.Serve(srv, "stuck", func(ctx context.Context, _ int) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	reqCtx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	reqDone := make(chan error, 1)
	go func() {
		_, err := colugo.Request[int, int](reqCtx, cli, "stuck", 1)
		reqDone <- err
	}()
	<-started
	ctx, cancelShut := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancelShut()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	if _, err := colugo.NewPublisher[int](srv, "x"); !errors.Is(err, colugo.ErrClosed) {
		t.Fatalf("node not closed after Shutdown's ctx ended: %v", err)
	}
	if err := <-reqDone; err == nil {
		t.Fatal("the request to a cancelled handler succeeded")
	}
}

func TestShutdownAfterClose(t *testing.T) {
	n, _ := shutdownPair(t, "inproc")
	_ = n.Close()
	if err := n.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown after Close: %v", err)
	}
}
