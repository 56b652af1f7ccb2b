package record_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/record"
	"github.com/foxglove/mcap/go/mcap"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type pose struct{ X, Y int }

// writeSample writes n json messages on a/json and n raw ones on b/raw,
// 10 ms apart in log time.
func writeSample(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range n {
		at := t0.Add(time.Duration(2*i) * 10 * time.Millisecond)
		if err := w.Write(record.Message{Topic: "a/json", Codec: "json", Type: "main.Pose", LogTime: at,
			Data: []byte(`{"X":` + strconv.Itoa(i) + `,"Y":0}`)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(record.Message{Topic: "b/raw", Codec: "raw", Type: "[]uint8", LogTime: at.Add(10 * time.Millisecond),
			Data: []byte{byte(i), 0xff}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddMetadata("test", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(record.Message{Topic: "late"}); !errors.Is(err, record.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	return buf.Bytes()
}

// TestWriterFileOpensInMCAP reads a written file back with the mcap
// library's own indexed reader, its linear reader and its lexer.
func TestWriterFileOpensInMCAP(t *testing.T) {
	t.Parallel()
	data := writeSample(t, 50)

	r, err := mcap.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Statistics.MessageCount != 100 || info.Statistics.ChannelCount != 2 || info.Statistics.MetadataCount != 1 {
		t.Fatalf("statistics %+v", info.Statistics)
	}
	if len(info.ChunkIndexes) == 0 {
		t.Fatal("no chunk index")
	}
	enc := map[string]string{}
	for _, c := range info.Channels {
		enc[c.Topic] = c.MessageEncoding
		if c.Topic == "a/json" {
			s := info.Schemas[c.SchemaID]
			if s == nil || s.Encoding != "jsonschema" || s.Name != "main.Pose" {
				t.Fatalf("json schema %+v", s)
			}
		} else if c.SchemaID != 0 {
			t.Fatalf("raw channel has schema %d", c.SchemaID)
		}
	}
	if enc["a/json"] != "json" || enc["b/raw"] != "raw" {
		t.Fatalf("encodings %v", enc)
	}
	for _, useIndex := range []bool{true, false} {
		r, err := mcap.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		order := mcap.LogTimeOrder
		if !useIndex {
			order = mcap.FileOrder
		}
		it, err := r.Messages(mcap.UsingIndex(useIndex), mcap.InOrder(order))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		var last uint64
		for {
			_, ch, m, err := it.NextInto(nil)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.LogTime < last {
				t.Fatalf("log time goes back: %d after %d", m.LogTime, last)
			}
			last = m.LogTime
			if ch.Topic == "b/raw" && (len(m.Data) != 2 || m.Data[0] != byte(n/2)) {
				t.Fatalf("message %d: %x", n, m.Data)
			}
			n++
		}
		if n != 100 {
			t.Fatalf("index %v: %d messages", useIndex, n)
		}
		r.Close()
	}

	lex, err := mcap.NewLexer(bytes.NewReader(data), &mcap.LexerOptions{ValidateChunkCRCs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lex.Close()
	tokens := map[mcap.TokenType]int{}
	for {
		tok, _, err := lex.Next(nil)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tokens[tok]++
	}
	if tokens[mcap.TokenMessage] != 100 || tokens[mcap.TokenFooter] != 1 || tokens[mcap.TokenHeader] != 1 {
		t.Fatalf("tokens %v", tokens)
	}
}

func TestScanAndReader(t *testing.T) {
	t.Parallel()
	data := writeSample(t, 10)
	sum, err := record.Scan(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 20 || sum.Counts["a/json"] != 10 || len(sum.Channels) != 2 || sum.Duration() != 190*time.Millisecond {
		t.Fatalf("summary %+v, duration %v", sum, sum.Duration())
	}
	for _, c := range sum.Channels {
		if (c.Topic == "a/json") != (c.Codec == "json" && c.Type == "main.Pose") {
			t.Fatalf("channel %+v", c)
		}
	}
}

// TestCorruptFiles cuts and damages a file in many places: every case gives
// an error wrapping ErrCorrupt and none panics.
func TestCorruptFiles(t *testing.T) {
	t.Parallel()
	data := writeSample(t, 200)
	cases := map[string][]byte{
		"empty":      {},
		"not mcap":   []byte("hello, this is not an MCAP file at all"),
		"magic only": data[:8],
	}
	for _, cut := range []int{9, 20, 100, len(data) / 3, len(data) / 2, len(data) - 40, len(data) - 1} {
		cases["truncated at "+strconv.Itoa(cut)] = data[:cut]
	}
	for _, at := range []int{len(data) / 4, len(data) / 2, 3 * len(data) / 4} {
		b := bytes.Clone(data)
		for i := at; i < at+16 && i < len(b); i++ {
			b[i] ^= 0x5a
		}
		cases["flipped at "+strconv.Itoa(at)] = b
	}
	huge := bytes.Clone(data[:8+9])
	huge[8] = 0x05                                                         // a message opcode...
	copy(huge[9:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}) // ...claiming 2^63 bytes
	cases["huge record"] = huge
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := record.Scan(bytes.NewReader(b))
			if !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("Scan: %v, want ErrCorrupt", err)
			}
			node := colugotest.NewNode(t, "player")
			_, err = record.Play(t.Context(), node, bytes.NewReader(b), record.Rate(0))
			if !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("Play: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestRecordAndPlay records a json and a raw topic from an in-process
// network, then plays the file back with remapping and filtering.
func TestRecordAndPlay(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	src, rec := net.NewNode("src"), net.NewNode("recorder")
	poses, err := colugo.NewPublisher[pose](src, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := colugo.NewPublisher[[]byte](src, "robot/blob", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rec.mcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := record.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	r, err := record.NewRecorder(rec, w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	// Probes on robot/pose until the recorder has one: its pose
	// subscription is connected (a probe that only reached the node, before
	// the recorder subscribed, is not enough); then the blob subscription
	// has reached src too.
	const n = 20
	testwait.Until(t, "", func() bool {
		_ = poses.Publish(ctx, pose{X: -1})
		for _, p := range r.Progress() {
			if p.Topic == "robot/pose" && p.Messages > 0 {
				return len(r.Progress()) == 2
			}
		}
		return false
	})
	if err := blobs.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Recording is connected; the -1 probes are in the file too.
	for i := range n {
		if err := poses.Publish(ctx, pose{X: i, Y: 2 * i}); err != nil {
			t.Fatal(err)
		}
		if err := blobs.Publish(ctx, []byte{byte(i), 0, 0xff}); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, "", func() bool {
		for _, p := range r.Progress() {
			if p.Topic == "robot/blob" && p.Messages >= n {
				return true
			}
		}
		return false
	})
	testwait.Until(t, "", func() bool {
		for _, p := range r.Progress() {
			if p.Topic == "robot/pose" && p.Messages >= n+1 {
				var got pose
				_ = got
				return true
			}
		}
		return false
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sum, err := record.Scan(file)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts["robot/blob"] != n {
		t.Fatalf("recorded %v", sum.Counts)
	}

	// Play back on a fresh network: robot/pose remapped, robot/blob filtered out.
	net2 := colugotest.NewNetwork(t)
	player, viewer := net2.NewNode("player"), net2.NewNode("viewer")
	got, err := colugo.Subscribe[pose](t.Context(), viewer, "replayed/pose", colugo.WithBuffer(1024))
	if err != nil {
		t.Fatal(err)
	}
	// Subscribe on the player's node too: same-node delivery is synchronous,
	// so every message reaches it whatever discovery does.
	local, _ := colugo.Subscribe[pose](t.Context(), player, "replayed/pose", colugo.WithBuffer(1024))
	blobSub, _ := colugo.Subscribe[[]byte](t.Context(), player, "robot/blob", colugo.WithCodec(codec.Raw{}))
	var last record.PlayProgress
	prog, err := record.Play(t.Context(), player, file, record.Rate(0), record.Remap("robot/pose", "replayed/pose"),
		record.TopicFilter(regexp.MustCompile(`pose`)), record.OnProgress(func(p record.PlayProgress) { last = p }))
	if err != nil {
		t.Fatal(err)
	}
	if prog.Messages != sum.Counts["robot/pose"] || last != prog || prog.Total != prog.Messages {
		t.Fatalf("progress %+v, last %+v", prog, last)
	}
	want := 0
	for range prog.Messages {
		p := colugotest.Next(t, local, time.Second)
		if p.X == -1 {
			continue
		}
		if p.X != want || p.Y != 2*want {
			t.Fatalf("got %+v, want X=%d", p, want)
		}
		want++
	}
	if want != n {
		t.Fatalf("played %d poses", want)
	}
	select {
	case b := <-blobSub:
		t.Fatalf("filtered topic played: %x", b)
	default:
	}
	_ = got
}

// TestPlayTiming plays 20 messages recorded over 190 ms at rate 2: about
// 95 ms, not 190 and not 0.
func TestPlayTiming(t *testing.T) {
	t.Parallel()
	data := writeSample(t, 10) // 20 messages over 190 ms
	node := colugotest.NewNode(t, "player")
	start := time.Now()
	prog, err := record.Play(t.Context(), node, bytes.NewReader(data), record.Rate(2))
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if prog.Messages != 20 || el < 95*time.Millisecond || el > 2*time.Second {
		t.Fatalf("played %d in %v", prog.Messages, el)
	}
}

func TestPlayLoopStopsWithCtx(t *testing.T) {
	t.Parallel()
	data := writeSample(t, 5)
	node := colugotest.NewNode(t, "player")
	ctx, cancel := context.WithCancel(t.Context())
	prog, err := record.Play(ctx, node, bytes.NewReader(data), record.Rate(0), record.Loop(), record.OnProgress(func(p record.PlayProgress) {
		if p.Pass == 3 {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) || prog.Pass != 3 {
		t.Fatalf("%+v, %v", prog, err)
	}
}

// TestWriterSchemaFromMessage: a protobuf channel's MCAP schema is the
// Schema the message carries, also for a type this program does not link;
// the reader gives it back, and playback advertises it in $describe.
func TestWriterSchemaFromMessage(t *testing.T) {
	t.Parallel()
	schema := []byte("\x0a\x05fake!") // opaque to the writer
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_700_000_000, 0)
	if err := w.Write(record.Message{Topic: "pb", Codec: "protobuf", Type: "not.linked.Msg", LogTime: at,
		PublishTime: at.Add(-time.Millisecond), Data: []byte{8, 1}, Schema: schema}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rd, err := mcap.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	info, err := rd.Info()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range info.Schemas {
		if s.Name != "not.linked.Msg" || s.Encoding != "protobuf" || !bytes.Equal(s.Data, schema) {
			t.Fatalf("schema %+v", s)
		}
	}
	rd.Close()
	r, err := record.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, ch, err := r.Next()
	if err != nil || !bytes.Equal(ch.Schema, schema) || !bytes.Equal(m.Schema, schema) || !m.PublishTime.Equal(at.Add(-time.Millisecond)) {
		t.Fatalf("read back %+v %+v %v", m, ch, err)
	}

	net := colugotest.NewNetwork(t)
	player, viewer := net.NewNode("player"), net.NewNode("viewer")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := record.Play(ctx, player, bytes.NewReader(buf.Bytes()), record.Loop(), record.Rate(100))
		done <- err
	}()
	testwait.Until(t, "", func() bool {
		for _, p := range viewer.Peers() {
			for _, ti := range p.Topics {
				if ti.Name == "pb" && ti.Type == "not.linked.Msg" && bytes.Equal(ti.Schema, schema) {
					return true
				}
			}
		}
		return false
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// TestRecorderAnyCodec: one topic published with two codecs by two nodes
// is one subscription and two channels; each message keeps its codec and
// type, its publish time is the send time, and the metadata counts two
// publishers with no gap.
func TestRecorderAnyCodec(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	a, b, rec := net.NewNode("a"), net.NewNode("b"), net.NewNode("recorder")
	js, _ := colugo.NewPublisher[pose](a, "mixed")
	raw, _ := colugo.NewPublisher[[]byte](b, "mixed", colugo.WithCodec(codec.Raw{}))
	var buf bytes.Buffer
	w, _ := record.NewWriter(&buf)
	r, _ := record.NewRecorder(rec, w, record.Topics("mixed"))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	// Publish until both publishers' messages are being recorded.
	testwait.Until(t, "", func() bool {
		_ = js.Publish(ctx, pose{X: 1})
		_ = raw.Publish(ctx, []byte("x"))
		ps := r.Progress()
		return len(ps) == 1 && len(ps[0].Codecs) == 2 && ps[0].Publishers == 2
	})
	for range 10 {
		_ = js.Publish(ctx, pose{X: 2})
		_ = raw.Publish(ctx, []byte("y"))
	}
	testwait.Until(t, "", func() bool {
		ps := r.Progress()
		return len(ps) == 1 && ps[0].Messages >= 20
	})
	if subs := rec.Stats().Topics["mixed"]; subs.DecodeErrors != 0 {
		t.Fatalf("decode errors %d", subs.DecodeErrors)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rd, err := record.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	codecs := map[string]string{}
	for range 10000 {
		m, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		codecs[m.Codec] = m.Type
		if m.PublishTime.After(m.LogTime) || m.LogTime.Sub(m.PublishTime) > time.Second {
			t.Fatalf("publish %v, log %v", m.PublishTime, m.LogTime)
		}
	}
	if codecs["json"] != "record_test.pose" || codecs["raw"] != "[]uint8" || len(codecs) != 2 {
		t.Fatalf("codecs %v", codecs)
	}
	meta := readMetadata(t, buf.Bytes())
	if meta["topic.mixed.publishers"] != "2" || meta["topic.mixed.gaps"] != "0" || meta["topic.mixed.sender."+a.ID()+".first_seq"] == "" {
		t.Fatalf("metadata %v", meta)
	}
}

// readMetadata reads file's MetadataRecording with the mcap library.
func readMetadata(t *testing.T, file []byte) map[string]string {
	return record.RecordingMetadata(t, file)
}

// TestRecorderWriteErrorEndsRun: a write that fails (here: the Writer was
// closed under the Recorder) ends Run with that error while its ctx is
// still alive, and Run leaves no goroutine behind.
func TestRecorderWriteErrorEndsRun(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	src, rec := net.NewNode("src"), net.NewNode("recorder")
	pub, err := colugo.NewPublisher[pose](src, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	w, err := record.NewWriter(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := record.NewRecorder(rec, w)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(t.Context()) }()
	testwait.Until(t, "the recorder has a message", func() bool { // it is subscribed
		_ = pub.Publish(t.Context(), pose{X: 1})
		return len(r.Progress()) == 1 && r.Progress()[0].Messages > 0
	})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		_ = pub.Publish(t.Context(), pose{X: 2})
		select {
		case err := <-done:
			if !errors.Is(err, record.ErrClosed) {
				t.Fatalf("Run: %v, want ErrClosed", err)
			}
			return
		case <-deadline:
			t.Fatal("Run did not end after a failed write")
		case <-time.After(5 * time.Millisecond):
		}
	}
}
