// Command colugo inspects and drives a colugo system from the shell: the
// live graph (nodes, topics, services), echo, hz and bw of a topic, pub and
// call, doctor, MCAP record and play, a Foxglove WebSocket gateway (web),
// and bash and zsh completion scripts (completion). It uses only colugo's
// public API.
//
// Data goes to stdout, logs and progress to stderr. Exit status: 0 on
// success, 1 on a failure (unknown topic, no server, corrupt file,
// mismatches found by doctor), 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/transport/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// errUsage marks errors caused by the command line.
var errUsage = errors.New("usage")

// cli is one invocation: its streams and the flags every command takes.
type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
	cmd            string

	discovery string
	seed      bool // --seed: seed compatibility (colugo.WithSeedCompat)
	json      bool
	timeout   time.Duration
	wait      time.Duration
	verbose   bool
	tty       bool // stderr is a terminal: progress lines while waiting

	// Flags of some commands.
	count       int
	codec       string
	every       time.Duration
	duration    time.Duration
	since       time.Duration
	last        bool
	literal     bool
	measure     bool
	rate        float64
	typ         string
	listen      time.Duration
	output      string
	compression string
	loop        bool
	topics      string
	remap       remaps

	// web
	webAddr      string
	allowPublish bool
	maxClients   int
	token        string
	origins      *stringList
}

type command struct {
	name, args, help string
	example          string // shown by colugo help COMMAND and COMMAND --help
	run              func(c *cli, fs *flag.FlagSet, args []string) error
	flags            func(fs *flag.FlagSet, c *cli)

	// operands name what each positional argument is, for completion:
	// "topic", "service", "file", "shell", "command", or "value" (free);
	// a trailing "..." repeats the last.
	operands []string
	bare     bool // takes none of the flags of every command
	hidden   bool // not listed by usage or offered by completion
}

var commands []command // set by init: usage refers to it

func init() {
	commands = []command{
		{name: "nodes", help: "list the nodes on the network", run: runNodes,
			example: "colugo nodes --wait 100ms"},
		{name: "topics", help: "list topics with their rate, publishers and subscribers", run: runTopics, flags: topicsFlags,
			example: "colugo topics --json"},
		{name: "services", help: "list services with their servers", run: runServices,
			example: "colugo services"},
		{name: "echo", args: "TOPIC", help: "print the messages published on TOPIC, or on every topic a pattern matches (robot/*/pose, robot/**; --last: the latest kept)", run: runEcho, flags: echoFlags, operands: []string{"topic"},
			example: "colugo echo robot/pose --count 2\n  colugo echo 'robot/**' --json\n  colugo echo robot/description --last --json"},
		{name: "hz", args: "TOPIC", help: "print the rate of TOPIC", run: runHz, flags: rateFlags, operands: []string{"topic"},
			example: "colugo hz robot/pose --count 3 --every 2s"},
		{name: "bw", args: "TOPIC", help: "print the bandwidth of TOPIC", run: runBw, flags: rateFlags, operands: []string{"topic"},
			example: "colugo bw robot/pose --count 1"},
		{name: "pub", args: "TOPIC VALUE", help: "publish the JSON VALUE on TOPIC", run: runPub, flags: pubFlags, operands: []string{"topic", "value"},
			example: "colugo pub robot/cmd '{\"x\":1}' --rate 10 --count 50"},
		{name: "call", args: "SERVICE VALUE", help: "call SERVICE with the JSON VALUE, print the reply", run: runCall, flags: callFlags, operands: []string{"service", "value"},
			example: "colugo call math/add '{\"a\":2,\"b\":3}' --timeout 2s"},
		{name: "doctor", help: "check discovery, peers, codec and type agreement, losses", run: runDoctor, flags: doctorFlags,
			example: "colugo doctor --listen 0s"},
		{name: "record", args: "-o FILE.mcap [TOPIC...]", help: "record topics (default: all) to an MCAP file", run: runRecord, flags: recordFlags, operands: []string{"topic..."},
			example: "colugo record -o /tmp/run.mcap --for 10s robot/pose"},
		{name: "play", args: "FILE.mcap", help: "publish a recording again", run: runPlay, flags: playFlags, operands: []string{"file"},
			example: "colugo play /tmp/run.mcap --rate 2 --topics 'pose' --remap robot/pose=replay/pose"},
		{name: "web", help: "serve the network to Foxglove, Lichtblick and browsers (Foxglove WebSocket)", run: runWeb, flags: webFlags,
			example: "colugo web --listen 127.0.0.1:8765\n  COLUGO_WEB_TOKEN=s3cret colugo web --listen 0.0.0.0:8765 --allow-publish"},
		// No run: run hands bridge's arguments, unparsed, to runBridge.
		{name: "bridge", args: "--config FILE", help: "join sites through NATS (runs the colugo-bridge program, with these arguments)", flags: bridgeFlags, bare: true,
			example: "colugo bridge --config lab.yaml --stats 10s"},
		{name: "completion", args: "bash|zsh", help: "print the shell completion script", run: runCompletion, bare: true, operands: []string{"shell"},
			example: "source <(colugo completion bash)     # in ~/.bashrc\n  colugo completion zsh > \"${fpath[1]}/_colugo\""},
		{name: "__complete", args: "topics|services", help: "print the names on the network, one a line, for the completion scripts",
			run: runComplete, flags: completeFlags, hidden: true},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: colugo COMMAND [ARGS] [FLAGS]")
	fmt.Fprintln(w)
	var tb table
	for _, c := range commands {
		if !c.hidden {
			tb.add(" ", c.name, c.args, c.help)
		}
	}
	_ = tb.write(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags of every command but bridge and completion: --discovery MECH (local, mdns, local,mdns, static:host:port,..., none; within what COLUGO_DISCOVERY allows),")
	fmt.Fprintln(w, "--json (machine-readable output), --timeout D, --wait D, -v.")
	fmt.Fprintln(w, "colugo help COMMAND (or colugo COMMAND --help) shows a command's flags and an example; colugo --version the build.")
	fmt.Fprintln(w, "Exit status: 0 success, 1 the operation failed (nothing found, remote error, timeout), 2 usage error.")
}

// commandHelp prints cmd's usage, an example and its flags.
func commandHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	flags := 0
	fs.VisitAll(func(*flag.Flag) { flags++ })
	line := "colugo " + cmd.name
	if cmd.args != "" {
		line += " " + cmd.args
	}
	if flags > 0 {
		line += " [FLAGS]"
	}
	fmt.Fprintf(w, "usage: %s\n  %s\n\nexample:\n  %s\n", line, cmd.help, cmd.example)
	if flags == 0 {
		return
	}
	fmt.Fprintln(w)
	if cmd.name == "bridge" {
		fmt.Fprintf(w, "flags (%s's; colugo bridge --help prints them when it is installed):\n", bridgeProgram)
	} else {
		fmt.Fprintln(w, "flags:")
	}
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// usageLine points at the help after a usage error.
func usageLine(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "usage: %s (colugo %s --help for the flags)\n", strings.TrimSpace("colugo "+cmd.name+" "+cmd.args), cmd.name)
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// newFlagSet makes cmd's flag set, with the flags of every command, bound
// to c.
func newFlagSet(cmd *command, c *cli, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("colugo "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if cmd.bare {
		if cmd.flags != nil {
			cmd.flags(fs, c)
		}
		fs.Usage = func() {}
		return fs
	}
	fs.StringVar(&c.discovery, "discovery", "", "discovery mechanisms, as in COLUGO_DISCOVERY, and no wider than it when it is set (default: the environment's, else local,mdns)")
	fs.BoolVar(&c.seed, "seed", false, "also see and reach nodes of the Python colugo (the seed), found with mDNS on its _colugo._tcp (COLUGO_DISCOVERY or --discovery must include mdns); pub and call then send VALUE's text as the seed does")
	fs.BoolVar(&c.json, "json", false, "print JSON (one object per line) instead of text")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "the longest to wait for what the command needs (a topic's publisher, a server and its reply); then exit 1")
	fs.DurationVar(&c.wait, "wait", 500*time.Millisecond, "the longest to wait for discovery before answering (host-local: at once; mDNS: its first 1s browse), and for subscribers (pub, play)")
	fs.BoolVar(&c.verbose, "v", false, "log the node's lifecycle to stderr")
	if cmd.flags != nil {
		cmd.flags(fs, c)
	}
	// flag calls Usage on -h too, where run prints the full help on
	// stdout; run prints the usage line after a flag error instead.
	fs.Usage = func() {}
	return fs
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help":
		usage(stdout)
		return exitOK
	case "--version", "-version", "version":
		return printVersion(stdout, slices.Contains(args[1:], "--json"))
	case "bridge":
		return runBridge(ctx, args[1:], stdout, stderr)
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return exitOK
		}
		cmd := findCommand(args[1])
		if cmd == nil || len(args) > 2 {
			fmt.Fprintf(stderr, "colugo help: unknown command %q\n\n", strings.Join(args[1:], " "))
			usage(stderr)
			return exitUsage
		}
		commandHelp(stdout, cmd, newFlagSet(cmd, &cli{}, stderr))
		return exitOK
	}
	cmd := findCommand(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "colugo: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr, cmd: cmd.name, tty: stderrIsTerminal(stderr)}
	fs := newFlagSet(cmd, c, stderr)
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		commandHelp(stdout, cmd, fs)
		return exitOK
	}
	if err != nil {
		usageLine(stderr, cmd) // after the problem, which flag has printed
		return exitUsage
	}
	if !cmd.bare && (c.timeout <= 0 || c.wait < 0) {
		fmt.Fprintf(stderr, "colugo %s: --timeout must be positive and --wait not negative\n", cmd.name)
		return exitUsage
	}
	if err := checkDiscoveryFlag(c.discovery); err != nil {
		fmt.Fprintf(stderr, "colugo %s: %v\n", cmd.name, err)
		return exitUsage
	}
	if err := cmd.run(c, fs, pos); err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return exitOK // interrupted by the user: a normal way to stop
		}
		fmt.Fprintf(stderr, "colugo %s: %v\n", cmd.name, strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		if errors.Is(err, errUsage) {
			usageLine(stderr, cmd)
			return exitUsage
		}
		return exitFail
	}
	return exitOK
}

// printVersion prints the module's version and the VCS state the binary
// was built from, as the Go toolchain recorded them.
func printVersion(w io.Writer, asJSON bool) int {
	v := versionInfo{Module: "github.com/colugo-go/colugo", Version: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Module, v.Version, v.Go = bi.Main.Path, bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs":
				v.VCS = s.Value
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if asJSON {
		_ = writeJSON(w, v)
		return exitOK
	}
	line := fmt.Sprintf("colugo %s %s", v.Module, v.Version)
	if v.Revision != "" {
		line += fmt.Sprintf(" (%s %s %s", v.VCS, v.Revision, v.Time)
		if v.Modified {
			line += ", modified"
		}
		line += ")"
	}
	if v.Go != "" {
		line += " " + v.Go
	}
	fmt.Fprintln(w, line)
	return exitOK
}

type versionInfo struct {
	Module   string `json:"module"`
	Version  string `json:"version"` // "(devel)" for a build from a work tree
	VCS      string `json:"vcs,omitempty"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"` // of the commit, RFC 3339
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go,omitempty"`
}

// stderrIsTerminal reports whether w is a terminal, where progress lines
// help a person and would only clutter a log or a pipe.
func stderrIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f.Fd())
}

// checkName validates a topic or service name the way the library does
// (wire.CheckName, which NewPublisher, Subscribe and Serve apply), so every
// command refuses the same names with the same words, before any network
// activity.
func checkName(kind, name string) error {
	if err := wire.CheckName(name); err != nil {
		return usageErr("invalid %s name %q: %s", kind, name, strings.TrimPrefix(err.Error(), wire.ErrName.Error()+": "))
	}
	return nil
}

// codecs are the codec names the CLI reads and writes.
var codecs = []string{"json", "protobuf", "raw"}

// checkCodec refuses a --codec the CLI does not know; "" (the topic's) is
// fine.
func checkCodec(name string) error {
	if name != "" && !slices.Contains(codecs, name) {
		return usageErr("unknown codec %q (--codec takes %s)", name, strings.Join(codecs, ", "))
	}
	return nil
}

// waiting prints, on a terminal only, a line on stderr when a wait for
// what has lasted a second, so a person knows the command is not stuck.
// The returned stop ends the wait; call it before printing anything else.
func (c *cli) waiting(what string) (stop func()) {
	if !c.tty {
		return func() {}
	}
	var mu sync.Mutex
	stopped := false
	t := time.AfterFunc(time.Second, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			fmt.Fprintf(c.stderr, "colugo %s: waiting up to %v for %s (--timeout)...\n", c.cmd, c.timeout, what)
		}
	})
	return func() {
		t.Stop()
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
}

// parseInterspersed parses flags that come before, between or after the
// positional arguments; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// checkDiscoveryFlag refuses a --discovery value that does not parse, or
// that reaches further than the operator's COLUGO_DISCOVERY allows (the
// scope order none < local < static seeds on loopback < mdns or other
// seeds; see colugo.Scope): the variable wins over every program choice,
// this flag included. A flag asking for the same or less is fine.
func checkDiscoveryFlag(flagVal string) error {
	if flagVal == "" {
		return nil
	}
	want, err := colugo.DiscoveryScope(flagVal)
	if err != nil {
		return fmt.Errorf("--discovery %q: %w", flagVal, err)
	}
	env := strings.TrimSpace(os.Getenv(colugo.EnvDiscovery))
	if env == "" {
		return nil
	}
	allowed, err := colugo.DiscoveryScope(env)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", colugo.EnvDiscovery, env, err)
	}
	if want > allowed {
		return fmt.Errorf("--discovery %q (scope %v) asks for more than %s=%q (scope %v) allows",
			flagVal, want, colugo.EnvDiscovery, env, allowed)
	}
	return nil
}

// node starts the command's node, honouring --discovery (checked by run
// against COLUGO_DISCOVERY).
func (c *cli) node() (*colugo.Node, error) {
	if c.discovery != "" {
		if err := os.Setenv(colugo.EnvDiscovery, c.discovery); err != nil {
			return nil, err
		}
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
	opts := []colugo.NodeOption{colugo.WithLogger(log), colugo.WithErrorHandler(c.reportOnce())}
	if c.seed {
		opts = append(opts, colugo.WithSeedCompat(colugo.SeedConfig{}))
	}
	n, err := colugo.NewNode("colugo-"+c.cmd, opts...)
	if err != nil && c.seed && errors.Is(err, colugo.ErrInvalidOption) {
		return nil, fmt.Errorf("starting a node with --seed (it needs mdns in %s or --discovery): %w", colugo.EnvDiscovery, err)
	}
	if err != nil {
		return nil, fmt.Errorf("starting a node: %w", err)
	}
	return n, nil
}

// reportOnce is the node's error handler: a message that does not decode,
// or comes in another codec or type than the command takes, is said on
// stderr once per topic, sender, codec and type (a person would otherwise
// see nothing arrive and no reason); a slow consumer once per episode, as
// the library reports it.
func (c *cli) reportOnce() func(error) {
	var mu sync.Mutex
	seen := map[colugo.DecodeError]bool{}
	return func(err error) {
		var de *colugo.DecodeError
		if errors.As(err, &de) {
			k := colugo.DecodeError{Topic: de.Topic, Sender: de.Sender, Codec: de.Codec, Type: de.Type}
			mu.Lock()
			first, full := !seen[k], len(seen) >= maxReported
			if first && !full {
				seen[k] = true
			}
			mu.Unlock()
			if !first || full {
				return // senders come from the network: what is remembered is bounded
			}
			fmt.Fprintf(c.stderr, "colugo %s: %v (said once for this topic, sender, codec and type)\n", c.cmd, err)
			return
		}
		if errors.Is(err, colugo.ErrSlowConsumer) {
			fmt.Fprintf(c.stderr, "colugo %s: %v\n", c.cmd, err)
		}
	}
}

// discoveryName is what discovery the node uses, for people, and what
// chose it.
func (c *cli) discoveryName() string {
	if c.discovery != "" {
		return c.discovery + " (--discovery)"
	}
	if v := strings.TrimSpace(os.Getenv(colugo.EnvDiscovery)); v != "" {
		return v + " (" + colugo.EnvDiscovery + ")"
	}
	return "local,mdns (default)"
}

// discover waits until n has looked once at the whole network
// (Node.WaitDiscovered), --wait at most: the host-local registry and
// static seeds answer at once, mDNS after its first browse (1 s), a peer
// slow to describe itself holds it up to --wait. With --seed it waits the
// whole --wait: the seed's records have no end to wait for. It returns
// c.ctx's error only.
func (c *cli) discover(n *colugo.Node) error {
	if c.seed {
		return sleep(c.ctx, c.wait)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.wait)
	defer cancel()
	_ = n.WaitDiscovered(ctx) // an error is --wait's end, c.ctx's or the node closing: the caller answers with what it has
	return c.ctx.Err()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// until polls cond every 10 ms until it holds, ctx ends, or d passed.
func until(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || sleep(ctx, 10*time.Millisecond) != nil {
			return false
		}
	}
}

// maxReported bounds the distinct (topic, sender, codec, type) mismatches
// reported, and so remembered: a peer can forge any number of senders.
const maxReported = 1024
