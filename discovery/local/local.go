package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/colugo-go/colugo/discovery"
)

const (
	formatVersion = 1
	jsonExt       = ".json"
	lockExt       = ".lock"
	tmpExt        = ".tmp"
	maxEntrySize  = 64 << 10    // larger files are garbage, not read whole
	tmpMaxAge     = time.Minute // a writer's temporary file lives for microseconds
	maxIDLen      = 200         // leaves room for extensions within NAME_MAX (255)
	eventBuffer   = 16          // absorbs the burst of Joined events at start
	dirPerm       = 0o700       // the registry is private to its user
	errPrefix     = "colugo/discovery/local:"
)

// Log attribute keys.
const (
	logKeyPeer   = "peer"
	logKeyRouter = "router"
	logKeyFile   = "file"
	logKeyDir    = "dir"
	logKeyErr    = "err"
)

var errNotStarted = errors.New(errPrefix + " not started")

// errNotRegular is why a FIFO, device, socket, directory or symlink named
// like an entry or lock file is skipped.
var errNotRegular = errors.New("not a regular file (symlinks are not followed)")

// ErrUnsafeDir is returned (wrapped, with the reason) by [Registry.Start]
// when the registry directory is not a directory owned by this process's
// user and writable by no one else (group and others have no write
// permission; the sticky bit of /tmp-like directories does not count), or
// is a symlink. Any other user who can write the directory could announce
// fake nodes and redirect this one.
var ErrUnsafeDir = errors.New(errPrefix + " unsafe registry directory")

// entry is the content of <id>.json.
type entry struct {
	Version int    `json:"v"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Router  string `json:"router"`
	Pub     string `json:"pub,omitempty"`
	Catalog string `json:"catalog,omitempty"`
	PID     int    `json:"pid"` // for humans only: liveness comes from the lock
}

// Registry is a host-local [discovery.Discovery] backed by a directory (see
// the package documentation for the layout and the lock scheme).
//
// Like every Discovery it is used by one Node: [Registry.Start] once, then
// [Registry.Update] any number of times, then [Registry.Close]. Its methods
// are safe for concurrent use. The zero value is not usable; call [New].
type Registry struct {
	cfg    config
	cfgErr error

	mu     sync.Mutex // guards everything below and serializes the methods
	state  int        // stateNew, stateStarted or stateClosed
	dir    string
	self   discovery.Peer
	lock   *os.File // <id>.lock, locked exclusively until Close
	events chan discovery.Event
	cancel context.CancelFunc
	wg     sync.WaitGroup

	settled chan struct{} // closed by the poller after its first poll
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// New returns a Registry configured by opts. It does no I/O: the directory
// is created and the entry written by [Registry.Start], which also reports
// invalid options, so that New can be used inline in a Node option.
func New(opts ...Option) *Registry {
	cfg := config{poll: defaultPoll, maxEntries: defaultMaxEntries}
	for _, o := range opts {
		o.apply(&cfg)
	}
	r := &Registry{cfg: cfg, settled: make(chan struct{})}
	if cfg.poll <= 0 {
		r.cfgErr = fmt.Errorf("%s invalid option %v: poll interval must be positive", errPrefix, pollOption(cfg.poll))
	}
	if cfg.maxEntries <= 0 {
		r.cfgErr = fmt.Errorf("%s invalid option %v: must be positive", errPrefix, maxEntriesOption(cfg.maxEntries))
	}
	if cfg.logger == nil {
		r.cfg.logger = slog.New(slog.DiscardHandler)
	}
	return r
}

// defaultDir returns the directory documented on [WithDir].
func defaultDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "colugo"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%s no registry directory (set XDG_RUNTIME_DIR or use WithDir): %w", errPrefix, err)
	}
	return filepath.Join(d, "colugo"), nil
}

// validID reports whether id can name the entry files: it must be a plain
// file name that cannot collide with temporary files.
func validID(id string) error {
	if id == "" || len(id) > maxIDLen || id[0] == '.' {
		return fmt.Errorf("%s invalid peer ID %q: must be 1 to %d characters, not starting with '.'", errPrefix, id, maxIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%s invalid peer ID %q: only letters, digits, '-', '_' and '.' are allowed", errPrefix, id)
		}
	}
	return nil
}

// Start creates the directory if needed, writes this node's entry (and
// takes its lock), and starts the one goroutine that polls the directory.
// It does not block beyond that I/O; the first poll happens at once, so
// nodes already registered are reported without waiting an interval.
//
// Events for every other node (never self.ID) arrive on the returned
// channel: [discovery.Joined] when an entry appears, [discovery.Updated]
// when its fields change, [discovery.Left] when it is removed or its owner
// died. The Registry closes the channel when Close returns, and at no other
// time. A consumer that stops reading pauses polling (no event is dropped)
// until it reads again or Close is called.
//
// Start returns [discovery.ErrStarted] or [discovery.ErrClosed] when called
// twice or after Close, an error for invalid options or an invalid
// self.ID (non-empty, letters, digits, '-', '_' and '.'), an error when
// another live node holds the same ID, and the file-system error (wrapped,
// so errors.Is(err, fs.ErrPermission) works) when the directory cannot be
// created or written. After a failed Start nothing is left on disk and
// Start may be called again.
func (r *Registry) Start(self discovery.Peer) (<-chan discovery.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case stateStarted:
		return nil, discovery.ErrStarted
	case stateClosed:
		return nil, discovery.ErrClosed
	}
	if r.cfgErr != nil {
		return nil, r.cfgErr
	}
	if err := validID(self.ID); err != nil {
		return nil, err
	}
	dir := r.cfg.dir
	if dir == "" {
		var err error
		if dir, err = defaultDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("%s registry directory: %w", errPrefix, err)
	}
	dirInfo, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("%s registry directory: %w", errPrefix, err)
	}
	if err := checkDir(dir, dirInfo); err != nil {
		return nil, err
	}
	lock, err := acquire(dir, self.ID)
	if err != nil {
		return nil, err
	}
	if err := writeEntry(dir, self); err != nil {
		_ = os.Remove(filepath.Join(dir, self.ID+lockExt))
		_ = lock.Close()
		return nil, err
	}

	r.state, r.dir, r.self, r.lock = stateStarted, dir, self, lock
	r.events = make(chan discovery.Event, eventBuffer)
	// The ctx lives only in the polling goroutine; Close cancels it.
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	p := &poller{
		dir:        dir,
		dirInfo:    dirInfo,
		selfID:     self.ID,
		maxEntries: r.cfg.maxEntries,
		log:        r.cfg.logger.With(slog.String(logKeyDir, dir)),
		out:        r.events,
		known:      make(map[string]*known),
		settled:    r.settled,
	}
	r.cfg.logger.InfoContext(ctx, "local discovery started", slog.String(logKeyDir, dir), slog.String(logKeyPeer, self.ID))
	r.wg.Go(func() { p.run(ctx, r.cfg.poll) })
	return r.events, nil
}

// acquire creates <id>.lock already locked: it is created and locked under a
// temporary name and then renamed into place, so no reader can find it
// unlocked while its owner lives.
func acquire(dir, id string) (*os.File, error) {
	path := filepath.Join(dir, id+lockExt)
	// A fixed ID may be reused after a crash, but never by two live nodes.
	if f, _, err := openRegular(path); err == nil {
		free, err := tryLockShared(f)
		_ = f.Close()
		if err == nil && !free {
			return nil, fmt.Errorf("%s peer ID %q is already registered by a live node in %s", errPrefix, id, dir)
		}
	}
	f, err := os.CreateTemp(dir, "."+id+lockExt+"-*"+tmpExt)
	if err != nil {
		return nil, fmt.Errorf("%s registry entry: %w", errPrefix, err)
	}
	fail := func(err error) (*os.File, error) {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("%s registry lock: %w", errPrefix, err)
	}
	if err := lockExclusive(f); err != nil {
		return fail(err)
	}
	// The pid is for humans; the lock is what counts.
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		return fail(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fail(err)
	}
	return f, nil
}

// writeEntry replaces <id>.json atomically, so readers see the old content
// or the new one, never a mix.
func writeEntry(dir string, p discovery.Peer) error {
	data, err := json.Marshal(entry{
		Version: formatVersion,
		ID:      p.ID,
		Name:    p.Name,
		Router:  p.Router,
		Pub:     p.Pub,
		Catalog: p.Catalog,
		PID:     os.Getpid(),
	})
	if err != nil {
		return fmt.Errorf("%s registry entry: %w", errPrefix, err)
	}
	f, err := os.CreateTemp(dir, "."+p.ID+jsonExt+"-*"+tmpExt)
	if err != nil {
		return fmt.Errorf("%s registry entry: %w", errPrefix, err)
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, p.ID+jsonExt))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("%s registry entry: %w", errPrefix, err)
	}
	return nil
}

// Update rewrites this node's entry with self (new catalog or addresses);
// other registries report it as Updated within one poll interval. self.ID
// must be the one given to Start. Update blocks only for the file write.
// It returns [discovery.ErrClosed] after Close, an error before Start, and
// the file-system error if the entry cannot be written.
func (r *Registry) Update(self discovery.Peer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case stateNew:
		return errNotStarted
	case stateClosed:
		return discovery.ErrClosed
	}
	if self.ID != r.self.ID {
		return fmt.Errorf("%s Update with peer ID %q, started as %q: the ID cannot change", errPrefix, self.ID, r.self.ID)
	}
	if err := writeEntry(r.dir, self); err != nil {
		return err
	}
	r.self = self
	return nil
}

// Close removes this node's entry and lock file, releases the lock, stops
// the polling goroutine and waits for it, then closes the event channel.
// It blocks until all of that is done (concurrent callers too), is
// idempotent, and may be called without Start. It returns an error only if
// the entry files could not be removed; the Registry is closed regardless.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.state
	r.state = stateClosed
	if prev != stateStarted {
		return nil
	}
	r.cancel()
	r.wg.Wait()
	// The data file goes first: a reader that finds it must also find the
	// lock file, or it takes the entry for a crashed node's.
	var errs []error
	for _, ext := range []string{jsonExt, lockExt} {
		if err := os.Remove(filepath.Join(r.dir, r.self.ID+ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s removing entry: %w", errPrefix, err))
		}
	}
	_ = r.lock.Close() // releases the lock; nothing was written since Start
	close(r.events)
	return errors.Join(errs...)
}

// Settled returns a channel closed once the first poll of the directory,
// at Start, has sent its Joined events: the nodes whose entries were there
// then. It implements [discovery.Settler].
func (r *Registry) Settled() <-chan struct{} { return r.settled }

var (
	_ discovery.Discovery = (*Registry)(nil)
	_ discovery.Settler   = (*Registry)(nil)
)

// known is what the poller remembers about one other node's entry.
type known struct {
	ino      uint64
	size     int64
	mod      time.Time
	peer     discovery.Peer
	reported bool // Joined was sent, so Left must follow
}

// poller is owned by the polling goroutine; nothing else touches it.
type poller struct {
	dir        string
	dirInfo    fs.FileInfo // the directory Start checked; polls require the same one
	selfID     string
	maxEntries int
	log        *slog.Logger
	out        chan<- discovery.Event
	known      map[string]*known
	dirFailed  bool          // the last ReadDir failed: warn once per episode
	overfull   bool          // the last poll found more than maxEntries entries: warn once per episode
	settled    chan struct{} // closed after the first poll; nil then
}

func (p *poller) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if !p.poll(ctx) {
			return
		}
		if p.settled != nil {
			close(p.settled)
			p.settled = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll reads the directory once and emits what changed. It returns false
// when ctx ended while it waited for the consumer.
func (p *poller) poll(ctx context.Context) bool {
	des, err := p.readDir()
	if err != nil {
		// Keep what is known: the directory may come back, and a missing
		// directory says nothing certain about the peers.
		if !p.dirFailed {
			p.log.WarnContext(ctx, "local discovery cannot read its directory", slog.Any(logKeyErr, err))
			p.dirFailed = true
		}
		return true
	}
	p.dirFailed = false

	present := make(map[string]bool)
	var locks []string
	entries, over := 0, false
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() {
			continue // FIFOs, symlinks, directories...: never opened (see openRegular)
		}
		switch {
		case strings.HasPrefix(name, "."):
			p.removeOldTemp(ctx, de)
		case strings.HasSuffix(name, lockExt):
			locks = append(locks, strings.TrimSuffix(name, lockExt))
		case strings.HasSuffix(name, jsonExt):
			id := strings.TrimSuffix(name, jsonExt)
			if id == p.selfID || validID(id) != nil {
				continue
			}
			if entries++; entries > p.maxEntries {
				over = true
				continue
			}
			present[id] = true
			if !p.check(ctx, id, de) {
				return false
			}
		}
	}
	if over != p.overfull {
		p.overfull = over
		if over {
			p.log.WarnContext(ctx, "local discovery: too many entries; ignoring the rest", slog.Int("max", p.maxEntries))
		}
	}
	for id, k := range p.known {
		if !present[id] {
			delete(p.known, id)
			if k.reported && !p.left(ctx, k.peer) {
				return false
			}
		}
	}
	// A node that died between locking and writing its entry leaves a lock
	// file alone; remove it once its owner is gone.
	for _, id := range locks {
		if id != p.selfID && !present[id] && validID(id) == nil {
			if p.owner(ctx, id) == ownerDead {
				p.log.DebugContext(ctx, "local discovery removed an orphan lock", slog.String(logKeyPeer, id))
			}
		}
	}
	return true
}

// readDir lists the directory after checking that it is still the one
// Start checked (same inode, still private), reading at most 4×maxEntries
// names so that a flooded directory costs a bounded time per poll.
func (p *poller) readDir() ([]fs.DirEntry, error) {
	fi, err := os.Lstat(p.dir)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, p.dirInfo) {
		return nil, fmt.Errorf("%w %s: replaced since Start", ErrUnsafeDir, p.dir)
	}
	if err := checkDir(p.dir, fi); err != nil {
		return nil, err
	}
	f, err := os.Open(p.dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	des, err := f.ReadDir(4 * p.maxEntries)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return des, err
}

// check handles one other node's data file: stale, new, changed or not.
func (p *poller) check(ctx context.Context, id string, de fs.DirEntry) bool {
	k := p.known[id]
	if o := p.owner(ctx, id); o != ownerAlive {
		// Not an entry (any more): a stale one was just removed, and a data
		// file without a lock file is not ours to judge or delete.
		if o == ownerDead {
			p.log.DebugContext(ctx, "local discovery removed a stale entry", slog.String(logKeyPeer, id))
		}
		delete(p.known, id)
		if k != nil && k.reported {
			return p.left(ctx, k.peer)
		}
		return true
	}
	fi, err := de.Info()
	if err != nil {
		return true // removed since ReadDir; the next poll sees it gone
	}
	// A rewrite is a rename, so it always changes the inode, even where
	// modification times are coarse.
	if k != nil && k.ino == inode(fi) && k.size == fi.Size() && k.mod.Equal(fi.ModTime()) {
		return true
	}
	if k == nil {
		k = &known{}
		p.known[id] = k
	}
	peer, read, err := readEntry(filepath.Join(p.dir, de.Name()), id)
	if read == nil {
		read = fi // could not open it: wait until the name changes
	}
	// What was read, not what the name pointed at when listed: a file
	// replaced in between is then read again at the next poll.
	k.ino, k.size, k.mod = inode(read), read.Size(), read.ModTime()
	if err != nil {
		// Tried again when the file changes; a valid earlier version stays
		// in force, since the owner's lock says it is alive.
		p.log.DebugContext(ctx, "local discovery skipped an unreadable entry",
			slog.String(logKeyFile, de.Name()), slog.Any(logKeyErr, err))
		return true
	}
	switch {
	case !k.reported:
		k.peer, k.reported = peer, true
		p.log.InfoContext(ctx, "local discovery: peer joined", slog.String(logKeyPeer, id), slog.String(logKeyRouter, peer.Router))
		return p.send(ctx, discovery.Event{Kind: discovery.Joined, Peer: peer})
	case peer != k.peer:
		k.peer = peer
		p.log.DebugContext(ctx, "local discovery: peer updated", slog.String(logKeyPeer, id))
		return p.send(ctx, discovery.Event{Kind: discovery.Updated, Peer: peer})
	}
	return true
}

func (p *poller) left(ctx context.Context, peer discovery.Peer) bool {
	p.log.InfoContext(ctx, "local discovery: peer left", slog.String(logKeyPeer, peer.ID))
	return p.send(ctx, discovery.Event{Kind: discovery.Left, Peer: peer})
}

// send delivers ev, waiting for the consumer: Joined and Left must never be
// dropped, and a lagging consumer only delays the next poll.
func (p *poller) send(ctx context.Context, ev discovery.Event) bool {
	select {
	case p.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// ownerState says whether an entry's owner is alive.
type ownerState int

const (
	ownerAlive   ownerState = iota // its lock is held (or cannot be checked)
	ownerDead                      // its lock was free: the files are removed now
	ownerMissing                   // no lock file, or not a regular one: not a live entry
)

// owner checks id's lock and removes the entry files if no live process
// holds it. A live node's lock file exists before its data file and
// outlives it, so a data file without one is a leftover of a Close seen
// halfway, or a foreign file, and is left alone.
func (p *poller) owner(ctx context.Context, id string) ownerState {
	lockPath := filepath.Join(p.dir, id+lockExt)
	f, _, err := openRegular(lockPath)
	if errors.Is(err, fs.ErrNotExist) {
		return ownerMissing
	}
	if errors.Is(err, errNotRegular) {
		// Not a lock any node made: a foreign file, left alone.
		p.log.DebugContext(ctx, "local discovery skipped a lock that is not a regular file", slog.String(logKeyPeer, id))
		return ownerMissing
	}
	if err != nil {
		// Cannot tell (permissions?): assume alive rather than drop a peer.
		p.log.DebugContext(ctx, "local discovery cannot check a lock", slog.String(logKeyPeer, id), slog.Any(logKeyErr, err))
		return ownerAlive
	}
	defer f.Close() // releases the shared lock, after the files are gone
	free, err := tryLockShared(f)
	if err != nil || !free {
		return ownerAlive
	}
	// If the lock file was replaced since we opened it (a node restarted
	// with the same ID), the lock we hold says nothing about the new owner.
	held, err1 := f.Stat()
	cur, err2 := os.Lstat(lockPath)
	if err1 != nil || err2 != nil || !os.SameFile(held, cur) {
		return ownerAlive
	}
	removeQuietly(filepath.Join(p.dir, id+jsonExt))
	removeQuietly(lockPath)
	return ownerDead
}

// removeOldTemp removes a temporary file that a crashed writer left behind.
func (p *poller) removeOldTemp(ctx context.Context, de fs.DirEntry) {
	name := de.Name()
	if !strings.HasSuffix(name, tmpExt) || !(strings.Contains(name, jsonExt+"-") || strings.Contains(name, lockExt+"-")) {
		return // not ours
	}
	fi, err := de.Info()
	if err != nil || time.Since(fi.ModTime()) < tmpMaxAge {
		return
	}
	removeQuietly(filepath.Join(p.dir, name))
	p.log.DebugContext(ctx, "local discovery removed a leftover temporary file", slog.String(logKeyFile, name))
}

// removeQuietly removes path; another reader may have removed it first.
func removeQuietly(path string) { _ = os.Remove(path) }

// readEntry reads and validates one data file: a regular file (never
// through a symlink, never blocking) of at most maxEntrySize bytes. It also
// returns the FileInfo of the file it opened, or nil if it opened none.
func readEntry(path, id string) (discovery.Peer, fs.FileInfo, error) {
	f, fi, err := openRegular(path)
	if err != nil {
		return discovery.Peer{}, nil, err
	}
	defer f.Close()
	if fi.Size() > maxEntrySize {
		return discovery.Peer{}, fi, fmt.Errorf("larger than %d bytes", maxEntrySize)
	}
	// Bounded again: the file may grow while it is read.
	data, err := io.ReadAll(io.LimitReader(f, maxEntrySize+1))
	if err != nil {
		return discovery.Peer{}, fi, err
	}
	if len(data) > maxEntrySize {
		return discovery.Peer{}, fi, fmt.Errorf("larger than %d bytes", maxEntrySize)
	}
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		return discovery.Peer{}, fi, err
	}
	switch {
	case e.Version < formatVersion:
		return discovery.Peer{}, fi, fmt.Errorf("format version %d", e.Version)
	case e.ID != id:
		return discovery.Peer{}, fi, fmt.Errorf("ID %q in a file named for %q", e.ID, id)
	case e.Router == "":
		return discovery.Peer{}, fi, errors.New("no router address")
	}
	return discovery.Peer{ID: e.ID, Name: e.Name, Router: e.Router, Pub: e.Pub, Catalog: e.Catalog}, fi, nil
}
