package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/record"
)

func echoFlags(fs *flag.FlagSet, c *cli) {
	fs.IntVar(&c.count, "count", 0, "stop after N messages (0: until interrupted)")
	fs.StringVar(&c.codec, "codec", "", "subscribe with this codec name instead of the publishers' (json, raw, protobuf)")
	fs.DurationVar(&c.duration, "for", 0, "stop after this long (0: until interrupted)")
}

func rateFlags(fs *flag.FlagSet, c *cli) {
	fs.IntVar(&c.count, "count", 0, "stop after N reports (0: until interrupted)")
	fs.StringVar(&c.codec, "codec", "", "subscribe with this codec name instead of the publishers'")
	fs.DurationVar(&c.every, "every", time.Second, "report period: each report covers the messages received in it")
	fs.DurationVar(&c.duration, "for", 0, "stop after this long (0: until interrupted)")
}

// received is one message as the CLI sees it.
type received struct {
	at    time.Time
	codec string
	typ   string
	data  []byte
}

// publishers waits up to --timeout for a peer publishing topic and returns
// the topic as each distinct codec publishes it.
func (c *cli) publishers(n *colugo.Node, topic string) ([]colugo.TopicInfo, error) {
	if c.codec != "" {
		return []colugo.TopicInfo{{Name: topic, Codec: c.codec}}, nil
	}
	var found []colugo.TopicInfo
	var known []string
	ok := until(c.ctx, c.timeout, func() bool {
		found, known = found[:0], known[:0]
		for _, p := range n.Peers() {
			for _, t := range p.Topics {
				if t.Name == topic && !slices.ContainsFunc(found, func(f colugo.TopicInfo) bool { return f.Codec == t.Codec }) {
					found = append(found, t)
				}
				if !slices.Contains(known, t.Name) {
					known = append(known, t.Name)
				}
			}
		}
		return len(found) > 0
	})
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	if !ok {
		slices.Sort(known)
		k := "none"
		if len(known) > 0 {
			k = strings.Join(known, ", ")
		}
		return nil, fmt.Errorf("no publisher of topic %q found within %v (published topics: %s)", topic, c.timeout, k)
	}
	return found, nil
}

// subscribeBytes subscribes to topic as published with codecName, taking
// the payloads as bytes.
func subscribeBytes(ctx context.Context, n *colugo.Node, topic, codecName string, buffer int) (<-chan []byte, error) {
	return colugo.Subscribe[[]byte](ctx, n, topic, colugo.WithCodec(record.Passthrough(codecName, "")), colugo.WithBuffer(buffer))
}

// stream subscribes to topic (once per codec its publishers use) and calls
// f with each message until ctx ends, --for passes, or f returns false.
func (c *cli) stream(topic string, f func(received) bool) error {
	if topic == "" {
		return usageErr("a topic is needed")
	}
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	infos, err := c.publishers(n, topic)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	if c.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	out := make(chan received, 1024)
	var wg sync.WaitGroup
	for _, t := range infos {
		ch, err := subscribeBytes(ctx, n, topic, t.Codec, 4096)
		if err != nil {
			return fmt.Errorf("subscribing to %q: %w", topic, err)
		}
		wg.Go(func() {
			for data := range ch {
				select {
				case out <- received{at: time.Now(), codec: t.Codec, typ: t.Type, data: data}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(out) }()
	defer func() {
		cancel()
		for range out { // let the forwarders finish
		}
	}()
	for m := range out {
		if !f(m) {
			return nil
		}
	}
	if c.ctx.Err() != nil {
		return c.ctx.Err()
	}
	return nil
}

func runEcho(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usageErr("echo takes one topic")
	}
	topic := args[0]
	seen := 0
	var werr error
	err := c.stream(topic, func(m received) bool {
		if c.json {
			werr = writeJSON(c.stdout, echoJSON(topic, m))
		} else {
			_, werr = fmt.Fprintln(c.stdout, render(m))
		}
		seen++
		return werr == nil && (c.count == 0 || seen < c.count)
	})
	if err == nil {
		err = werr
	}
	return err
}

type echoLine struct {
	Topic string          `json:"topic"`
	Time  time.Time       `json:"time"`
	Codec string          `json:"codec"`
	Type  string          `json:"type,omitempty"`
	Size  int             `json:"size"`
	Value json.RawMessage `json:"value,omitempty"` // json payloads
	Text  *string         `json:"text,omitempty"`  // raw payloads that are printable UTF-8
	Hex   string          `json:"hex,omitempty"`   // anything else
}

func echoJSON(topic string, m received) echoLine {
	l := echoLine{Topic: topic, Time: m.at, Codec: m.codec, Type: m.typ, Size: len(m.data)}
	switch {
	case m.codec == "json" && json.Valid(m.data):
		l.Value = m.data
	case m.codec == "raw" && printable(m.data):
		s := string(m.data)
		l.Text = &s
	default:
		l.Hex = hex.EncodeToString(m.data)
	}
	return l
}

// render prints a message for people: JSON compacted, raw as text when it
// is printable UTF-8, else (and for protobuf, which needs descriptors that
// $describe does not carry yet) its size and hex.
func render(m received) string {
	switch {
	case m.codec == "json":
		var b bytes.Buffer
		if json.Compact(&b, m.data) == nil {
			return b.String()
		}
	case m.codec == "raw" && printable(m.data):
		return string(m.data)
	}
	return fmt.Sprintf("<%s %s, %d bytes> %s", m.codec, m.typ, len(m.data), hex.EncodeToString(m.data))
}

func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// window accumulates one report period.
type window struct {
	start        time.Time
	last         time.Time // last arrival, carried to the next window
	intervals    []float64 // seconds
	n            int
	bytes        int
	minSz, maxSz int
}

func (w *window) add(m received) {
	if !w.last.IsZero() {
		w.intervals = append(w.intervals, m.at.Sub(w.last).Seconds())
	}
	w.last = m.at
	if w.n == 0 || len(m.data) < w.minSz {
		w.minSz = len(m.data)
	}
	w.maxSz = max(w.maxSz, len(m.data))
	w.n++
	w.bytes += len(m.data)
}

func (w *window) reset(now time.Time) {
	*w = window{start: now, last: w.last, intervals: w.intervals[:0]}
}

type hzReport struct {
	Topic    string  `json:"topic"`
	Messages int     `json:"messages"`
	Rate     float64 `json:"rate_hz"`
	Min      float64 `json:"min_s"`
	Max      float64 `json:"max_s"`
	Std      float64 `json:"std_s"`
}

func (w *window) hz(topic string) hzReport {
	r := hzReport{Topic: topic, Messages: w.n}
	if len(w.intervals) == 0 {
		return r
	}
	sum, lo, hi := 0.0, math.Inf(1), 0.0
	for _, d := range w.intervals {
		sum += d
		lo, hi = min(lo, d), max(hi, d)
	}
	mean := sum / float64(len(w.intervals))
	v := 0.0
	for _, d := range w.intervals {
		v += (d - mean) * (d - mean)
	}
	r.Min, r.Max, r.Std = lo, hi, math.Sqrt(v/float64(len(w.intervals)))
	if mean > 0 {
		r.Rate = 1 / mean
	}
	return r
}

type bwReport struct {
	Topic       string  `json:"topic"`
	Messages    int     `json:"messages"`
	BytesPerSec float64 `json:"bytes_per_s"`
	Mean        float64 `json:"mean_bytes"`
	Min         int     `json:"min_bytes"`
	Max         int     `json:"max_bytes"`
}

func (w *window) bw(topic string, now time.Time) bwReport {
	r := bwReport{Topic: topic, Messages: w.n, Min: w.minSz, Max: w.maxSz}
	if el := now.Sub(w.start).Seconds(); el > 0 {
		r.BytesPerSec = float64(w.bytes) / el
	}
	if w.n > 0 {
		r.Mean = float64(w.bytes) / float64(w.n)
	}
	return r
}

func runHz(c *cli, _ *flag.FlagSet, args []string) error { return c.rates(args, true) }
func runBw(c *cli, _ *flag.FlagSet, args []string) error { return c.rates(args, false) }

// rates reports hz or bw every --every. Times are receive times taken as
// the CLI reads each message: the publishers' send times in the header are
// not exposed by colugo's public API.
func (c *cli) rates(args []string, hz bool) error {
	if len(args) != 1 {
		return usageErr("takes one topic")
	}
	if c.every <= 0 {
		return usageErr("--every must be positive")
	}
	topic := args[0]
	var mu sync.Mutex
	w := window{start: time.Now()}
	reports := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	var werr error
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	go func() {
		defer close(done)
		t := time.NewTicker(c.every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				mu.Lock()
				var err error
				switch {
				case hz && c.json:
					err = writeJSON(c.stdout, w.hz(topic))
				case hz:
					r := w.hz(topic)
					_, err = fmt.Fprintf(c.stdout, "%s: rate %.2f Hz  min %s  max %s  std %s  n %d\n", topic, r.Rate,
						secs(r.Min), secs(r.Max), secs(r.Std), r.Messages)
				case c.json:
					err = writeJSON(c.stdout, w.bw(topic, now))
				default:
					r := w.bw(topic, now)
					_, err = fmt.Fprintf(c.stdout, "%s: %s/s  mean %s  min %s  max %s  n %d\n", topic, size(r.BytesPerSec),
						size(r.Mean), size(float64(r.Min)), size(float64(r.Max)), r.Messages)
				}
				w.reset(now)
				reports++
				full := c.count > 0 && reports >= c.count
				mu.Unlock()
				if err != nil || full {
					werr = err
					cancel()
					return
				}
			}
		}
	}()
	c2 := *c
	c2.ctx = ctx
	err := c2.stream(topic, func(m received) bool {
		mu.Lock()
		w.add(m)
		mu.Unlock()
		return true
	})
	close(stop)
	<-done
	if werr != nil {
		return werr
	}
	if err != nil && ctx.Err() != nil && c.ctx.Err() == nil {
		return nil // stopped after --count reports
	}
	return err
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

func size(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.2f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
