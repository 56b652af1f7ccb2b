package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/record"
	"github.com/foxglove/mcap/go/mcap"
)

// historyGraph starts "latch", publishing robot/description with
// WithHistory(2) (two values published before any tool runs), and
// "plain", publishing robot/pose without history (one value published).
func historyGraph(t *testing.T, dir string) {
	t.Helper()
	latch, plain := node(t, dir, "latch"), node(t, dir, "plain")
	desc, err := colugo.NewPublisher[pose](latch, "robot/description", colugo.WithHistory(2))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := desc.Publish(t.Context(), pose{X: i + 1, Y: 10}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := colugo.NewPublisher[pose](plain, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), pose{X: 7}); err != nil {
		t.Fatal(err)
	}
}

// columnOf returns the cell of line under the header column name (cells
// are separated by two spaces or more; HISTORY cells may hold single ones).
func columnOf(t *testing.T, header, line, name string) string {
	t.Helper()
	starts := columnStarts(header)
	hc := splitCells(header)
	for i, h := range hc {
		if h != name {
			continue
		}
		cells := columnStarts(line)
		if len(cells) != len(starts) || cells[i] != starts[i] {
			t.Fatalf("row %q: columns at %v, header %q at %v", line, cells, header, starts)
		}
		return splitCells(line)[i]
	}
	t.Fatalf("no column %s in %q", name, header)
	return ""
}

func splitCells(line string) []string {
	var out []string
	for _, c := range strings.Split(line, "  ") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// rowOf returns the line of out whose first cell is first.
func rowOf(t *testing.T, out, first string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, first+" ") {
			return l
		}
	}
	t.Fatalf("no row %q in:\n%s", first, out)
	return ""
}

// TestTopicsNodesHistory: topics and nodes show the history depth each
// topic's publishers keep (from $describe), "-" for none, in aligned
// columns, and --json carries it.
func TestTopicsNodesHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	historyGraph(t, dir)
	r := runCLI(t, dir, "topics", "--hz=false", "--wait", "500ms")
	header := strings.Split(r.stdout, "\n")[0]
	if r.code != 0 || !strings.Contains(header, "HISTORY") {
		t.Fatalf("topics: exit %d, header %q", r.code, header)
	}
	if h := columnOf(t, header, rowOf(t, r.stdout, "robot/description"), "HISTORY"); h != "2" {
		t.Errorf("robot/description HISTORY %q, want 2", h)
	}
	if h := columnOf(t, header, rowOf(t, r.stdout, "robot/pose"), "HISTORY"); h != "-" {
		t.Errorf("robot/pose HISTORY %q, want -", h)
	}
	r = runCLI(t, dir, "topics", "--hz=false", "--wait", "500ms", "--json")
	history := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var row map[string]any
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatal(err)
		}
		h, ok := row["history"].(float64)
		if !ok {
			t.Fatalf("no history field in %s", l)
		}
		history[row["name"].(string)] = int(h)
	}
	if history["robot/description"] != 2 || history["robot/pose"] != 0 {
		t.Errorf("topics --json history %v", history)
	}

	r = runCLI(t, dir, "nodes", "--wait", "500ms")
	header = strings.Split(r.stdout, "\n")[0]
	if h := columnOf(t, header, rowOf(t, r.stdout, "latch"), "HISTORY"); h != "robot/description=2" {
		t.Errorf("latch HISTORY %q", h)
	}
	if h := columnOf(t, header, rowOf(t, r.stdout, "plain"), "HISTORY"); h != "-" {
		t.Errorf("plain HISTORY %q", h)
	}
	r = runCLI(t, dir, "nodes", "--wait", "500ms", "--json")
	if !strings.Contains(r.stdout, `"name":"robot/description","codec":"json","type":"main.pose"`) ||
		!strings.Contains(r.stdout, `"history":2`) {
		t.Errorf("nodes --json has no history 2")
	}
}

// TestEchoLast: --last prints the newest kept value and exits 0; a topic
// whose publishers keep nothing fails at once with a clear message (the
// publishers' explicit answer, not the timeout); no publisher fails
// after --timeout.
func TestEchoLast(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	historyGraph(t, dir)
	r := runCLI(t, dir, "echo", "robot/description", "--last")
	if r.code != 0 || strings.TrimSpace(r.stdout) != `{"X":2,"Y":10}` {
		t.Fatalf("echo --last: exit %d, %q", r.code, r.stdout)
	}
	r = runCLI(t, dir, "echo", "--json", "robot/description", "--last")
	var e echoLine
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || r.code != 0 || !e.Replayed || e.Seq == 0 ||
		string(e.Value) != `{"X":2,"Y":10}` || e.Codec != "json" || e.Type != "main.pose" || e.SendTime.After(e.Time) {
		t.Fatalf("echo --last --json: %+v %v", e, err)
	}
	r = runCLI(t, dir, "echo", "robot/pose", "--last", "--timeout", "10s")
	if r.code != 1 || !strings.Contains(r.stderr, `no publisher of topic "robot/pose" keeps a value (publishers: plain keeps none)`) {
		t.Fatalf("echo --last without history: exit %d", r.code)
	}
	if r.took > 5*time.Second {
		t.Errorf("ErrNoValue took %v: a timeout, not the publishers' answer", r.took)
	}
	r = runCLI(t, dir, "echo", "no/such", "--last", "--timeout", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, `no publisher of topic "no/such" found within 1s (published topics: robot/description, robot/pose)`) {
		t.Fatalf("echo --last, no publisher: exit %d", r.code)
	}
	r = runCLI(t, dir, "echo", "robot/description", "--last", "--count", "2")
	if r.code != 2 || !strings.Contains(r.stderr, "--last prints one value") {
		t.Fatalf("echo --last --count: exit %d", r.code)
	}
}

// TestDoctorHistory: doctor names the subscribers that asked for history
// nobody offers (publisher without history, or no publisher), and lists
// the topics that offer history.
func TestDoctorHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	historyGraph(t, dir)
	viewer, late, lonely := node(t, dir, "viewer"), node(t, dir, "late"), node(t, dir, "lonely")
	if _, err := colugo.Subscribe[pose](t.Context(), viewer, "robot/pose", colugo.WithLastValue()); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Subscribe[pose](t.Context(), late, "robot/description", colugo.WithHistory(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Subscribe[pose](t.Context(), lonely, "robot/goal", colugo.WithLastValue()); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, dir, "doctor", "--listen", "0s")
	for _, want := range []string{
		"WARN  topic robot/pose         history asked for by viewer (depth 1), but no publisher offers it (plain keeps none)",
		"WARN  topic robot/goal         history asked for by lonely (depth 1), but nobody publishes the topic",
		"OK    topic robot/description  offers history: latch (depth 2); asked for by late (depth 5)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor does not say %q", want)
		}
	}
	if r.code != 0 {
		t.Errorf("doctor exit %d: a topic without history is a warning, not a problem", r.code)
	}
}

// TestRecordHistory: record marks the channel of a topic whose publisher
// keeps history with colugo.history = its depth (not the others), and the
// recording starts with what the publisher kept from before it started.
func TestRecordHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	historyGraph(t, dir)
	file := filepath.Join(dir, "h.mcap")
	r := runCLI(t, dir, "record", "-o", file, "--for", "1s", "--every", "0", "robot/description", "robot/pose")
	if r.code != 0 {
		t.Fatal("record")
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := mcap.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	info, err := rd.Info()
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]string{}
	for _, c := range info.Channels {
		if h, ok := c.Metadata[record.MetaHistory]; ok {
			marks[c.Topic] = h
		}
	}
	if len(marks) != 1 || marks["robot/description"] != "2" {
		t.Errorf("colugo.history marks %v, want robot/description=2 only", marks)
	}
	if n := info.ChannelCounts()["robot/description"]; n != 2 {
		t.Errorf("recorded %d description messages, want the 2 kept before record started", n)
	}
}

// TestPlayHistory: play publishes a topic recorded with colugo.history
// with that history, so a subscriber that joins the replay after the value
// was played and asks for the last value gets it (Replayed).
func TestPlayHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "latched.mcap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w, err := record.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	// The description at the start, then nothing for 20 s (play runs that
	// long, until the test ends and kills it).
	for _, m := range []record.Message{
		{Topic: "robot/description", Codec: "json", Type: "main.pose", LogTime: t0, Data: []byte(`{"X":42,"Y":1}`), History: 1},
		{Topic: "robot/tick", Codec: "raw", Type: "[]uint8", LogTime: t0.Add(20 * time.Second), Data: []byte("end")},
	} {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// A subscriber without history sees the value played live: then it
	// has been published, and whoever subscribes next is late.
	probe := node(t, dir, "probe")
	live, err := colugo.Subscribe[pose](t.Context(), probe, "robot/description")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() { done <- runCLI(t, dir, "play", file, "--wait", "2s", "--every", "0") }()
	t.Cleanup(func() { <-done }) // play is killed when t.Context ends
	select {
	case p := <-live:
		if p.X != 42 {
			t.Fatalf("played %+v", p)
		}
	case r := <-done:
		t.Fatalf("play ended (exit %d) before the probe got the value", r.code)
	case <-time.After(15 * time.Second):
		t.Fatal("the probe got nothing within 15s")
	}
	late := node(t, dir, "late")
	got, err := colugo.SubscribeReceived[pose](t.Context(), late, "robot/description", colugo.WithLastValue())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Value.X != 42 || !m.Replayed {
			t.Fatalf("late subscriber got %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the late subscriber got no last value from the replay within 10s")
	}
	// And the replay's publisher advertised its history.
	testwait.Until(t, "player advertises history 1", func() bool {
		for _, p := range late.Peers() {
			for _, tp := range p.Topics {
				if p.Name == "colugo-play" && tp.Name == "robot/description" {
					return tp.History == 1
				}
			}
		}
		return false
	})
}
