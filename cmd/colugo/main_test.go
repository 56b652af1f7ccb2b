package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/examples/posepb"
	"github.com/foxglove/mcap/go/mcap"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// These tests build the colugo binary once and run it as a separate
// process against nodes in this test process. Each test has its own
// registry directory: the children get XDG_RUNTIME_DIR=<dir> (whose
// colugo subdirectory is discovery/local's default) and
// COLUGO_DISCOVERY=local, and the in-process nodes use the same
// subdirectory, so tests never see each other's nodes or anyone else's.

var binPath string

func TestMain(m *testing.M) {
	// The children inherit the environment: never let them, or anything
	// started here, reach past the host (mDNS) by accident.
	if os.Getenv("COLUGO_DISCOVERY") != "local" {
		fmt.Fprintln(os.Stderr, "cmd/colugo tests need COLUGO_DISCOVERY=local in the environment (they refuse to run without it)")
		os.Exit(2)
	}
	var dir string // the build's, removed at the end
	build := exec.Command("true")
	if b := os.Getenv("COLUGO_TEST_BIN"); b != "" {
		// Another build (say main's) under these tests, to check that a new
		// test fails without its feature; also a netns child's, which must
		// not build (nor leave a directory behind: it may exit early).
		binPath = b
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "colugo-cli-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binPath = filepath.Join(dir, "colugo")
		build = exec.Command("go", "build", "-o", binPath, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building colugo: %v\n%s", err, out)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
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
	if !regexp.MustCompile(`math/add +json +main\.addReq +main\.addResp +calc`).MatchString(r.stdout) {
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
	fifo := filepath.Join(dir, "fifo.mcap") // its open would wait for a writer
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
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
		{[]string{"play", fifo}, 1, "is a FIFO, not a regular file"},
		{[]string{"play", dir}, 1, "is a directory, not a regular file"},
		{[]string{"play", corrupt, "--topics", "("}, 2, "--topics"},
		{[]string{"record"}, 2, "-o FILE.mcap is required"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"echo"}, 2, "echo takes one topic"},
		{[]string{"nodes", "--timeout", "0s"}, 2, "--timeout must be positive"},
		// COLUGO_DISCOVERY=local (runCLI) wins over a wider --discovery.
		{[]string{"echo", "T", "--discovery", "mdns"}, 2, `--discovery "mdns" (scope network) asks for more than COLUGO_DISCOVERY="local" (scope host-local) allows`},
		{[]string{"nodes", "--discovery", "local,mdns"}, 2, `COLUGO_DISCOVERY="local"`},
		{[]string{"nodes", "--discovery", "static:10.0.0.5:7001"}, 2, `asks for more than COLUGO_DISCOVERY="local"`},
		{[]string{"nodes", "--discovery", "static:127.0.0.1:7001"}, 2, `asks for more than COLUGO_DISCOVERY="local"`},
		{[]string{"nodes", "--discovery", "carrier-pigeon"}, 2, `--discovery "carrier-pigeon": unknown mechanism`},
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

// TestDoctorShowsPublisherDrops: doctor reports what a publisher's
// subscriber connections missed, as the publisher's $describe tells.
func TestDoctorShowsPublisherDrops(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := node(t, dir, "talker"), node(t, dir, "stalled")
	raw := colugo.WithCodec(codec.Raw{})
	// A reader that never reads, whose node's connection then stops.
	if _, err := colugo.Subscribe[[]byte](t.Context(), b, "big", raw, colugo.WithBuffer(1), colugo.WithQueueBytes(1),
		colugo.WithDropPolicy(colugo.Block(time.Minute))); err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[[]byte](a, "big", raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.WaitSubscribers(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 64<<10)
	for i := 0; a.Stats().Topics["big"].Missed == 0; i++ {
		if i == 4096 { // 256 MiB: beyond every send queue and socket buffer
			t.Fatalf("no miss counted: %+v", a.Stats().Topics["big"])
		}
		if err := pub.Publish(t.Context(), payload); err != nil {
			t.Fatal(err)
		}
	}
	r := runCLI(t, dir, "doctor", "--listen", "0s")
	if !strings.Contains(r.stdout, "talker: subscriber connections missed") {
		t.Fatalf("doctor does not show the drops:\n%s", r.stdout)
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
	if r.code != 1 || !strings.Contains(r.stdout, "robot/pose") || !strings.Contains(r.stderr, `no publisher of topic "not/there" found, nothing recorded of it`) {
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

// protoGraph starts a protobuf publisher and a protobuf server; this test
// binary links posepb, the colugo binary does not: it decodes and encodes
// through the descriptors the nodes advertise.
func protoGraph(t *testing.T, dir string) {
	t.Helper()
	pb := colugo.WithCodec(protobuf.Codec{})
	n := node(t, dir, "pbnode")
	pub, err := colugo.NewPublisher[*posepb.Pose](n, "robot/pose.pb", pb)
	if err != nil {
		t.Fatal(err)
	}
	publishEvery(t, pub, 5*time.Millisecond, func(i int) *posepb.Pose {
		return &posepb.Pose{X: float64(i), Y: -2, Theta: 0.5, Frame: "map"}
	})
	if _, err := colugo.Serve(n, "math/add.pb", func(_ context.Context, r *posepb.AddRequest) (*posepb.AddReply, error) {
		return &posepb.AddReply{Sum: r.GetA() + r.GetB()}, nil
	}, pb); err != nil {
		t.Fatal(err)
	}
}

func TestProtobufEchoCall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	protoGraph(t, dir)
	r := runCLI(t, dir, "echo", "robot/pose.pb", "--count", "2")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("echo: %d lines", len(lines))
	}
	var p struct {
		X, Y, Theta float64
		Frame       string
	}
	if err := json.Unmarshal([]byte(lines[1]), &p); err != nil || p.Y != -2 || p.Theta != 0.5 || p.Frame != "map" {
		t.Fatalf("%q: %v", lines[1], err)
	}
	r = runCLI(t, dir, "echo", "robot/pose.pb", "--count", "1", "--json")
	var e echoLine
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || e.Codec != "protobuf" || e.Type != "colugo.examples.Pose" ||
		!strings.Contains(string(e.Value), `"frame":"map"`) || e.Hex != "" || e.Seq == 0 || e.SendTime.After(e.Time) {
		t.Fatalf("echo --json: %+v %v", e, err)
	}
	r = runCLI(t, dir, "call", "math/add.pb", `{"a": 2, "b": "40"}`)
	if r.code != 0 || strings.TrimSpace(r.stdout) != `{"sum":"42"}` {
		t.Fatalf("call: %q", r.stdout)
	}
	r = runCLI(t, dir, "call", "math/add.pb", `{"c": 1}`)
	if r.code != 2 || !strings.Contains(r.stderr, "VALUE does not match colugo.examples.AddRequest") {
		t.Fatal("call with an unknown field")
	}
	r = runCLI(t, dir, "services")
	if !regexp.MustCompile(`protobuf +colugo\.examples\.AddRequest +colugo\.examples\.AddReply`).MatchString(r.stdout) {
		t.Fatal("services: no reply type")
	}
}

// TestProtobufPub: pub encodes JSON into the protobuf type a subscriber
// wants, through the descriptors another peer advertises for that type
// (subscriptions carry none).
func TestProtobufPub(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	protoGraph(t, dir)
	n := node(t, dir, "listener")
	got, err := colugo.Subscribe[*posepb.Pose](t.Context(), n, "cmd/pose.pb", colugo.WithCodec(protobuf.Codec{}))
	if err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, dir, "pub", "cmd/pose.pb", `{"x": 1.5, "frame": "odom"}`, "--wait", "2s")
	if r.code != 0 {
		t.Fatal(r.code)
	}
	p := colugotest.Next(t, got, 5*time.Second)
	if p.GetX() != 1.5 || p.GetFrame() != "odom" {
		t.Fatalf("got %v", p)
	}
	r = runCLI(t, dir, "pub", "cmd/pose.pb", `{"x": "left"}`, "--wait", "1s")
	if r.code != 2 || !strings.Contains(r.stderr, "VALUE does not match colugo.examples.Pose") {
		t.Fatal("pub with a wrong kind")
	}
	r = runCLI(t, dir, "pub", "other/pose.pb", `{}`, "--codec", "protobuf", "--type", "no.such.Type", "--wait", "300ms")
	if r.code != 1 || !strings.Contains(r.stderr, "no descriptor advertised") {
		t.Fatal("pub of an unknown protobuf type")
	}
}

// TestRecordProtobufSchema records a protobuf topic with the CLI, which
// does not link the type, and checks that the MCAP schema is the
// publisher's FileDescriptorSet, the publish time its send time, and the
// recording metadata its sequence bookkeeping.
func TestRecordProtobufSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	protoGraph(t, dir)
	file := filepath.Join(dir, "pb.mcap")
	r := runCLI(t, dir, "record", "-o", file, "--for", "1s", "robot/pose.pb")
	if r.code != 0 || !strings.Contains(r.stdout, "robot/pose.pb  protobuf") {
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
	if len(info.Schemas) != 1 {
		t.Fatalf("%d schemas", len(info.Schemas))
	}
	for _, s := range info.Schemas {
		var set descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(s.Data, &set); err != nil || s.Encoding != "protobuf" || s.Name != "colugo.examples.Pose" ||
			len(set.File) == 0 || !strings.HasSuffix(set.File[len(set.File)-1].GetName(), "pose.proto") || set.File[len(set.File)-1].GetMessageType()[0].GetName() != "Pose" {
			t.Fatalf("schema %s %s: %v files, %v", s.Name, s.Encoding, len(set.File), err)
		}
	}
	it, err := rd.Messages()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; n < 10000; n++ {
		_, _, m, err := it.NextInto(nil)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.PublishTime == 0 || m.PublishTime > m.LogTime || m.LogTime-m.PublishTime > uint64(time.Second) {
			t.Fatalf("publish time %d, log time %d", m.PublishTime, m.LogTime)
		}
	}
	if n < 50 {
		t.Fatalf("%d messages", n)
	}
	var meta map[string]string
	for _, idx := range info.MetadataIndexes {
		md, err := rd.GetMetadata(idx.Offset)
		if err != nil {
			t.Fatal(err)
		}
		meta = md.Metadata
	}
	if meta["topic.robot/pose.pb.publishers"] != "1" || meta["topic.robot/pose.pb.gaps"] != "0" {
		t.Fatalf("metadata %v", meta)
	}
}

// TestHzSendTimes: two publishers at 100 Hz on one topic make 200 Hz, from
// each one's consecutive send times.
func TestHzSendTimes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"left", "right"} {
		n := node(t, dir, name)
		pub, _ := colugo.NewPublisher[int](n, "two/tick")
		publishEvery(t, pub, 10*time.Millisecond, func(i int) int { return i })
	}
	// Windows after the first (which may start mid-stream); one of them
	// within bounds is enough: a loaded machine can stall the publishers
	// for a whole window, but an hz that counted one publisher (100 Hz)
	// or both twice (400 Hz) is wrong in every window.
	r := runCLI(t, dir, "hz", "two/tick", "--count", "4", "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 4 {
		t.Fatalf("hz: %d", r.code)
	}
	var reps []hzReport
	good := false
	for _, l := range lines[1:] {
		var rep hzReport
		if err := json.Unmarshal([]byte(l), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Publishers != 2 || rep.Min <= 0 || rep.Max < rep.Min {
			t.Fatalf("report %+v, want 2 publishers and min ≤ max", rep)
		}
		reps = append(reps, rep)
		good = good || rep.Rate >= 170 && rep.Rate <= 230 && rep.RecvRate >= 150 && rep.RecvRate <= 250
	}
	if !good {
		t.Fatalf("reports %+v, want one at 200 Hz ±15%% from 2 publishers", reps)
	}
	r = runCLI(t, dir, "hz", "two/tick", "--count", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "(2 publishers)") || !strings.Contains(r.stdout, "| arrivals ") {
		t.Fatal("hz text")
	}
}

func TestTopicsRate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	r := runCLI(t, dir, "topics", "--json", "--wait", "1s")
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var row topicRow
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatal(err)
		}
		if row.Rate == nil || *row.Rate < 170 || *row.Rate > 230 {
			t.Fatalf("%s: rate %v, want 200 Hz ±15%%", row.Name, row.Rate)
		}
	}
	r = runCLI(t, dir, "topics", "--hz=false", "--wait", "200ms")
	if r.code != 0 || strings.Contains(r.stdout, "RATE") || !strings.Contains(r.stdout, "robot/pose") {
		t.Fatal("topics --hz=false")
	}
}

// TestEchoSince: --since keeps messages by their age at arrival (receive
// minus send time): on loopback every message is younger than an hour and
// older than a nanosecond.
func TestEchoSince(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	r := runCLI(t, dir, "echo", "robot/pose", "--since", "1h", "--count", "3")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
		t.Fatal("--since 1h")
	}
	r = runCLI(t, dir, "echo", "robot/pose", "--since", "1ns", "--for", "500ms")
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "sent more than 1ns before they arrived (--since)") {
		t.Fatal("--since 1ns")
	}
}

// TestMeasure prints the figures of the README (COLUGO_MEASURE=1 to run):
// hz against publishers of known rate, record drops, nodes start time.
func TestMeasure(t *testing.T) {
	if os.Getenv("COLUGO_MEASURE") == "" {
		t.Skip("COLUGO_MEASURE=1 to measure")
	}
	for _, c := range []struct {
		name   string
		period time.Duration
		size   int
		spin   bool
	}{
		{"30Hz-2MB", time.Second / 30, 2_000_000, false}, {"1kHz-1KiB", time.Millisecond, 1024, false},
		{"10kHz-64B", 100 * time.Microsecond, 64, false}, {"10kHz-64B-spin", 100 * time.Microsecond, 64, true},
		{"30Hz-2MB-spin", time.Second / 30, 2_000_000, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			n := node(t, dir, "src")
			pub, _ := colugo.NewPublisher[[]byte](n, "m/"+c.name, colugo.WithCodec(codec.Raw{}))
			payload := make([]byte, c.size)
			if c.spin {
				spinEvery(t, pub, c.period, payload)
			} else {
				publishEvery(t, pub, c.period, func(int) []byte { return payload })
			}
			want := float64(time.Second) / float64(c.period)
			r := runCLI(t, dir, "hz", "m/"+c.name, "--count", "4", "--every", "2s", "--json")
			for i, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				var rep hzReport
				if err := json.Unmarshal([]byte(l), &rep); err != nil || i == 0 {
					continue
				}
				t.Logf("MEASURE %s: send-time rate %.3f Hz (error %+.3f%%), std %s, min %s, max %s | arrivals %.3f Hz (error %+.3f%%), std %s, min %s; gaps %d",
					c.name, rep.Rate, 100*(rep.Rate-want)/want, secs(rep.Std), secs(rep.Min), secs(rep.Max),
					rep.RecvRate, 100*(rep.RecvRate-want)/want, secs(rep.RecvStd), secs(rep.RecvMin), rep.Gaps)
			}
			file := filepath.Join(dir, "m.mcap")
			r = runCLI(t, dir, "record", "-o", file, "--for", "5s", "--json", "--every", "0")
			var p recordSummary
			if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
				t.Fatal(err)
			}
			t.Logf("MEASURE record %s: %d messages (%.1f MiB) in 5s, dropped %d, gaps %d", c.name, p.Messages, float64(p.Bytes)/(1<<20), p.Dropped, p.Gaps)
		})
	}
	t.Run("nodes", func(t *testing.T) {
		dir := t.TempDir()
		graph(t, dir)
		for _, w := range []string{"500ms", "100ms"} {
			var took []string
			for range 5 {
				r := runCLI(t, dir, "nodes", "--wait", w)
				took = append(took, r.took.Round(time.Millisecond).String())
			}
			t.Logf("MEASURE nodes --wait %s: %s", w, strings.Join(took, " "))
		}
	})
}

// spinEvery publishes payload every period, paced by spinning on the clock
// (a precise publisher: its send intervals vary by microseconds), until the
// test ends.
func spinEvery(t *testing.T, p *colugo.Publisher[[]byte], period time.Duration, payload []byte) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		next := time.Now()
		for ctx.Err() == nil {
			next = next.Add(period)
			for time.Now().Before(next) && ctx.Err() == nil {
			}
			_ = p.Publish(ctx, payload)
		}
	}()
}

// TestDiscoveryFlagScope is the table of --discovery against
// COLUGO_DISCOVERY: a flag may ask for the same scope or less, never more.
// Not parallel: it sets the environment.
func TestDiscoveryFlagScope(t *testing.T) {
	for _, tc := range []struct {
		env, flag string
		ok        bool
	}{
		{"", "mdns", true}, // no variable: the flag chooses
		{"", "", true},
		{"local", "", true},
		{"local", "local", true},
		{"local", "none", true},
		{"local", "mdns", false},
		{"local", "local,mdns", false},
		{"local", "static:127.0.0.1:7001", false}, // loopback seeds reach further than the registry
		{"local", "static:10.0.0.5:7001", false},
		{"none", "local", false},
		{"static:127.0.0.1:7001", "local", true},
		{"static:127.0.0.1:7001", "static:127.0.0.2:7002", true},
		{"static:127.0.0.1:7001", "static:10.0.0.5:7001", false},
		{"local,static:127.0.0.1:7001", "mdns", false},
		{"local,mdns", "local", true},
		{"local,mdns", "mdns", true},
		{"mdns", "static:10.0.0.5:7001", true}, // both network scope
		{"local", "bogus", false},
		{"bogus", "local", false},
	} {
		t.Setenv("COLUGO_DISCOVERY", tc.env)
		err := checkDiscoveryFlag(tc.flag)
		if (err == nil) != tc.ok {
			t.Errorf("COLUGO_DISCOVERY=%q --discovery %q: %v, want ok=%v", tc.env, tc.flag, err, tc.ok)
		}
		if err != nil && tc.flag != "bogus" && (!strings.Contains(err.Error(), tc.flag) || !strings.Contains(err.Error(), tc.env)) {
			t.Errorf("error %q does not name both %q and %q", err, tc.flag, tc.env)
		}
	}
}

// A --discovery within the variable's scope is used.
func TestDiscoveryFlagNarrower(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, d := range []string{"local", "none"} {
		if r := runCLI(t, dir, "nodes", "--discovery", d, "--wait", "0s"); r.code != 0 {
			t.Errorf("--discovery %s under COLUGO_DISCOVERY=local: exit %d", d, r.code)
		}
	}
}
