package colugo_test

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
)

// The README's wire table, proven with pyzmq peers that build every header
// by hand.

const python = "/usr/bin/python3" // Debian's, with python3-zmq

func needPython(t *testing.T) {
	t.Helper()
	if err := exec.CommandContext(t.Context(), python, "-c", "import zmq").Run(); err != nil {
		t.Skipf("%s cannot import zmq (install python3-zmq): %v", python, err)
	}
}

// runPython runs testdata/wirespec.py to the end and returns its output.
func runPython(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, append([]string{"testdata/wirespec.py"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("python %v: %v\n%s", args, err, out)
	}
	t.Logf("python %s:\n%s", args[0], out)
	return string(out)
}

// wirePose has the field names the Python side checks.
type wirePose struct {
	X, Y float64
	Seq  int
}

// TestReadmeWireSpecPyzmq: a pyzmq SUB receives and decodes a colugo topic,
// and a pyzmq DEALER calls a colugo service, $describe, an unknown service,
// with a past deadline and after a stray cancel, with every header built
// and parsed by hand from the README's table.
func TestReadmeWireSpecPyzmq(t *testing.T) {
	needPython(t)
	node := hostileNode(t, "wirespec", t.TempDir())
	if _, err := colugo.Serve(node, "math/add", add); err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[wirePose](node, "wire/pose")
	if err != nil {
		t.Fatal(err)
	}
	ep := node.Endpoint()

	t.Run("SUB", func(t *testing.T) { pySub(t, pub, ep.Pub, node.ID(), 1, 0) })
	t.Run("DEALER", func(t *testing.T) {
		out := runPython(t, "dealer", ep.Router, node.ID())
		for _, want := range []string{`dealer ok math/add {"Sum":42}`, "dealer ok $describe wirespec True", "dealer ok unknown 8", "dealer ok past-deadline", "dealer ok cancel-unknown"} {
			if !strings.Contains(out, want) {
				t.Errorf("python output lacks %q", want)
			}
		}
	})
}

// pySub runs a pyzmq SUB of wire/pose at addr, publishing with pub from
// seq first until python has 50 messages, each with a seq above minSeq.
func pySub(t *testing.T, pub *colugo.Publisher[wirePose], addr, id string, first, minSeq int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/wirespec.py", "sub", addr, "wire/pose", id, "50", strconv.Itoa(minSeq))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 8)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	if l := <-lines; l != "ready" {
		_ = cmd.Wait()
		t.Fatalf("python: %q", l)
	}
	// Publish until python has its 50: it subscribes asynchronously.
	var last string
	for seq := first; seq < 1_000_000; seq++ {
		_ = pub.Publish(t.Context(), wirePose{X: float64(seq) / 2, Y: -1, Seq: seq})
		select {
		case l, ok := <-lines:
			last = l
			if !ok {
				last = "(exited)"
			}
		case <-time.After(time.Millisecond):
			continue
		}
		break
	}
	if err := cmd.Wait(); err != nil || !strings.HasPrefix(last, "sub ok 50") {
		t.Fatalf("python: %v: %s", err, last)
	}
	t.Log("python:", last)
}

// TestHistoryWireSpecPyzmq: a pyzmq DEALER that follows the README's
// $history section reads a publisher's history, and a plain pyzmq SUB of
// the same topic gets live messages only.
func TestHistoryWireSpecPyzmq(t *testing.T) {
	needPython(t)
	node := hostileNode(t, "wirespec", t.TempDir())
	pub, err := colugo.NewPublisher[wirePose](node, "wire/pose", colugo.WithHistory(5))
	if err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= 7; seq++ {
		if err := pub.Publish(t.Context(), wirePose{X: float64(seq) / 2, Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	ep := node.Endpoint()
	out := runPython(t, "history", ep.Router, node.ID(), "wire/pose", "3")
	for _, want := range []string{"history ok flags 0 depth 5 latest 7 seqs 5,6,7 values 5,6,7", "history ok unknown 8"} {
		if !strings.Contains(out, want) {
			t.Errorf("python output lacks %q", want)
		}
	}
	pySub(t, pub, ep.Pub, node.ID(), 8, 7)
}
