package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/colugo-go/colugo"
)

func echoFlags(fs *flag.FlagSet, c *cli) {
	fs.IntVar(&c.count, "count", 0, "stop after N messages (0: until interrupted)")
	fs.StringVar(&c.codec, "codec", "", "print only messages of this codec (json, raw, protobuf), waiting for a publisher that uses it")
	fs.DurationVar(&c.duration, "for", 0, "stop after this long (0: until interrupted)")
	fs.DurationVar(&c.since, "since", 0, "print only messages sent at most this long before they arrived (by the publisher's send time; 0: all)")
	fs.BoolVar(&c.literal, "literal", false, "take TOPIC as a name even if it has * segments (default: a TOPIC with a * or ** segment is a pattern)")
	fs.BoolVar(&c.last, "last", false, "print the topic's latest value that its publishers keep (colugo.WithHistory) and exit; not with --count, --for, --since, --codec")
}

func rateFlags(fs *flag.FlagSet, c *cli) {
	fs.IntVar(&c.count, "count", 0, "stop after N reports (0: until interrupted)")
	fs.StringVar(&c.codec, "codec", "", "count only messages of this codec (json, raw, protobuf), waiting for a publisher that uses it")
	fs.DurationVar(&c.every, "every", time.Second, "report period: each report covers the messages received in it")
	fs.DurationVar(&c.duration, "for", 0, "stop after this long (0: until interrupted)")
}

// received is one message as the CLI sees it.
type received struct {
	topic  string
	at     time.Time // when this node received it
	sent   time.Time // the publisher's send time (its clock)
	sender string    // publishing node's id
	seq    uint64    // the publisher's sequence number
	replay bool      // from the publisher's history (Received.Replayed)
	codec  string
	typ    string
	data   []byte
}

// publishers waits up to --timeout for a peer publishing topic (in
// --codec, when given) and returns the topic as each distinct codec
// publishes it.
func (c *cli) publishers(n *colugo.Node, topic string) ([]colugo.TopicInfo, error) {
	var found []colugo.TopicInfo
	stop := c.waiting(fmt.Sprintf("a publisher of topic %q", topic))
	ok := until(c.ctx, c.timeout, func() bool {
		found = slices.DeleteFunc(publishing(append(n.Peers(), seedPeers(n)...), topic), func(t colugo.TopicInfo) bool {
			return c.codec != "" && t.Codec != c.codec
		})
		return len(found) > 0
	})
	stop()
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	if !ok {
		return nil, c.noPublisher(n, topic)
	}
	return found, nil
}

// publishing returns topic as each distinct codec publishes it among peers.
func publishing(peers []colugo.PeerInfo, topic string) []colugo.TopicInfo {
	var found []colugo.TopicInfo
	for _, p := range peers {
		for _, t := range p.Topics {
			if t.Name == topic && !slices.ContainsFunc(found, func(f colugo.TopicInfo) bool { return f.Codec == t.Codec }) {
				found = append(found, t)
			}
		}
	}
	return found
}

// noPublisher is the error for a topic nobody publishes, naming the
// topics there are.
func (c *cli) noPublisher(n *colugo.Node, topic string) error {
	var known []string
	for _, p := range n.Peers() {
		for _, t := range p.Topics {
			if !slices.Contains(known, t.Name) {
				known = append(known, t.Name)
			}
		}
	}
	slices.Sort(known)
	k := "none"
	if len(known) > 0 {
		k = strings.Join(known, ", ")
	}
	if c.codec != "" {
		return fmt.Errorf("no publisher of topic %q with codec %s found within %v (published topics: %s)", topic, c.codec, c.timeout, k)
	}
	return fmt.Errorf("no publisher of topic %q found within %v (published topics: %s)", topic, c.timeout, k)
}

// subscribeAll subscribes to topic whatever codec its publishers use, with
// each message's header: one subscription, payloads as bytes.
func subscribeAll(ctx context.Context, n *colugo.Node, topic string, buffer int) (<-chan colugo.Received[[]byte], error) {
	return colugo.SubscribeReceived[[]byte](ctx, n, topic, colugo.WithAnyCodec(), colugo.WithBuffer(buffer))
}

// stream waits for a publisher of topic (see publishers), calls found (if
// not nil), subscribes to topic and calls f with each message (of --codec,
// if given) until ctx ends, --for passes, or f returns false. f gets the
// node too, for what peers advertise.
func (c *cli) stream(topic string, found func(), f func(*colugo.Node, received) bool) error {
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	if _, err := c.publishers(n, topic); err != nil {
		return err
	}
	if found != nil {
		found()
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	if c.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	ch, err := subscribeAll(ctx, n, topic, 4096)
	if err != nil {
		return fmt.Errorf("subscribing to %q: %w", topic, err)
	}
	skipped := map[[3]string]bool{}
	for m := range ch {
		if c.codec != "" && m.Codec != c.codec {
			// Said once per sender, codec and type: otherwise a person sees
			// nothing arrive and no reason.
			if k := [3]string{m.Sender, m.Codec, m.Type}; !skipped[k] {
				skipped[k] = true
				fmt.Fprintf(c.stderr, "colugo %s: skipping %s messages from %s in codec %s (type %s): --codec %s\n",
					c.cmd, topic, senderName(n, m.Sender), m.Codec, m.Type, c.codec)
			}
			continue
		}
		if !f(n, received{topic: topic, at: m.RecvTime, sent: m.SendTime, sender: m.Sender, seq: m.Seq, codec: m.Codec, typ: m.Type, data: m.Value}) {
			return nil
		}
	}
	return c.ctx.Err()
}

// decoder turns protobuf payloads into JSON through the descriptors that
// peers advertise, remembering per type what it found.
type decoder struct {
	known map[string]decoderEntry
}

type decoderEntry struct {
	md  protoreflect.MessageDescriptor
	err error
	at  time.Time
}

// descriptor returns the message descriptor of typ, looking among n's
// peers at most once a second while none is advertised.
func (d *decoder) descriptor(n *colugo.Node, typ string) (protoreflect.MessageDescriptor, error) {
	if d.known == nil {
		d.known = map[string]decoderEntry{}
	}
	e, ok := d.known[typ]
	if ok && (e.md != nil || time.Since(e.at) < time.Second) {
		return e.md, e.err
	}
	_, md, err := schemaFor(n.Peers(), typ)
	d.known[typ] = decoderEntry{md: md, err: err, at: time.Now()}
	return md, err
}

// value is m's payload as JSON when it can be: JSON payloads as they are,
// protobuf decoded through the advertised descriptors; nil otherwise.
func (d *decoder) value(n *colugo.Node, m received) (json.RawMessage, error) {
	switch m.codec {
	case "json":
		var b bytes.Buffer
		if err := json.Compact(&b, m.data); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	case "protobuf":
		md, err := d.descriptor(n, m.typ)
		if err != nil {
			return nil, err
		}
		return protoToJSON(md, m.data)
	}
	return nil, nil
}

func runEcho(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usageErr("echo takes one topic")
	}
	if c.since < 0 {
		return usageErr("--since must not be negative")
	}
	topic := args[0]
	if err := checkName("topic", topic); err != nil {
		return err
	}
	if err := checkCodec(c.codec); err != nil && !c.last {
		return err
	}
	pat, isPattern := pattern(topic, c.literal)
	if c.last {
		if isPattern {
			return usageErr("--last takes one topic, not a pattern (%s)", topic)
		}
		return c.echoLast(topic)
	}
	seen, stale := 0, 0
	var werr error
	var dec decoder
	warned := map[string]bool{}
	stream := c.stream
	if isPattern {
		stream = func(_ string, found func(), f func(*colugo.Node, received) bool) error {
			return c.streamPattern(pat, found, f)
		}
	}
	err := stream(topic, nil, func(n *colugo.Node, m received) bool {
		if c.since > 0 && m.at.Sub(m.sent) > c.since {
			stale++
			return true
		}
		v, derr := dec.value(n, m)
		if derr != nil && !warned[m.typ] {
			warned[m.typ] = true
			fmt.Fprintf(c.stderr, "colugo echo: %s: cannot decode %s %s: %v (printing hex)\n", topic, m.codec, m.typ, derr)
		}
		switch {
		case c.json:
			werr = writeJSON(c.stdout, echoJSON(m.topic, m, v))
		case isPattern: // which topic it came on
			_, werr = fmt.Fprintf(c.stdout, "%s: %s\n", m.topic, render(m, v))
		default:
			_, werr = fmt.Fprintln(c.stdout, render(m, v))
		}
		seen++
		return werr == nil && (c.count == 0 || seen < c.count)
	})
	if stale > 0 {
		fmt.Fprintf(c.stderr, "colugo echo: skipped %d message(s) sent more than %v before they arrived (--since)\n", stale, c.since)
	}
	if err == nil {
		err = werr
	}
	return err
}

// echoLast prints the newest value topic's publishers keep
// (colugo.LatestReceived, across their codecs), waiting up to --timeout
// for a publisher and its answer.
func (c *cli) echoLast(topic string) error {
	if c.count != 0 || c.duration != 0 || c.since != 0 || c.codec != "" {
		return usageErr("--last prints one value: not with --count, --for, --since or --codec")
	}
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	stop := c.waiting(fmt.Sprintf("the latest value of topic %q", topic))
	m, err := colugo.LatestReceived[[]byte](ctx, n, topic, colugo.WithAnyCodec())
	stop()
	switch {
	case errors.Is(err, colugo.ErrNoValue):
		return fmt.Errorf("no publisher of topic %q keeps a value (%s); a publisher keeps its latest with colugo.WithHistory",
			topic, keepers(n.Peers(), topic))
	case err != nil && c.ctx.Err() != nil:
		return c.ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		if len(publishing(n.Peers(), topic)) == 0 {
			return c.noPublisher(n, topic)
		}
		return fmt.Errorf("no answer from the publishers of topic %q within %v", topic, c.timeout)
	case err != nil:
		return fmt.Errorf("latest value of %q: %w", topic, err)
	}
	r := received{at: m.RecvTime, sent: m.SendTime, sender: m.Sender, seq: m.Seq, replay: m.Replayed,
		codec: m.Codec, typ: m.Type, data: m.Value}
	var dec decoder
	v, derr := dec.value(n, r)
	if derr != nil {
		fmt.Fprintf(c.stderr, "colugo echo: %s: cannot decode %s %s: %v (printing hex)\n", topic, r.codec, r.typ, derr)
	}
	if c.json {
		return writeJSON(c.stdout, echoJSON(topic, r, v))
	}
	_, err = fmt.Fprintln(c.stdout, render(r, v))
	return err
}

// keepers describes topic's publishers and the history each keeps, as
// their $describe says: "camera keeps none, lidar keeps 1".
func keepers(peers []colugo.PeerInfo, topic string) string {
	var out []string
	for _, p := range peers {
		for _, t := range p.Topics {
			if t.Name != topic {
				continue
			}
			k := p.Name + " keeps none"
			if t.History > 0 {
				k = fmt.Sprintf("%s keeps %d but has published nothing", p.Name, t.History)
			}
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	if len(out) == 0 {
		return "publishers: none described"
	}
	return "publishers: " + strings.Join(out, ", ")
}

type echoLine struct {
	Topic    string          `json:"topic"`
	Time     time.Time       `json:"time"`      // received
	SendTime time.Time       `json:"send_time"` // publisher's clock
	Sender   string          `json:"sender"`
	Seq      uint64          `json:"seq"`
	Replayed bool            `json:"replayed,omitempty"` // from the publisher's history (echo --last)
	Codec    string          `json:"codec"`
	Type     string          `json:"type,omitempty"`
	Size     int             `json:"size"`
	Value    json.RawMessage `json:"value,omitempty"` // json payloads, protobuf decoded through its descriptors
	Text     *string         `json:"text,omitempty"`  // raw payloads that are printable UTF-8
	Hex      string          `json:"hex,omitempty"`   // anything else
}

func echoJSON(topic string, m received, v json.RawMessage) echoLine {
	l := echoLine{Topic: topic, Time: m.at, SendTime: m.sent, Sender: m.sender, Seq: m.seq, Replayed: m.replay,
		Codec: m.codec, Type: m.typ, Size: len(m.data)}
	switch {
	case v != nil:
		l.Value = v
	case m.codec == "raw" && printable(m.data):
		s := string(m.data)
		l.Text = &s
	default:
		l.Hex = hex.EncodeToString(m.data)
	}
	return l
}

// render prints a message for people: JSON (and protobuf decoded through
// its descriptors) compacted, raw as text when it is printable UTF-8, else
// its codec, type, size and hex.
func render(m received, v json.RawMessage) string {
	switch {
	case v != nil:
		return string(v)
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

// window accumulates one report period of a topic. Intervals come from
// the publishers' send times (the header's), between consecutive sequence
// numbers of the same publisher: what the publisher did, unaffected by
// how the transport batched the messages, by other publishers on the
// topic, or by messages lost on the way (a gap breaks the chain). Receive
// times give the secondary, arrival figures.
type window struct {
	start        time.Time
	last         map[string]track // per sender, carried to the next window
	per          map[string]*senderWindow
	sendIv       []float64 // seconds, all senders
	recvIv       []float64
	n            int
	bytes        int
	minSz, maxSz int
	gaps         uint64
	latSum       float64
}

// track is the last message seen from one sender.
type track struct {
	seq        uint64
	sent, recv time.Time
}

type senderWindow struct {
	intervals int
	sum       float64 // of send intervals, seconds
	msgs      int
	bytes     int
}

func newWindow(now time.Time) *window {
	return &window{start: now, last: map[string]track{}, per: map[string]*senderWindow{}}
}

func (w *window) add(m received) {
	sw := w.per[m.sender]
	if sw == nil {
		sw = &senderWindow{}
		w.per[m.sender] = sw
	}
	if t, ok := w.last[m.sender]; ok {
		switch {
		case m.seq == t.seq+1:
			d := m.sent.Sub(t.sent).Seconds()
			w.sendIv = append(w.sendIv, d)
			w.recvIv = append(w.recvIv, m.at.Sub(t.recv).Seconds())
			sw.intervals++
			sw.sum += d
		case m.seq > t.seq+1:
			w.gaps += m.seq - t.seq - 1
		}
	}
	w.last[m.sender] = track{m.seq, m.sent, m.at}
	sw.msgs++
	sw.bytes += len(m.data)
	if w.n == 0 || len(m.data) < w.minSz {
		w.minSz = len(m.data)
	}
	w.maxSz = max(w.maxSz, len(m.data))
	w.n++
	w.bytes += len(m.data)
	w.latSum += m.at.Sub(m.sent).Seconds()
}

func (w *window) reset(now time.Time) {
	*w = window{start: now, last: w.last, per: map[string]*senderWindow{}, sendIv: w.sendIv[:0], recvIv: w.recvIv[:0]}
}

// rate is the topic's publishing rate: the sum over publishers of one over
// their mean send interval; 0 when no publisher sent two consecutive
// messages in the window.
func (w *window) rate() float64 {
	r := 0.0
	for _, s := range w.per {
		if s.intervals > 0 && s.sum > 0 {
			r += float64(s.intervals) / s.sum
		}
	}
	return r
}

// bandwidth is the publishers' byte rate: each one's rate times its mean
// message size, summed; 0 when rate is.
func (w *window) bandwidth() float64 {
	b := 0.0
	for _, s := range w.per {
		if s.intervals > 0 && s.sum > 0 && s.msgs > 0 {
			b += float64(s.intervals) / s.sum * float64(s.bytes) / float64(s.msgs)
		}
	}
	return b
}

type hzReport struct {
	Topic      string  `json:"topic"`
	Messages   int     `json:"messages"`
	Publishers int     `json:"publishers"`
	Rate       float64 `json:"rate_hz"` // from send times
	Min        float64 `json:"min_s"`
	Max        float64 `json:"max_s"`
	Std        float64 `json:"std_s"`
	RecvRate   float64 `json:"recv_rate_hz"` // messages received / window
	RecvMin    float64 `json:"recv_min_s"`
	RecvMax    float64 `json:"recv_max_s"`
	RecvStd    float64 `json:"recv_std_s"`
	Latency    float64 `json:"latency_s"` // mean receive - send time (clocks of two hosts when remote)
	Gaps       uint64  `json:"gaps"`
}

// spread returns the min, max and standard deviation of xs.
func spread(xs []float64) (lo, hi, std float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	sum := 0.0
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		sum += x
		lo, hi = min(lo, x), max(hi, x)
	}
	mean := sum / float64(len(xs))
	v := 0.0
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	return lo, hi, math.Sqrt(v / float64(len(xs)))
}

func (w *window) hz(topic string, now time.Time) hzReport {
	r := hzReport{Topic: topic, Messages: w.n, Publishers: len(w.per), Rate: w.rate(), Gaps: w.gaps}
	r.Min, r.Max, r.Std = spread(w.sendIv)
	r.RecvMin, r.RecvMax, r.RecvStd = spread(w.recvIv)
	if el := now.Sub(w.start).Seconds(); el > 0 {
		r.RecvRate = float64(w.n) / el
	}
	if w.n > 0 {
		r.Latency = w.latSum / float64(w.n)
	}
	return r
}

type bwReport struct {
	Topic        string  `json:"topic"`
	Messages     int     `json:"messages"`
	BytesPerSec  float64 `json:"bytes_per_s"` // publishers' rate (send times) times mean size
	Mean         float64 `json:"mean_bytes"`
	Min          int     `json:"min_bytes"`
	Max          int     `json:"max_bytes"`
	RecvBytesSec float64 `json:"recv_bytes_per_s"` // bytes received / window
}

func (w *window) bw(topic string, now time.Time) bwReport {
	r := bwReport{Topic: topic, Messages: w.n, Min: w.minSz, Max: w.maxSz, BytesPerSec: w.bandwidth()}
	if el := now.Sub(w.start).Seconds(); el > 0 {
		r.RecvBytesSec = float64(w.bytes) / el
	}
	if w.n > 0 {
		r.Mean = float64(w.bytes) / float64(w.n)
	}
	return r
}

func runHz(c *cli, _ *flag.FlagSet, args []string) error { return c.rates(args, true) }
func runBw(c *cli, _ *flag.FlagSet, args []string) error { return c.rates(args, false) }

// rates reports hz or bw every --every.
func (c *cli) rates(args []string, hz bool) error {
	if len(args) != 1 {
		return usageErr("takes one topic")
	}
	if c.every <= 0 {
		return usageErr("--every must be positive")
	}
	topic := args[0]
	if err := checkName("topic", topic); err != nil {
		return err
	}
	if err := checkCodec(c.codec); err != nil {
		return err
	}
	var mu sync.Mutex
	w := newWindow(time.Now())
	reports := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	var werr error
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	report := func() {
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
					err = writeJSON(c.stdout, w.hz(topic, now))
				case hz:
					err = writeHz(c.stdout, w.hz(topic, now))
				case c.json:
					err = writeJSON(c.stdout, w.bw(topic, now))
				default:
					r := w.bw(topic, now)
					_, err = fmt.Fprintf(c.stdout, "%s: %s/s  mean %s  min %s  max %s  n %d  | received %s/s\n", topic, size(r.BytesPerSec),
						size(r.Mean), size(float64(r.Min)), size(float64(r.Max)), r.Messages, size(r.RecvBytesSec))
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
	}
	c2 := *c
	c2.ctx = ctx
	started := false
	// The reports start once a publisher is found: a topic nobody
	// publishes fails after --timeout, as with echo, whatever --count.
	found := func() {
		mu.Lock()
		w = newWindow(time.Now())
		mu.Unlock()
		started = true
		go report()
	}
	err := c2.stream(topic, found, func(_ *colugo.Node, m received) bool {
		mu.Lock()
		w.add(m)
		mu.Unlock()
		return true
	})
	close(stop)
	if started {
		<-done
	}
	if werr != nil {
		return werr
	}
	if err != nil && ctx.Err() != nil && c.ctx.Err() == nil {
		return nil // stopped after --count reports
	}
	return err
}

func writeHz(out io.Writer, r hzReport) error {
	pubs := ""
	if r.Publishers > 1 {
		pubs = fmt.Sprintf(" (%d publishers)", r.Publishers)
	}
	_, err := fmt.Fprintf(out, "%s: rate %s Hz%s  min %s  max %s  std %s  n %d  | arrivals %s Hz  std %s  latency %s  gaps %d\n",
		r.Topic, hzString(r.Rate), pubs, secs(r.Min), secs(r.Max), secs(r.Std), r.Messages,
		hzString(r.RecvRate), secs(r.RecvStd), secs(r.Latency), r.Gaps)
	return err
}

// hzString prints a rate with at least four significant digits.
func hzString(r float64) string {
	switch {
	case r >= 1000:
		return fmt.Sprintf("%.1f", r)
	case r >= 10:
		return fmt.Sprintf("%.2f", r)
	}
	return fmt.Sprintf("%.3f", r)
}

func secs(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < 0 {
		d = -d
		return "-" + d.Round(time.Microsecond).String()
	}
	if d < time.Millisecond {
		return d.Round(100 * time.Nanosecond).String()
	}
	return d.Round(time.Microsecond).String()
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

// senderName is the name of the peer whose node id is id, with the id, or
// the id alone when the peer is not known.
func senderName(n *colugo.Node, id string) string {
	for _, p := range n.Peers() {
		if p.ID == id {
			return p.Name + " (" + id + ")"
		}
	}
	return id
}

// pattern reports whether name is a topic pattern (a "*" or "**" segment,
// and not --literal), and compiles it.
func pattern(name string, literal bool) (colugo.Pattern, bool) {
	if literal || !slices.ContainsFunc(strings.Split(name, "/"), func(s string) bool { return s == "*" || s == "**" }) {
		return colugo.Pattern{}, false
	}
	p, err := colugo.ParsePattern(name)
	return p, err == nil
}

// streamPattern is stream for a pattern: it waits up to --timeout for a
// peer (or, with --seed, a seed node) publishing a matching topic (in
// --codec, when given), then
// subscribes to every matching topic, now and as they appear.
func (c *cli) streamPattern(pat colugo.Pattern, found func(), f func(*colugo.Node, received) bool) error {
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	stop := c.waiting(fmt.Sprintf("a publisher of a topic matching %q", pat))
	ok := until(c.ctx, c.timeout, func() bool {
		for _, p := range append(n.Peers(), seedPeers(n)...) {
			for _, t := range p.Topics {
				if pat.Match(t.Name) && (c.codec == "" || t.Codec == c.codec) {
					return true
				}
			}
		}
		return false
	})
	stop()
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if !ok {
		with := ""
		if c.codec != "" {
			with = " with codec " + c.codec
		}
		return fmt.Errorf("no publisher of a topic matching %q%s found within %v", pat, with, c.timeout)
	}
	if found != nil {
		found()
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	if c.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	ch, err := colugo.SubscribePatternReceived[[]byte](ctx, n, pat.String(), colugo.WithAnyCodec(), colugo.WithBuffer(4096))
	if err != nil {
		return fmt.Errorf("subscribing to %q: %w", pat, err)
	}
	for m := range ch {
		if c.codec != "" && m.Codec != c.codec {
			continue
		}
		if !f(n, received{topic: m.Topic, at: m.RecvTime, sent: m.SendTime, sender: m.Sender, seq: m.Seq, replay: m.Replayed,
			codec: m.Codec, typ: m.Type, data: m.Value}) {
			return nil
		}
	}
	return c.ctx.Err()
}
