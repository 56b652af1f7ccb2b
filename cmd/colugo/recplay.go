package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/colugo-go/colugo"
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
	for _, name := range []string{from, to} {
		if err := checkName("topic", name); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		}
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
	for _, t := range topics {
		if err := checkName("topic", t); err != nil {
			return err
		}
	}
	switch c.compression {
	case "zstd", "lz4", "none":
	default:
		return usageErr("--compression %q: want zstd, lz4 or none", c.compression)
	}
	// The node before the file: a refused start (--seed without mdns, a
	// bad COLUGO_DISCOVERY) must not truncate an existing recording.
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	f, err := os.Create(c.output)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := record.NewWriter(f, record.WithCompression(c.compression))
	if err != nil {
		return usageErr("%v", err)
	}
	// A TOPIC with a * or ** segment is a pattern, as for echo (it matches
	// the topic of its own name too, so no --literal is needed here).
	var names []string
	var pats []colugo.Pattern
	for _, t := range topics {
		if p, ok := pattern(t, false); ok {
			pats = append(pats, p)
		} else {
			names = append(names, t)
		}
	}
	var opts []record.RecordOption
	if len(names) > 0 {
		opts = append(opts, record.Topics(names...))
	}
	if len(pats) > 0 {
		ps := make([]string, len(pats))
		for i, p := range pats {
			ps[i] = p.String()
		}
		opts = append(opts, record.Patterns(ps...))
	}
	if c.seed { // the seed publishers' topics too, as --seed's other tools see them
		opts = append(opts, record.WithSeed())
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
	if len(topics) > 0 {
		// Named topics of which no publisher appears within --timeout end
		// the recording: there would be nothing to record.
		wg.Go(func() {
			stop := c.waiting("a publisher of " + what)
			defer stop()
			if !until(ctx, c.timeout, func() bool { return len(rec.Progress()) > 0 }) && ctx.Err() == nil {
				cancel()
			}
		})
	}
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
	if runErr != nil && !(errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded)) {
		return runErr
	}
	if closeErr != nil {
		return closeErr
	}
	var missing, missingPats []string
	for _, t := range names {
		if !slices.ContainsFunc(prog, func(p record.TopicProgress) bool { return p.Topic == t }) {
			missing = append(missing, fmt.Sprintf("%q", t))
		}
	}
	for _, pat := range pats {
		if !slices.ContainsFunc(prog, func(p record.TopicProgress) bool { return pat.Match(p.Topic) }) {
			missingPats = append(missingPats, fmt.Sprintf("%q", pat.String()))
		}
	}
	var none []string
	if len(missing) > 0 {
		none = append(none, "topic "+strings.Join(missing, ", "))
	}
	if len(missingPats) > 0 {
		none = append(none, "a topic matching "+strings.Join(missingPats, ", "))
	}
	if len(none) > 0 {
		return fmt.Errorf("no publisher of %s found, nothing recorded of it (%s written with the rest)", strings.Join(none, " or of "), c.output)
	}
	return c.ctx.Err()
}

// recordTopic is one topic of record's --json summary.
type recordTopic struct {
	Topic      string   `json:"topic"`
	Codecs     []string `json:"codecs"`
	Publishers int      `json:"publishers"`
	Messages   uint64   `json:"messages"`
	Bytes      uint64   `json:"bytes"`
	Dropped    uint64   `json:"dropped"`
	Gaps       uint64   `json:"gaps"`
	History    int      `json:"history"`
}

// recordSummary is record's --json output: one line at the end.
type recordSummary struct {
	File     string        `json:"file"`
	Duration float64       `json:"duration_s"`
	Messages uint64        `json:"messages"`
	Bytes    uint64        `json:"bytes"`
	Dropped  uint64        `json:"dropped"`
	Gaps     uint64        `json:"gaps"`
	Topics   []recordTopic `json:"topics"`
}

// progress prints per-topic counts on stderr; the summary at the end goes
// to stdout as data (JSON with --json).
func (c *cli) progress(ps []record.TopicProgress, el time.Duration, final bool) {
	slices.SortFunc(ps, func(a, b record.TopicProgress) int { return strings.Compare(a.Topic, b.Topic) })
	if final && c.json {
		sum := recordSummary{File: c.output, Duration: el.Seconds(), Topics: []recordTopic{}}
		for _, p := range ps {
			sum.Topics = append(sum.Topics, recordTopic{p.Topic, p.Codecs, p.Publishers, p.Messages, p.Bytes, p.Dropped, p.Gaps, p.History})
			sum.Messages += p.Messages
			sum.Bytes += p.Bytes
			sum.Dropped += p.Dropped
			sum.Gaps += p.Gaps
		}
		_ = writeJSON(c.stdout, sum)
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

// mcapMagic starts every MCAP file.
const mcapMagic = "\x89MCAP0\r\n"

// playSummary is play's --json output: one line at the end, also when
// interrupted.
type playSummary struct {
	File      string  `json:"file"`
	Pass      int     `json:"pass"`
	Messages  uint64  `json:"messages"` // published in this pass
	Total     uint64  `json:"total"`    // to publish in one pass
	Bytes     uint64  `json:"bytes"`
	Position  float64 `json:"position_s"` // of the last message published, from the recording's start
	Duration  float64 `json:"duration_s"` // of the recording
	LastTopic string  `json:"last_topic,omitempty"`
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
	var filter *regexp.Regexp
	if c.topics != "" {
		re, err := regexp.Compile(c.topics)
		if err != nil {
			return usageErr("--topics: %v", err)
		}
		filter = re
		opts = append(opts, record.TopicFilter(re))
	}
	for _, r := range c.remap {
		opts = append(opts, record.Remap(r[0], r[1]))
	}
	file := args[0]
	f, err := record.Open(file) // a FIFO or a device: an error, not a hang
	if err != nil {
		return err
	}
	defer f.Close()
	var magic [len(mcapMagic)]byte
	if n, _ := io.ReadFull(f, magic[:]); string(magic[:n]) != mcapMagic {
		return fmt.Errorf("%s is not an MCAP file (it does not start with the MCAP magic)", file)
	}
	if filter != nil {
		// Play scans the file anyway; this scan first names what there is
		// when nothing matches, before a node starts.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		sum, err := record.Scan(f)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		var all []string
		for _, ch := range sum.Channels {
			if !slices.Contains(all, ch.Topic) {
				all = append(all, ch.Topic)
			}
		}
		if !slices.ContainsFunc(all, filter.MatchString) {
			slices.Sort(all)
			return fmt.Errorf("no topic of %s matches --topics %q (its topics: %s)", file, c.topics, strings.Join(all, ", "))
		}
	}
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
	fmt.Fprintf(c.stderr, "playing %s at rate %g\n", file, c.rate)
	p, err := record.Play(c.ctx, n, f, opts...)
	if errors.Is(err, record.ErrCorrupt) {
		return fmt.Errorf("%s: %w", file, err)
	}
	interrupted := err != nil && c.ctx.Err() != nil
	if err != nil && !interrupted {
		return err
	}
	if p.Pass == 0 {
		return err // interrupted before the first message (while waiting for subscribers)
	}
	c.playProgress(p)
	if c.json {
		if werr := writeJSON(c.stdout, playSummary{file, p.Pass, p.Messages, p.Total, p.Bytes,
			p.Position.Seconds(), p.Duration.Seconds(), p.LastTopic}); werr != nil {
			return werr
		}
	} else {
		fmt.Fprintf(c.stdout, "played %d messages (%s) in pass %d\n", p.Messages, size(float64(p.Bytes)), p.Pass)
	}
	return err
}

func (c *cli) playProgress(p record.PlayProgress) {
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Messages) / float64(p.Total)
	}
	fmt.Fprintf(c.stderr, "pass %d: %d/%d messages (%.0f%%), %v/%v of the recording, last %s\n", p.Pass, p.Messages, p.Total,
		pct, p.Position.Round(time.Millisecond), p.Duration.Round(time.Millisecond), p.LastTopic)
}
