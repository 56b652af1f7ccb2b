package record

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/colugo-go/colugo"
)

// ErrCorrupt is wrapped by every error about a file that is not a complete,
// well-formed MCAP file: bad magic, a truncated or corrupt record, a chunk
// whose CRC does not match, a message on an unknown channel.
var ErrCorrupt = errors.New("record: corrupt or truncated MCAP file")

// DefaultMaxRecordSize is the largest record, and the largest chunk once
// decompressed, that a Reader accepts unless WithMaxRecordSize says
// otherwise: 72 MiB, what a Writer produces at most with colugo's default
// limits, a 4 MiB chunk that closes after one more message of up to 64 MiB
// (zmq.DefaultMaxFrameSize), with room to spare. A longer length is
// refused before anything is allocated for it; a shorter one costs what
// the file holds (for a chunk: what it decompresses to, checked before it
// is kept when the claim is over 8 MiB), never what it claims.
const DefaultMaxRecordSize = 72 << 20

// ReadOption configures NewReader and Scan; it is also a PlayOption.
type ReadOption interface {
	PlayOption
	applyRead(*readConfig)
}

type readConfig struct{ maxRecord int64 }

func defaultReadConfig() readConfig { return readConfig{maxRecord: DefaultMaxRecordSize} }

type maxRecordOption int64

func (o maxRecordOption) applyRead(c *readConfig) { c.maxRecord = int64(o) }
func (o maxRecordOption) applyPlay(c *playConfig) { c.read.maxRecord = int64(o) }
func (o maxRecordOption) String() string {
	return fmt.Sprintf("record.WithMaxRecordSize(%d)", int64(o))
}

// WithMaxRecordSize sets the largest record, and the largest chunk once
// decompressed, that the reader accepts; larger ones are an error wrapping
// ErrCorrupt. Raise it to read recordings of messages larger than 64 MiB
// (made with a larger zmq.WithMaxFrameSize). Default:
// DefaultMaxRecordSize. A value below 1 makes NewReader fail.
func WithMaxRecordSize(n int64) ReadOption { return maxRecordOption(n) }

// Channel is a topic as recorded: one MCAP channel.
type Channel struct {
	ID       uint16
	Topic    string
	Codec    string // from the channel's colugo.codec metadata, else its message encoding
	Type     string // from the channel's colugo.type metadata, else its schema name
	Encoding string // the MCAP message encoding
	Schema   []byte // a protobuf channel's FileDescriptorSet (its MCAP schema's data), if any
	// History is the channel's MetaHistory: the greatest depth the topic's
	// publishers offered while it was recorded, at most colugo.MaxHistory;
	// 0 when absent or not a decimal number.
	History int
}

// Reader reads the messages of an MCAP file in file order (the order a
// Writer wrote them, which is log-time order for recordings made by a
// Recorder), checking chunk CRCs. It is not safe for concurrent use.
type Reader struct {
	lex      *lexer
	schemas  map[uint16]*mcapSchema
	channels map[uint16]*Channel
	n        int  // messages returned
	done     bool // footer seen
	err      error
}

// NewReader checks r's magic and header. Nothing else is read yet.
func NewReader(r io.Reader, opts ...ReadOption) (rd *Reader, err error) {
	cfg := defaultReadConfig()
	for _, o := range opts {
		if o != nil {
			o.applyRead(&cfg)
		}
	}
	return newReader(r, cfg)
}

func newReader(r io.Reader, cfg readConfig) (rd *Reader, err error) {
	if cfg.maxRecord < 1 {
		return nil, fmt.Errorf("%w: record.WithMaxRecordSize(%d): must be at least 1", colugo.ErrInvalidOption, cfg.maxRecord)
	}
	defer catch(&err, 0)
	var magic [8]byte
	if n, err := io.ReadFull(r, magic[:]); err != nil || !bytes.Equal(magic[:], mcapMagic) {
		if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: not an MCAP file (its first %d bytes are not the MCAP magic)", ErrCorrupt, n)
		}
		return nil, fmt.Errorf("record: %w", err)
	}
	lex := &lexer{r: r, max: cfg.maxRecord}
	rd = &Reader{lex: lex, schemas: map[uint16]*mcapSchema{}, channels: map[uint16]*Channel{}}
	op, _, err := lex.next()
	if err != nil {
		lex.close()
		return nil, fmt.Errorf("%w: no header: %w", ErrCorrupt, err)
	}
	if op != opHeader {
		lex.close()
		return nil, fmt.Errorf("%w: first record is %v, not a header", ErrCorrupt, op)
	}
	return rd, nil
}

// catch turns a panic in the mcap library (a bug it has on some hostile
// input) into an ErrCorrupt error.
func catch(err *error, n int) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: after %d messages: unreadable (%v)", ErrCorrupt, n, r)
	}
}

// Next returns the next message and its channel. At the end of a complete
// file it returns io.EOF; a file that ends early or holds a bad record gives
// an error wrapping ErrCorrupt. The message's Data is only valid until the
// next call.
func (r *Reader) Next() (m Message, ch *Channel, err error) {
	if r.err != nil {
		return Message{}, nil, r.err
	}
	defer func() {
		if err != nil {
			r.err = err
		}
	}()
	defer catch(&err, r.n)
	for {
		op, data, err := r.lex.next()
		if err != nil {
			if (errors.Is(err, io.EOF) || errors.Is(err, errEnd)) && r.done {
				return Message{}, nil, io.EOF
			}
			if errors.Is(err, io.EOF) || errors.Is(err, errEnd) {
				err = errors.New("the file ends before its footer (the recorder did not finish it)")
			}
			return Message{}, nil, fmt.Errorf("%w: after %d messages: %w", ErrCorrupt, r.n, err)
		}
		switch op {
		case opSchema:
			s, err := parseSchema(data)
			if err != nil {
				return Message{}, nil, r.corrupt("schema", err)
			}
			s.Data = append([]byte(nil), s.Data...)
			r.schemas[s.ID] = s
		case opChannel:
			c, err := parseChannel(data)
			if err != nil {
				return Message{}, nil, r.corrupt("channel", err)
			}
			r.channels[c.ID] = r.channel(c)
		case opMessage:
			msg, err := parseMessage(data)
			if err != nil {
				return Message{}, nil, r.corrupt("message", err)
			}
			ch := r.channels[msg.ChannelID]
			if ch == nil {
				return Message{}, nil, r.corrupt("message", fmt.Errorf("unknown channel %d", msg.ChannelID))
			}
			r.n++
			return Message{Topic: ch.Topic, Codec: ch.Codec, Type: ch.Type,
				LogTime: fromNanos(msg.LogTime), PublishTime: fromNanos(msg.PublishTime), Data: msg.Data, Schema: ch.Schema}, ch, nil
		case opFooter:
			r.done = true
		}
	}
}

func (r *Reader) corrupt(what string, err error) error {
	return fmt.Errorf("%w: after %d messages: bad %s record: %w", ErrCorrupt, r.n, what, err)
}

func (r *Reader) channel(c *mcapChannel) *Channel {
	ch := &Channel{ID: c.ID, Topic: c.Topic, Encoding: c.MessageEncoding, Codec: c.Metadata[MetaCodec], Type: c.Metadata[MetaType]}
	if ch.Codec == "" {
		ch.Codec = c.MessageEncoding
	}
	if h, err := strconv.Atoi(c.Metadata[MetaHistory]); err == nil && h > 0 {
		ch.History = min(h, colugo.MaxHistory)
	}
	if s := r.schemas[c.SchemaID]; s != nil {
		if _, ok := c.Metadata[MetaType]; !ok {
			ch.Type = s.Name
		}
		if s.Encoding == "protobuf" {
			ch.Schema = s.Data
		}
	}
	return ch
}

// Channels returns the channels seen so far.
func (r *Reader) Channels() []Channel {
	out := make([]Channel, 0, len(r.channels))
	for _, c := range r.channels {
		out = append(out, *c)
	}
	return out
}

// Close releases the reader's decompressors. It does not close the
// underlying io.Reader.
func (r *Reader) Close() { r.lex.close() }

func fromNanos(ns uint64) time.Time {
	if ns > 1<<63-1 {
		ns = 1<<63 - 1
	}
	return time.Unix(0, int64(ns))
}

// Summary describes a recording: what Scan found.
type Summary struct {
	Channels []Channel
	Messages uint64
	Counts   map[string]uint64 // messages per topic
	Start    time.Time         // first log time
	End      time.Time         // last log time
}

// Duration is End - Start.
func (s Summary) Duration() time.Duration { return s.End.Sub(s.Start) }

// Scan reads the whole of r from where it is, checking every record (and,
// when r is an io.ReadSeeker, the data and summary section CRCs), and
// summarizes it. Any problem gives an error wrapping ErrCorrupt. Its
// options are NewReader's.
func Scan(r io.Reader, opts ...ReadOption) (Summary, error) {
	cfg := defaultReadConfig()
	for _, o := range opts {
		if o != nil {
			o.applyRead(&cfg)
		}
	}
	return scan(r, cfg)
}

func scan(r io.Reader, cfg readConfig) (Summary, error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return Summary{}, fmt.Errorf("record: %w", err)
		}
		if err := verifyCRCs(rs); err != nil {
			return Summary{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if _, err := rs.Seek(start, io.SeekStart); err != nil {
			return Summary{}, fmt.Errorf("record: %w", err)
		}
	}
	rd, err := newReader(r, cfg)
	if err != nil {
		return Summary{}, err
	}
	defer rd.Close()
	s := Summary{Counts: map[string]uint64{}}
	seen := map[uint16]bool{}
	for {
		m, ch, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		if err != nil {
			return s, err
		}
		if !seen[ch.ID] {
			seen[ch.ID] = true
			s.Channels = append(s.Channels, *ch)
		}
		if s.Messages == 0 || m.LogTime.Before(s.Start) {
			s.Start = m.LogTime
		}
		if m.LogTime.After(s.End) {
			s.End = m.LogTime
		}
		s.Messages++
		s.Counts[m.Topic]++
	}
}
