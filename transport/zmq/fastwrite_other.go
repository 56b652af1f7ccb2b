//go:build !unix

package zmq

import (
	"errors"
	"net"
)

// fastWriter is unavailable without unix write(2): every message goes
// through the writer goroutine.
type fastWriter struct{}

func newFastWriter(net.Conn) *fastWriter { return nil }

func (*fastWriter) Write([]byte) (int, error) { return 0, errors.New("unsupported") }
