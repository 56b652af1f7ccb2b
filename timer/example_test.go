package timer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/colugo-go/colugo/timer"
)

func ExampleRepeat() {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := timer.Repeat(ctx, 10*time.Millisecond, func(context.Context) {
		n++
		fmt.Println("tick", n)
		if n == 3 {
			cancel() // Repeat returns instead of calling fn again
		}
	})
	fmt.Println("stopped:", err)
	// Output:
	// tick 1
	// tick 2
	// tick 3
	// stopped: context canceled
}

func ExampleAfter() {
	done := make(chan struct{})
	timer.After(10*time.Millisecond, func() {
		fmt.Println("fired")
		close(done)
	})
	<-done

	stop := timer.After(time.Hour, func() { fmt.Println("never printed") })
	fmt.Println("stopped before firing:", stop())
	// Output:
	// fired
	// stopped before firing: true
}
