package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// lexer splits an MCAP file into the records a Reader needs, decompressing
// chunks. It replaces the mcap module's Lexer, which allocates what a record or chunk
// header claims before reading it (twice the claim, for a chunk): a file
// of a few KB could make it take a GiB. Here every length is checked
// against the limit, a record's buffer grows only as its bytes arrive, and
// a chunk is decompressed through a reader that stops at the size it
// claims, once without keeping the output if that claim is large.
type lexer struct {
	r     io.Reader
	max   int64   // the largest record or uncompressed chunk accepted
	hdr   [9]byte // opcode and length
	body  []byte  // the last record read from the file
	chunk []byte  // the current chunk's records, uncompressed
	rest  []byte  // what is left of them to lex
	zstd  *zstd.Decoder
	lz4   *lz4.Reader
}

// keepBuf is the largest buffer the lexer keeps between records: one that
// a rare large record needed is let go rather than held for the file.
const keepBuf = 8 << 20

// errEnd is next's report of the closing magic.
var errEnd = errors.New("closing magic")

// next returns the next record that the Reader uses (header, footer,
// schema, channel, message), from the current chunk first; it skips the
// others (indexes, statistics, attachments, metadata) without holding
// them. The body is valid until the next call. At the end of the data it
// returns io.EOF (nothing more) or errEnd (the closing magic).
func (l *lexer) next() (opCode, []byte, error) {
	for {
		if len(l.rest) > 0 {
			return l.nextInChunk()
		}
		n, err := io.ReadFull(l.r, l.hdr[:])
		switch {
		case err == nil:
		case n == 0 && errors.Is(err, io.EOF):
			return 0, nil, io.EOF
		case n == len(mcapMagic) && bytes.Equal(l.hdr[:n], mcapMagic):
			return 0, nil, errEnd
		case errors.Is(err, io.ErrUnexpectedEOF):
			return 0, nil, fmt.Errorf("the file ends inside a record header (%d of 9 bytes)", n)
		default:
			return 0, nil, err
		}
		op, size := opCode(l.hdr[0]), binary.LittleEndian.Uint64(l.hdr[1:])
		switch op {
		case opHeader, opFooter, opSchema, opChannel, opMessage, opChunk:
		case opReserved:
			return 0, nil, errors.New("a record with opcode 0")
		default:
			if err := skip(l.r, size); err != nil {
				return 0, nil, fmt.Errorf("a %s record of %d bytes: %w", op, size, err)
			}
			continue
		}
		if size > uint64(l.max) {
			return 0, nil, fmt.Errorf("a %s record of %d bytes, more than the reader's limit of %d (WithMaxRecordSize)", op, size, l.max)
		}
		if cap(l.body) > keepBuf {
			l.body = nil
		}
		if l.body, err = readGrow(l.r, l.body, int(size)); err != nil {
			return 0, nil, fmt.Errorf("a %s record of %d bytes: %w", op, size, err)
		}
		if op != opChunk {
			return op, l.body, nil
		}
		if err := l.loadChunk(l.body); err != nil {
			return 0, nil, err
		}
	}
}

func (l *lexer) nextInChunk() (opCode, []byte, error) {
	if len(l.rest) < 9 {
		return 0, nil, fmt.Errorf("a chunk ends inside a record header (%d of 9 bytes)", len(l.rest))
	}
	op, size := opCode(l.rest[0]), binary.LittleEndian.Uint64(l.rest[1:9])
	if size > uint64(len(l.rest)-9) {
		return 0, nil, fmt.Errorf("a %s record in a chunk claims %d bytes, the chunk has %d left", op, size, len(l.rest)-9)
	}
	body := l.rest[9 : 9+size]
	l.rest = l.rest[9+size:]
	switch op {
	case opChunk:
		return 0, nil, errors.New("a chunk inside a chunk")
	case opReserved:
		return 0, nil, errors.New("a record with opcode 0 in a chunk")
	}
	return op, body, nil
}

// loadChunk decompresses a chunk record's body (start and end time,
// uncompressed size and CRC, compression, records) into l.chunk and checks
// its size and CRC.
func (l *lexer) loadChunk(b []byte) error {
	const fixed = 8 + 8 + 8 + 4 + 4
	if len(b) < fixed {
		return fmt.Errorf("a chunk record of %d bytes, too short", len(b))
	}
	size, crc := binary.LittleEndian.Uint64(b[16:24]), binary.LittleEndian.Uint32(b[24:28])
	clen := uint64(binary.LittleEndian.Uint32(b[28:32]))
	p := b[fixed:]
	if uint64(len(p)) < clen+8 {
		return errors.New("a chunk record cut inside its compression name")
	}
	compression, p := string(p[:clen]), p[clen:]
	rlen, p := binary.LittleEndian.Uint64(p[:8]), p[8:]
	if rlen > uint64(len(p)) {
		return fmt.Errorf("a chunk's data claims %d bytes, its record holds %d", rlen, len(p))
	}
	data := p[:rlen]
	if size > uint64(l.max) {
		return fmt.Errorf("a chunk of %d bytes uncompressed, more than the reader's limit of %d (WithMaxRecordSize)", size, l.max)
	}
	var open func() (io.Reader, error) // a decompressor at the start of data
	switch string(compression) {
	case compressionNone:
		if uint64(len(data)) != size {
			return fmt.Errorf("an uncompressed chunk of %d bytes claims %d", len(data), size)
		}
		l.chunk = append(l.chunk[:0], data...) // data is l.body's, which the next record reuses
	case compressionZSTD:
		if l.zstd == nil {
			// One decoder, synchronous (no goroutines), whose window and
			// memory are bounded like the chunk it decodes.
			d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxMemory(uint64(l.max)), zstd.WithDecoderMaxWindow(uint64(max(l.max, zstd.MinWindowSize))))
			if err != nil {
				return fmt.Errorf("zstd: %w", err)
			}
			l.zstd = d
		}
		open = func() (io.Reader, error) { return l.zstd, l.zstd.Reset(bytes.NewReader(data)) }
	case compressionLZ4:
		if l.lz4 == nil {
			l.lz4 = lz4.NewReader(nil)
		}
		open = func() (io.Reader, error) { l.lz4.Reset(bytes.NewReader(data)); return l.lz4, nil }
	default:
		return fmt.Errorf("a chunk with unknown compression %q", compression)
	}
	if open != nil {
		if err := l.decompress(open, size, crc); err != nil {
			return fmt.Errorf("a %s chunk claiming %d bytes: %w", compression, size, err)
		}
	} else if got := crc32.ChecksumIEEE(l.chunk); crc != 0 && got != crc {
		return fmt.Errorf("a chunk with CRC %08x, its record says %08x", got, crc)
	}
	l.rest = l.chunk
	return nil
}

// trustedChunk is the largest uncompressed size a chunk may claim and get
// at once: a Writer's chunks are 4 MiB, so a file that lies costs at most
// this much. A larger claim is checked first.
const trustedChunk = 8 << 20

// decompress fills l.chunk with the size bytes that open's reader gives,
// and checks that it gives no more and that they have the CRC crc (0: not
// computed). A claim over trustedChunk is first checked by decompressing
// without keeping the output, and only then allocated: what a chunk costs
// is what it holds, never the claim, and never twice it as a buffer that
// grows would.
func (l *lexer) decompress(open func() (io.Reader, error), size uint64, crc uint32) error {
	if size > trustedChunk {
		src, err := open()
		if err != nil {
			return err
		}
		h := crc32.NewIEEE()
		n, err := io.Copy(h, io.LimitReader(src, int64(size)+1))
		switch {
		case err != nil:
			return fmt.Errorf("after %d bytes: %w", n, err)
		case uint64(n) != size:
			return fmt.Errorf("it decompresses to %d", n)
		case crc != 0 && h.Sum32() != crc:
			return fmt.Errorf("CRC %08x, the record says %08x", h.Sum32(), crc)
		}
		crc = 0 // checked
	}
	src, err := open()
	if err != nil {
		return err
	}
	if cap(l.chunk) > keepBuf || uint64(cap(l.chunk)) < size {
		l.chunk = nil
	}
	if l.chunk == nil {
		l.chunk = make([]byte, size)
	}
	l.chunk = l.chunk[:size]
	if n, err := io.ReadFull(src, l.chunk); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w after %d bytes", err, n)
	}
	var one [1]byte
	if n, err := io.ReadFull(src, one[:]); n > 0 {
		return errors.New("it decompresses to more")
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	if got := crc32.ChecksumIEEE(l.chunk); crc != 0 && got != crc {
		return fmt.Errorf("CRC %08x, the record says %08x", got, crc)
	}
	return nil
}

// readGrow reads exactly n bytes of r into buf[:0], growing buf only as
// data arrives (doubling it, from 64 KiB, and to n exactly at the end), so
// that a length that a file claims but does not hold costs no memory; at
// worst, n bytes cost twice n while the last copy is made.
func readGrow(r io.Reader, buf []byte, n int) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, max(2*len(buf), 64<<10)))
			copy(grown, buf)
			buf = grown
		}
		end := min(cap(buf), n)
		m, err := io.ReadFull(r, buf[len(buf):end])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return buf, fmt.Errorf("%w after %d of %d bytes", err, len(buf), n)
		}
	}
	return buf, nil
}

// skip discards n bytes of r.
func skip(r io.Reader, n uint64) error {
	if n > 1<<62 {
		return errors.New("longer than any file")
	}
	m, err := io.CopyN(io.Discard, r, int64(n))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w after %d bytes", err, m)
	}
	return nil
}

func (l *lexer) close() {
	if l.zstd != nil {
		l.zstd.Close()
	}
}
