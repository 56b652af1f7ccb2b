package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// PlayOption configures Play.
type PlayOption interface{ applyPlay(*playConfig) }

type playConfig struct {
	rate     float64
	loop     bool
	filter   *regexp.Regexp
	remap    map[string]string
	progress func(PlayProgress)
	wait     time.Duration
	read     readConfig
}

type playFunc func(*playConfig)

func (f playFunc) applyPlay(c *playConfig) { f(c) }

// Rate scales the recorded timing: 2 plays twice as fast, 0.5 at half
// speed, 0 as fast as possible. Default: 1. A negative rate makes Play
// fail.
func Rate(x float64) PlayOption { return playFunc(func(c *playConfig) { c.rate = x }) }

// Loop plays the recording again and again until ctx ends. Default: once.
func Loop() PlayOption { return playFunc(func(c *playConfig) { c.loop = true }) }

// TopicFilter plays only the topics (as recorded, before remapping) that re
// matches. Default: all.
func TopicFilter(re *regexp.Regexp) PlayOption {
	return playFunc(func(c *playConfig) { c.filter = re })
}

// Remap publishes the recorded topic from as to. Default: none.
func Remap(from, to string) PlayOption {
	return playFunc(func(c *playConfig) {
		if c.remap == nil {
			c.remap = map[string]string{}
		}
		c.remap[from] = to
	})
}

// OnProgress calls f after each message published, from Play's goroutine;
// f must be quick. Default: none.
func OnProgress(f func(PlayProgress)) PlayOption {
	return playFunc(func(c *playConfig) { c.progress = f })
}

// WaitBefore makes Play wait, after creating its publishers and before the
// first message, until every topic it plays has a subscriber
// (Publisher.WaitSubscribers), or for at most d: what is published before
// a subscriber connects is not delivered to it (unless the topic was
// recorded with history and the subscriber asks for it).
// A topic nobody subscribes to makes Play wait the whole of d. Subscribers
// that were there before Play's publishers announce themselves at once but
// connect only once their node has discovered Play's (host-local discovery
// polls every 100 ms), so Play also waits until half of d has passed.
// Default: 0, no wait.
func WaitBefore(d time.Duration) PlayOption {
	return playFunc(func(c *playConfig) { c.wait = d })
}

// PlayProgress reports how far playback is.
type PlayProgress struct {
	Pass      int           // 1 for the first pass, 2 for the first repetition with Loop, ...
	Messages  uint64        // published in this pass
	Total     uint64        // messages to play in one pass
	Bytes     uint64        // payload bytes published in this pass
	Position  time.Duration // log time of the last message published, from the start of the recording
	Duration  time.Duration // of the recording
	LastTopic string        // the topic published last (after remapping)
}

// Play publishes the recording in src (from its start) from node: each message on its topic
// (remapped), with its recorded codec and type names, at its recorded time
// offset divided by the rate. It first scans the whole file, so a corrupt
// or truncated file fails before anything is published (an error wrapping
// ErrCorrupt). It returns when the recording has been played (once, or
// when ctx ends with Loop), with ctx's error if ctx ended first. Play
// blocks; it closes the publishers it created before returning.
//
// A topic recorded with history (Channel.History, from the MetaHistory
// channel metadata) is published with colugo.WithHistory of that depth,
// so subscribers that join during the replay and ask for history
// (colugo.WithLastValue) get what was published before they came, as from
// the original publishers. The history goes when Play returns and closes
// its publishers.
func Play(ctx context.Context, node *colugo.Node, src io.ReadSeeker, opts ...PlayOption) (PlayProgress, error) {
	cfg := playConfig{rate: 1, read: defaultReadConfig()}
	for _, o := range opts {
		if o != nil {
			o.applyPlay(&cfg)
		}
	}
	if cfg.rate < 0 {
		return PlayProgress{}, fmt.Errorf("%w: negative rate %v", colugo.ErrInvalidOption, cfg.rate)
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return PlayProgress{}, fmt.Errorf("record: the recording must be seekable (a regular file): %w", err)
	}
	sum, err := scan(src, cfg.read)
	if err != nil {
		return PlayProgress{}, err
	}
	type pubKey struct{ topic, codec, typ string }
	pubs := map[pubKey]*colugo.Publisher[[]byte]{}
	defer func() {
		for _, p := range pubs {
			_ = p.Close()
		}
	}()
	var total uint64
	counted := map[string]bool{}
	history := map[pubKey]int{} // a topic recorded on several channels (its depth grew) gets the greatest
	for _, ch := range sum.Channels {
		if cfg.filter == nil || cfg.filter.MatchString(ch.Topic) {
			k := pubKey{cfg.topic(ch.Topic), ch.Codec, ch.Type}
			history[k] = max(history[k], ch.History)
		}
	}
	for _, ch := range sum.Channels {
		if cfg.filter != nil && !cfg.filter.MatchString(ch.Topic) {
			continue
		}
		k := pubKey{cfg.topic(ch.Topic), ch.Codec, ch.Type}
		if pubs[k] == nil {
			opts := []colugo.PublisherOption{colugo.WithCodec(codec.PassthroughSchema(ch.Codec, ch.Type, ch.Schema))}
			if h := history[k]; h > 0 {
				opts = append(opts, colugo.WithHistory(h))
			}
			p, err := colugo.NewPublisher[[]byte](node, k.topic, opts...)
			if err != nil {
				return PlayProgress{}, fmt.Errorf("record: publishing %q: %w", k.topic, err)
			}
			pubs[k] = p
		}
		if !counted[ch.Topic] {
			counted[ch.Topic] = true
			total += sum.Counts[ch.Topic]
		}
	}
	if cfg.wait > 0 {
		if err := waitSubscribers(ctx, pubs, cfg.wait); err != nil {
			return PlayProgress{}, err
		}
	}
	var prog PlayProgress
	for pass := 1; ; pass++ {
		prog = PlayProgress{Pass: pass, Total: total, Duration: sum.Duration()}
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return prog, fmt.Errorf("record: rewinding: %w", err)
		}
		rd, err := newReader(src, cfg.read)
		if err != nil {
			return prog, err
		}
		start := time.Now()
		err = func() error {
			defer rd.Close()
			for {
				m, ch, err := rd.Next()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err // the file changed since Scan
				}
				if cfg.filter != nil && !cfg.filter.MatchString(ch.Topic) {
					continue
				}
				offset := m.LogTime.Sub(sum.Start)
				if cfg.rate > 0 {
					if err := sleepCtx(ctx, time.Until(start.Add(time.Duration(float64(offset)/cfg.rate)))); err != nil {
						return err
					}
				} else if err := ctx.Err(); err != nil {
					return err
				}
				topic := cfg.topic(ch.Topic)
				p := pubs[pubKey{topic, ch.Codec, ch.Type}]
				if p == nil {
					return fmt.Errorf("%w: channel %q appeared after the scan", ErrCorrupt, ch.Topic)
				}
				// The transport keeps the payload after Publish returns (it
				// queues it per subscriber), and the reader reuses its buffer.
				if err := p.Publish(ctx, bytes.Clone(m.Data)); err != nil {
					return fmt.Errorf("record: publishing %q: %w", topic, err)
				}
				prog.Messages++
				prog.Bytes += uint64(len(m.Data))
				prog.Position = offset
				prog.LastTopic = topic
				if cfg.progress != nil {
					cfg.progress(prog)
				}
			}
		}()
		if err != nil || !cfg.loop {
			return prog, err
		}
		if total == 0 {
			<-ctx.Done() // nothing to loop over
			return prog, ctx.Err()
		}
	}
}

// waitSubscribers waits until every publisher in pubs has a subscriber and
// half of d has passed, or d passes (not an error), or ctx ends (its error).
func waitSubscribers[K comparable](ctx context.Context, pubs map[K]*colugo.Publisher[[]byte], d time.Duration) error {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for _, p := range pubs {
		if err := p.WaitSubscribers(wctx, 1); err != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return sleepCtx(ctx, d/2-time.Since(start))
}

func (c *playConfig) topic(t string) string {
	if to, ok := c.remap[t]; ok {
		return to
	}
	return t
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
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
