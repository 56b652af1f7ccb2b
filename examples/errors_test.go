package examples_test

import (
	"bytes"
	"context"
	"log"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/examples"
	"github.com/colugo-go/colugo/internal/testwait"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A publisher of the topic with another codec is reported once, however
// many of its messages arrive.
func TestErrorsReportsCodecMismatchOnce(t *testing.T) {
	var out lockedBuffer
	log.SetOutput(&out)
	defer log.SetOutput(os.Stderr)
	net := colugotest.NewNetwork(t)
	sub := net.NewNode("subscriber", examples.Errors())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := colugo.Subscribe[examples.Pose](ctx, sub, "robot/pose"); err != nil {
		t.Fatal(err)
	}
	raw, err := colugo.NewPublisher[[]byte](net.NewNode("raw"), "robot/pose", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := raw.Publish(ctx, []byte("not a pose")); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, "20 decode errors and a report", func() bool {
		return sub.Stats().Topics["robot/pose"].DecodeErrors >= 20 && strings.Contains(out.String(), "codec mismatch")
	})
	got := strings.Count(out.String(), "codec mismatch")
	if got != 1 {
		t.Errorf("%d reports of the mismatch, want 1:\n%s", got, out.String())
	}
}
