package record_test

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/record"
)

// BenchmarkRecorder records a burst of 1 KiB messages, published as fast
// as Publish returns, from a node on a test network into an MCAP file
// (zstd, discarded), for a few channel buffers: what a recording keeps up
// with, and what it drops when it does not.
func BenchmarkRecorder(b *testing.B) {
	for _, buf := range []int{1, 16, 1024} {
		b.Run("buffer-"+strconv.Itoa(buf), func(b *testing.B) {
			net := colugotest.NewNetwork(b)
			pubNode, recNode := net.NewNode("robot"), net.NewNode("recorder")
			pub, err := colugo.NewPublisher[[]byte](pubNode, "bench/data")
			if err != nil {
				b.Fatal(err)
			}
			w, err := record.NewWriter(io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			rec, err := record.NewRecorder(recNode, w, record.Topics("bench/data"), record.WithBuffer(buf))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- rec.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			payload := make([]byte, 1024)
			// Warm up: until the recorder has the topic.
			for deadline := time.Now().Add(10 * time.Second); recorded(rec) == 0; {
				if time.Now().After(deadline) {
					b.Fatal("nothing recorded")
				}
				_ = pub.Publish(ctx, payload)
				time.Sleep(time.Millisecond) // pacing the warm-up only
			}
			base, dropBase := recorded(rec), dropped(rec)
			b.ResetTimer()
			for range b.N {
				_ = pub.Publish(ctx, payload)
			}
			// Everything published is recorded or dropped, counted.
			for deadline := time.Now().Add(time.Minute); recorded(rec)+dropped(rec) < base+dropBase+uint64(b.N); {
				if time.Now().After(deadline) {
					b.Fatalf("recorded %d, dropped %d of %d", recorded(rec)-base, dropped(rec)-dropBase, b.N)
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(100*float64(recorded(rec)-base)/float64(b.N), "recorded-%")
		})
	}
}

func recorded(rec *record.Recorder) (n uint64) {
	for _, p := range rec.Progress() {
		n += p.Messages
	}
	return n
}

func dropped(rec *record.Recorder) (n uint64) {
	for _, p := range rec.Progress() {
		n += p.Dropped
	}
	return n
}
