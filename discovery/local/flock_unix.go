//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// flock applies how to f, retrying when a signal interrupts the call.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if !errors.Is(ferr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// lockExclusive takes the owner's lock. The file is new and private, so the
// lock is always free; LOCK_NB only guards against surprises.
func lockExclusive(f *os.File) error { return flock(f, syscall.LOCK_EX|syscall.LOCK_NB) }

// tryLockShared reports whether a shared lock on f could be taken, that is
// whether no live process holds f's exclusive lock. The lock is released
// when f is closed.
func tryLockShared(f *os.File) (bool, error) {
	err := flock(f, syscall.LOCK_SH|syscall.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return false, nil
	}
	return false, err
}

// inode returns fi's inode number, or 0 if unknown.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino) //nolint:unconvert // Ino is uint32 on some platforms.
	}
	return 0
}

// openRegular opens path for reading without following a final symlink and
// without blocking (a FIFO or device named like an entry would otherwise
// block open(2), stopping the poller and Close), then fstats the opened
// file and refuses anything but a regular file. The FileInfo is of the file
// opened, not of whatever the name points at by now.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			err = errNotRegular
		}
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: errNotRegular}
	}
	return f, fi, nil
}

// checkDir returns nil when fi, the registry directory's Lstat, is a real
// directory owned by this process's user and writable by no one else: any
// other user who can write it could plant entries that redirect our nodes.
// Sticky /tmp-like directories are refused too (the sticky bit stops
// deletion of our files, not the creation of theirs).
func checkDir(dir string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("%w %s: not a directory (symlinks are not followed)", ErrUnsafeDir, dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%w %s: owned by uid %d, not by this user (uid %d)", ErrUnsafeDir, dir, st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w %s: writable by group or others (mode %#o); use a private directory (chmod 0700)", ErrUnsafeDir, dir, perm)
	}
	return nil
}
