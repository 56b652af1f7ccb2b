package record

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Metadata keys on every channel this package writes.
const (
	MetaCodec = "colugo.codec"
	MetaType  = "colugo.type"
)

// MetaHistory is the channel metadata key that marks a topic whose
// publishers offered history (colugo.WithHistory) while it was recorded:
// the greatest depth offered, in decimal. Channels of topics without
// history do not have it. Play publishes such a topic with that history.
const MetaHistory = "colugo.history"

// MetadataRecording is the name of the metadata record a Recorder writes at
// the end of a recording.
const MetadataRecording = "colugo.recording"

// Message is one recorded message.
type Message struct {
	Topic       string
	Codec       string    // colugo codec name: json, raw, protobuf, ...
	Type        string    // type name the publisher advertised; may be empty
	LogTime     time.Time // when the recorder received it
	PublishTime time.Time // when it was sent, if known; the zero time means LogTime
	Data        []byte    // the payload exactly as it travelled
	// Schema is the publisher's description of Type (colugo.TopicInfo.Schema:
	// for protobuf, a serialized FileDescriptorSet). The first message of a
	// codec and type decides its MCAP schema; for protobuf without one, the
	// Writer looks the type up among the types linked into the program.
	Schema []byte
	// History is the greatest number of messages the topic's publishers
	// keep for late subscribers (colugo.TopicInfo.History; 0: none). A
	// channel is one topic, codec, type and history: a message whose
	// History differs from its channel's starts a new channel, whose
	// metadata MetaHistory says it.
	History int
}

// ErrClosed is returned by a Writer used after Close.
var ErrClosed = errors.New("record: writer closed")

// WriterOption configures NewWriter.
type WriterOption interface{ applyWriter(*writerConfig) }

type writerConfig struct {
	compression string
	chunkSize   int64
}

type compressionOption string

func (o compressionOption) applyWriter(c *writerConfig) { c.compression = string(o) }
func (o compressionOption) String() string {
	return fmt.Sprintf("record.WithCompression(%q)", string(o))
}

// WithCompression sets the chunk compression: "zstd", "lz4" or "none".
// Default: "zstd" (fastest level). Another value makes NewWriter fail.
func WithCompression(name string) WriterOption {
	if name == "none" {
		name = ""
	}
	return compressionOption(name)
}

// TopicCount counts what a Writer wrote for one topic.
type TopicCount struct {
	Topic    string
	Messages uint64
	Bytes    uint64 // payload bytes
}

// Writer writes messages to an MCAP file. It is safe for concurrent use.
// Close must be called to write the summary and footer: a file whose
// Writer was not closed is incomplete, and Reader reports it as truncated
// (ErrCorrupt) once it has read the messages before the cut.
type Writer struct {
	mu       sync.Mutex
	w        *mcapWriter
	channels map[chanKey]uint16
	schemas  map[schemaKey]uint16
	seq      map[uint16]uint32
	closed   bool

	// countsMu guards counts and order, apart from mu, which a write holds
	// while the file takes it: a disk that stalls must not stall Counts
	// (a recorder's Progress) too. Taken under mu, never the other way.
	countsMu sync.Mutex
	counts   map[string]*TopicCount
	order    []string
}

type chanKey struct {
	topic, codec, typ string
	history           int
}
type schemaKey struct{ codec, typ string }

// NewWriter writes the MCAP header to w and returns a Writer. It does not
// close w.
func NewWriter(w io.Writer, opts ...WriterOption) (*Writer, error) {
	cfg := writerConfig{compression: compressionZSTD, chunkSize: 4 << 20}
	for _, o := range opts {
		if o != nil {
			o.applyWriter(&cfg)
		}
	}
	switch cfg.compression {
	case compressionZSTD, compressionLZ4, compressionNone:
	default:
		return nil, fmt.Errorf("record: unknown compression %q (want zstd, lz4 or none)", cfg.compression)
	}
	mw, err := newMCAPWriter(w, cfg.compression, cfg.chunkSize, "colugo record")
	if err != nil {
		return nil, fmt.Errorf("record: writing header: %w", err)
	}
	return &Writer{w: mw, channels: map[chanKey]uint16{}, schemas: map[schemaKey]uint16{},
		seq: map[uint16]uint32{}, counts: map[string]*TopicCount{}}, nil
}

// Write appends m. Messages should come in LogTime order (a Recorder's do).
func (w *Writer) Write(m Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	id, err := w.channelLocked(m)
	if err != nil {
		return err
	}
	w.seq[id]++
	logTime := unixNanos(m.LogTime)
	pubTime := logTime
	if !m.PublishTime.IsZero() {
		pubTime = unixNanos(m.PublishTime)
	}
	if err := w.w.writeMessage(&mcapMessage{ChannelID: id, Sequence: w.seq[id], LogTime: logTime, PublishTime: pubTime, Data: m.Data}); err != nil {
		return fmt.Errorf("record: writing a message of %q: %w", m.Topic, err)
	}
	w.countsMu.Lock()
	defer w.countsMu.Unlock()
	c := w.counts[m.Topic]
	if c == nil {
		c = &TopicCount{Topic: m.Topic}
		w.counts[m.Topic] = c
		w.order = append(w.order, m.Topic)
	}
	c.Messages++
	c.Bytes += uint64(len(m.Data))
	return nil
}

func unixNanos(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

func (w *Writer) channelLocked(m Message) (uint16, error) {
	k := chanKey{m.Topic, m.Codec, m.Type, max(m.History, 0)}
	if id, ok := w.channels[k]; ok {
		return id, nil
	}
	if len(w.channels) >= 1<<16-1 {
		return 0, fmt.Errorf("record: too many channels")
	}
	schemaID, err := w.schemaLocked(m.Codec, m.Type, m.Schema)
	if err != nil {
		return 0, err
	}
	id := uint16(len(w.channels) + 1)
	meta := map[string]string{MetaCodec: m.Codec, MetaType: m.Type}
	if k.history > 0 {
		meta[MetaHistory] = strconv.Itoa(k.history)
	}
	if err := w.w.writeChannel(&mcapChannel{ID: id, SchemaID: schemaID, Topic: m.Topic,
		MessageEncoding: messageEncoding(m.Codec), Metadata: meta}); err != nil {
		return 0, fmt.Errorf("record: writing the channel of %q: %w", m.Topic, err)
	}
	w.channels[k] = id
	return id, nil
}

// messageEncoding is the MCAP message encoding of a colugo codec: its name,
// which for json and protobuf is the well-known MCAP encoding.
func messageEncoding(codecName string) string { return codecName }

// schemaLocked writes the schema record a codec calls for, or returns 0.
func (w *Writer) schemaLocked(codecName, typ string, schema []byte) (uint16, error) {
	var s mcapSchema
	switch codecName {
	case "json":
		s = mcapSchema{Name: typ, Encoding: "jsonschema", Data: []byte("{}")}
		if s.Name == "" {
			s.Name = "json"
		}
	case "protobuf":
		if len(schema) == 0 {
			schema = fileDescriptorSet(typ)
		}
		s = mcapSchema{Name: typ, Encoding: "protobuf", Data: schema}
	default:
		return 0, nil
	}
	k := schemaKey{codecName, typ}
	if id, ok := w.schemas[k]; ok {
		return id, nil
	}
	s.ID = uint16(len(w.schemas) + 1)
	if err := w.w.writeSchema(&s); err != nil {
		return 0, fmt.Errorf("record: writing the schema of %q: %w", typ, err)
	}
	w.schemas[k] = s.ID
	return s.ID, nil
}

// fileDescriptorSet returns the serialized FileDescriptorSet of the
// protobuf message full name and its dependencies, if this program links
// it, else nil.
func fileDescriptorSet(name string) []byte {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	add(d.ParentFile())
	b, err := proto.Marshal(set)
	if err != nil {
		return nil
	}
	return b
}

// AddMetadata writes a metadata record.
func (w *Writer) AddMetadata(name string, kv map[string]string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if err := w.w.writeMetadata(name, kv); err != nil {
		return fmt.Errorf("record: writing metadata %q: %w", name, err)
	}
	return nil
}

// Counts returns what was written per topic, in the order topics first
// appeared.
func (w *Writer) Counts() []TopicCount {
	w.countsMu.Lock()
	defer w.countsMu.Unlock()
	out := make([]TopicCount, 0, len(w.order))
	for _, t := range w.order {
		out = append(out, *w.counts[t])
	}
	return out
}

// Close writes the last chunk, the summary and the footer. It does not close
// the underlying io.Writer. Idempotent; later calls return nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.w.close(); err != nil {
		return fmt.Errorf("record: finishing the file: %w", err)
	}
	return nil
}
