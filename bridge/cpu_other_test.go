//go:build !unix

package bridge_test

import "time"

// processCPU is unknown here: the benchmarks report no cpu-µs/msg.
func processCPU() time.Duration { return 0 }
