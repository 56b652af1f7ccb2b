package record

import (
	"fmt"
	"os"
)

// Open opens the recording at path for NewReader, Scan or Play, and
// refuses at once, with an error, what is not a regular file: a FIFO (whose
// open would block until something writes to it, and which Play cannot
// rewind), a device, a directory. The caller closes the file.
func Open(path string) (*os.File, error) {
	// Non-blocking, so that opening a FIFO does not wait for a writer; it
	// changes nothing for the regular files that get past the check.
	f, err := os.OpenFile(path, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("record: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("record: %s is %s, not a regular file: a recording must be one", path, kindOf(st.Mode()))
	}
	return f, nil
}

func kindOf(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m.IsDir():
		return "a directory"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "of type " + m.Type().String()
}
