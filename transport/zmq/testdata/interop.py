"""libzmq (pyzmq) peers for transport/zmq's interop test.

    interop.py sub HOST:PORT N     a SUB on "topic\\0": expects N 3-frame messages
    interop.py dealer HOST:PORT    a DEALER: two requests to "svc", 1 s apart
    interop.py dealer-ext HOST:PORT  a DEALER whose request carries header
                                   extensions (a metadata entry and an unknown
                                   type); it decodes the reply's as the README says

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


def header_ext(kind, request_id, ext):
    # flags bit 2: an extension block follows the error field.
    return (bytes([0xC1, kind, 4, 0]) + string(b"raw") + string(b"") +
            string(b"pyzmq") + uvarint(0) + uvarint(0) + uvarint(request_id) +
            uvarint(0) + string(b"") + ext)


def entry(typ, value):
    return uvarint(typ) + uvarint(len(value)) + value


def metadata_entry(key, value):
    return entry(1, uvarint(len(key)) + key + value)


def read_uvarint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return n, i


def read_string(b, i):
    n, i = read_uvarint(b, i)
    return b[i:i + n], i + n


def parse_header(b):
    """The README's header: fields in order, then the extensions."""
    if b[0] != 0xC1:
        fail("bad magic", b[:1])
    kind, flags, status = b[1], b[2], b[3]
    i = 4
    codec, i = read_string(b, i)
    typ, i = read_string(b, i)
    sender, i = read_string(b, i)
    seq, i = read_uvarint(b, i)
    send_time, i = read_uvarint(b, i)  # zigzag varint: its value is not checked here
    request_id, i = read_uvarint(b, i)
    deadline, i = read_uvarint(b, i)
    error, i = read_string(b, i)
    meta = {}
    if flags & 4:
        while i < len(b):
            t, i = read_uvarint(b, i)
            n, i = read_uvarint(b, i)
            v, i = b[i:i + n], i + n
            if t == 1:
                k, j = read_string(v, 0)
                meta[k] = v[j:]
    elif i != len(b):
        fail("trailing bytes without the extensions flag")
    return kind, request_id, meta


def dealer_ext(addr):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.setsockopt(zmq.LINGER, 0)
    s.connect("tcp://" + addr)
    ext = metadata_entry(b"tenant", b"acme") + entry(99, b"a future field")
    s.send_multipart([b"svc\x00", header_ext(2, 44, ext), b"with metadata"])
    try:
        f = s.recv_multipart()
    except zmq.Again:
        fail("dealer-ext: no reply")
    kind, rid, meta = parse_header(f[1])
    if kind != 3 or rid != 44:
        fail("dealer-ext: reply kind", kind, "id", rid)
    print("dealer-ext ok", f[2].decode(), "reply metadata",
          b",".join(k + b"=" + v for k, v in sorted(meta.items())).decode(), flush=True)
    s.close()
    ctx.term()


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
    elif sys.argv[1] == "dealer-ext":
        dealer_ext(sys.argv[2])
    else:
        dealer(sys.argv[2])
