package recordtest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/record"
	"github.com/colugo-go/colugo/record/recordtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type reading struct{ N int }

// recording writes n readings on sensor/temp and n on sensor/other.
func recording(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rec.mcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := record.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range n {
		for _, topic := range []string{"sensor/temp", "sensor/other"} {
			if err := w.Write(record.Message{Topic: topic, Codec: "json", Type: "recordtest_test.reading",
				LogTime: t0.Add(time.Duration(i) * time.Second), Data: fmt.Appendf(nil, `{"N":%d}`, i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReplay(t *testing.T) {
	t.Parallel()
	const n = 500 // recorded 1 s apart: Replay ignores the timing
	path := recording(t, n)
	node := colugotest.NewNetwork(t).NewNode("under-test")
	temps, err := colugo.Subscribe[reading](t.Context(), node, "renamed/temp", colugo.WithBuffer(n))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p := recordtest.Replay(t, node, path, record.Remap("sensor/temp", "renamed/temp"))
	if p.Messages != 2*n || time.Since(start) > 5*time.Second {
		t.Fatalf("%+v in %v", p, time.Since(start))
	}
	// Every message is already in the channel, in order.
	for i := range n {
		select {
		case r := <-temps:
			if r.N != i {
				t.Fatalf("got %d, want %d", r.N, i)
			}
		default:
			t.Fatalf("message %d missing", i)
		}
	}
}

// replayTB records Fatalf instead of stopping the test.
type replayTB struct {
	testing.TB
	failed string
}

func (f *replayTB) Helper()                        {}
func (f *replayTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...) }

func TestReplayCorrupt(t *testing.T) {
	t.Parallel()
	path := recording(t, 10)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	node := colugotest.NewNode(t, "n")
	tb := &replayTB{TB: t}
	recordtest.Replay(tb, node, path)
	if !strings.Contains(tb.failed, "corrupt or truncated") {
		t.Fatalf("failed with %q", tb.failed)
	}
	tb = &replayTB{TB: t}
	recordtest.Replay(tb, node, filepath.Join(t.TempDir(), "missing.mcap"))
	if !strings.Contains(tb.failed, "no such file") {
		t.Fatalf("failed with %q", tb.failed)
	}
}
