package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/foxglove/mcap/go/mcap"
	"go.uber.org/goleak"
)

// These tests build the colugo binary once and run it as a separate
// process against nodes in this test process. Each test has its own
// registry directory: the children get XDG_RUNTIME_DIR=<dir> (whose
// colugo subdirectory is discovery/local's default) and
// COLUGO_DISCOVERY=local, and the in-process nodes use the same
// subdirectory, so tests never see each other's nodes or anyone else's.

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "colugo-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "colugo")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building colugo: %v\n%s", err, out)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runCLI runs the binary with a hard 30 s limit.
func runCLI(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "COLUGO_DISCOVERY=local")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("colugo %v: %v", args, err)
	}
	t.Logf("colugo %s -> %d in %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.took, r.stdout, r.stderr)
	return r
}

// node starts an in-process node in dir's registry.
func node(t *testing.T, dir, name string) *colugo.Node {
	t.Helper()
	n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(filepath.Join(dir, "colugo")))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

type pose struct{ X, Y int }

type addReq struct{ A, B int }
type addResp struct{ Sum int }

// publishEvery publishes v(i) every period until the test ends.
func publishEvery[T any](t *testing.T, p *colugo.Publisher[T], period time.Duration, v func(i int) T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		// An absolute schedule: a publisher held up (a loaded machine, the
		// race detector) catches up, so the mean rate stays 1/period.
		next := time.Now()
		for i := 0; ; i++ {
			next = next.Add(period)
			if d := time.Until(next); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			} else if ctx.Err() != nil {
				return
			}
			_ = p.Publish(ctx, v(i))
		}
	}()
}

// graph starts a publisher, a subscriber and a server.
func graph(t *testing.T, dir string) {
	t.Helper()
	cam := node(t, dir, "camera")
	pub, err := colugo.NewPublisher[pose](cam, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := colugo.NewPublisher[[]byte](cam, "robot/log", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		t.Fatal(err)
	}
	publishEvery(t, pub, 5*time.Millisecond, func(i int) pose { return pose{X: i, Y: -i} })
	publishEvery(t, raw, 5*time.Millisecond, func(i int) []byte {
		if i%2 == 0 {
			return []byte("line " + strconv.Itoa(i))
		}
		return []byte{0, 1, 0xfe}
	})
	viewer := node(t, dir, "viewer")
	if _, err := colugo.Subscribe[pose](t.Context(), viewer, "robot/pose"); err != nil {
		t.Fatal(err)
	}
	srv := node(t, dir, "calc")
	if _, err := colugo.Serve(srv, "math/add", func(_ context.Context, r addReq) (addResp, error) {
		if r.A < 0 {
			return addResp{}, colugo.Errorf(colugo.CodeInvalidArgument, "negative: %d", r.A)
		}
		return addResp{Sum: r.A + r.B}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestGraph(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	r := runCLI(t, dir, "nodes")
	for _, want := range []string{"NAME", "camera", "viewer", "calc", "robot/log,robot/pose", "math/add"} {
		if !strings.Contains(r.stdout, want) || r.code != 0 {
			t.Fatalf("nodes: no %q", want)
		}
	}
	r = runCLI(t, dir, "topics", "--json")
	var rows []topicRow
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var row topicRow
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if len(rows) != 2 || rows[1].Name != "robot/pose" || len(rows[1].Publishers) != 1 || rows[1].Publishers[0].Type != "main.pose" ||
		len(rows[1].Subscribers) != 1 || rows[1].Subscribers[0].Node != "viewer" || rows[0].Publishers[0].Codec != "raw" {
		t.Fatalf("topics: %+v", rows)
	}
	r = runCLI(t, dir, "services")
	if !strings.Contains(r.stdout, "math/add  json main.addReq") || !strings.Contains(r.stdout, "calc") {
		t.Fatal("services")
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	r := runCLI(t, dir, "echo", "robot/pose", "--count", "3")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("echo: %d lines", len(lines))
	}
	var p pose
	if err := json.Unmarshal([]byte(lines[0]), &p); err != nil || p.Y != -p.X {
		t.Fatalf("%q: %v", lines[0], err)
	}
	r = runCLI(t, dir, "echo", "robot/log", "--count", "4", "--json")
	var text, hex int
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e echoLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Text != nil && strings.HasPrefix(*e.Text, "line "):
			text++
		case e.Hex == "0001fe":
			hex++
		default:
			t.Fatalf("line %q", l)
		}
	}
	if text == 0 || hex == 0 {
		t.Fatalf("%d text, %d hex", text, hex)
	}
}

// TestHz publishes at 200 Hz and checks hz within 15% (mean over a 1 s
// window; a loaded machine delays the publisher, which then catches up).
func TestHz(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := node(t, dir, "fast")
	pub, _ := colugo.NewPublisher[int](n, "fast/tick")
	publishEvery(t, pub, 5*time.Millisecond, func(i int) int { return i })
	r := runCLI(t, dir, "hz", "fast/tick", "--count", "2", "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("hz: %d", r.code)
	}
	var rep hzReport
	if err := json.Unmarshal([]byte(lines[1]), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Rate < 170 || rep.Rate > 230 {
		t.Fatalf("rate %v, want 200±15%%", rep.Rate)
	}
	r = runCLI(t, dir, "bw", "fast/tick", "--count", "1", "--every", "300ms")
	if r.code != 0 || !strings.Contains(r.stdout, "fast/tick: ") || !strings.Contains(r.stdout, "/s") {
		t.Fatal("bw")
	}
}

func TestPub(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := node(t, dir, "listener")
	got, err := colugo.Subscribe[pose](t.Context(), n, "cmd/pose")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() { done <- runCLI(t, dir, "pub", "cmd/pose", `{"X": 7, "Y": 8}`, "--count", "0", "--rate", "50") }()
	// pub runs until it is stopped; the first value is enough.
	select {
	case p := <-got:
		if p != (pose{7, 8}) {
			t.Fatalf("got %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing published within 10s")
	}
	// The child stops when t.Context ends (CommandContext kills it by PID)
	// after the test function returns; wait for it in cleanup.
	t.Cleanup(func() { <-done })
}

func TestPubOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := node(t, dir, "listener")
	got, _ := colugo.Subscribe[pose](t.Context(), n, "cmd/pose")
	// colugo cannot tell a publisher when a subscriber has connected, so
	// pub waits --wait twice (see pub); 2 s leaves room on a loaded machine.
	r := runCLI(t, dir, "pub", "cmd/pose", `{"X": 1}`, "--wait", "2s")
	if r.code != 0 {
		t.Fatal(r.code)
	}
	select {
	case p := <-got:
		if p.X != 1 {
			t.Fatal(p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("one-shot pub not received")
	}
}

func TestCall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	r := runCLI(t, dir, "call", "math/add", `{"A":1,"B":2}`)
	if r.code != 0 || strings.TrimSpace(r.stdout) != `{"Sum":3}` {
		t.Fatalf("call: %q", r.stdout)
	}
	r = runCLI(t, dir, "call", "math/add", `{"A":-1,"B":2}`)
	if r.code != 1 || !strings.Contains(r.stderr, "invalid_argument: negative: -1") {
		t.Fatal("remote error")
	}
}

// TestBadInput: every mistake gives a message and a non-zero exit, within
// --timeout where waiting is involved.
func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	corrupt := filepath.Join(dir, "corrupt.mcap")
	if err := os.WriteFile(corrupt, []byte("\x89MCAP0\r\n\x01garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"echo", "no/such", "--timeout", "1s"}, 1, `no publisher of topic "no/such" found within 1s (published topics: robot/log, robot/pose)`},
		{[]string{"hz", "no/such", "--timeout", "1s"}, 1, `no publisher of topic "no/such"`},
		{[]string{"call", "no/such", "{}", "--timeout", "1s"}, 1, `no server of "no/such" found within 1s`},
		{[]string{"call", "math/add", "{not json"}, 2, "VALUE is not JSON"},
		{[]string{"pub", "t", "1 2"}, 2, "more than one JSON value"},
		{[]string{"pub", "robot/log", `"x"`, "--codec", "json"}, 1, "uses codec raw"},
		{[]string{"play", corrupt}, 1, "corrupt or truncated MCAP file"},
		{[]string{"play", filepath.Join(dir, "missing.mcap")}, 1, "no such file"},
		{[]string{"play", corrupt, "--topics", "("}, 2, "--topics"},
		{[]string{"record"}, 2, "-o FILE.mcap is required"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"echo"}, 2, "echo takes one topic"},
		{[]string{"nodes", "--timeout", "0s"}, 2, "--timeout must be positive"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, dir, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
				t.Fatalf("exit %d, want %d with %q", r.code, c.code, c.msg)
			}
			if r.took > 4*time.Second {
				t.Fatalf("took %v", r.took)
			}
		})
	}
}

func TestDoctorFindsCodecMismatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := node(t, dir, "talker"), node(t, dir, "listener")
	if _, err := colugo.NewPublisher[pose](a, "robot/pose"); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Subscribe[[]byte](t.Context(), b, "robot/pose", colugo.WithCodec(codec.Raw{})); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, dir, "doctor", "--listen", "0s")
	if r.code != 1 || !strings.Contains(r.stdout, "codec mismatch: talker publishes json, listener subscribes with raw") ||
		!strings.Contains(r.stderr, "1 problem(s) found") {
		t.Fatal("doctor")
	}
}

// TestRecordPlay records two topics with the CLI, checks the file with the
// mcap library, then plays it back remapped into a subscriber.
func TestRecordPlay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	file := filepath.Join(dir, "rec.mcap")
	r := runCLI(t, dir, "record", "-o", file, "--for", "1s", "--every", "300ms", "robot/pose", "robot/log", "not/there")
	if r.code != 0 || !strings.Contains(r.stdout, "robot/pose") || !strings.Contains(r.stderr, `topic "not/there": no publisher found`) {
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
	info, err := rd.Info()
	if err != nil {
		t.Fatal(err)
	}
	counts := info.ChannelCounts()
	if counts["robot/pose"] < 50 || counts["robot/log"] < 50 || len(info.MetadataIndexes) != 1 {
		t.Fatalf("counts %v, metadata %d", counts, len(info.MetadataIndexes))
	}
	rd.Close()

	listener := node(t, dir, "replayed")
	got, _ := colugo.Subscribe[pose](t.Context(), listener, "replay/pose", colugo.WithBuffer(4096))
	r = runCLI(t, dir, "play", file, "--rate", "0", "--topics", "pose", "--remap", "robot/pose=replay/pose", "--json", "--wait", "2s")
	if r.code != 0 {
		t.Fatal("play")
	}
	var prog struct{ Messages, Total uint64 }
	if err := json.Unmarshal([]byte(r.stdout), &prog); err != nil || prog.Messages != counts["robot/pose"] || prog.Total != prog.Messages {
		t.Fatalf("%+v %v", prog, err)
	}
	p := colugotest.Next(t, got, 5*time.Second) // play waited --wait for us to connect
	if p.Y != -p.X {
		t.Fatalf("replayed %+v", p)
	}
}
