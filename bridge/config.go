package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrConfig is wrapped by New's error for an invalid Config.
var ErrConfig = errors.New("bridge: invalid config")

// Config is a bridge's configuration. The tags name its fields in a YAML
// or TOML file (the file is read by the caller; this package parses none).
// Nothing crosses unless an Export or Import entry lists it.
type Config struct {
	// Site names this colugo network (one host or LAN) on NATS: every
	// message the bridge exports carries it as its origin. Required:
	// 1 to 64 bytes of letters, digits, '-', '_' and '.'.
	Site string `yaml:"site" toml:"site"`
	// NATS says how to reach NATS.
	NATS NATS `yaml:"nats" toml:"nats"`
	// Root is the first token of every subject the bridge uses (see the
	// package documentation). Default: "colugo".
	Root string `yaml:"root" toml:"root"`
	// Prefix is the default namespace of the entries that give none:
	// a local name n is prefix/n on NATS. Default: none (names are the
	// same on NATS as locally).
	Prefix string `yaml:"prefix" toml:"prefix"`
	// Export lists what goes from the local network to NATS, Import what
	// comes from NATS to the local network.
	Export Lists `yaml:"export" toml:"export"`
	Import Lists `yaml:"import" toml:"import"`
	// MaxImportTopics bounds how many topics the bridge publishes locally
	// for imports (one publisher each, made at a topic's first message),
	// so that a flood of new names from NATS cannot grow it without bound;
	// messages of further topics are dropped (Stats: Limit). Default: 1024.
	MaxImportTopics int `yaml:"max_import_topics" toml:"max_import_topics"`
	// MaxExportTopics bounds how many topics the bridge exports for its
	// pattern entries (a local subscription each, made when some node
	// publishes a match), so that a flood of new names on the site cannot
	// grow it without bound; further matches are not exported (Stats:
	// ExportRefused), and the first is logged. Default: 1024.
	MaxExportTopics int `yaml:"max_export_topics" toml:"max_export_topics"`
	// QueueBytes bounds the queue of each exported topic's local
	// subscription (colugo.WithQueueBytes), where messages wait while NATS
	// publishing lags behind the site; past it the oldest are dropped
	// (Stats: Queue). Default: 4 MiB.
	QueueBytes int `yaml:"queue_bytes" toml:"queue_bytes"`
	// QueueBudget bounds those queues all together (colugo.WithQueueBudget),
	// so that a pattern export of many topics holds no more than this
	// while NATS lags: at the budget each topic drops its own oldest
	// (Stats: Queue), and a topic whose queue is empty still queues one
	// message. Default: 64 MiB.
	QueueBudget int `yaml:"queue_budget" toml:"queue_budget"`
	// MaxInflight bounds the requests the bridge forwards at once in each
	// direction; further ones are refused with CodeUnavailable. Default: 256.
	MaxInflight int `yaml:"max_inflight" toml:"max_inflight"`
	// Logger gets the bridge's warnings: the link lost and back, and the
	// JetStream failures it retries (each distinct one once in a row, not
	// every retry). Default: none (the bridge is silent, as a colugo node
	// is); Stats counts what happens either way. Not in the file.
	Logger *slog.Logger `yaml:"-" toml:"-"`
}

// NATS is how the bridge connects to NATS.
type NATS struct {
	// URLs of NATS servers, e.g. "nats://127.0.0.1:4222". Required.
	URLs []string `yaml:"urls" toml:"urls"`
	// User and Password, Token, CredsFile (a JWT and nkey seed, as nsc
	// writes) or NKeyFile (an nkey seed file): at most one way of
	// authenticating, or none.
	User      string `yaml:"user" toml:"user"`
	Password  string `yaml:"password" toml:"password"`
	Token     string `yaml:"token" toml:"token"`
	CredsFile string `yaml:"creds_file" toml:"creds_file"`
	NKeyFile  string `yaml:"nkey_file" toml:"nkey_file"`
	// TLS: CA verifies the server; Cert and Key (both or neither) are the
	// client's certificate. Files in PEM.
	TLS TLS `yaml:"tls" toml:"tls"`
	// ReconnectBuffer bounds, in bytes, what the bridge holds for NATS
	// while the link is down; beyond it messages are dropped (Stats: Link).
	// Default: 8 MiB. Negative: hold nothing.
	ReconnectBuffer int `yaml:"reconnect_buffer" toml:"reconnect_buffer"`
	// ReconnectWait is the pause between reconnection attempts (nats.go
	// adds jitter). Default: 1s. The bridge retries for ever.
	ReconnectWait time.Duration `yaml:"reconnect_wait" toml:"reconnect_wait"`
	// PingInterval is how often the bridge pings its server; two pings
	// unanswered end the connection (the bridge reconnects, to another
	// URL if it has several). It is how a link that goes silent, with no
	// error (a radio out of range, packets dropped on the way), is found
	// while little is sent: within about three intervals. Default: 5s
	// (nats.go's is 2 minutes).
	PingInterval time.Duration `yaml:"ping_interval" toml:"ping_interval"`
	// WriteTimeout bounds one write to the server: a write still blocked
	// after it ends the connection. It is how a silent link is found while
	// much is sent (a full socket buffer stops the pings too). Raise it for
	// links so slow that 32 KiB, or the largest message, takes longer.
	// Default: 10s (nats.go's is a minute).
	WriteTimeout time.Duration `yaml:"write_timeout" toml:"write_timeout"`
}

// TLS holds the paths of PEM files for the NATS connection.
type TLS struct {
	CA   string `yaml:"ca" toml:"ca"`
	Cert string `yaml:"cert" toml:"cert"`
	Key  string `yaml:"key" toml:"key"`
}

// Lists are the topic and service entries of one direction.
type Lists struct {
	Topics   []Topic   `yaml:"topics" toml:"topics"`
	Services []Service `yaml:"services" toml:"services"`
}

// Topic is an export or import entry for topics.
type Topic struct {
	// Name is a local topic name or pattern ("*": one segment, "**": zero
	// or more, as in colugo.SubscribePattern).
	Name string `yaml:"name" toml:"name"`
	// Prefix, when set, replaces Config.Prefix for this entry: the topic n
	// is prefix/n on NATS (added on export, stripped on import).
	Prefix string `yaml:"prefix" toml:"prefix"`
	// MaxRate, when positive, downsamples each matching topic to at most
	// MaxRate messages per second: of the messages of one interval, the
	// newest is sent at its end and the others are dropped (Stats: Rate).
	MaxRate float64 `yaml:"max_rate" toml:"max_rate"`
	// MaxPayload, when positive, drops messages whose payload is longer,
	// in bytes (Stats: Payload).
	MaxPayload int `yaml:"max_payload" toml:"max_payload"`
	// JetStream, when set, makes the entry's topics store-and-forward
	// through a bounded JetStream stream (see the package documentation):
	// on an export entry, the bridge creates the stream, and its messages
	// go into it; on an import entry, the bridge reads the stream through a
	// durable consumer of its site instead of a plain subscription, so that
	// what was published while the site was offline arrives when it comes
	// back. The importer's entry names, on NATS (prefix included), any
	// topic or pattern: it reads every exported stream that holds some of
	// its topics (the export of the same pattern, of a wider one, or the
	// exports of narrower ones: robot/** reads robot/1/* and robot/2/*),
	// each through a consumer of its own (256 streams at most), and looks
	// for new ones every 2 s. Until one exists it delivers nothing (Stats:
	// JetStreamErrors).
	JetStream *JetStream `yaml:"jetstream" toml:"jetstream"`
}

// JetStream bounds the stream of a store-and-forward topic entry; past a
// bound the oldest messages are discarded. At least one of MaxMsgs and
// MaxBytes is required (a stream without bounds would grow for as long as
// a site stays away). Only the exporter's bounds count: an importer
// waits for the stream the exporter made.
type JetStream struct {
	MaxMsgs  int64         `yaml:"max_msgs" toml:"max_msgs"`   // messages kept at most
	MaxBytes int64         `yaml:"max_bytes" toml:"max_bytes"` // bytes kept at most
	MaxAge   time.Duration `yaml:"max_age" toml:"max_age"`     // age after which a message is dropped; 0: none
	// Spool, on an export entry, bounds in bytes (payloads) what each of
	// its topics keeps until the stream acks it: while the link is down,
	// before the stream is made, after a refusal. A full spool that is
	// sending (or making the stream) holds the topic back: in its local
	// queue (QueueBytes), then in its publishers' send queues, as the
	// bridge's subscription of a JetStream topic waits for room
	// (colugo.Block, 2 s), so that a burst is stored whole; a publisher
	// with colugo.WithBackPressure waits for it, and that publisher's other
	// topics to the bridge wait meanwhile. One that cannot send drops its
	// oldest not sent (Stats: Link). Default 8 MiB.
	Spool int `yaml:"spool" toml:"spool"`
	// Replicas, on an export entry, is how many servers of a JetStream
	// cluster hold the stream (1 to 5). Default: what the stream has when
	// it exists (its operator's choice, say 3 for a stream that survives a
	// server), 1 for one the bridge makes.
	Replicas int `yaml:"replicas" toml:"replicas"`
}

// Service is an export or import entry for services.
type Service struct {
	// Name is a local service name; on export also a pattern. An import
	// entry must be literal: the importer must know the name to serve it.
	Name string `yaml:"name" toml:"name"`
	// Prefix, as for Topic.
	Prefix string `yaml:"prefix" toml:"prefix"`
	// MaxPayload, when positive, refuses requests longer than it, in
	// bytes, with CodeInvalidArgument (Stats: Payload).
	MaxPayload int `yaml:"max_payload" toml:"max_payload"`
}

// checkName checks a name or, with wild, a pattern, as an entry's Name.
func checkName(what, n string, wild bool) error {
	if n == "" || len(n) > maxName || !utf8.ValidString(n) || strings.IndexByte(n, 0) >= 0 || n[0] == '$' {
		return fmt.Errorf("%w: %s %q: must be 1-255 bytes of UTF-8, no NUL, not starting with $", ErrConfig, what, n)
	}
	if !wild && isPattern(n) {
		return fmt.Errorf("%w: %s %q: must be literal (no * or ** segment)", ErrConfig, what, n)
	}
	return nil
}

func checkToken(what, v string) error {
	if v == "" || len(v) > 64 {
		return fmt.Errorf("%w: %s %q: 1 to 64 bytes", ErrConfig, what, v)
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return fmt.Errorf("%w: %s %q: letters, digits, '-' and '_' only", ErrConfig, what, v)
		}
	}
	return nil
}

// normalize checks c and fills in its defaults.
func (c Config) normalize() (Config, error) {
	if err := checkToken("site", strings.ReplaceAll(c.Site, ".", "_")); err != nil {
		return c, err
	}
	if c.Root == "" {
		c.Root = "colugo"
	}
	for _, tok := range strings.Split(c.Root, ".") {
		if err := checkToken("root", tok); err != nil {
			return c, err
		}
	}
	if len(c.NATS.URLs) == 0 {
		return c, fmt.Errorf("%w: no NATS URL", ErrConfig)
	}
	auth := 0
	for _, set := range []bool{c.NATS.User != "" || c.NATS.Password != "", c.NATS.Token != "", c.NATS.CredsFile != "", c.NATS.NKeyFile != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return c, fmt.Errorf("%w: more than one NATS authentication (user/password, token, creds_file, nkey_file)", ErrConfig)
	}
	if (c.NATS.TLS.Cert == "") != (c.NATS.TLS.Key == "") {
		return c, fmt.Errorf("%w: TLS cert and key go together", ErrConfig)
	}
	if c.NATS.ReconnectBuffer == 0 {
		c.NATS.ReconnectBuffer = 8 << 20
	}
	if c.NATS.ReconnectWait <= 0 {
		c.NATS.ReconnectWait = time.Second
	}
	if c.NATS.PingInterval <= 0 {
		c.NATS.PingInterval = 5 * time.Second
	}
	if c.NATS.WriteTimeout <= 0 {
		c.NATS.WriteTimeout = 10 * time.Second
	}
	if c.MaxImportTopics <= 0 {
		c.MaxImportTopics = 1024
	}
	if c.MaxExportTopics <= 0 {
		c.MaxExportTopics = 1024
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 4 << 20
	}
	if c.QueueBudget <= 0 {
		c.QueueBudget = 64 << 20
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 256
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	prefix := func(what, p string) (string, error) {
		if p == "" {
			p = c.Prefix
		}
		if p == "" {
			return "", nil
		}
		if err := checkName(what+" prefix", p, false); err != nil {
			return "", err
		}
		if strings.HasSuffix(p, "/") || len(p)+2 > maxName {
			return "", fmt.Errorf("%w: %s prefix %q: must not end with /", ErrConfig, what, p)
		}
		return p, nil
	}
	if _, err := prefix("default", ""); err != nil {
		return c, err
	}
	var err error
	for _, l := range []*Lists{&c.Export, &c.Import} {
		l.Topics = append([]Topic(nil), l.Topics...)
		for i := range l.Topics {
			t := &l.Topics[i]
			if err = checkName("topic", t.Name, true); err != nil {
				return c, err
			}
			if t.Prefix, err = prefix("topic "+t.Name, t.Prefix); err != nil {
				return c, err
			}
			if t.MaxRate < 0 || t.MaxPayload < 0 {
				return c, fmt.Errorf("%w: topic %q: negative max_rate or max_payload", ErrConfig, t.Name)
			}
			if js := t.JetStream; js != nil {
				if js.MaxMsgs < 0 || js.MaxBytes < 0 || js.MaxAge < 0 || js.Spool < 0 {
					return c, fmt.Errorf("%w: topic %q: negative jetstream bound", ErrConfig, t.Name)
				}
				if js.Replicas < 0 || js.Replicas > maxReplicas {
					return c, fmt.Errorf("%w: topic %q: jetstream replicas %d: must be 1 to %d", ErrConfig, t.Name, js.Replicas, maxReplicas)
				}
				if l == &c.Export && js.MaxMsgs == 0 && js.MaxBytes == 0 {
					return c, fmt.Errorf("%w: topic %q: jetstream needs max_msgs or max_bytes", ErrConfig, t.Name)
				}
				j := *js // the caller's stays the caller's
				if j.Spool == 0 {
					j.Spool = defaultSpool
				}
				t.JetStream = &j
			}
		}
		l.Services = append([]Service(nil), l.Services...)
		for i := range l.Services {
			s := &l.Services[i]
			if err = checkName("service", s.Name, l == &c.Export); err != nil {
				return c, err
			}
			if s.Prefix, err = prefix("service "+s.Name, s.Prefix); err != nil {
				return c, err
			}
			if s.MaxPayload < 0 {
				return c, fmt.Errorf("%w: service %q: negative max_payload", ErrConfig, s.Name)
			}
		}
	}
	// The first entry of a list that matches a name takes it: a later one
	// that an earlier one covers would take nothing, a mistake to report
	// rather than run (say a JetStream entry under a wider plain one).
	type entry struct{ what, name, prefix string } // prefix: an import topic's, under which it publishes
	var lists [4][]entry
	for _, t := range c.Export.Topics {
		lists[0] = append(lists[0], entry{"export topic", t.Name, ""})
	}
	for _, t := range c.Import.Topics { // entries of two prefixes publish a name under two local names
		lists[1] = append(lists[1], entry{"import topic", t.Name, t.Prefix})
	}
	for _, s := range c.Export.Services {
		lists[2] = append(lists[2], entry{"export service", s.Name, ""})
	}
	for _, s := range c.Import.Services { // by the local names they serve
		lists[3] = append(lists[3], entry{"import service", s.Name, ""})
	}
	for _, l := range lists {
		// Literal entries by prefix and name, and the patterns so far: a
		// config may list thousands of topics literally, which pairwise
		// automata would take seconds over.
		literal := map[[2]string]bool{}
		var patterns []entry
		for _, later := range l {
			var by string
			if isPattern(later.name) {
				// A literal never covers a pattern: only another pattern can.
				// Past maxCheckedPatterns of them, not checked: the check is
				// a convenience, and pairs grow with the square.
				for _, e := range patterns[:min(len(patterns), maxCheckedPatterns)] {
					if e.prefix == later.prefix && covers(e.name, later.name) {
						by = e.name
						break
					}
				}
				patterns = append(patterns, later)
			} else {
				if literal[[2]string{later.prefix, later.name}] {
					by = later.name
				}
				for _, e := range patterns {
					if by == "" && e.prefix == later.prefix && match(e.name, later.name) {
						by = e.name
					}
				}
				literal[[2]string{later.prefix, later.name}] = true
			}
			if by != "" {
				return c, fmt.Errorf("%w: %s %q is never used: the earlier %q takes all it matches (list the narrower entry first)",
					ErrConfig, later.what, later.name, by)
			}
		}
	}
	// A service both imported and exported by one bridge would send
	// requests in a circle: its exporter's Request can pick its own
	// importing server.
	for _, im := range c.Import.Services {
		for _, ex := range c.Export.Services {
			if match(ex.Name, im.Name) {
				return c, fmt.Errorf("%w: service %q is both imported and exported (export %q)", ErrConfig, im.Name, ex.Name)
			}
		}
	}
	return c, nil
}

// maxReplicas is JetStream's most replicas of a stream.
const maxReplicas = 5

// maxCheckedPatterns bounds the patterns of a list whose later patterns
// are checked against them (covers).
const maxCheckedPatterns = 512

// exportsJetStream reports whether an export entry has JetStream set.
func (c Config) exportsJetStream() bool {
	for _, t := range c.Export.Topics {
		if t.JetStream != nil {
			return true
		}
	}
	return false
}
