//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package local

import (
	"fmt"
	"io/fs"
	"os"
)

// Without flock there is no way to tell a dead owner from a live one, so
// every entry counts as live until its owner removes it.

func lockExclusive(*os.File) error { return nil }

func tryLockShared(*os.File) (bool, error) { return false, nil }

func inode(fs.FileInfo) uint64 { return 0 }

// openRegular opens path if it is a regular file (checked with Lstat
// before and Stat after opening, the best this platform offers).
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	if fi, err := os.Lstat(path); err != nil {
		return nil, nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: errNotRegular}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: errNotRegular}
	}
	return f, fi, nil
}

// checkDir only refuses what is not a directory: this platform's
// permission bits say nothing reliable about other users.
func checkDir(dir string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("%w %s: not a directory (symlinks are not followed)", ErrUnsafeDir, dir)
	}
	return nil
}
