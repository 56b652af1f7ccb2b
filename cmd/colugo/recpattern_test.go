package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/record"
)

// record with a pattern records every matching topic, each on its own
// channels, and none of the others; a pattern nobody matches is said.
func TestRecordPattern(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := node(t, dir, "robots")
	for _, name := range []string{"robot/a/pose", "robot/b/pose", "robot/a/status"} {
		p, err := colugo.NewPublisher[pose](n, name)
		if err != nil {
			t.Fatal(err)
		}
		publishEvery(t, p, 5*time.Millisecond, func(i int) pose { return pose{X: i} })
	}
	file := filepath.Join(dir, "p.mcap")
	r := runCLI(t, dir, "record", "-o", file, "robot/*/pose", "none/**", "--for", "1s", "--every", "0", "--json")
	if r.code != 1 || !strings.Contains(r.stderr, `no publisher of a topic matching "none/**" found, nothing recorded of it`) {
		t.Errorf("exit %d, stderr %q; want 1 and none/** named", r.code, r.stderr)
	}
	var sum recordSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("summary %q: %v", r.stdout, err)
	}
	var topics []string
	for _, tp := range sum.Topics {
		if tp.Messages == 0 {
			t.Errorf("%s: no messages", tp.Topic)
		}
		topics = append(topics, tp.Topic)
	}
	if strings.Join(topics, " ") != "robot/a/pose robot/b/pose" {
		t.Errorf("recorded %v, want robot/a/pose and robot/b/pose", topics)
	}
	f, err := record.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc, err := record.Scan(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range sc.Channels {
		if ch.Topic != "robot/a/pose" && ch.Topic != "robot/b/pose" {
			t.Errorf("channel of %s in the file", ch.Topic)
		}
	}
}

// A record that cannot start (a refused node, a bad --compression) leaves
// an existing file as it was.
func TestRecordRefusedKeepsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "keep.mcap")
	if err := os.WriteFile(file, []byte("an earlier recording"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"record", "-o", file, "--seed"}, // refused: COLUGO_DISCOVERY=local has no mdns
		{"record", "-o", file, "--compression", "brotli"},
	} {
		r := runCLI(t, dir, args...)
		if r.code == 0 {
			t.Errorf("%v: exit 0", args)
		}
		if b, err := os.ReadFile(file); err != nil || string(b) != "an earlier recording" {
			t.Errorf("%v (exit %d, %q): the file now holds %q, %v", args, r.code, r.stderr, b, err)
		}
	}
}
