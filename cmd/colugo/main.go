// Command colugo inspects and drives a colugo system from the shell: the
// live graph (nodes, topics, services), echo, hz and bw of a topic, pub and
// call, doctor, MCAP record and play, and a Foxglove WebSocket gateway
// (web). It uses only colugo's public API.
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
	"strings"
	"syscall"
	"time"

	"github.com/colugo-go/colugo"
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
	json      bool
	timeout   time.Duration
	wait      time.Duration
	verbose   bool

	// Flags of some commands.
	count       int
	codec       string
	every       time.Duration
	duration    time.Duration
	since       time.Duration
	last        bool
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
	token        string
	origins      *stringList
}

type command struct {
	name, args, help string
	run              func(c *cli, fs *flag.FlagSet, args []string) error
	flags            func(fs *flag.FlagSet, c *cli)
}

var commands []command // set by init: usage refers to it

func init() {
	commands = []command{
		{name: "nodes", help: "list the nodes on the network", run: runNodes},
		{name: "topics", help: "list topics with their rate, publishers and subscribers", run: runTopics, flags: topicsFlags},
		{name: "services", help: "list services with their servers", run: runServices},
		{name: "echo", args: "TOPIC", help: "print the messages published on TOPIC (--last: the latest kept)", run: runEcho, flags: echoFlags},
		{name: "hz", args: "TOPIC", help: "print the rate of TOPIC", run: runHz, flags: rateFlags},
		{name: "bw", args: "TOPIC", help: "print the bandwidth of TOPIC", run: runBw, flags: rateFlags},
		{name: "pub", args: "TOPIC VALUE", help: "publish the JSON VALUE on TOPIC", run: runPub, flags: pubFlags},
		{name: "call", args: "SERVICE VALUE", help: "call SERVICE with the JSON VALUE, print the reply", run: runCall, flags: callFlags},
		{name: "doctor", help: "check discovery, peers, codec and type agreement, losses", run: runDoctor, flags: doctorFlags},
		{name: "record", args: "-o FILE.mcap [TOPIC...]", help: "record topics (default: all) to an MCAP file", run: runRecord, flags: recordFlags},
		{name: "play", args: "FILE.mcap", help: "publish a recording again", run: runPlay, flags: playFlags},
		{name: "web", help: "serve the network to Foxglove, Lichtblick and browsers (Foxglove WebSocket)", run: runWeb, flags: webFlags},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: colugo COMMAND [ARGS] [FLAGS]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %-28s %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags of every command: --discovery MECH (local, mdns, local,mdns, static:host:port,..., none; within what COLUGO_DISCOVERY allows),")
	fmt.Fprintln(w, "--json (machine-readable output), --timeout D, --wait D, -v. Run colugo COMMAND -h for its flags.")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "colugo: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr, cmd: cmd.name}
	fs := flag.NewFlagSet("colugo "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.discovery, "discovery", "", "discovery mechanisms, as in COLUGO_DISCOVERY, and no wider than it when it is set (default: the environment's, else local,mdns)")
	fs.BoolVar(&c.json, "json", false, "print JSON (one object per line) instead of text")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "the longest to wait for what the command needs (a topic's publisher, a server, a reply)")
	fs.DurationVar(&c.wait, "wait", 500*time.Millisecond, "discovery window: how long to listen for peers before answering")
	fs.BoolVar(&c.verbose, "v", false, "log the node's lifecycle to stderr")
	if cmd.flags != nil {
		cmd.flags(fs, c)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: colugo %s %s\n  %s\n\nflags:\n", cmd.name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage // flag has printed the problem and the usage
	}
	if c.timeout <= 0 || c.wait < 0 {
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
			fmt.Fprintf(stderr, "usage: colugo %s %s (colugo %s -h for the flags)\n", cmd.name, cmd.args, cmd.name)
			return exitUsage
		}
		return exitFail
	}
	return exitOK
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
	n, err := colugo.NewNode("colugo-"+c.cmd, colugo.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("starting a node: %w", err)
	}
	return n, nil
}

// discoveryName is what discovery the node uses, for people.
func discoveryName() string {
	if v := strings.TrimSpace(os.Getenv(colugo.EnvDiscovery)); v != "" {
		return v + " (" + colugo.EnvDiscovery + ")"
	}
	return "local,mdns (default)"
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
