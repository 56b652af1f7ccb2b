package local_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	poll    = 10 * time.Millisecond
	timeout = 10 * time.Second // generous for -race on a loaded machine
)

func peer(id, catalog string) discovery.Peer {
	return discovery.Peer{ID: id, Name: "node-" + id, Router: "127.0.0.1:7000", Pub: "127.0.0.1:7001", Catalog: catalog}
}

// start starts a Registry in dir and closes it when the test ends.
func start(t *testing.T, dir string, self discovery.Peer) (*local.Registry, <-chan discovery.Event) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := local.New(local.WithDir(dir), local.WithPollInterval(poll), local.WithLogger(logger))
	ch, err := r.Start(self)
	if err != nil {
		t.Fatalf("Start(%s): %v", self.ID, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close(%s): %v", self.ID, err)
		}
	})
	return r, ch
}

// next returns the next event or fails after timeout.
func next(t *testing.T, ch <-chan discovery.Event) discovery.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %v", timeout)
	}
	panic("unreachable")
}

func want(t *testing.T, ch <-chan discovery.Event, kind discovery.EventKind, p discovery.Peer) {
	t.Helper()
	if ev := next(t, ch); ev != (discovery.Event{Kind: kind, Peer: p}) {
		t.Fatalf("got %v %+v, want %v %+v", ev.Kind, ev.Peer, kind, p)
	}
}

// quiet checks that no event arrives during a few poll intervals. It is a
// negative check, so it can only wait; it never orders other steps.
func quiet(t *testing.T, ch <-chan discovery.Event) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %v %+v", ev.Kind, ev.Peer)
	case <-time.After(5 * poll):
	}
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func TestJoinUpdateLeave(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := peer("a", "cat1"), peer("b", "cat1")
	_, cha := start(t, dir, a)
	rb, chb := start(t, dir, b)

	want(t, cha, discovery.Joined, b)
	want(t, chb, discovery.Joined, a)

	// Same-length catalog: only the inode and mtime tell the versions apart.
	b.Catalog = "cat2"
	if err := rb.Update(b); err != nil {
		t.Fatal(err)
	}
	want(t, cha, discovery.Updated, b)
	b.Router = "127.0.0.1:7100"
	if err := rb.Update(b); err != nil {
		t.Fatal(err)
	}
	want(t, cha, discovery.Updated, b)

	if err := rb.Close(); err != nil {
		t.Fatal(err)
	}
	want(t, cha, discovery.Left, b)
	for _, f := range []string{"b.json", "b.lock"} {
		if exists(t, filepath.Join(dir, f)) {
			t.Errorf("%s still exists after Close", f)
		}
	}
	// b's channel is closed and held nothing about b itself.
	for ev := range chb {
		t.Errorf("b got %v %+v after Close", ev.Kind, ev.Peer)
	}
	quiet(t, cha)
}

func TestEntryFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	self := peer("n1", "c")
	start(t, dir, self)
	data, err := os.ReadFile(filepath.Join(dir, "n1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("entry is not JSON: %v\n%s", err, data)
	}
	wantFields := map[string]any{
		"v": 1.0, "id": "n1", "name": "node-n1", "router": "127.0.0.1:7000",
		"pub": "127.0.0.1:7001", "catalog": "c", "pid": float64(os.Getpid()),
	}
	for k, v := range wantFields {
		if got[k] != v {
			t.Errorf("entry[%q] = %v, want %v", k, got[k], v)
		}
	}
	if !exists(t, filepath.Join(dir, "n1.lock")) {
		t.Error("no lock file")
	}
}

func TestCreatesDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "x", "colugo")
	start(t, dir, peer("a", ""))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("dir mode %v, want 0700", perm)
	}
}

// Garbage is skipped without events, and never taken for a departure.
func TestGarbageIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	junk := map[string]string{
		"junk.json":     "{not json",
		"half.json":     `{"v":1,"id":"half","rou`,
		"empty.json":    "",
		"wrongid.json":  `{"v":1,"id":"other","router":"127.0.0.1:1"}`,
		"norouter.json": `{"v":1,"id":"norouter"}`,
		"v0.json":       `{"id":"v0","router":"127.0.0.1:1"}`,
		"notes.txt":     "hello",
		".hidden.json":  `{"v":1,"id":".hidden","router":"127.0.0.1:1"}`,
		"bad id!.json":  `{"v":1,"id":"bad id!","router":"127.0.0.1:1"}`,
		// A valid-looking entry with no lock file is not a live node.
		"nolock.json": `{"v":1,"id":"nolock","router":"127.0.0.1:1"}`,
	}
	for name, content := range junk {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, cha := start(t, dir, peer("a", ""))
	g := peer("g", "c1")
	rg, _ := start(t, dir, g)
	want(t, cha, discovery.Joined, g)

	// The live node's entry turns to garbage (as an outside writer could
	// make it): skipped, and g is still there.
	if err := os.WriteFile(filepath.Join(dir, "g.json"), []byte(`{"v":1,"id":"g","rout`), 0o600); err != nil {
		t.Fatal(err)
	}
	quiet(t, cha)
	g.Catalog = "c2"
	if err := rg.Update(g); err != nil {
		t.Fatal(err)
	}
	want(t, cha, discovery.Updated, g)

	// Nothing that is not provably a dead node's entry was deleted.
	for name := range junk {
		if !exists(t, filepath.Join(dir, name)) {
			t.Errorf("%s was removed", name)
		}
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	t.Run("bad IDs", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"", ".x", "../x", "a/b", "a b", strings.Repeat("x", 201)} {
			r := local.New(local.WithDir(t.TempDir()))
			if _, err := r.Start(peer(id, "")); err == nil {
				t.Errorf("Start with ID %q succeeded", id)
				_ = r.Close()
			}
		}
	})
	t.Run("bad poll interval", func(t *testing.T) {
		t.Parallel()
		r := local.New(local.WithDir(t.TempDir()), local.WithPollInterval(0))
		_, err := r.Start(peer("a", ""))
		if err == nil || !strings.Contains(err.Error(), "poll interval") {
			t.Errorf("Start = %v, want a poll interval error", err)
		}
	})
	t.Run("same ID twice", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		start(t, dir, peer("a", ""))
		r := local.New(local.WithDir(dir))
		if _, err := r.Start(peer("a", "")); err == nil || !strings.Contains(err.Error(), "already registered") {
			t.Errorf("second Start with the same ID = %v, want already registered", err)
		}
	})
	t.Run("lifecycle", func(t *testing.T) {
		t.Parallel()
		r := local.New(local.WithDir(t.TempDir()))
		if err := r.Update(peer("a", "")); err == nil {
			t.Error("Update before Start succeeded")
		}
		if _, err := r.Start(peer("a", "")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Start(peer("a", "")); !errors.Is(err, discovery.ErrStarted) {
			t.Errorf("second Start = %v, want %v", err, discovery.ErrStarted)
		}
		if err := r.Update(peer("other", "")); err == nil {
			t.Error("Update with another ID succeeded")
		}
		for range 2 {
			if err := r.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
		}
		if err := r.Update(peer("a", "")); !errors.Is(err, discovery.ErrClosed) {
			t.Errorf("Update after Close = %v, want %v", err, discovery.ErrClosed)
		}
		if _, err := r.Start(peer("a", "")); !errors.Is(err, discovery.ErrClosed) {
			t.Errorf("Start after Close = %v, want %v", err, discovery.ErrClosed)
		}
		if err := local.New().Close(); err != nil {
			t.Errorf("Close without Start = %v", err)
		}
	})
}

func TestUnwritableDir(t *testing.T) {
	t.Parallel()
	t.Run("read-only dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
		if f, err := os.CreateTemp(dir, "probe"); err == nil {
			_ = f.Close()
			t.Skip("a read-only directory is writable here (running as root?)")
		}
		r := local.New(local.WithDir(dir))
		_, err := r.Start(peer("a", ""))
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "colugo/discovery/local") {
			t.Errorf("Start = %v, want a colugo/discovery/local error wrapping %v", err, fs.ErrPermission)
		}
		_ = r.Close()
	})
	t.Run("dir under a file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		r := local.New(local.WithDir(filepath.Join(file, "colugo")))
		_, err := r.Start(peer("a", ""))
		if err == nil || !strings.Contains(err.Error(), "registry directory") {
			t.Errorf("Start = %v, want a registry directory error", err)
		}
		_ = r.Close()
	})
}

// Not parallel: it sets the environment.
func TestDefaultDir(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	r := local.New()
	if _, err := r.Start(peer("a", "")); err != nil {
		t.Fatal(err)
	}
	if !exists(t, filepath.Join(xdg, "colugo", "a.json")) {
		t.Error("entry not under $XDG_RUNTIME_DIR/colugo")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOptionStrings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		o    local.Option
		want string
	}{
		{local.WithDir("/run/x"), `local.WithDir("/run/x")`},
		{local.WithPollInterval(time.Second), "local.WithPollInterval(1s)"},
		{local.WithMaxEntries(7), "local.WithMaxEntries(7)"},
	} {
		if got := fmt.Sprint(tt.o); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if local.WithDir("a") != local.WithDir("a") {
		t.Error("equal options compare unequal")
	}
}

// The helper process environment: the registry directory and node ID.
const (
	helperDirEnv = "COLUGO_LOCAL_TEST_HELPER_DIR"
	helperIDEnv  = "COLUGO_LOCAL_TEST_HELPER_ID"
)

// TestHelperProcess is not a test: TestStaleEntry runs the test binary
// again with it, to get a node in another process that can be SIGKILLed.
// It registers, says so on stdout, and waits for stdin to close (so it
// also exits if the parent dies).
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("helper process for TestStaleEntry")
	}
	r := local.New(local.WithDir(dir), local.WithPollInterval(poll))
	if _, err := r.Start(peer(os.Getenv(helperIDEnv), "child")); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = r.Close()
}

func TestStaleEntry(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("stale detection needs flock")
	}
	dir := t.TempDir()
	_, ch := start(t, dir, peer("parent", ""))

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperIDEnv+"=child")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	waited := false
	t.Cleanup(func() {
		_ = stdin.Close() // the child exits on EOF if it is still alive
		if !waited {
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("child %d said %q (%v)", pid, line, err)
	}

	child := peer("child", "child")
	want(t, ch, discovery.Joined, child)

	if err := cmd.Process.Kill(); err != nil { // SIGKILL to the child's pid

		t.Fatal(err)
	}
	_ = cmd.Wait() // reaps it: the kernel has released its lock
	waited = true
	killed := time.Now()
	want(t, ch, discovery.Left, child)
	t.Logf("Left %v after SIGKILL (poll interval %v)", time.Since(killed), poll)
	for _, f := range []string{"child.json", "child.lock"} {
		if exists(t, filepath.Join(dir, f)) {
			t.Errorf("%s still exists after the stale entry was detected", f)
		}
	}
}

// A node that crashed between taking its lock and writing its entry leaves
// a lock file alone; it is removed once seen unlocked. Entries whose owner
// is gone (unlocked lock file) are removed without ever being reported.
func TestOrphansRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("orphan.lock", "123\n")
	write("dead.lock", "124\n")
	write("dead.json", `{"v":1,"id":"dead","router":"127.0.0.1:1"}`)
	_, ch := start(t, dir, peer("a", ""))
	deadline := time.Now().Add(timeout)
	for exists(t, filepath.Join(dir, "orphan.lock")) || exists(t, filepath.Join(dir, "dead.json")) || exists(t, filepath.Join(dir, "dead.lock")) {
		if time.Now().After(deadline) {
			t.Fatal("orphan and dead entries not removed")
		}
		time.Sleep(poll) // polling the file system with a deadline, not ordering
	}
	quiet(t, ch)
}

// TestSettled: Settled closes once the first poll has sent the Joined
// events of the entries already there, more than the channel holds.
func TestSettled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const others = 40
	for i := range others {
		start(t, dir, peer(fmt.Sprintf("a%d", i), ""))
	}
	// An hour between polls: only the first can report the others.
	r := local.New(local.WithDir(dir), local.WithPollInterval(time.Hour))
	select {
	case <-r.Settled():
		t.Fatal("settled before Start")
	default:
	}
	ch, err := r.Start(peer("late", ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	joined := 0
	deadline := time.After(timeout)
	for settled := false; !settled; {
		select {
		case ev := <-ch:
			if ev.Kind == discovery.Joined {
				joined++
			}
		case <-r.Settled():
			settled = true
		case <-deadline:
			t.Fatalf("not settled within %v", timeout)
		}
	}
	for drained := false; !drained; {
		select {
		case <-ch:
			joined++
		default:
			drained = true
		}
	}
	if joined != others {
		t.Errorf("settled with %d of the %d Joined events sent", joined, others)
	}
}
