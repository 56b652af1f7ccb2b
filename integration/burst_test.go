package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testkit"
)

const burstEnv = "COLUGO_TEST_BURST" // registry dir, codec, count, size

// burstSubscriberRole is the child process of TestBurstTwoProcesses, a
// node that subscribes to "burst", says "ready" once subscribed and "got N"
// when N values arrived in order (or when 20 s passed), then waits for its
// stdin to close.
func burstSubscriberRole(t *testing.T) {
	spec := os.Getenv(burstEnv)
	var dir, name string
	var count, size int
	if _, err := fmt.Sscanf(spec, "%s %s %d %d", &dir, &name, &count, &size); err != nil {
		t.Fatal(err)
	}
	c := codec.Codec(codec.Raw{})
	if name == "json" {
		c = codec.JSON{}
	}
	node, err := colugo.NewNode("burst-sub", colugo.WithDiscovery(local.New(local.WithDir(dir))))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	ch, err := colugo.Subscribe[[]byte](t.Context(), node, "burst", colugo.WithCodec(c))
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready\n")
	timeout := time.After(20 * time.Second)
	got := 0
	for got < count {
		select {
		case v := <-ch:
			if int(binary.BigEndian.Uint32(v)) != got || len(v) != size {
				fmt.Printf("got %d, then number %d of %d bytes\n", got, binary.BigEndian.Uint32(v), len(v))
				_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
				return
			}
			got++
		case <-timeout:
			count = got
		}
	}
	fmt.Printf("got %d %+v\n", got, node.Stats().Topics["burst"])
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// TestBurstTwoProcesses: TestBurstDelivered with the subscriber in a
// process of its own, over zmq, as deployments run.
func TestBurstTwoProcesses(t *testing.T) {
	for _, c := range []codec.Codec{codec.Raw{}, codec.JSON{}} {
		for _, b := range []struct{ count, size int }{{100_000, 64}, {10_000, 1024}, {1000, 64 << 10}} {
			t.Run(fmt.Sprintf("%s/%dx%d", c.Name(), b.count, b.size), func(t *testing.T) {
				count, size := b.count, b.size
				if c.Name() == "json" {
					size = size * 3 / 4 // base64 in JSON: the message is b.size bytes
				}
				if testkit.RaceOn() {
					count /= 10
				}
				dir := t.TempDir()
				ch := spawn(t, "burst-sub", fmt.Sprintf("%s=%s %s %d %d", burstEnv, dir, c.Name(), count, size))
				ch.expect(t, "ready")
				node, err := colugo.NewNode("burst-pub", colugo.WithDiscovery(local.New(local.WithDir(dir))))
				if err != nil {
					t.Fatal(err)
				}
				defer node.Close()
				pub, err := colugo.NewPublisher[[]byte](node, "burst", colugo.WithCodec(c))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(t.Context(), wait)
				defer cancel()
				if err := pub.WaitSubscribers(ctx, 1); err != nil {
					t.Fatal(err)
				}
				p := testkit.Numbered(0, size)
				start := time.Now()
				for i := range count {
					binary.BigEndian.PutUint32(p, uint32(i))
					if err := pub.Publish(t.Context(), p); err != nil {
						t.Fatal(err)
					}
				}
				published := time.Since(start)
				line := ch.expect(t, "got ")
				if !strings.HasPrefix(line, fmt.Sprintf("got %d ", count)) {
					t.Fatalf("child %s; publisher %+v", strings.TrimSpace(line), node.Stats().Topics["burst"])
				}
				t.Logf("published %d in %v, all received in %v", count, published, time.Since(start))
			})
		}
	}
}
