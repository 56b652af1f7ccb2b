package testwait

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFor(t *testing.T) {
	t.Parallel()
	n := 0
	if !For(time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("For gave up on a condition that held at the third poll")
	}
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
	start := time.Now()
	calls := 0
	if For(20*time.Millisecond, func() bool { calls++; return false }) {
		t.Fatal("For reported a condition that never held")
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Fatalf("For gave up after %v, before its 20ms", took)
	}
	if calls < 2 {
		t.Fatalf("cond called %d times in 20ms", calls)
	}
}

func TestUntilHolds(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	close(done)
	Until(t, "a closed channel", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}
