package colugo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testkit"
	"github.com/colugo-go/colugo/internal/testwait"
)

func TestInvalidInput(t *testing.T) {
	n := colugotest.NewNode(t, "n")
	for _, topic := range []string{"", "a\x00b", string(make([]byte, 256)), "\xff"} {
		if _, err := colugo.NewPublisher[int](n, topic); !errors.Is(err, colugo.ErrInvalidOption) {
			t.Errorf("NewPublisher(%q): %v", topic, err)
		}
		if _, err := colugo.Subscribe[int](t.Context(), n, topic); !errors.Is(err, colugo.ErrInvalidOption) {
			t.Errorf("Subscribe(%q): %v", topic, err)
		}
	}
	if _, err := colugo.Subscribe[int](t.Context(), n, "t", colugo.WithBuffer(0)); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Errorf("WithBuffer(0): %v", err)
	}
	if _, err := colugo.Serve(n, "$describe", add); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Errorf("Serve($describe): %v", err)
	}
	if _, err := colugo.Serve(n, "x", add); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(n, "x", add); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Errorf("second Serve: %v", err)
	}
	if _, err := colugo.NewNode(""); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Errorf("NewNode(\"\"): %v", err)
	}
	if _, err := colugo.NewPublisher[chan int](n, "c"); err != nil {
		t.Fatal(err)
	}
	pub, _ := colugo.NewPublisher[chan int](n, "c")
	if err := pub.Publish(t.Context(), make(chan int)); err == nil {
		t.Error("publishing a value JSON cannot encode succeeded")
	}
}

// Close during full-rate publishing and requests in flight returns, fails
// every pending request with ErrClosed or answers it, and leaves no
// goroutine (goleak checks at the end of the package).
func TestCloseUnderLoad(t *testing.T) {
	for _, tc := range nodePairs {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tc.pair(t)
			_, _ = colugo.Serve(srv, "slow", func(ctx context.Context, _ int) (int, error) {
				<-ctx.Done()
				return 0, ctx.Err()
			})
			ch, _ := colugo.Subscribe[int](t.Context(), srv, "load")
			pub, _ := colugo.NewPublisher[int](cli, "load")
			testkit.PublishUntil(t, pub, 1, ch)
			testwait.Until(t, "the service", func() bool { return len(cli.Peers()) == 1 && len(cli.Peers()[0].Services) == 1 })

			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					for i := 0; i < 1_000_000; i++ { // bounded; ends at Close
						if err := pub.Publish(context.Background(), i); err != nil {
							return
						}
					}
				})
			}
			const inflight = 100
			errs := make(chan error, inflight)
			for range inflight {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), wait)
					defer cancel()
					_, err := colugo.Request[int, int](ctx, cli, "slow", 1)
					errs <- err
				})
			}
			testwait.Until(t, "requests in flight", func() bool { return cli.Stats().Services["slow"].Requests == inflight })
			start := time.Now()
			if err := cli.Close(); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("Close took %v", el)
			}
			wg.Wait()
			for range inflight {
				if err := <-errs; !errors.Is(err, colugo.ErrClosed) {
					t.Fatalf("request pending at Close: %v, want ErrClosed", err)
				}
			}
		})
	}
}
