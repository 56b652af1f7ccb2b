"""libzmq (pyzmq) peers for transport/zmq's interop test.

    interop.py sub HOST:PORT N     a SUB on "topic\\0": expects N 3-frame messages
    interop.py dealer HOST:PORT    a DEALER: two requests to "svc", 1 s apart

Run with Debian's python3-zmq. Prints one result line per check; exits 1 on
a failure.
"""
import sys
import time

import zmq


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def string(s):
    return uvarint(len(s)) + s


def header(kind, request_id):
    # transport/wire version 1: magic|version, kind, flags, status, codec,
    # type, sender, seq, send time, request id, deadline, error.
    return (bytes([0xC1, kind, 0, 0]) + string(b"raw") + string(b"") +
            string(b"pyzmq") + uvarint(0) + uvarint(0) + uvarint(request_id) +
            uvarint(0) + string(b""))


def fail(*args):
    print("FAIL", *args, flush=True)
    sys.exit(1)


def sub(addr, n):
    ctx = zmq.Context()
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.SUBSCRIBE, b"topic\x00")
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.setsockopt(zmq.LINGER, 0)
    s.connect("tcp://" + addr)
    print("ready", flush=True)
    got = 0
    while got < n:
        try:
            f = s.recv_multipart()
        except zmq.Again:
            fail("sub: timeout after", got)
        if len(f) != 3 or f[0] != b"topic\x00":
            fail("sub: unexpected frames", f[:1], len(f))
        if f[1][0] != 0xC1 or f[1][1] != 1:
            fail("sub: bad header", f[1][:2])
        got += 1
    print("sub ok", got, f[2].decode(), flush=True)
    s.close()
    ctx.term()


def dealer(addr):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.setsockopt(zmq.LINGER, 0)
    s.connect("tcp://" + addr)
    for i, rid in enumerate((42, 43)):
        if i:
            time.sleep(1.0)  # idle: the Go side must keep the connection
        s.send_multipart([b"svc\x00", header(2, rid), b"hello %d" % i])
        try:
            f = s.recv_multipart()
        except zmq.Again:
            fail("dealer: no reply")
        if len(f) != 3 or f[0] != b"svc\x00":
            fail("dealer: unexpected frames", f)
        if f[1][0] != 0xC1 or f[1][1] != 3:
            fail("dealer: bad reply header", f[1])
        print("dealer ok", rid, f[2].decode(), flush=True)
    s.close()
    ctx.term()


if __name__ == "__main__":
    if sys.argv[1] == "sub":
        sub(sys.argv[2], int(sys.argv[3]))
    else:
        dealer(sys.argv[2])
