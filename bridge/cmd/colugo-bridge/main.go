// Command colugo-bridge joins this site's colugo network to others through
// NATS, forwarding what its configuration file lists and nothing else:
//
//	colugo-bridge --config site.yaml [--name bridge] [--stats 10s]
//
// The file format is bridge.ParseConfig's (YAML). The bridge is a colugo
// node on the site's default discovery (COLUGO_DISCOVERY chooses another);
// it prints its link state and counts on stderr every --stats interval
// and when it stops (Ctrl-C), and logs there the link lost and back and
// the JetStream failures it retries. `colugo bridge ARGS` runs this
// program.
//
// Exit codes: 0 stopped by a signal, 1 the bridge failed, 2 usage or
// configuration error.
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
	"syscall"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("colugo-bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "the bridge's configuration file (YAML; see the bridge package)")
	name := fs.String("name", "bridge", "the bridge's node name on the site")
	every := fs.Duration("stats", 30*time.Second, "print the link state and counts this often (0: only at the end)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: colugo-bridge --config FILE [--name NAME] [--stats D]")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nexample: colugo-bridge --config lab.yaml --stats 10s")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *config == "" || fs.NArg() != 0 || *every < 0 {
		fs.Usage()
		return 2
	}
	cfg, err := bridge.LoadConfig(*config)
	if err != nil {
		fmt.Fprintf(stderr, "colugo-bridge: %v\n", err)
		return 2
	}
	node, err := colugo.NewNode(*name)
	if err != nil {
		fmt.Fprintf(stderr, "colugo-bridge: %v\n", err)
		return 1
	}
	defer node.Close()
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	b, err := bridge.New(node, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "colugo-bridge: %v\n", err)
		if errors.Is(err, bridge.ErrConfig) {
			return 2
		}
		return 1
	}
	defer b.Close()
	fmt.Fprintf(stderr, "colugo-bridge: site %s, node %s (%s), NATS %v\n", cfg.Site, node.Name(), node.ID(), cfg.NATS.URLs)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var tick <-chan time.Time
	if *every > 0 {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			report(stderr, b.Stats())
		case err := <-done:
			report(stderr, b.Stats())
			if err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(stderr, "colugo-bridge: %v\n", err)
				return 1
			}
			return 0
		}
	}
}

func report(w io.Writer, s bridge.Stats) {
	fmt.Fprintf(w, "colugo-bridge: link %s (%d reconnects); export %d messages, %d requests, drops %+v; import %d messages, %d requests, drops %+v\n",
		s.Link, s.Reconnects, s.Export.Messages, s.Export.Requests, s.Export.Drops, s.Import.Messages, s.Import.Requests, s.Import.Drops)
	if s.JetStreamErrors > 0 {
		fmt.Fprintf(w, "colugo-bridge: %d failed JetStream attempts (streams, consumers, stores), retried; the last: %s\n", s.JetStreamErrors, s.JetStreamError)
	}
}
