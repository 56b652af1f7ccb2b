package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/foxglove/mcap/go/mcap"
)

// TestWithQueueBudgetOption: the default is the 256 MiB the doc says (and
// the channel buffer WithBuffer's 16), the
// option sets the budget the subscriptions share, and a budget below 1
// byte is refused.
func TestWithQueueBudgetOption(t *testing.T) {
	t.Parallel()
	node := colugotest.NewNode(t, "recorder")
	w, err := NewWriter(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRecorder(node, w)
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.budget != 256<<20 || r.budget.Max() != 256<<20 {
		t.Errorf("default budget %d (QueueBudget %d), want 256 MiB", r.cfg.budget, r.budget.Max())
	}
	if r.cfg.buffer != 16 {
		t.Errorf("default buffer %d, want 16 (WithBuffer's doc)", r.cfg.buffer)
	}
	r, err = NewRecorder(node, w, WithQueueBudget(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if r.budget.Max() != 1<<20 {
		t.Errorf("WithQueueBudget(1 MiB): budget %d", r.budget.Max())
	}
	if s := fmt.Sprint(WithQueueBudget(1 << 20)); s != "record.WithQueueBudget(1048576)" {
		t.Errorf("String: %s", s)
	}
	for _, n := range []int{0, -1} {
		if _, err := NewRecorder(node, w, WithQueueBudget(n)); !errors.Is(err, colugo.ErrInvalidOption) {
			t.Errorf("WithQueueBudget(%d): %v, want ErrInvalidOption", n, err)
		}
	}
}

// gateWriter keeps what is written to it; after hold, every Write waits
// until release.
type gateWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	gate    chan struct{} // non-nil: writes wait for it to close
	once    sync.Once
	entered chan struct{} // a write is waiting at the gate
}

func newGateWriter() *gateWriter { return &gateWriter{entered: make(chan struct{}, 1)} }

func (g *gateWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gateWriter) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gateWriter) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		g.once.Do(func() { close(g.gate) })
	}
}

// TestRecorderQueueBudgetHolds: while the Writer's io.Writer is stalled,
// a burst on four topics queues at most the budget plus one message per
// topic in the recorder's subscriptions, the rest is dropped and counted,
// and once the io.Writer moves again the recording goes on and Run ends
// cleanly.
func TestRecorderQueueBudgetHolds(t *testing.T) {
	t.Parallel()
	const topics, size, budget, burst = 4, 1 << 10, 64 << 10, 128 // a burst of 8 budgets
	entry := size + colugo.QueueEntryOverhead
	net := colugotest.NewNetwork(t)
	src, recNode := net.NewNode("src"), net.NewNode("recorder")
	var names []string
	var pubs []*colugo.Publisher[[]byte]
	for i := range topics {
		names = append(names, fmt.Sprint("robot/", i))
		p, err := colugo.NewPublisher[[]byte](src, names[i], colugo.WithCodec(codec.Raw{}))
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, p)
	}
	gw := newGateWriter()
	w, err := NewWriter(gw, WithCompression("none"))
	if err != nil {
		t.Fatal(err)
	}
	w.w.chunkSize = 1 // every message goes through to gw
	// A channel of one, so that nearly all the recorder holds is in the
	// queues the budget bounds.
	r, err := NewRecorder(recNode, w, Topics(names...), WithBuffer(1), WithQueueBudget(budget))
	if err != nil {
		t.Fatal(err)
	}
	// The topics of one node wait their Block in turn: shorter waits, the
	// same bound.
	r.cfg.block = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	finished := make(chan struct{})
	var runErr error
	go func() { runErr = r.Run(ctx); close(finished) }()
	defer func() { gw.release(); cancel(); <-finished }() // on any failure too

	// Probes until every topic is recorded: the subscriptions are connected.
	probe := make([]byte, size)
	testwait.Until(t, "every topic recorded", func() bool {
		for _, p := range pubs {
			_ = p.Publish(ctx, probe)
		}
		ps := r.Progress()
		for _, p := range ps {
			if p.Messages == 0 {
				return false
			}
		}
		return len(ps) == topics
	})

	// Stall the Writer. (Progress would wait for it now: the test looks
	// at the node's stats and the budget only.)
	gw.hold()
	_ = pubs[0].Publish(ctx, probe)
	select {
	case <-gw.entered:
	case <-time.After(testwait.Timeout):
		t.Fatal("no write reached the stalled io.Writer")
	}
	limit := budget + topics*entry
	peakUsed, peakQueued := 0, 0
	sample := func() map[string]colugo.TopicStats {
		st := recNode.Stats()
		queued := 0
		for _, s := range st.Subscriptions {
			queued += s.QueuedBytes
		}
		peakUsed, peakQueued = max(peakUsed, r.budget.Used()), max(peakQueued, queued)
		if peakUsed > limit || peakQueued > limit {
			t.Fatalf("the queues held %d bytes (the budget's count: %d), want at most %d: the budget and one message per topic",
				peakQueued, peakUsed, limit)
		}
		return st.Topics
	}
	payload := make([]byte, size)
	for range burst {
		for _, p := range pubs {
			if err := p.Publish(ctx, payload); err != nil {
				t.Fatal(err)
			}
		}
		sample()
	}
	// Each topic waits its Block for its writes before it drops: publish
	// on, paced and bounded, until all have dropped.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testwait.Timeout)
	dropped := func(st map[string]colugo.TopicStats) bool {
		for _, n := range names {
			if st[n].Dropped == 0 {
				return false
			}
		}
		return true
	}
	for i := 0; !dropped(sample()); i++ {
		if i == 10000 {
			t.Fatal("too many rounds waiting for drops")
		}
		for _, p := range pubs {
			_ = p.Publish(ctx, payload)
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("not every topic dropped while the writer was stalled: %+v (budget used %d, peak %d)",
				recNode.Stats().Topics, r.budget.Used(), peakUsed)
		}
	}
	if peakUsed < budget-entry {
		t.Fatalf("the budget peaked at %d bytes of %d: the burst did not fill it", peakUsed, budget)
	}
	t.Logf("peak: budget used %d, queued %d, limit %d; dropped %v", peakUsed, peakQueued, limit, dropCounts(recNode, names))

	// Writes move again: the queues drain and the recording goes on.
	gw.release()
	testwait.Until(t, "the queues drained", func() bool { return r.budget.Used() == 0 })
	marker := make([]byte, size+1) // the only messages of other than size bytes
	testwait.Until(t, "a message after the stall recorded on each topic", func() bool {
		for _, p := range pubs {
			_ = p.Publish(ctx, marker)
		}
		n := 0
		for _, p := range r.Progress() {
			if p.Bytes > size*p.Messages { // a marker among them
				n++
			}
		}
		return n == topics
	})
	cancel()
	<-finished
	if runErr != nil {
		t.Fatalf("Run: %v", runErr)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	gw.mu.Lock()
	file := bytes.Clone(gw.buf.Bytes())
	gw.mu.Unlock()
	sum, err := Scan(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	meta := recordingMetadata(t, file)
	for _, n := range names {
		if sum.Counts[n] == 0 {
			t.Errorf("%s: nothing in the file", n)
		}
		if d := meta["topic."+n+".dropped"]; d == "" || d == "0" {
			t.Errorf("%s: recording metadata dropped %q", n, d)
		}
	}
}

// recordingMetadata reads file's MetadataRecording with the mcap library.
func recordingMetadata(t *testing.T, file []byte) map[string]string {
	t.Helper()
	rd, err := mcap.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	info, err := rd.Info()
	if err != nil {
		t.Fatal(err)
	}
	for _, idx := range info.MetadataIndexes {
		if idx.Name == MetadataRecording {
			md, err := rd.GetMetadata(idx.Offset)
			if err != nil {
				t.Fatal(err)
			}
			return md.Metadata
		}
	}
	t.Fatal("no recording metadata")
	return nil
}

// dropCounts is the node's drop count per topic.
func dropCounts(node *colugo.Node, topics []string) map[string]uint64 {
	st := node.Stats().Topics
	m := map[string]uint64{}
	for _, n := range topics {
		m[n] = st[n].Dropped
	}
	return m
}

// TestCountsWhileStalled: Counts (so a recorder's Progress) answers while
// a write waits for a stalled file.
func TestCountsWhileStalled(t *testing.T) {
	gw := newGateWriter()
	w, err := NewWriter(gw)
	if err != nil {
		t.Fatal(err)
	}
	w.w.chunkSize = 1 // every message goes through to gw
	if err := w.Write(Message{Topic: "a", Codec: "raw", Data: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	gw.hold()
	defer gw.release()
	wrote := make(chan error, 1)
	go func() { wrote <- w.Write(Message{Topic: "a", Codec: "raw", Data: []byte("2")}) }()
	<-gw.entered // the second write waits at the gate, holding the Writer
	counted := make(chan []TopicCount, 1)
	go func() { counted <- w.Counts() }()
	select {
	case c := <-counted:
		if len(c) != 1 || c[0].Messages != 1 {
			t.Errorf("Counts = %+v, want topic a with 1 message", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Counts waited for the stalled write")
	}
	gw.release()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if c := w.Counts(); c[0].Messages != 2 {
		t.Errorf("after the write: %+v", c)
	}
}
