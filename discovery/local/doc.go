// Package local is a host-local [discovery.Discovery]: processes on one
// machine find each other through a registry directory, with no multicast
// and no network traffic, so it is safe on any host, in containers that
// share the directory, and in CI.
//
// # Registry layout
//
// Each live node owns two files in the directory, named after its
// [discovery.Peer] ID:
//
//   - <id>.lock, which the node holds with an exclusive advisory lock
//     (flock(2) LOCK_EX) for its whole life. The kernel drops the lock when
//     the process dies, however it dies, so a reader that can take a shared
//     lock on it (LOCK_SH|LOCK_NB) knows the owner is gone and removes both
//     files. No pid is trusted for this: pids are reused, and they mean
//     nothing across containers sharing the directory.
//   - <id>.json, the announcement: the Peer fields, plus the owner's pid
//     and a format version ("v") for humans and debugging tools.
//
// The data lives apart from the lock because updates replace the data file
// atomically (write a temporary file, then rename it over the old one), and
// a rename gives the name a new inode, which would lose a lock held on the
// old one. The lock file itself is created under a temporary name, locked,
// and only then renamed into place (a rename keeps the inode and its lock),
// so no reader ever sees an unlocked lock file of a live node, and the data
// file is written only after that. Temporary files start with a dot and are
// ignored by readers; a crashed writer's leftovers are removed after a
// minute.
//
// A data file with no lock file beside it is not a live entry: readers
// ignore it (a node that Close removed halfway, or a foreign file) and never
// delete it, since nothing proves it is theirs to delete.
//
// Readers poll the directory (ReadDir, then re-read an entry only when its
// inode, size or modification time changed) and tolerate files they cannot
// parse: they skip them, log at debug level, and try again when the file
// changes. The format is versioned; readers accept any version >= 1 and
// ignore fields they do not know.
//
// # Trust
//
// The directory must be private to its user: [Registry.Start] refuses, with
// [ErrUnsafeDir], one that is a symlink, is owned by another user, or that
// group or others can write (the sticky bit of /tmp-like directories does
// not help: it stops others deleting our files, not planting theirs); the
// default, under $XDG_RUNTIME_DIR (mode 0700) or the user cache directory,
// is created with mode 0700. Every poll checks again that it is the same,
// still private, directory, and reads nothing from it otherwise. Entry and
// lock files are opened without following symlinks and without blocking
// (O_NOFOLLOW|O_NONBLOCK), then fstat'ed: only regular files are used, and
// data files of more than 64 KiB are refused unread, so a FIFO, device or
// link named like an entry is skipped and never stalls the poller or
// Close. A poll considers at most [WithMaxEntries] entries. What an entry
// says (its addresses) is for the Node to judge: a host-only node dials
// only loopback addresses, whatever the registry holds.
//
// On platforms without flock (anything but Linux, macOS and the BSDs),
// entries are never recognised as stale; a clean Close still removes them.
package local
