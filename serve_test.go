package colugo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
)

// TestHandlerSeesCallerDeadline: a handler waiting on its ctx when the
// caller's deadline passes sees DeadlineExceeded, never Canceled, though
// the caller's cancel may reach it before its own timer fires: remote over
// both transports, and on the same node.
func TestHandlerSeesCallerDeadline(t *testing.T) {
	for _, tc := range nodePairs {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tc.pair(t)
			const requests = 20
			seen := make(chan error, 2*requests)
			_, _ = colugo.Serve(srv, "slow", func(ctx context.Context, _ int) (int, error) {
				<-ctx.Done()
				seen <- ctx.Err()
				return 0, ctx.Err()
			})
			waitServers(t, cli, "slow", 1)
			for _, node := range []*colugo.Node{cli, srv} {
				var wg sync.WaitGroup
				for range requests {
					wg.Go(func() {
						ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
						defer cancel()
						if _, err := colugo.Request[int, int](ctx, node, "slow", 1); !errors.Is(err, context.DeadlineExceeded) {
							t.Errorf("%s: caller got %v", node.Name(), err)
						}
					})
				}
				wg.Wait()
				for range requests {
					if err := <-seen; !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("%s: handler's ctx ended with %v, want DeadlineExceeded", node.Name(), err)
					}
				}
			}
		})
	}
}
