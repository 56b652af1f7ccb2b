package record

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/foxglove/mcap/go/mcap"
)

// ErrCorrupt is wrapped by every error about a file that is not a complete,
// well-formed MCAP file: bad magic, a truncated or corrupt record, a chunk
// whose CRC does not match, a message on an unknown channel.
var ErrCorrupt = errors.New("record: corrupt or truncated MCAP file")

// Limits on what a file may ask the reader to allocate.
const (
	maxRecordSize = 256 << 20
	maxChunkSize  = 1 << 30
)

// Channel is a topic as recorded: one MCAP channel.
type Channel struct {
	ID       uint16
	Topic    string
	Codec    string // from the channel's colugo.codec metadata, else its message encoding
	Type     string // from the channel's colugo.type metadata, else its schema name
	Encoding string // the MCAP message encoding
	Schema   []byte // a protobuf channel's FileDescriptorSet (its MCAP schema's data), if any
}

// Reader reads the messages of an MCAP file in file order (the order a
// Writer wrote them, which is log-time order for recordings made by a
// Recorder), checking chunk CRCs. It is not safe for concurrent use.
type Reader struct {
	lex      *mcap.Lexer
	buf      []byte
	schemas  map[uint16]*mcap.Schema
	channels map[uint16]*Channel
	n        int  // messages returned
	done     bool // footer seen
	err      error
}

// NewReader checks r's magic and header. Nothing else is read yet.
func NewReader(r io.Reader) (rd *Reader, err error) {
	defer catch(&err, 0)
	lex, err := mcap.NewLexer(r, &mcap.LexerOptions{
		ValidateChunkCRCs:        true,
		MaxRecordSize:            maxRecordSize,
		MaxDecompressedChunkSize: maxChunkSize,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	rd = &Reader{lex: lex, schemas: map[uint16]*mcap.Schema{}, channels: map[uint16]*Channel{}}
	tok, _, err := rd.next()
	if err != nil {
		lex.Close()
		return nil, fmt.Errorf("%w: no header: %w", ErrCorrupt, err)
	}
	if tok != mcap.TokenHeader {
		lex.Close()
		return nil, fmt.Errorf("%w: first record is %v, not a header", ErrCorrupt, tok)
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

func (r *Reader) next() (tok mcap.TokenType, data []byte, err error) {
	tok, data, err = r.lex.Next(r.buf)
	if cap(data) > cap(r.buf) && cap(data) <= maxRecordSize/4 {
		r.buf = data[:0]
	}
	return tok, data, err
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
		tok, data, err := r.next()
		if err != nil {
			if errors.Is(err, io.EOF) && r.done {
				return Message{}, nil, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("the file ends before its footer (the recorder did not finish it)")
			}
			return Message{}, nil, fmt.Errorf("%w: after %d messages: %w", ErrCorrupt, r.n, err)
		}
		switch tok {
		case mcap.TokenSchema:
			s, err := mcap.ParseSchema(data)
			if err != nil {
				return Message{}, nil, r.corrupt("schema", err)
			}
			s.Data = append([]byte(nil), s.Data...)
			r.schemas[s.ID] = s
		case mcap.TokenChannel:
			c, err := mcap.ParseChannel(data)
			if err != nil {
				return Message{}, nil, r.corrupt("channel", err)
			}
			r.channels[c.ID] = r.channel(c)
		case mcap.TokenMessage:
			msg, err := mcap.ParseMessage(data)
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
		case mcap.TokenFooter:
			r.done = true
		}
	}
}

func (r *Reader) corrupt(what string, err error) error {
	return fmt.Errorf("%w: after %d messages: bad %s record: %w", ErrCorrupt, r.n, what, err)
}

func (r *Reader) channel(c *mcap.Channel) *Channel {
	ch := &Channel{ID: c.ID, Topic: c.Topic, Encoding: c.MessageEncoding, Codec: c.Metadata[MetaCodec], Type: c.Metadata[MetaType]}
	if ch.Codec == "" {
		ch.Codec = c.MessageEncoding
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
func (r *Reader) Close() { r.lex.Close() }

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
// summarizes it. Any problem gives an error wrapping ErrCorrupt.
func Scan(r io.Reader) (Summary, error) {
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
	rd, err := NewReader(r)
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
