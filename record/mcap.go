package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"slices"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// This file is the part of the MCAP format (mcap.dev/spec) that colugo
// writes and reads. It replaces the mcap Go module, whose package links
// testify, go-spew, go-difflib and yaml.v3 into every program that imports
// it (through a non-test testutils.go); the tests keep that module as the
// reference that reads what this writes.

// mcapMagic starts and ends every MCAP file.
var mcapMagic = []byte{0x89, 'M', 'C', 'A', 'P', '0', '\r', '\n'}

// opCode is an MCAP record's type.
type opCode byte

const (
	opReserved      opCode = 0x00
	opHeader        opCode = 0x01
	opFooter        opCode = 0x02
	opSchema        opCode = 0x03
	opChannel       opCode = 0x04
	opMessage       opCode = 0x05
	opChunk         opCode = 0x06
	opMessageIndex  opCode = 0x07
	opChunkIndex    opCode = 0x08
	opStatistics    opCode = 0x0B
	opMetadata      opCode = 0x0C
	opMetadataIndex opCode = 0x0D
	opSummaryOffset opCode = 0x0E
	opDataEnd       opCode = 0x0F
)

func (o opCode) String() string {
	switch o {
	case opHeader:
		return "header"
	case opFooter:
		return "footer"
	case opSchema:
		return "schema"
	case opChannel:
		return "channel"
	case opMessage:
		return "message"
	case opChunk:
		return "chunk"
	}
	return fmt.Sprintf("opcode 0x%02x", byte(o))
}

// Chunk compressions.
const (
	compressionNone = ""
	compressionZSTD = "zstd"
	compressionLZ4  = "lz4"
)

// mcapSchema, mcapChannel and mcapMessage are the parsed records; their
// byte fields alias the record they were parsed from.
type mcapSchema struct {
	ID             uint16
	Name, Encoding string
	Data           []byte
}

type mcapChannel struct {
	ID, SchemaID           uint16
	Topic, MessageEncoding string
	Metadata               map[string]string
}

type mcapMessage struct {
	ChannelID            uint16
	Sequence             uint32
	LogTime, PublishTime uint64
	Data                 []byte
}

var errShort = errors.New("record too short")

// parser reads the fields of one record body; the first failure sticks.
type parser struct {
	b   []byte
	err error
}

func (p *parser) take(n uint64) []byte {
	if p.err != nil {
		return nil
	}
	if uint64(len(p.b)) < n {
		p.err = errShort
		return nil
	}
	v := p.b[:n:n]
	p.b = p.b[n:]
	return v
}

func (p *parser) u16() uint16 {
	if b := p.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (p *parser) u32() uint32 {
	if b := p.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (p *parser) u64() uint64 {
	if b := p.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (p *parser) bytes32() []byte { return p.take(uint64(p.u32())) }
func (p *parser) str() string     { return string(p.bytes32()) }

func (p *parser) strMap() map[string]string {
	q := parser{b: p.bytes32(), err: p.err}
	m := map[string]string{}
	for q.err == nil && len(q.b) > 0 {
		k := q.str()
		m[k] = q.str()
	}
	p.err = q.err
	return m
}

func parseSchema(b []byte) (*mcapSchema, error) {
	p := parser{b: b}
	s := &mcapSchema{ID: p.u16(), Name: p.str(), Encoding: p.str(), Data: p.bytes32()}
	return s, p.err
}

func parseChannel(b []byte) (*mcapChannel, error) {
	p := parser{b: b}
	c := &mcapChannel{ID: p.u16(), SchemaID: p.u16(), Topic: p.str(), MessageEncoding: p.str()}
	c.Metadata = p.strMap()
	return c, p.err
}

func parseMessage(b []byte) (mcapMessage, error) {
	p := parser{b: b}
	m := mcapMessage{ChannelID: p.u16(), Sequence: p.u32(), LogTime: p.u64(), PublishTime: p.u64()}
	m.Data = p.b
	return m, p.err
}

// rec builds one record: opcode, length, body.
type rec struct{ b []byte }

func newRec(op opCode) *rec {
	return &rec{b: append(make([]byte, 0, 64), byte(op), 0, 0, 0, 0, 0, 0, 0, 0)}
}

func (r *rec) u8(v uint8) *rec   { r.b = append(r.b, v); return r }
func (r *rec) u16(v uint16) *rec { r.b = binary.LittleEndian.AppendUint16(r.b, v); return r }
func (r *rec) u32(v uint32) *rec { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *rec) u64(v uint64) *rec { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *rec) bytes32(v []byte) *rec {
	r.u32(uint32(len(v)))
	r.b = append(r.b, v...)
	return r
}
func (r *rec) str(v string) *rec { return r.bytes32([]byte(v)) }

// strMap writes m with its keys sorted, so that files are reproducible.
func (r *rec) strMap(m map[string]string) *rec {
	at := len(r.b)
	r.u32(0)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		r.str(k).str(m[k])
	}
	binary.LittleEndian.PutUint32(r.b[at:], uint32(len(r.b)-at-4))
	return r
}

func (r *rec) done() []byte {
	binary.LittleEndian.PutUint64(r.b[1:9], uint64(len(r.b)-9))
	return r.b
}

func schemaRecord(s *mcapSchema) []byte {
	return newRec(opSchema).u16(s.ID).str(s.Name).str(s.Encoding).bytes32(s.Data).done()
}

func channelRecord(c *mcapChannel) []byte {
	return newRec(opChannel).u16(c.ID).u16(c.SchemaID).str(c.Topic).str(c.MessageEncoding).strMap(c.Metadata).done()
}

// mcapWriter writes a chunked, indexed MCAP file with CRCs: schemas,
// channels and messages go into chunks (each followed by its message
// indexes), metadata between them; Close writes the data end, the summary
// (schemas, channels, statistics, metadata and chunk indexes, and their
// offsets) and the footer. It is not safe for concurrent use.
type mcapWriter struct {
	w           io.Writer
	off         uint64      // bytes written to w
	crc         hash.Hash32 // of the data section
	err         error
	compression string
	chunkSize   int64

	chunk                bytes.Buffer // uncompressed records of the open chunk
	chunkStart, chunkEnd uint64       // log times of its messages
	chunkMessages        int
	index                map[uint16][]uint64 // per channel: (log time, offset in chunk) pairs
	scratch              []byte              // message index records being built
	indexOrder           []uint16
	compressed           bytes.Buffer // the compressed chunk
	zstd                 *zstd.Encoder
	lz4                  *lz4.Writer

	schemas       []*mcapSchema
	channels      []*mcapChannel
	chunkIndexes  [][]byte
	metaIndexes   [][]byte
	messages      uint64
	msgStart      uint64
	msgEnd        uint64
	channelCounts map[uint16]uint64
	chunks        uint32
	metadata      uint32
}

func newMCAPWriter(w io.Writer, compression string, chunkSize int64, library string) (*mcapWriter, error) {
	m := &mcapWriter{w: w, crc: crc32.NewIEEE(), compression: compression, chunkSize: chunkSize,
		index: map[uint16][]uint64{}, channelCounts: map[uint16]uint64{}}
	switch compression {
	case compressionZSTD:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return nil, err
		}
		m.zstd = enc
	case compressionLZ4:
		m.lz4 = lz4.NewWriter(nil)
		if err := m.lz4.Apply(lz4.CompressionLevelOption(lz4.Fast)); err != nil {
			return nil, err
		}
	case compressionNone:
	default:
		return nil, fmt.Errorf("unknown compression %q", compression)
	}
	m.write(mcapMagic)
	m.write(newRec(opHeader).str("").str(library).done())
	return m, m.err
}

// write appends b to the data section.
func (m *mcapWriter) write(b []byte) {
	if m.err != nil {
		return
	}
	_, m.err = m.w.Write(b)
	m.off += uint64(len(b))
	m.crc.Write(b)
}

func (m *mcapWriter) writeSchema(s *mcapSchema) error {
	m.schemas = append(m.schemas, s)
	m.chunk.Write(schemaRecord(s))
	return m.err
}

func (m *mcapWriter) writeChannel(c *mcapChannel) error {
	m.channels = append(m.channels, c)
	m.chunk.Write(channelRecord(c))
	return m.err
}

func (m *mcapWriter) writeMessage(msg *mcapMessage) error {
	if m.err != nil {
		return m.err
	}
	if len(m.index[msg.ChannelID]) == 0 { // its first message in this chunk
		m.indexOrder = append(m.indexOrder, msg.ChannelID)
	}
	m.index[msg.ChannelID] = append(m.index[msg.ChannelID], msg.LogTime, uint64(m.chunk.Len()))
	var h [9 + 22]byte
	h[0] = byte(opMessage)
	binary.LittleEndian.PutUint64(h[1:], uint64(22+len(msg.Data)))
	binary.LittleEndian.PutUint16(h[9:], msg.ChannelID)
	binary.LittleEndian.PutUint32(h[11:], msg.Sequence)
	binary.LittleEndian.PutUint64(h[15:], msg.LogTime)
	binary.LittleEndian.PutUint64(h[23:], msg.PublishTime)
	m.chunk.Write(h[:])
	m.chunk.Write(msg.Data)
	if m.chunkMessages == 0 || msg.LogTime < m.chunkStart {
		m.chunkStart = msg.LogTime
	}
	m.chunkEnd = max(m.chunkEnd, msg.LogTime)
	if m.messages == 0 || msg.LogTime < m.msgStart {
		m.msgStart = msg.LogTime
	}
	m.msgEnd = max(m.msgEnd, msg.LogTime)
	m.chunkMessages++
	m.messages++
	m.channelCounts[msg.ChannelID]++
	if int64(m.chunk.Len()) >= m.chunkSize {
		m.flushChunk()
	}
	return m.err
}

func (m *mcapWriter) writeMetadata(name string, kv map[string]string) error {
	m.flushChunk() // metadata records stay outside chunks
	b := newRec(opMetadata).str(name).strMap(kv).done()
	at := m.off
	m.write(b)
	m.metaIndexes = append(m.metaIndexes, newRec(opMetadataIndex).u64(at).u64(uint64(len(b))).str(name).done())
	m.metadata++
	return m.err
}

// flushChunk writes the open chunk, if it holds anything, its message
// indexes, and remembers its chunk index.
func (m *mcapWriter) flushChunk() {
	if m.chunk.Len() == 0 || m.err != nil {
		return
	}
	raw := m.chunk.Bytes()
	data := raw
	switch m.compression {
	case compressionZSTD:
		// The streaming encoder, as the mcap module uses: it compresses
		// blocks concurrently, and Close waits for them.
		m.compressed.Reset()
		m.zstd.Reset(&m.compressed)
		if _, err := m.zstd.Write(raw); err != nil {
			m.err = err
			return
		}
		if err := m.zstd.Close(); err != nil {
			m.err = err
			return
		}
		data = m.compressed.Bytes()
	case compressionLZ4:
		m.compressed.Reset()
		m.lz4.Reset(&m.compressed)
		if _, err := m.lz4.Write(raw); err != nil {
			m.err = err
			return
		}
		if err := m.lz4.Close(); err != nil {
			m.err = err
			return
		}
		data = m.compressed.Bytes()
	}
	start := m.off
	r := newRec(opChunk).u64(m.chunkStart).u64(m.chunkEnd).u64(uint64(len(raw))).u32(crc32.ChecksumIEEE(raw)).
		str(m.compression).u64(uint64(len(data)))
	binary.LittleEndian.PutUint64(r.b[1:9], uint64(len(r.b)-9+len(data)))
	m.write(r.b)
	m.write(data)
	chunkLen := m.off - start

	// The message indexes, one per channel with messages in the chunk.
	idxStart := m.off
	offsets := map[uint16]uint64{}
	for _, id := range m.indexOrder {
		e := m.index[id]
		x := rec{b: append(m.scratch[:0], byte(opMessageIndex), 0, 0, 0, 0, 0, 0, 0, 0)}
		x.u16(id).u32(uint32(8 * len(e)))
		for _, v := range e {
			x.u64(v)
		}
		offsets[id] = m.off
		m.write(x.done())
		m.scratch = x.b
		m.index[id] = e[:0] // kept for the next chunk
	}
	m.indexOrder = m.indexOrder[:0]

	ci := newRec(opChunkIndex).u64(m.chunkStart).u64(m.chunkEnd).u64(start).u64(chunkLen)
	at := len(ci.b)
	ci.u32(0)
	for _, id := range slices.Sorted(maps.Keys(offsets)) {
		ci.u16(id).u64(offsets[id])
	}
	binary.LittleEndian.PutUint32(ci.b[at:], uint32(len(ci.b)-at-4))
	ci.u64(m.off - idxStart).str(m.compression).u64(uint64(len(data))).u64(uint64(len(raw)))
	m.chunkIndexes = append(m.chunkIndexes, ci.done())
	m.chunks++
	m.chunk.Reset()
	m.chunkMessages, m.chunkStart, m.chunkEnd = 0, 0, 0
}

// close flushes the open chunk and writes the data end, the summary and the
// footer.
func (m *mcapWriter) close() error {
	m.flushChunk()
	m.write(newRec(opDataEnd).u32(m.crc.Sum32()).done())
	if m.err != nil {
		return m.err
	}
	summaryStart := m.off
	m.crc.Reset()          // now the summary's CRC
	var groups [][3]uint64 // opcode, start, length
	group := func(op opCode, records ...[]byte) {
		if len(records) == 0 {
			return
		}
		start := m.off
		for _, r := range records {
			m.write(r)
		}
		groups = append(groups, [3]uint64{uint64(op), start, m.off - start})
	}
	var schemas, channels [][]byte
	for _, s := range m.schemas {
		schemas = append(schemas, schemaRecord(s))
	}
	for _, c := range m.channels {
		channels = append(channels, channelRecord(c))
	}
	group(opSchema, schemas...)
	group(opChannel, channels...)
	st := newRec(opStatistics).u64(m.messages).u16(uint16(len(m.schemas))).u32(uint32(len(m.channels))).
		u32(0).u32(m.metadata).u32(m.chunks).u64(m.msgStart).u64(m.msgEnd)
	at := len(st.b)
	st.u32(0)
	for _, id := range slices.Sorted(maps.Keys(m.channelCounts)) {
		st.u16(id).u64(m.channelCounts[id])
	}
	binary.LittleEndian.PutUint32(st.b[at:], uint32(len(st.b)-at-4))
	group(opStatistics, st.done())
	group(opMetadataIndex, m.metaIndexes...)
	group(opChunkIndex, m.chunkIndexes...)
	offsetStart := m.off
	for _, g := range groups {
		m.write(newRec(opSummaryOffset).u8(uint8(g[0])).u64(g[1]).u64(g[2]).done())
	}
	// The footer: its length counts the summary CRC, which covers the
	// summary and the footer up to that CRC.
	footer := newRec(opFooter).u64(summaryStart).u64(offsetStart)
	binary.LittleEndian.PutUint64(footer.b[1:9], 20)
	m.write(footer.b)
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], m.crc.Sum32())
	m.write(tail[:])
	m.write(mcapMagic)
	return m.err
}
