package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
)

// echo with a pattern prints the messages of every matching topic, each
// with its topic, and none of the others (issue 18 part 1).
func TestEchoPattern(t *testing.T) {
	dir := t.TempDir()
	n := node(t, dir, "robots")
	for _, name := range []string{"robot/a/pose", "robot/b/pose", "robot/a/status"} {
		p, err := colugo.NewPublisher[pose](n, name)
		if err != nil {
			t.Fatal(err)
		}
		publishEvery(t, p, 5*time.Millisecond, func(i int) pose { return pose{X: i} })
	}
	r := runCLI(t, dir, "echo", "robot/*/pose", "--count", "40", "--timeout", "10s")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		topic, _, _ := strings.Cut(l, ": ")
		seen[topic]++
	}
	if seen["robot/a/pose"] == 0 || seen["robot/b/pose"] == 0 || len(seen) != 2 {
		t.Errorf("messages per topic %v, want robot/a/pose and robot/b/pose only", seen)
	}

	r = runCLI(t, dir, "echo", "robot/**", "--count", "30", "--json", "--timeout", "10s")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	seen = map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m struct {
			Topic string `json:"topic"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		seen[m.Topic]++
	}
	if len(seen) != 3 {
		t.Errorf("--json messages per topic %v, want the three topics", seen)
	}

	r = runCLI(t, dir, "echo", "other/**", "--timeout", "300ms")
	if r.code != 1 || !strings.Contains(r.stderr, `no publisher of a topic matching "other/**" found within 300ms`) {
		t.Errorf("a pattern nobody matches: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, dir, "echo", "robot/*/pose", "--last")
	if r.code != 2 {
		t.Errorf("--last with a pattern: exit %d, want 2", r.code)
	}
	r = runCLI(t, dir, "echo", "robot/*/pose", "--literal", "--timeout", "300ms")
	if r.code != 1 || !strings.Contains(r.stderr, `no publisher of topic "robot/*/pose"`) {
		t.Errorf("--literal: exit %d, stderr %q", r.code, r.stderr)
	}
}
