package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/colugo-go/colugo/record"
)

// remaps is a repeatable --remap from=to flag.
type remaps [][2]string

func (r *remaps) String() string { return fmt.Sprint(*r) }

func (r *remaps) Set(s string) error {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return fmt.Errorf("want FROM=TO, not %q", s)
	}
	*r = append(*r, [2]string{from, to})
	return nil
}

func recordFlags(fs *flag.FlagSet, c *cli) {
	fs.StringVar(&c.output, "o", "", "the MCAP file to write (required)")
	fs.DurationVar(&c.every, "every", time.Second, "progress period on stderr (0: none)")
	fs.DurationVar(&c.duration, "for", 0, "stop after this long (0: until interrupted)")
	fs.StringVar(&c.compression, "compression", "zstd", "chunk compression: zstd, lz4 or none")
}

func playFlags(fs *flag.FlagSet, c *cli) {
	fs.Float64Var(&c.rate, "rate", 1, "speed factor: 2 twice as fast, 0 as fast as possible")
	fs.BoolVar(&c.loop, "loop", false, "play again and again until interrupted")
	fs.StringVar(&c.topics, "topics", "", "play only topics matching this regular expression")
	fs.Var(&c.remap, "remap", "publish topic FROM as TO (FROM=TO, repeatable)")
	fs.DurationVar(&c.every, "every", 500*time.Millisecond, "progress period on stderr (0: none)")
}

func runRecord(c *cli, _ *flag.FlagSet, topics []string) error {
	if c.output == "" {
		return usageErr("-o FILE.mcap is required")
	}
	f, err := os.Create(c.output)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := record.NewWriter(f, record.WithCompression(c.compression))
	if err != nil {
		return usageErr("%v", err)
	}
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	var opts []record.RecordOption
	if len(topics) > 0 {
		opts = append(opts, record.Topics(topics...))
	}
	rec, err := record.NewRecorder(n, w, opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	if c.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	what := "all topics"
	if len(topics) > 0 {
		what = strings.Join(topics, ", ")
	}
	fmt.Fprintf(c.stderr, "recording %s to %s (Ctrl-C to stop)\n", what, c.output)
	start := time.Now()
	var wg sync.WaitGroup
	if c.every > 0 {
		wg.Go(func() {
			t := time.NewTicker(c.every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					c.progress(rec.Progress(), time.Since(start), false)
				}
			}
		})
	}
	runErr := rec.Run(ctx)
	cancel()
	wg.Wait()
	closeErr := w.Close()
	if err := f.Close(); closeErr == nil {
		closeErr = err
	}
	prog := rec.Progress()
	c.progress(prog, time.Since(start), true)
	for _, t := range topics {
		if !slicesContainsTopic(prog, t) {
			fmt.Fprintf(c.stderr, "warning: topic %q: no publisher found, nothing recorded\n", t)
		}
	}
	if runErr != nil {
		return runErr
	}
	return closeErr
}

func slicesContainsTopic(ps []record.TopicProgress, t string) bool {
	for _, p := range ps {
		if p.Topic == t {
			return true
		}
	}
	return false
}

// progress prints per-topic counts on stderr; the summary at the end goes
// to stdout as data (JSON with --json).
func (c *cli) progress(ps []record.TopicProgress, el time.Duration, final bool) {
	if final && c.json {
		for _, p := range ps {
			_ = writeJSON(c.stdout, p)
		}
		return
	}
	out := c.stderr
	if final {
		out = c.stdout
		fmt.Fprintf(out, "recorded %v to %s\n", el.Round(time.Millisecond), c.output)
	}
	var tb table
	var msgs, bytes, dropped, gaps uint64
	for _, p := range ps {
		tb.add("", p.Topic, strings.Join(p.Codecs, ","), fmt.Sprintf("%d msgs", p.Messages),
			size(float64(p.Bytes)), fmt.Sprintf("dropped %d", p.Dropped), fmt.Sprintf("gaps %d", p.Gaps))
		msgs += p.Messages
		bytes += p.Bytes
		dropped += p.Dropped
		gaps += p.Gaps
	}
	tb.add("", "total", "", fmt.Sprintf("%d msgs", msgs), size(float64(bytes)), fmt.Sprintf("dropped %d", dropped), fmt.Sprintf("gaps %d", gaps))
	_ = tb.write(out)
}

func runPlay(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usageErr("play takes one file")
	}
	if c.rate < 0 {
		return usageErr("--rate must not be negative")
	}
	opts := []record.PlayOption{record.Rate(c.rate), record.WaitBefore(c.wait)}
	if c.loop {
		opts = append(opts, record.Loop())
	}
	if c.topics != "" {
		re, err := regexp.Compile(c.topics)
		if err != nil {
			return usageErr("--topics: %v", err)
		}
		opts = append(opts, record.TopicFilter(re))
	}
	for _, r := range c.remap {
		opts = append(opts, record.Remap(r[0], r[1]))
	}
	f, err := record.Open(args[0]) // a FIFO or a device: an error, not a hang
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	var last time.Time
	opts = append(opts, record.OnProgress(func(p record.PlayProgress) {
		if c.every <= 0 || time.Since(last) < c.every {
			return
		}
		last = time.Now()
		c.playProgress(p)
	}))
	fmt.Fprintf(c.stderr, "playing %s at rate %g\n", args[0], c.rate)
	p, err := record.Play(c.ctx, n, f, opts...)
	if errors.Is(err, record.ErrCorrupt) {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	if err != nil {
		return err
	}
	c.playProgress(p)
	if c.json {
		return writeJSON(c.stdout, p)
	}
	fmt.Fprintf(c.stdout, "played %d messages (%s) in pass %d\n", p.Messages, size(float64(p.Bytes)), p.Pass)
	return nil
}

func (c *cli) playProgress(p record.PlayProgress) {
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Messages) / float64(p.Total)
	}
	fmt.Fprintf(c.stderr, "pass %d: %d/%d messages (%.0f%%), %v/%v of the recording, last %s\n", p.Pass, p.Messages, p.Total,
		pct, p.Position.Round(time.Millisecond), p.Duration.Round(time.Millisecond), p.LastTopic)
}
