//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package local_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
)

// What a local user can put in the registry directory: files that are not
// regular files, links, huge files, floods, and the directory itself.

// liveLock creates dir/id.lock and holds its lock until the test ends, as
// a live node would, so that the poller goes on to read id.json.
func liveLock(t *testing.T, dir, id string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, id+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

// entryJSON is a valid entry for p.
func entryJSON(p discovery.Peer) string {
	return fmt.Sprintf(`{"v":1,"id":%q,"name":%q,"router":%q,"pub":%q,"catalog":%q}`, p.ID, p.Name, p.Router, p.Pub, p.Catalog)
}

// startGuarded is start, but its cleanup fails the test instead of hanging
// when Close does not return, and then calls unblock so the poller can
// finish (so the test ends, failed, rather than hanging).
func startGuarded(t *testing.T, dir string, self discovery.Peer, unblock func()) <-chan discovery.Event {
	t.Helper()
	r := local.New(local.WithDir(dir), local.WithPollInterval(poll))
	ch, err := r.Start(self)
	if err != nil {
		t.Fatalf("Start(%s): %v", self.ID, err)
	}
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- r.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(timeout):
			t.Errorf("Close still blocked after %v (poller stuck in open(2)?)", timeout)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for range 1000 { // bounded: 10 s
				unblock()
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
			t.Error("Close still blocked after unblocking")
		}
	})
	return ch
}

// openFIFO unblocks a reader stuck opening the FIFO at path: a writer
// that comes and goes (O_RDWR never blocks on Linux) wakes its open(2),
// and its read then sees end of file.
func openFIFO(path string) func() {
	return func() {
		if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			_ = f.Close()
		}
	}
}

// A FIFO (or a symlink to one) named like an entry or a lock file must not
// block the poller: the other entries are still reported and Close
// returns.
func TestFIFOEntries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		make func(t *testing.T, dir string) (fifo string)
	}{
		{"data file", func(t *testing.T, dir string) string {
			liveLock(t, dir, "evil")
			return mkfifo(t, filepath.Join(dir, "evil.json"))
		}},
		{"symlink to a FIFO", func(t *testing.T, dir string) string {
			liveLock(t, dir, "evil")
			fifo := mkfifo(t, filepath.Join(t.TempDir(), "fifo"))
			symlink(t, fifo, filepath.Join(dir, "evil.json"))
			return fifo
		}},
		{"lock file", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "evil.json"), entryJSON(peer("evil", "")))
			return mkfifo(t, filepath.Join(dir, "evil.lock"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			fifo := tc.make(t, dir)
			// "z" sorts after "evil": today's poller reads in name order.
			z := peer("z", "")
			liveLock(t, dir, "z")
			writeFile(t, filepath.Join(dir, "z.json"), entryJSON(z))
			ch := startGuarded(t, dir, peer("a", ""), openFIFO(fifo))
			want(t, ch, discovery.Joined, z)
			quiet(t, ch)
		})
	}
}

// A symlink named like an entry is not followed, even to a valid entry: a
// local user must not be able to point the registry at a file elsewhere.
func TestSymlinkEntryIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	elsewhere := filepath.Join(t.TempDir(), "entry")
	writeFile(t, elsewhere, entryJSON(peer("evil", "")))
	liveLock(t, dir, "evil")
	symlink(t, elsewhere, filepath.Join(dir, "evil.json"))
	_, ch := start(t, dir, peer("a", ""))
	quiet(t, ch)
}

// A huge (sparse) entry is refused from its size, without being read, and
// a valid rewrite is then taken.
func TestHugeEntry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	liveLock(t, dir, "big")
	path := filepath.Join(dir, "big.json")
	writeFile(t, path, "")
	if err := os.Truncate(path, 1<<40); err != nil { // 1 TiB, sparse
		t.Skipf("no sparse files here: %v", err)
	}
	_, ch := start(t, dir, peer("a", ""))
	quiet(t, ch)
	big := peer("big", "c")
	tmp := filepath.Join(dir, ".big.json-x.tmp")
	writeFile(t, tmp, entryJSON(big))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	want(t, ch, discovery.Joined, big)
}

// With WithMaxEntries(n), a poll considers at most n entries, whatever the
// directory holds.
func TestMaxEntries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// 2×5 files and self's 2: within the 4n names a poll reads, so which
	// n entries are considered depends on the order, but that n are does not.
	const n, total = 3, 5
	for i := range total {
		id := fmt.Sprintf("p%02d", i)
		liveLock(t, dir, id)
		writeFile(t, filepath.Join(dir, id+".json"), entryJSON(peer(id, "")))
	}
	r := local.New(local.WithDir(dir), local.WithPollInterval(poll), local.WithMaxEntries(n))
	ch, err := r.Start(peer("a", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range n {
		if ev := next(t, ch); ev.Kind != discovery.Joined {
			t.Fatalf("got %v %+v", ev.Kind, ev.Peer)
		}
	}
	quiet(t, ch)
	if _, err := local.New(local.WithDir(dir), local.WithMaxEntries(0)).Start(peer("b", "")); err == nil || !strings.Contains(err.Error(), "WithMaxEntries(0)") {
		t.Fatalf("Start with WithMaxEntries(0) = %v, want an invalid option error", err)
	}
}

// An entry rewritten many times while it is polled ends up reported with
// its last content, and nothing in between is taken for a departure.
func TestEntryChangingUnderReader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	liveLock(t, dir, "w")
	path := filepath.Join(dir, "w.json")
	writeFile(t, path, entryJSON(peer("w", "v0")))
	_, ch := start(t, dir, peer("a", ""))
	want(t, ch, discovery.Joined, peer("w", "v0"))
	const rewrites = 200
	for i := 1; i <= rewrites; i++ {
		tmp := filepath.Join(dir, fmt.Sprintf(".w.json-%d.tmp", i))
		content := entryJSON(peer("w", fmt.Sprintf("v%d", i)))
		if i%2 == 0 { // and sometimes a half-written file, replaced at once
			content = content[:len(content)/2]
		}
		writeFile(t, tmp, content)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, ".w.json-last.tmp")
	writeFile(t, tmp, entryJSON(peer("w", "last")))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	for {
		ev := next(t, ch)
		if ev.Kind != discovery.Updated {
			t.Fatalf("got %v %+v, want only updates", ev.Kind, ev.Peer)
		}
		if ev.Peer.Catalog == "last" {
			break
		}
	}
}

// A directory others can write, or that another user owns, or a symlink
// to a directory, is refused with ErrUnsafeDir.
func TestUnsafeDir(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		make func(t *testing.T) string
		why  string
	}{
		{"mode 0777", func(t *testing.T) string { return chmodDir(t, 0o777) }, "writable by group or others"},
		{"mode 0770", func(t *testing.T) string { return chmodDir(t, 0o770) }, "writable by group or others"},
		{"sticky 1777 like /tmp", func(t *testing.T) string { return chmodDir(t, 0o777|os.ModeSticky) }, "writable by group or others"},
		{"symlink", func(t *testing.T) string {
			link := filepath.Join(t.TempDir(), "link")
			symlink(t, t.TempDir(), link)
			return link
		}, "not a directory"},
		{"another user's", func(t *testing.T) string {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a directory to another user")
			}
			dir := t.TempDir()
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "owned by uid 65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tc.make(t)
			r := local.New(local.WithDir(dir))
			_, err := r.Start(peer("a", ""))
			if !errors.Is(err, local.ErrUnsafeDir) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Start = %v, want ErrUnsafeDir saying %q", err, tc.why)
			}
			_ = r.Close()
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("Start left %d files in a refused directory", len(entries))
			}
		})
	}
}

// A directory made unsafe after Start is not read any more: a peer written
// there afterwards is not reported.
func TestDirMadeUnsafe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, ch := start(t, dir, peer("a", ""))
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	liveLock(t, dir, "evil")
	writeFile(t, filepath.Join(dir, "evil.json"), entryJSON(peer("evil", "")))
	quiet(t, ch)
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	want(t, ch, discovery.Joined, peer("evil", ""))
}

func chmodDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return path
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The default of WithMaxEntries is 1024, as documented.
func TestMaxEntriesDefault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const total = 1024 + 50
	for i := range total {
		id := fmt.Sprintf("p%04d", i)
		liveLock(t, dir, id)
		writeFile(t, filepath.Join(dir, id+".json"), entryJSON(peer(id, "")))
	}
	r := local.New(local.WithDir(dir), local.WithPollInterval(poll))
	ch, err := r.Start(peer("a", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range 1024 {
		if ev := next(t, ch); ev.Kind != discovery.Joined {
			t.Fatalf("got %v %+v", ev.Kind, ev.Peer)
		}
	}
	quiet(t, ch)
}
