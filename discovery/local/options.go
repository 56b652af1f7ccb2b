package local

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Option configures a [Registry]. Options are comparable values with a
// String method; the unexported method keeps the set closed.
type Option interface {
	apply(*config)
}

type config struct {
	dir        string
	poll       time.Duration
	maxEntries int
	logger     *slog.Logger
}

// Defaults of [WithPollInterval] and [WithMaxEntries].
const (
	defaultPoll       = 100 * time.Millisecond
	defaultMaxEntries = 1024
)

type dirOption string

func (o dirOption) apply(c *config) { c.dir = string(o) }
func (o dirOption) String() string  { return "local.WithDir(" + strconv.Quote(string(o)) + ")" }

// WithDir sets the registry directory; every node that should see the others
// must use the same one. It is created (mode 0700, with missing parents) by
// [Registry.Start] if needed.
//
// Default: $XDG_RUNTIME_DIR/colugo when XDG_RUNTIME_DIR is set to an absolute
// path (a per-user, tmpfs-backed directory on most Linux systems), else
// colugo under [os.UserCacheDir]. An empty dir means the default.
func WithDir(dir string) Option { return dirOption(dir) }

type pollOption time.Duration

func (o pollOption) apply(c *config) { c.poll = time.Duration(o) }
func (o pollOption) String() string {
	return fmt.Sprintf("local.WithPollInterval(%v)", time.Duration(o))
}

// WithPollInterval sets how often the directory is read, which bounds how
// late Joined, Updated and Left events are. It must be positive, or Start
// fails. Default: 100 ms.
func WithPollInterval(d time.Duration) Option { return pollOption(d) }

type maxEntriesOption int

func (o maxEntriesOption) apply(c *config) { c.maxEntries = int(o) }
func (o maxEntriesOption) String() string  { return fmt.Sprintf("local.WithMaxEntries(%d)", int(o)) }

// WithMaxEntries bounds the work of one poll: at most n other nodes'
// entries are considered, and at most 4n directory entries (data, lock and
// temporary files) are read. Entries beyond the limit are ignored (a node
// already reported is reported Left), with a warning logged once. It must
// be positive, or Start fails. Default: 1024.
func WithMaxEntries(n int) Option { return maxEntriesOption(n) }

type loggerOption struct{ l *slog.Logger }

func (o loggerOption) apply(c *config) { c.logger = o.l }
func (o loggerOption) String() string  { return "local.WithLogger(...)" }

// WithLogger sets the logger: Info when a peer joins or leaves, Warn when
// the directory cannot be read, Debug for updates, stale and unreadable
// entries. Default: a logger that discards everything (never
// [slog.Default]); nil also means discard.
func WithLogger(l *slog.Logger) Option { return loggerOption{l} }
