//go:build unix

package zmq

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport"
)

// The benchmarks of Publish's fan-out: idle (never subscribed) connections
// must cost Publish nothing, stalled subscribers little more than a count.
// The connections are raw ZMTP peers on loopback, opened by the benchmark.
// Heartbeats are slowed down, so that the peers need not answer PINGs and
// 4000 heartbeat writes a second do not share the two cores of the
// measurement.

const benchTopic = "bench/topic"

// benchOpts are the publisher's options in these benchmarks.
func benchOpts() []Option {
	return []Option{WithHeartbeatInterval(time.Minute), WithPeerTimeout(2 * time.Minute), WithUnixSockets(false)}
}

// raiseFDLimit raises the soft limit on open files to need, within the hard
// limit, until the benchmark ends; it skips the benchmark if the hard limit
// is lower.
func raiseFDLimit(b *testing.B, need uint64) {
	b.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Skip("getrlimit:", err)
	}
	if rl.Cur >= need {
		return
	}
	if rl.Max < need {
		b.Skipf("needs %d open files, hard limit %d", need, rl.Max)
	}
	old := rl
	rl.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Skip("setrlimit:", err)
	}
	b.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// benchPeer dials addr and completes a NULL handshake as a SUB; it
// subscribes to topic unless topic is "". The connection closes at cleanup.
func benchPeer(b *testing.B, addr, topic string) net.Conn {
	b.Helper()
	nc, err := net.DialTimeout("tcp", addr, testWait)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testWait))
	out := append(zmtptest.Greeting(), zmtptest.Ready("SUB")...)
	if topic != "" {
		out = append(out, zmtptest.Frame(0, append([]byte{1}, topic+"\x00"...))...)
	}
	if _, err := nc.Write(out); err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReaderSize(nc, 64)
	if _, err := io.ReadFull(r, make([]byte, 64)); err != nil {
		b.Fatal("greeting:", err)
	}
	if fl, body, err := zmtptest.ReadFrame(r); err != nil || fl&flagCommand == 0 || len(body) < 6 || string(body[1:6]) != "READY" {
		b.Fatalf("READY: %v %q", err, body)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc
}

// benchPublish measures Publish calls per second (64-byte payload) on a
// publisher with idle connections that never subscribed and subs
// subscribers of the topic, which read everything (healthy) or nothing
// (stalled: their send queues are filled first, so every Publish drops for
// them).
func benchPublish(b *testing.B, idle, subs int, stalled bool) {
	raiseFDLimit(b, uint64(2*(idle+subs)+512)) // both ends are in this process
	pub, msg := benchPublisher(b, idle, subs, stalled)
	drops := pub.Stats().SendDropped
	b.ReportAllocs()
	for b.Loop() {
		_ = publishNow(pub, msg)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if subs > 0 {
		b.ReportMetric(float64(pub.Stats().SendDropped-drops)/float64(b.N*subs), "drops/delivery")
	}
}

// benchPublisher returns a publisher with idle and subs connections (see
// benchPublish) and the message to publish.
func benchPublisher(b *testing.B, idle, subs int, stalled bool) (*node, *transport.Message) {
	pub, ep := listen(b, &nopHandler{}, benchOpts()...)
	for range idle {
		benchPeer(b, ep.Pub, "")
	}
	var readers sync.WaitGroup
	b.Cleanup(readers.Wait) // after the connections close (cleanups run last first)
	for range subs {
		nc := benchPeer(b, ep.Pub, benchTopic)
		if !stalled {
			readers.Go(func() { _, _ = io.Copy(io.Discard, nc) })
		}
	}
	testwait.Until(b, "", func() bool { return pub.accepted.Load() == uint64(idle+subs) && pub.Subscribers(benchTopic) == subs })
	msg := &transport.Message{Name: benchTopic, Header: transport.Header{
		Kind: transport.KindPublish, Codec: "raw", Sender: "bench-node", Seq: 1,
	}, Payload: make([]byte, 64)}
	if stalled && subs > 0 { // publish until every stalled queue is full
		deadline := time.Now().Add(time.Minute)
		for {
			before := pub.Stats().SendDropped
			_ = publishNow(pub, msg)
			if pub.Stats().SendDropped-before == uint64(subs) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("stalled subscribers' queues did not fill")
			}
		}
	}
	return pub, msg
}

// BenchmarkPublishIdleRatio publishes in turns, 1000 messages at a time
// (one op: 1000 on each),
// on a publisher without connections and on one with idle connections, and
// reports both rates and their ratio: on a shared machine, load drifts
// alike for both, so the ratio is steadier than two separate runs.
func BenchmarkPublishIdleRatio(b *testing.B) {
	for _, idle := range []int{1000, 4000} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) {
			raiseFDLimit(b, uint64(2*idle+512))
			none, msg := benchPublisher(b, 0, 0, false)
			busy, _ := benchPublisher(b, idle, 0, false)
			var tNone, tBusy time.Duration
			const chunk = 1000
			timed := func(pub *node) time.Duration {
				t0 := time.Now()
				for range chunk {
					_ = publishNow(pub, msg)
				}
				return time.Since(t0)
			}
			pairs := 0
			for b.Loop() { // one op: a chunk on each
				tNone += timed(none)
				tBusy += timed(busy)
				pairs++
			}
			sent := float64(pairs * chunk) // on each
			b.ReportMetric(sent/tNone.Seconds(), "none-msgs/s")
			b.ReportMetric(sent/tBusy.Seconds(), "idle-msgs/s")
			b.ReportMetric(tNone.Seconds()/tBusy.Seconds(), "idle/none")
		})
	}
}

// BenchmarkPublishIdleConns: Publish with 0, 1000 and 4000 idle
// connections, with nobody subscribed (what Publish itself costs) and with
// one subscriber.
func BenchmarkPublishIdleConns(b *testing.B) {
	for _, subs := range []int{0, 1} {
		for _, idle := range []int{0, 1000, 4000} {
			b.Run(fmt.Sprintf("subs=%d/idle=%d", subs, idle), func(b *testing.B) { benchPublish(b, idle, subs, false) })
		}
	}
}

// BenchmarkPublishStalled: Publish to 200 subscribers that have stopped
// reading, against 200 that read.
func BenchmarkPublishStalled(b *testing.B) {
	for _, n := range []int{1, 200} {
		b.Run(fmt.Sprintf("stalled=%d", n), func(b *testing.B) { benchPublish(b, 0, n, true) })
		b.Run(fmt.Sprintf("healthy=%d", n), func(b *testing.B) { benchPublish(b, 0, n, false) })
	}
}

// BenchmarkPublishFlipping: Publish to one healthy subscriber while a
// hostile peer subscribes to and cancels the same topic as fast as it can
// (flip) or does nothing (quiet). Each flip rebuilds the topic's list on the
// peer's reader; Publish takes no lock the flips take.
func BenchmarkPublishFlipping(b *testing.B) {
	for _, flip := range []bool{false, true} {
		b.Run(fmt.Sprintf("flip=%v", flip), func(b *testing.B) {
			pub, msg := benchPublisher(b, 0, 1, false)
			hostile := benchPeer(b, pub.ep.Pub, "")
			stop := make(chan struct{})
			var flipper sync.WaitGroup
			if flip {
				var burst []byte
				for range 512 {
					burst = append(burst, zmtptest.Frame(0, append([]byte{1}, benchTopic+"\x00"...))...)
					burst = append(burst, zmtptest.Frame(0, append([]byte{0}, benchTopic+"\x00"...))...)
				}
				go func() { _, _ = io.Copy(io.Discard, hostile) }() // PINGs; ends when hostile closes
				flipper.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						_ = hostile.SetWriteDeadline(time.Now().Add(testWait))
						if _, err := hostile.Write(burst); err != nil {
							return
						}
					}
				})
			}
			drops := pub.Stats().SendDropped
			for b.Loop() {
				_ = publishNow(pub, msg)
			}
			close(stop)
			flipper.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(pub.Stats().SendDropped-drops)/float64(b.N), "drops/op")
		})
	}
}

// BenchmarkPubSubIdleConns is BenchmarkPubSub64 (messages through to a
// subscriber, paced by it) on a publisher that also has 4000 idle
// connections, against none in the same run.
func BenchmarkPubSubIdleConns(b *testing.B) {
	for _, idle := range []int{0, 4000} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) {
			raiseFDLimit(b, uint64(2*idle+512))
			benchPubSubOn(b, 64, func(ep transport.Endpoint) {
				for range idle {
					benchPeer(b, ep.Pub, "")
				}
			}, benchOpts()...)
		})
	}
}
