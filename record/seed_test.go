package record_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/record"
)

// seedDir is a discovery.SeedDirectory the test drives: it reports the
// sockets the test joins, and remembers the ports this node announces.
type seedDir struct {
	events chan discovery.SeedEvent
	mu     sync.Mutex
	ports  map[string]int // announced, by name
	closed bool
}

func newSeedDir() *seedDir {
	return &seedDir{events: make(chan discovery.SeedEvent, 16), ports: map[string]int{}}
}

func (d *seedDir) Start() (<-chan discovery.SeedEvent, error) { return d.events, nil }

func (d *seedDir) Announce(name string, _ discovery.SeedKind, port int) (func() error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ports[name] = port
	return func() error { return nil }, nil
}

func (d *seedDir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		close(d.events)
	}
	return nil
}

func (d *seedDir) port(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ports[name]
}

// seedNode starts a node with seed compatibility on dir, on host-local
// discovery of its own (real sockets on loopback: the seed wire is zmq's).
func seedNode(t *testing.T, name string, dir *seedDir) *colugo.Node {
	t.Helper()
	n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(t.TempDir()))),
		colugo.WithSeedCompat(colugo.SeedConfig{Directory: dir}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// TestRecorderWithSeed: a recorder WithSeed records the topics of the seed
// publishers its node finds that its patterns match, as raw text with no
// type, sequence number or gap (the seed's wire has none of them), and not
// the others; the summary counts the seed publisher.
func TestRecorderWithSeed(t *testing.T) {
	t.Parallel()
	// A seed publisher: a SeedVisible publisher speaks the seed's wire on a
	// port of its own (its node's directory tells the port), announced to
	// the recorder's node as a seed socket.
	srcDir := newSeedDir()
	src := seedNode(t, "seed-standin", srcDir)
	pubs := map[string]*colugo.Publisher[[]byte]{}
	for _, topic := range []string{"seed/a", "seed/b", "other"} {
		p, err := colugo.NewPublisher[[]byte](src, topic, colugo.WithCodec(codec.Raw{}), colugo.SeedVisible())
		if err != nil {
			t.Fatal(err)
		}
		pubs[topic] = p
	}
	recDir := newSeedDir()
	rec := seedNode(t, "recorder", recDir)
	join := func(topic, uuid string) {
		recDir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: discovery.SeedSocket{
			Instance: "_" + topic + "._" + uuid, Topic: topic, Kind: discovery.SeedPub, UUID: uuid,
			Addr: "127.0.0.1:" + strconv.Itoa(srcDir.port(topic))}}
	}
	var r *record.Recorder
	join("seed/b", "u1") // before Run
	join("other", "u2")  // matches no pattern
	recorded := func(topic string) bool {
		for _, p := range r.Progress() {
			if p.Topic == topic && p.Messages > 0 {
				return true
			}
		}
		return false
	}
	warm := func() {
		for _, p := range pubs {
			_ = p.Publish(t.Context(), []byte("warm"))
		}
	}

	var buf bytes.Buffer
	w, err := record.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r, err = record.NewRecorder(rec, w, record.WithSeed(), record.Patterns("seed/*"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testwait.Until(t, "the earlier seed topic in the recording", func() bool { warm(); return recorded("seed/b") })
	join("seed/a", "u0") // while Run runs
	testwait.Until(t, "the later seed topic in the recording", func() bool { warm(); return recorded("seed/a") })
	const n = 100
	for i := range n {
		if err := pubs["seed/a"].Publish(ctx, []byte("m "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, "the messages", func() bool {
		ps := r.Progress()
		return len(ps) == 2 && ps[0].Messages > n
	})
	ps := r.Progress()
	if p := ps[0]; p.Topic != "seed/a" || len(p.Codecs) != 1 || p.Codecs[0] != "raw" || p.Publishers != 1 || p.Gaps != 0 {
		t.Errorf("progress %+v, want seed/a, raw, 1 publisher, no gap", p)
	}
	if len(ps) != 2 || ps[1].Topic != "seed/b" {
		t.Errorf("progress %+v, want seed/a and seed/b", ps)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	rd, err := record.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	next := 0
	for {
		m, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Codec != "raw" || m.Type != "" || m.PublishTime.After(m.LogTime) {
			t.Fatalf("message %+v, want raw, no type, published no later than logged", m)
		}
		if m.Topic != "seed/a" {
			continue
		}
		if string(m.Data) == "m "+strconv.Itoa(next) {
			next++
		} else if string(m.Data) != "warm" {
			t.Fatalf("message %q, want warm or m %d", m.Data, next)
		}
	}
	if next != n {
		t.Errorf("recorded m 0..m %d in order, want %d", next-1, n)
	}
	meta := readMetadata(t, buf.Bytes())
	if meta["topic.seed/a.publishers"] != "1" || meta["topic.seed/a.gaps"] != "0" || meta["topic.seed/a.sender.seed:u0.messages"] == "" {
		t.Errorf("metadata %v, want seed/a: 1 publisher (seed:u0), no gap", meta)
	}
	if _, ok := meta["topic.other.publishers"]; ok {
		t.Errorf("metadata %v: the unmatched seed topic was recorded", meta)
	}

	// With no topic or pattern given: every seed topic.
	w, err = record.NewWriter(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if r, err = record.NewRecorder(rec, w, record.WithSeed()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	go func() { done <- r.Run(ctx) }()
	testwait.Until(t, "every seed topic in the recording", func() bool {
		warm()
		return recorded("seed/a") && recorded("seed/b") && recorded("other")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
}

// TestRecorderPatterns: Patterns (with or without Topics) records the
// matching colugo topics and those named, not the others; an invalid
// pattern is refused.
func TestRecorderPatterns(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	src, rec := net.NewNode("src"), net.NewNode("recorder")
	var pubs []*colugo.Publisher[int]
	for _, topic := range []string{"robot/a/pose", "robot/b/pose", "robot/a/status", "named"} {
		p, err := colugo.NewPublisher[int](src, topic)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, p)
	}
	var buf bytes.Buffer
	w, _ := record.NewWriter(&buf)
	if _, err := record.NewRecorder(rec, w, record.Patterns("robot/pose*")); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Errorf("an invalid pattern: %v, want ErrInvalidOption", err)
	}
	r, err := record.NewRecorder(rec, w, record.Patterns("robot/*/pose"), record.Topics("named"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testwait.Until(t, "the three wanted topics recorded", func() bool {
		for _, p := range pubs {
			_ = p.Publish(ctx, 1)
		}
		n := 0
		for _, p := range r.Progress() {
			if p.Messages > 0 {
				n++
			}
		}
		return n == 3
	})
	// The unwanted topic's publisher was described with the others: a
	// subscription to it would have come with theirs.
	for _, p := range r.Progress() {
		if p.Topic == "robot/a/status" {
			t.Errorf("robot/a/status recorded: %+v", r.Progress())
		}
	}
	if st := rec.Stats().Topics["robot/a/status"]; st.Received != 0 {
		t.Errorf("robot/a/status received %d, want 0", st.Received)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
