// Package zmq is colugo's default transport: ZMTP 3 over TCP, so a libzmq
// (pyzmq, czmq, …) SUB or DEALER can talk to a node unchanged.
//
// It implements ZMTP itself (handshake, framing, PING→PONG) rather than
// use zmq4's socket types, which crash on hostile frames, stall their
// listener on a silent client and let one slow subscriber stop all others,
// or zmq4's connection layer, which panics on some READY metadata and
// allocates what a frame header claims. zmq4 is the reference its tests
// compare with. This package owns every socket, queue and goroutine:
//
//   - A [Transport] listens on two ephemeral TCP ports of one host: one
//     speaks ZMTP as PUB, the other as ROUTER.
//   - Every connection has a reader goroutine and a writer goroutine. Senders
//     append encoded messages to the connection's bounded outbox; the writer
//     takes the whole outbox at once and writes it with one system call, so
//     an idle link sends each message at once and a busy one coalesces many.
//     A lone request or reply is written by its sender directly (send.go).
//   - The NULL handshake (handshake.go: greeting and READY, ZMTP 3.0) runs
//     with a deadline in the connection's reader goroutine; it refuses a
//     READY frame over 64 KiB before allocating it, and READY metadata
//     outside ZMTP's grammar or with a Socket-Type that is not ZMTP's.
//     Afterwards the reader reads frames (recv.go) with the same checks.
//   - Accepted connections are bounded, in all and per remote address: in
//     handshake (a new one evicts the oldest) and established (a new one
//     evicts one that never sent a message, else the least recently used),
//     so a flood of sockets cannot lock out new peers; see
//     [WithMaxHandshakes] and [WithMaxConns].
//   - Every connection sends a ZMTP PING each heartbeat interval; one from
//     which nothing is read for the peer timeout is closed and reported lost.
//
// Messages are three ZMTP frames: name+"\x00", header (transport/wire) and
// payload. Subscribers subscribe to the prefix topic+"\x00", so "a" never
// matches "ab".
//
// [Transport] also speaks the frames of the Python colugo (the seed;
// transport.SeedTransport, seed.go): seed publishers and reply servers
// listen on ports of their own on the same host, one frame is one message
// (the payload alone), requests carry REQ envelopes ([id, "", body]), and
// seed connections get the same handshake, limits and heartbeats as the
// node's own.
//
// No zmq4 type appears in this package's API.
package zmq
