package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// echo --codec json on a topic that also has a raw publisher says once
// why that publisher's messages do not show (issue 16 item 9).
func TestEchoSaysOnceWhatItSkips(t *testing.T) {
	dir := t.TempDir()
	jsonPub, err := colugo.NewPublisher[pose](node(t, dir, "camera"), "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	rawPub, err := colugo.NewPublisher[[]byte](node(t, dir, "legacy"), "robot/pose", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		t.Fatal(err)
	}
	publishEvery(t, jsonPub, 20*time.Millisecond, func(i int) pose { return pose{X: i} })
	publishEvery(t, rawPub, 2*time.Millisecond, func(int) []byte { return []byte("x=1") })
	r := runCLI(t, dir, "echo", "robot/pose", "--codec", "json", "--count", "5", "--timeout", "10s")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	re := regexp.MustCompile(`colugo echo: skipping robot/pose messages from legacy \([0-9a-f]+\) in codec raw \(type \[\]uint8\): --codec json`)
	if n := len(re.FindAllString(r.stderr, -1)); n != 1 {
		t.Errorf("stderr says it %d times, want once:\n%s", n, r.stderr)
	}
	if got := strings.Count(r.stdout, "\n"); got != 5 {
		t.Errorf("%d lines on stdout, want 5", got)
	}
}
