package bench

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/colugo-go/colugo/codec"
)

// webMinMetrics is the fewest measured messages (or gateway starts) for
// which BenchmarkWeb reports its metrics: CI's -benchtime 1x makes a
// smoke run of one, whose rate and percentiles would mean nothing.
const webMinMetrics = 20

// BenchmarkWeb runs issue 15's gateway targets (see cmd/web, which prints
// them against the targets): one op is one paced message of the stream
// (ns/op is then the stream's period: 33 ms, 1 ms) or one gateway start.
// Metrics (with at least webMinMetrics ops): hz, the slowest client's
// rate; missing, measured messages some client never got; ws-p50-ms,
// ws-p99-ms, the slowest client's latencies; direct-p50-ms, the direct
// colugo subscriber's; added-p50-ms, the difference of the p50s;
// paired-p50-ms, the p50 of a message's arrival at the slowest client
// minus at the direct subscriber; for
// starts, advertise-ms, discovery-ms and over-discovery-ms (medians).
func BenchmarkWeb(b *testing.B) {
	for _, s := range []WebStream{WebProto, WebJSON} {
		b.Run(s.Name, func(b *testing.B) {
			rig, err := NewWebRig(s)
			if err != nil {
				b.Fatal(err)
			}
			defer rig.Close()
			b.ResetTimer()
			res, err := rig.Run(b.N)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if b.N < webMinMetrics {
				return
			}
			hz, missing := res.Clients[0].Rate, 0
			var p50, p99 time.Duration
			for _, c := range res.Clients {
				hz, missing = min(hz, c.Rate), max(missing, c.Missing)
				p50, p99 = max(p50, c.P50), max(p99, c.P99)
			}
			b.ReportMetric(hz, "hz")
			b.ReportMetric(float64(missing), "missing")
			b.ReportMetric(msOf(p50), "ws-p50-ms")
			b.ReportMetric(msOf(p99), "ws-p99-ms")
			b.ReportMetric(msOf(res.Direct.P50), "direct-p50-ms")
			b.ReportMetric(msOf(res.AddedP50()), "added-p50-ms")
			b.ReportMetric(msOf(res.PairedP50), "paired-p50-ms")
		})
	}
	b.Run("start", func(b *testing.B) {
		rig, err := NewWebStartRig()
		if err != nil {
			b.Fatal(err)
		}
		defer rig.Close()
		var disc, adv, over []time.Duration
		b.ResetTimer()
		for range b.N {
			s, err := rig.Start()
			if err != nil {
				b.Fatal(err)
			}
			disc, adv, over = append(disc, s.Discovery), append(adv, s.Advertise), append(over, s.Advertise-s.Discovery)
		}
		b.StopTimer()
		if b.N < webMinMetrics {
			return
		}
		b.ReportMetric(msOf(quantiles(adv).P50), "advertise-ms")
		b.ReportMetric(msOf(quantiles(disc).P50), "discovery-ms")
		b.ReportMetric(msOf(quantiles(over).P50), "over-discovery-ms")
	})
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestWebSampleSize: the JSON stream's messages encode (colugo's default
// codec) to exactly the stream's size, whatever the number of digits.
func TestWebSampleSize(t *testing.T) {
	t.Parallel()
	pad := strings.Repeat("x", WebJSON.Size)
	for _, seq := range []int64{0, 9, 10, 999, 123456, 1 << 40} {
		b, err := codec.JSON{}.Marshal(webSampleOf(seq, WebJSON.Size, pad))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != WebJSON.Size {
			t.Errorf("seq %d: %d bytes, want %d: %.40s…", seq, len(b), WebJSON.Size, b)
		}
	}
}

// TestSeqOf reads the sequence numbers back from payloads as the
// publisher encodes them, and refuses others.
func TestSeqOf(t *testing.T) {
	t.Parallel()
	v := make([]byte, 4096)
	v[0], v[1] = 0x39, 0x30 // 12345, little-endian
	pb, err := proto.Marshal(&wrapperspb.BytesValue{Value: v})
	if err != nil {
		t.Fatal(err)
	}
	js, err := codec.JSON{}.Marshal(webSampleOf(12345, 100, strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, codec string
		p           []byte
		ok          bool
	}{
		{"protobuf", "protobuf", pb, true},
		{"json", "json", js, true},
		{"protobuf, short value", "protobuf", pb[:5], false},
		{"protobuf, other field", "protobuf", append([]byte{0x12}, pb[1:]...), false},
		{"json, no seq first", "json", []byte(`{"pad":"","seq":12345}`), false},
		{"json, cut", "json", js[:10], false},
	} {
		seq, ok := seqOf(c.codec, c.p)
		if ok != c.ok || (ok && seq != 12345) {
			t.Errorf("%s: seqOf = %d, %t; want 12345, %t", c.name, seq, ok, c.ok)
		}
	}
}

// TestRecvLogSummary: only the measured seqs count, each once; missing
// ones are counted, and the rate comes from the arrivals' span.
func TestRecvLogSummary(t *testing.T) {
	t.Parallel()
	l := newRecvLog()
	at := int64(1_000_000_000)
	l.got = []arrival{
		{seq: 10, at: at - 100}, // before the run: ignored
		{seq: 12, latency: time.Millisecond, at: at + 1e6},
		{seq: 13, latency: 2 * time.Millisecond, at: at + 11e6},
		{seq: 13, latency: 9 * time.Second, at: at + 12e6}, // a duplicate
		{seq: 15, latency: 3 * time.Millisecond, at: at + 21e6},
		{seq: 20, at: at + 30e6}, // after the run
	}
	got := l.summary(12, 16)
	want := WebRecv{Got: 3, Missing: 2, Rate: 100, P50: 2 * time.Millisecond, P99: 3 * time.Millisecond}
	if got != want {
		t.Errorf("summary = %+v, want %+v", got, want)
	}
	base := newRecvLog()
	base.got = []arrival{{seq: 12, at: at}, {seq: 13, at: at + 12e6}, {seq: 14, at: at}, {seq: 15, at: at + 26e6}, {seq: 20, at: 0}}
	// 12: +1 ms, 13: -1 ms (its first arrival only), 15: -5 ms; 14 and 20
	// not both in the run.
	if p := l.paired(base, 12, 16); p != -time.Millisecond {
		t.Errorf("paired = %v, want -1ms", p)
	}
}

// TestWebRig runs both codecs' paths end to end (a publisher child, the
// gateway, a direct subscriber, clients), small and fast: every receiver
// gets every measured message, once subscribed, with a latency.
func TestWebRig(t *testing.T) {
	t.Parallel()
	for _, s := range []WebStream{
		{Name: "json", Codec: "json", Size: 1 << 10, Rate: 500, Clients: 2},
		{Name: "protobuf", Codec: "protobuf", Size: 256 << 10, Rate: 100, Clients: 1},
	} {
		t.Run(s.Name, func(t *testing.T) {
			rig, err := NewWebRig(s)
			if err != nil {
				t.Fatal(err)
			}
			defer rig.Close()
			for run := range 2 {
				const count = 40
				res, err := rig.Run(count)
				if err != nil {
					t.Fatal(err)
				}
				if res.Published != count || res.PubRate <= 0 {
					t.Errorf("run %d: published %d at %.1f Hz, want %d", run, res.Published, res.PubRate, count)
				}
				for i, r := range append([]WebRecv{res.Direct}, res.Clients...) {
					if r.Got != count || r.Missing != 0 || r.P50 <= 0 || r.Rate <= 0 {
						t.Errorf("run %d, receiver %d (0: direct): %+v, want all %d", run, i, r, count)
					}
				}
				if len(res.Clients) != s.Clients {
					t.Errorf("run %d: %d clients, want %d", run, len(res.Clients), s.Clients)
				}
			}
		})
	}
}

// TestWebStart: a gateway start finds the idle publisher's topic and
// advertises it; both durations are measured.
func TestWebStart(t *testing.T) {
	t.Parallel()
	rig, err := NewWebStartRig()
	if err != nil {
		t.Fatal(err)
	}
	defer rig.Close()
	var got []WebStart
	for range 3 {
		s, err := rig.Start()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if slices.ContainsFunc(got, func(s WebStart) bool { return s.Discovery <= 0 || s.Advertise <= 0 }) {
		t.Errorf("starts %+v: want positive durations", got)
	}
	// Discovery waits for the topic's publisher: nobody publishes this one.
	if d, err := discover(rig.dir, "bench/nobody", 300*time.Millisecond); err == nil {
		t.Errorf("discovery of a topic nobody publishes took %v, want an error", d)
	}
}
