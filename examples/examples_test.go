//go:build unix

package examples_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// These tests build the example programs and run them as separate OS
// processes that find each other through host-local discovery. Each test
// gets its own registry directory (XDG_RUNTIME_DIR=t.TempDir()), so tests,
// and concurrent test packages, never see each other's nodes.

const (
	// childTimeout is every child's hard deadline: its process group is
	// killed when it runs out.
	childTimeout = 30 * time.Second
	// demoTimeout leaves the demo room to hit its own 30 s limit first.
	demoTimeout = 35 * time.Second
	// buildTimeout bounds the one `go build` of all example programs.
	buildTimeout = 5 * time.Minute
)

// programs are the example main packages, built once into binDir.
var programs = []string{"publisher", "subscriber", "server", "client", "protobuf", "description", "demo"}

var (
	binDir    string // created by TestMain, removed after the leak check
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "colugo-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// binary returns the path of an example program, building all of them on
// first use with one `go build` (with -race when this test binary has it,
// so the children are checked for races too).
func binary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
		if err != nil {
			buildErr = err
			return
		}
		args := []string{"build"}
		if raceEnabled() {
			args = append(args, "-race")
		}
		args = append(args, "-o", binDir+string(filepath.Separator))
		for _, p := range programs {
			args = append(args, "github.com/colugo-go/colugo/examples/"+p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, goTool, args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// registry gives the test its own discovery registry and returns the
// children's environment and the registry directory the local discovery
// should use ($XDG_RUNTIME_DIR/colugo).
func registry(t *testing.T) (env []string, dir string) {
	t.Helper()
	runtimeDir := t.TempDir()
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") || strings.HasPrefix(kv, "COLUGO_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "XDG_RUNTIME_DIR="+runtimeDir, "COLUGO_DISCOVERY=local")
	return env, filepath.Join(runtimeDir, "colugo")
}

// checkRegistryEmpty checks that the nodes used the test's registry and,
// since all of them exited cleanly (Node.Close), left no entry in it.
func checkRegistryEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("registry: %v (did the nodes use $XDG_RUNTIME_DIR/colugo?)", err)
		return
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) > 0 {
		t.Errorf("registry %s: entries left after every node exited cleanly: %v", dir, left)
	}
}

// proc is a running example program. Its stdout lines are kept for
// checking; stdout and stderr are logged when the test fails.
type proc struct {
	label  string
	cmd    *exec.Cmd
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when Wait has returned and output is complete
	err    error         // Wait's result, valid after done

	mu      sync.Mutex
	stdout  []string
	log     []string // both streams, prefixed, in arrival order
	partial [2][]byte
	changed chan struct{} // closed and replaced on every new stdout line
}

type stream struct {
	p   *proc
	idx int // 0: stdout, 1: stderr
}

func (s stream) Write(b []byte) (int, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial[s.idx] = append(p.partial[s.idx], b...)
	for {
		i := bytes.IndexByte(p.partial[s.idx], '\n')
		if i < 0 {
			break
		}
		p.addLocked(s.idx, string(p.partial[s.idx][:i]))
		p.partial[s.idx] = p.partial[s.idx][i+1:]
	}
	return len(b), nil
}

func (p *proc) addLocked(idx int, line string) {
	if idx == 0 {
		p.stdout = append(p.stdout, line)
		close(p.changed)
		p.changed = make(chan struct{})
		p.log = append(p.log, "stdout: "+line)
	} else {
		p.log = append(p.log, "stderr: "+line)
	}
}

// start runs an example program with a hard deadline. Cleanup kills it (its
// whole process group, by its id) if it is still running, waits for it,
// and logs its output if the test failed.
func start(t *testing.T, env []string, timeout time.Duration, name string, args ...string) *proc {
	t.Helper()
	bin := binary(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	p := &proc{
		label:   strings.Join(append([]string{name}, args...), " "),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	// Its own process group, so that a kill also reaches the children it
	// starts (the demo's bob).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second // if a grandchild keeps the pipes open
	cmd.Stdout, cmd.Stderr = stream{p, 0}, stream{p, 1}
	p.cmd = cmd

	t.Cleanup(func() { // runs last: the output is complete by then
		if t.Failed() {
			p.mu.Lock()
			defer p.mu.Unlock()
			status := "exit status 0"
			if p.err != nil {
				status = p.err.Error()
			}
			t.Logf("%s (%s) output:\n\t%s", p.label, status, strings.Join(p.log, "\n\t"))
		}
	})
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", p.label, err)
	}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		for i := range p.partial {
			if len(p.partial[i]) > 0 {
				p.addLocked(i, string(p.partial[i]))
				p.partial[i] = nil
			}
		}
		p.mu.Unlock()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (killed at its %v deadline)", err, timeout)
		}
		p.err = err
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel() // kills the process group if still running
		<-p.done
	})
	return p
}

// waitExit waits for the program to end (at the latest at its deadline)
// and checks that it exited with status 0.
func (p *proc) waitExit(t *testing.T) bool {
	t.Helper()
	start := time.Now()
	<-p.done
	if p.err != nil {
		t.Errorf("%s: %v", p.label, p.err)
		return false
	}
	t.Logf("%s exited 0 after %v more", p.label, time.Since(start).Round(time.Millisecond))
	return true
}

// waitLine waits until a stdout line matches re, and returns it; it fails
// the test if the program exits (or is killed at its deadline) first.
func (p *proc) waitLine(t *testing.T, re *regexp.Regexp) (string, bool) {
	t.Helper()
	seen := 0
	for {
		p.mu.Lock()
		lines, ch := p.stdout, p.changed
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if re.MatchString(lines[seen]) {
				return lines[seen], true
			}
		}
		select {
		case <-ch:
		case <-p.done:
			p.mu.Lock()
			n := len(p.stdout)
			p.mu.Unlock()
			if n > seen {
				continue // lines flushed at exit
			}
			t.Errorf("%s ended (%v) without printing a line matching %q", p.label, p.err, re)
			return "", false
		}
	}
}

// interrupt sends os.Interrupt to the program, by its pid.
func (p *proc) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Errorf("interrupt %s: %v", p.label, err)
	}
}

// lines returns the stdout lines that have the prefix.
func (p *proc) lines(prefix string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.stdout {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func (p *proc) allLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.stdout)
}

// increasing parses the number re captures in each line and checks that
// the numbers strictly increase.
func increasing(t *testing.T, what string, re *regexp.Regexp, lines []string) {
	t.Helper()
	prev := -1.0
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("%s: %q does not match %q", what, l, re)
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Errorf("%s: %q: %v", what, l, err)
			continue
		}
		if v <= prev {
			t.Errorf("%s: %q: %v after %v, want increasing", what, l, v, prev)
		}
		prev = v
	}
}

var poseSeq = regexp.MustCompile(`Seq:(\d+)\}$`)

func TestPubSub(t *testing.T) {
	t.Parallel()
	env, reg := registry(t)
	sub := start(t, env, childTimeout, "subscriber", "-count", "5")
	pub := start(t, env, childTimeout, "publisher", "-count", "50", "-period", "20ms")

	if !sub.waitExit(t) {
		return
	}
	received := sub.lines("received ")
	if len(received) != 5 || len(sub.allLines()) != 5 {
		t.Errorf("subscriber printed %q, want 5 \"received\" lines", sub.allLines())
	}
	increasing(t, "subscriber", poseSeq, received)

	// The publisher ends by itself after its count, and every Publish
	// succeeds, whether or not the subscriber is still there.
	if !pub.waitExit(t) {
		return
	}
	published := pub.lines("published ")
	if len(published) != 50 {
		t.Errorf("publisher printed %d \"published\" lines, want 50", len(published))
	}
	increasing(t, "publisher", poseSeq, published)
	// What arrived is what was sent, field for field.
	sent := make(map[string]bool)
	for _, l := range published {
		sent[strings.TrimPrefix(l, "published ")] = true
	}
	for _, l := range received {
		if !sent[strings.TrimPrefix(l, "received ")] {
			t.Errorf("subscriber %q: no such pose published", l)
		}
	}
	checkRegistryEmpty(t, reg)
}

func TestRequestReply(t *testing.T) {
	t.Parallel()
	env, reg := registry(t)
	server := start(t, env, childTimeout, "server")
	if _, ok := server.waitLine(t, regexp.MustCompile(`^serving math/add`)); !ok {
		return
	}
	client := start(t, env, childTimeout, "client", "-count", "3", "-period", "10ms")
	clientOK := client.waitExit(t)
	want := []string{"0 + 10 = 10", "1 + 10 = 11", "2 + 10 = 12"}
	if got := client.allLines(); !slices.Equal(got, want) {
		t.Errorf("client printed %q, want %q", got, want)
	}

	server.interrupt(t)
	if !server.waitExit(t) || !clientOK {
		return
	}
	wantServed := []string{"add 0 + 10", "add 1 + 10", "add 2 + 10"}
	if got := server.lines("add "); !slices.Equal(got, wantServed) {
		t.Errorf("server printed %q, want %q", got, wantServed)
	}
	checkRegistryEmpty(t, reg)
}

var protoX = regexp.MustCompile(`\bx:\s*([0-9.e+-]+)`)

func TestProtobuf(t *testing.T) {
	t.Parallel()
	env, reg := registry(t)
	sub := start(t, env, childTimeout, "protobuf", "sub", "-count", "3")
	pub := start(t, env, childTimeout, "protobuf", "pub", "-count", "100")

	subOK := sub.waitExit(t)
	received := sub.lines("received ")
	if len(received) != 3 || len(sub.allLines()) != 3 {
		t.Errorf("subscriber printed %q, want 3 \"received\" lines", sub.allLines())
	}
	increasing(t, "subscriber", protoX, received)
	for _, l := range received {
		if !strings.Contains(l, `frame:"map"`) {
			t.Errorf("subscriber %q: want frame \"map\"", l)
		}
	}

	// -count 100 at 100 ms would take 10 s: stop it the way a user would.
	pub.interrupt(t)
	if !pub.waitExit(t) || !subOK {
		return
	}
	checkRegistryEmpty(t, reg)
}

func TestProtobufService(t *testing.T) {
	t.Parallel()
	env, reg := registry(t)
	server := start(t, env, childTimeout, "protobuf", "serve")
	if _, ok := server.waitLine(t, regexp.MustCompile(`^serving math/add.pb`)); !ok {
		return
	}
	client := start(t, env, childTimeout, "protobuf", "call", "-count", "3")
	clientOK := client.waitExit(t)
	want := []string{"0 + 40 = 40", "1 + 40 = 41", "2 + 40 = 42"}
	if got := client.allLines(); !slices.Equal(got, want) {
		t.Errorf("client printed %q, want %q", got, want)
	}
	server.interrupt(t)
	if !server.waitExit(t) || !clientOK {
		return
	}
	if got, want := server.lines("add "), []string{"add 0 + 40", "add 1 + 40", "add 2 + 40"}; !slices.Equal(got, want) {
		t.Errorf("server printed %q, want %q", got, want)
	}
	checkRegistryEmpty(t, reg)
}

func TestDemo(t *testing.T) {
	t.Parallel()
	env, reg := registry(t)
	begin := time.Now()
	demo := start(t, env, demoTimeout, "demo")
	ok := demo.waitExit(t)
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("demo took %v, over its own 30 s limit", d)
	}
	lines := demo.allLines()
	has := func(re string) []string {
		t.Helper()
		r := regexp.MustCompile(re)
		var m []string
		for _, l := range lines {
			if r.MatchString(l) {
				m = append(m, l)
			}
		}
		if len(m) == 0 {
			t.Errorf("demo printed no line matching %q", re)
		}
		return m
	}
	var aliceID string
	if m := has(`^\[alice\] node \S+ up, starting bob$`); len(m) > 0 {
		aliceID = strings.Fields(m[0])[2]
	}
	greetings := has(`^    \[bob\] received "hello #\d+ from alice"$`)
	if len(greetings) != 3 {
		t.Errorf("bob received %d greetings, want 3: %q", len(greetings), greetings)
	}
	increasing(t, "bob's greetings", regexp.MustCompile(`#(\d+)`), greetings)
	for i := 1; i <= 3; i++ {
		has(fmt.Sprintf(`^\[alice\] serving math/add: %d \+ %d$`, i, i*10))
		has(fmt.Sprintf(`^    \[bob\] math/add\(%d, %d\) = %d$`, i, i*10, i*11))
	}
	// bob knows alice by the ID she announced, with her topic and service.
	has(`^    \[bob\] peer alice \(` + regexp.QuoteMeta(aliceID) + `\): topics \[.*chat/greetings.*\], services \[.*math/add.*\]$`)
	has(`^\[alice\] bob finished; \d+ greetings published$`)
	if n := len(lines); n > 0 && !strings.HasPrefix(lines[n-1], "[alice] bob finished") {
		t.Errorf("demo's last line is %q, want alice's \"bob finished\"", lines[n-1])
	}
	if ok {
		checkRegistryEmpty(t, reg)
	}
}

var (
	descPublished = regexp.MustCompile(`^published (robot colugo-1, .*)$`)
	descReceived  = regexp.MustCompile(`^received (robot colugo-1, .*) \(seq 1, replayed (true|false)\) after \S+$`)
	descLatest    = regexp.MustCompile(`^latest (robot colugo-1, .*) after \S+$`)
)

// TestDescription: the latched topic. The publisher publishes once and
// stays; a subscriber and a Latest started afterwards, in processes of
// their own, each get that one message at once (replayed from the
// publisher's history: nothing is published live after they start).
func TestDescription(t *testing.T) {
	t.Parallel()
	env, reg := registry(t)
	pub := start(t, env, childTimeout, "description", "pub")
	line, ok := pub.waitLine(t, descPublished)
	if !ok {
		return
	}
	sent := descPublished.FindStringSubmatch(line)[1]

	for _, role := range []string{"sub", "latest"} {
		late := start(t, env, childTimeout, "description", role, "-timeout", "10s")
		if !late.waitExit(t) {
			continue
		}
		got := late.allLines()
		re := descReceived
		if role == "latest" {
			re = descLatest
		}
		if len(got) != 1 || !re.MatchString(got[0]) {
			t.Errorf("%s printed %q, want one line matching %q", role, got, re)
			continue
		}
		t.Logf("%s: %s", role, got[0]) // its time from start to the value
		m := re.FindStringSubmatch(got[0])
		if m[1] != sent {
			t.Errorf("%s got %q, want what was published: %q", role, m[1], sent)
		}
		if role == "sub" && m[2] != "true" {
			t.Errorf("sub: %q: want replayed true (published before it started)", got[0])
		}
	}

	pub.interrupt(t)
	if !pub.waitExit(t) {
		return
	}
	if got := pub.allLines(); len(got) != 1 {
		t.Errorf("publisher printed %q, want only its one \"published\" line", got)
	}
	checkRegistryEmpty(t, reg)
}

// TestDescriptionSubscriberFirst: the other start order. A subscriber that
// is up before the publisher gets the description once, whether live or
// from the history (depending on whether its subscription reached the
// publisher before the publish).
func TestDescriptionSubscriberFirst(t *testing.T) {
	t.Parallel()
	env, reg := registry(t)
	sub := start(t, env, childTimeout, "description", "sub", "-timeout", "20s")
	pub := start(t, env, childTimeout, "description", "pub")
	subOK := sub.waitExit(t)
	if got := sub.allLines(); len(got) != 1 || !descReceived.MatchString(got[0]) {
		t.Errorf("sub printed %q, want one line matching %q", got, descReceived)
	}
	if _, ok := pub.waitLine(t, descPublished); !ok {
		return
	}
	pub.interrupt(t)
	if !pub.waitExit(t) || !subOK {
		return
	}
	checkRegistryEmpty(t, reg)
}
