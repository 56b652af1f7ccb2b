package timer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo/timer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runRepeat runs Repeat in a goroutine of the bubble and records the offset
// from the start of every call; fn's extra work is given by work.
func runRepeat(ctx context.Context, period time.Duration, work func(context.Context)) (calls func() []time.Duration, done <-chan error) {
	var (
		mu  sync.Mutex
		got []time.Duration
	)
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		errc <- timer.Repeat(ctx, period, func(ctx context.Context) {
			mu.Lock()
			got = append(got, time.Since(start))
			mu.Unlock()
			if work != nil {
				work(ctx)
			}
		})
	}()
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), got...)
	}, errc
}

func seconds(xs ...float64) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = time.Duration(x * float64(time.Second))
	}
	return out
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRepeatTicks(t *testing.T) {
	t.Parallel()
	sleepFor := func(d time.Duration) func(context.Context) {
		return func(ctx context.Context) {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
	}
	tests := []struct {
		name string
		work func(context.Context)
		want []time.Duration
	}{
		{"fast fn", nil, seconds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)},
		{"fn takes exactly one period", sleepFor(time.Second), seconds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)},
		{"slow fn skips ticks", sleepFor(2500 * time.Millisecond), seconds(1, 4, 7, 10)},
		{"fn takes two periods", sleepFor(2 * time.Second), seconds(1, 3, 5, 7, 9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 10500*time.Millisecond)
				defer cancel()
				calls, done := runRepeat(ctx, time.Second, tt.work)
				err := <-done
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Repeat returned %v, want %v", err, context.DeadlineExceeded)
				}
				if got := calls(); !equal(got, tt.want) {
					t.Errorf("calls at %v, want %v", got, tt.want)
				}
			})
		})
	}
}

func TestRepeatCancelStops(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cause := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(t.Context())
		calls, done := runRepeat(ctx, time.Second, nil)

		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		if n := len(calls()); n != 3 {
			t.Fatalf("%d calls after 3.5 periods, want 3", n)
		}
		cancel(cause)
		synctest.Wait() // Repeat wakes on ctx.Done and exits before the bubble is idle again
		select {
		case err := <-done:
			if !errors.Is(err, cause) {
				t.Errorf("Repeat returned %v, want the cause %v", err, cause)
			}
		default:
			t.Fatal("Repeat still running after cancel")
		}
		time.Sleep(10 * time.Second)
		if n := len(calls()); n != 3 {
			t.Errorf("%d calls after cancel, want 3", n)
		}
	})
}

func TestRepeatDoneContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := timer.Repeat(ctx, time.Hour, func(context.Context) { t.Error("fn called with a done context") })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Repeat returned %v, want %v", err, context.Canceled)
	}
}

func TestRepeatInvalidPeriod(t *testing.T) {
	t.Parallel()
	for _, p := range []time.Duration{0, -time.Second} {
		err := timer.Repeat(t.Context(), p, func(context.Context) { t.Error("fn called") })
		if !errors.Is(err, timer.ErrInvalidPeriod) {
			t.Errorf("Repeat(%v) = %v, want %v", p, err, timer.ErrInvalidPeriod)
		}
	}
}

func TestAfter(t *testing.T) {
	t.Parallel()
	t.Run("fires once after d", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			fired := make(chan time.Duration, 2)
			stop := timer.After(3*time.Second, func() { fired <- time.Since(start) })
			if got := <-fired; got != 3*time.Second {
				t.Errorf("fn ran after %v, want 3s", got)
			}
			if stop() {
				t.Error("stop after fn ran = true, want false")
			}
			time.Sleep(time.Minute)
			synctest.Wait()
			if len(fired) != 0 {
				t.Error("fn ran twice")
			}
		})
	})
	t.Run("stop prevents", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			stop := timer.After(3*time.Second, func() { t.Error("fn ran after stop") })
			time.Sleep(2 * time.Second)
			if !stop() {
				t.Error("first stop = false, want true")
			}
			if stop() {
				t.Error("second stop = true, want false")
			}
			time.Sleep(time.Minute)
			synctest.Wait()
		})
	})
	t.Run("stop while running", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			started, release, finished := make(chan struct{}), make(chan struct{}), make(chan struct{})
			stop := timer.After(time.Second, func() {
				close(started)
				<-release
				close(finished)
			})
			<-started
			if stop() {
				t.Error("stop while fn runs = true, want false")
			}
			close(release)
			<-finished
		})
	})
	t.Run("zero delay", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			fired := make(chan time.Duration, 1)
			timer.After(0, func() { fired <- time.Since(start) })
			if got := <-fired; got != 0 {
				t.Errorf("fn ran after %v, want 0", got)
			}
		})
	})
}
