package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// verifyCRCs checks the CRCs of the data and summary sections that the
// footer and the data end record give (zero means not computed: skipped).
// The lexer checks chunk CRCs, but not the message indexes between chunks
// or the summary, so a damaged index would otherwise go unnoticed.
func verifyCRCs(rs io.ReadSeeker) error {
	size, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	const footerLen = 9 + 8 + 8 + 4 // opcode, length, summary start, summary offset start, crc
	const magicLen = 8
	const dataEndLen = 9 + 4
	if size < magicLen+footerLen+magicLen {
		return errors.New("too short for an MCAP file")
	}
	var tail [footerLen + magicLen]byte
	if _, err := rs.Seek(size-int64(len(tail)), io.SeekStart); err != nil {
		return err
	}
	if _, err := io.ReadFull(rs, tail[:]); err != nil {
		return err
	}
	if tail[0] != 0x02 || binary.LittleEndian.Uint64(tail[1:9]) != 20 {
		return errors.New("no footer at the end (the recorder did not finish the file)")
	}
	summaryStart := binary.LittleEndian.Uint64(tail[9:17])
	summaryCRC := binary.LittleEndian.Uint32(tail[25:29])
	footerStart := uint64(size) - uint64(len(tail))
	if summaryStart == 0 {
		return nil // no summary: nothing to locate the data end with
	}
	if summaryStart < magicLen+dataEndLen || summaryStart > footerStart {
		return fmt.Errorf("footer gives a summary offset %d outside the file", summaryStart)
	}
	if summaryCRC != 0 {
		got, err := crcOf(rs, int64(summaryStart), int64(footerStart+9+16))
		if err != nil {
			return err
		}
		if got != summaryCRC {
			return fmt.Errorf("summary section CRC %08x, footer says %08x", got, summaryCRC)
		}
	}
	dataEnd := int64(summaryStart) - dataEndLen
	var de [dataEndLen]byte
	if _, err := rs.Seek(dataEnd, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.ReadFull(rs, de[:]); err != nil {
		return err
	}
	if de[0] != 0x0F || binary.LittleEndian.Uint64(de[1:9]) != 4 {
		return nil // a data end record with padding or extra fields: not located; skip
	}
	if want := binary.LittleEndian.Uint32(de[9:]); want != 0 {
		got, err := crcOf(rs, 0, dataEnd)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("data section CRC %08x, data end record says %08x", got, want)
		}
	}
	return nil
}

func crcOf(rs io.ReadSeeker, from, to int64) (uint32, error) {
	if _, err := rs.Seek(from, io.SeekStart); err != nil {
		return 0, err
	}
	h := crc32.NewIEEE()
	if _, err := io.CopyN(h, rs, to-from); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}
