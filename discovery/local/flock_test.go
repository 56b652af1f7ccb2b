//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package local_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/colugo-go/colugo/discovery"
)

// An entry written by hand under a lock the test holds: garbage is skipped
// while the lock is held, a valid version is reported, and releasing the
// lock (as a crash would) makes it stale.
func TestGarbageWithLiveLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lock, err := os.OpenFile(filepath.Join(dir, "live.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	writeAtomic := func(content string) {
		t.Helper()
		tmp := filepath.Join(dir, ".live.json-test.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "live.json")); err != nil {
			t.Fatal(err)
		}
	}
	writeAtomic(`{"v":1,"id":"live","router":"127.0.0.1:1","catalog":`)

	_, ch := start(t, dir, peer("a", ""))
	quiet(t, ch)

	writeAtomic(`{"v":2,"id":"live","router":"127.0.0.1:1","catalog":"c","future":true}`)
	live := discovery.Peer{ID: "live", Router: "127.0.0.1:1", Catalog: "c"}
	want(t, ch, discovery.Joined, live)

	if err := lock.Close(); err != nil { // releases the lock, like a crash
		t.Fatal(err)
	}
	want(t, ch, discovery.Left, live)
	for _, f := range []string{"live.json", "live.lock"} {
		if exists(t, filepath.Join(dir, f)) {
			t.Errorf("%s still exists", f)
		}
	}
}
