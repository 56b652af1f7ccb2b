package zmq

import (
	"context"
	"net"
	"testing"
	"time"
)

// BenchmarkHandshake measures one ZMTP NULL handshake (greeting and READY
// both ways), the two ends in this process: "conn" runs both ends'
// handshake code on a loopback TCP pair made for it (connect included),
// "tcp" dials a listening transport (dial, accept, handshake on both
// sides, teardown).
func BenchmarkHandshake(b *testing.B) {
	b.Run("conn", func(b *testing.B) {
		tr, _ := listen(b, &nopHandler{}, WithUnixSockets(false))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		errs := make(chan error, 1)
		b.ReportAllocs()
		for b.Loop() {
			x, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			y, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			deadline := time.Now().Add(time.Second)
			go func() {
				errs <- tr.newConn(y, "pipe", roleRouterIn).handshake(time.Time{}, deadline)
			}()
			err = tr.newConn(x, "pipe", roleDealer).handshake(time.Time{}, deadline)
			if err2 := <-errs; err == nil {
				err = err2
			}
			if err != nil {
				b.Fatal(err)
			}
			_ = x.Close()
			_ = y.Close()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
	})
	b.Run("tcp", func(b *testing.B) {
		srv, ep := listen(b, &nopHandler{}, WithUnixSockets(false))
		cli, _ := listen(b, &nopHandler{}, WithUnixSockets(false))
		var d net.Dialer
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			nc, err := d.DialContext(ctx, "tcp", ep.Router)
			if err != nil {
				b.Fatal(err)
			}
			c, err := cli.handshakeOut(ctx, nc, ep.Router, roleDealer)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			_ = c.nc.Close()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		_ = srv
	})
}
