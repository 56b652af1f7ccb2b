"""libzmq (pyzmq) peers that speak to a colugo Node using only the README.

Every header here is built and parsed by hand from the README's "Wire
format (version 1)" table, so a run checks that the table is right.

    wirespec.py sub PUB_ADDR TOPIC NODE_ID N    a SUB: N messages of TOPIC, JSON {"X","Y","Seq"}
    wirespec.py dealer ROUTER_ADDR NODE_ID      a DEALER: math/add, $describe, unknown service, past deadline
    wirespec.py hostile ROUTER_ADDR             a DEALER sending malformed messages, then a good request

Run with Debian's python3-zmq. Prints result lines; exits 1 on a failure.
"""
import json
import sys
import time

import zmq

MAGIC = 0xC1
PUBLISH, REQUEST, REPLY, CANCEL, CONTROL = 1, 2, 3, 4, 5


def fail(*args):
    print("FAIL", *args, flush=True)
    sys.exit(1)


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


def varint(n):
    # zig-zag, as Go's binary.AppendVarint
    return uvarint((n << 1) ^ (n >> 63) if n < 0 else n << 1)


def string(s):
    if isinstance(s, str):
        s = s.encode()
    return uvarint(len(s)) + s


def header(kind, codec=b"json", typ=b"", sender=b"pyzmq", seq=0, send_time=None,
           request_id=0, deadline=0, status=0, error=b"", magic=MAGIC):
    if send_time is None:
        send_time = time.time_ns()
    return (bytes([magic, kind, 0, status]) + string(codec) + string(typ) +
            string(sender) + uvarint(seq) + varint(send_time) +
            uvarint(request_id) + varint(deadline) + string(error))


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def byte(self):
        if self.i >= len(self.b):
            fail("header truncated at", self.i)
        v = self.b[self.i]
        self.i += 1
        return v

    def uvarint(self):
        n, shift = 0, 0
        while True:
            c = self.byte()
            n |= (c & 0x7F) << shift
            if c < 0x80:
                return n
            shift += 7

    def varint(self):
        u = self.uvarint()
        return (u >> 1) ^ -(u & 1)

    def string(self, limit):
        n = self.uvarint()
        if n > limit:
            fail("string of", n, "bytes, limit", limit)
        s = self.b[self.i:self.i + n]
        if len(s) != n:
            fail("string truncated")
        self.i += n
        return s


def parse_header(b, ext=False):
    # ext: the header may carry extensions (flags bit 2): the rest of the
    # frame, (uvarint type, uvarint length, value) entries, in h["ext"].
    r = Reader(b)
    h = {"magic": r.byte(), "kind": r.byte(), "flags": r.byte(), "status": r.byte()}
    h["codec"] = r.string(64).decode()
    h["type"] = r.string(255).decode()
    h["sender"] = r.string(64).decode()
    h["seq"] = r.uvarint()
    h["send_time"] = r.varint()
    h["request_id"] = r.uvarint()
    h["deadline"] = r.varint()
    h["error"] = r.string(4096).decode()
    h["ext"] = []
    if ext and h["flags"] & 4:
        while r.i < len(b):
            typ = r.uvarint()
            h["ext"].append((typ, r.string(4096)))
    if r.i != len(b):
        fail("trailing bytes after the header:", b[r.i:])
    if h["magic"] != MAGIC:
        fail("magic", h["magic"])
    if h["flags"] & ~(4 if ext else 0):
        fail("flags", h["flags"])
    return h


def check_time(h):
    # the node's send time, read as a zig-zag varint, is close to ours
    if abs(h["send_time"] - time.time_ns()) > 60 * 10**9:
        fail("send time", h["send_time"], "is not now: zig-zag decoding wrong?")


def socket(kind, addr):
    ctx = zmq.Context.instance()
    s = ctx.socket(kind)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.setsockopt(zmq.LINGER, 0)
    return s


def recv(s, what):
    try:
        return s.recv_multipart()
    except zmq.Again:
        fail(what, ": no message within 10 s")


def sub(addr, topic, node_id, n, min_seq=0):
    s = socket(zmq.SUB, addr)
    s.setsockopt(zmq.SUBSCRIBE, topic.encode() + b"\x00")
    s.connect("tcp://" + addr)
    print("ready", flush=True)
    last = 0
    for _ in range(n):
        f = recv(s, "sub")
        if len(f) != 3 or f[0] != topic.encode() + b"\x00":
            fail("sub: frames", f[:1], len(f))
        h = parse_header(f[1])
        if h["kind"] != PUBLISH or h["status"] != 0 or h["codec"] != "json" or h["sender"] != node_id:
            fail("sub: header", h)
        if h["seq"] <= last:
            fail("sub: seq", h["seq"], "after", last)
        if h["seq"] <= min_seq:  # a plain SUB gets live messages only, never a publisher's history
            fail("sub: seq", h["seq"], "was published before the SUB subscribed (up to", min_seq, ")")
        last = h["seq"]
        check_time(h)
        v = json.loads(f[2])
        if set(v) != {"X", "Y", "Seq"} or v["X"] != v["Seq"] * 0.5:
            fail("sub: payload", v)
    print("sub ok", n, "seq", last, "type", h["type"], "payload", json.dumps(v, sort_keys=True), flush=True)
    s.close()


def call(s, name, kind, request_id, payload, deadline=2 * 10**9):
    s.send_multipart([name + b"\x00", header(kind, request_id=request_id, deadline=deadline), payload])
    f = recv(s, "dealer " + name.decode())
    if len(f) != 3 or f[0] != name + b"\x00":
        fail("dealer: frames", f)
    h = parse_header(f[1])
    if h["kind"] != REPLY or h["request_id"] != request_id:
        fail("dealer: reply header", h)
    check_time(h)
    return h, f[2]


def dealer(addr, node_id):
    s = socket(zmq.DEALER, addr)
    s.connect("tcp://" + addr)
    h, p = call(s, b"math/add", REQUEST, 7, json.dumps({"A": 20, "B": 22}).encode())
    if h["status"] != 0 or h["codec"] != "json" or h["sender"] != node_id or json.loads(p) != {"Sum": 42}:
        fail("dealer: math/add", h, p)
    print("dealer ok math/add", p.decode(), flush=True)

    h, p = call(s, b"$describe", CONTROL, 8, b"")
    d = json.loads(p)
    if h["status"] != 0 or d["id"] != node_id or not any(x["name"] == "math/add" for x in d["services"]):
        fail("dealer: $describe", h, d)
    for k in ("id", "name", "version", "router", "pub", "topics", "subscriptions", "services"):
        if k not in d:
            fail("dealer: $describe lacks", k)
    print("dealer ok $describe", d["name"], d["router"] == addr, flush=True)

    h, p = call(s, b"no/such/service", REQUEST, 9, b"{}")
    if h["status"] != 8 or not h["error"]:  # 8: not served (README, wire format)
        fail("dealer: unknown service", h)
    print("dealer ok unknown", h["status"], h["error"], flush=True)

    # A deadline already past when it arrives: 1 ns. The handler of
    # math/add ignores its ctx, so a reply comes either way.
    h, p = call(s, b"math/add", REQUEST, 10, b'{"A":1,"B":2}', deadline=1)
    print("dealer ok past-deadline status", h["status"], flush=True)

    # A cancel for an id nobody used gets no answer; the next call works.
    s.send_multipart([b"math/add\x00", header(CANCEL, request_id=999), b""])
    h, p = call(s, b"math/add", REQUEST, 11, b'{"A":2,"B":2}')
    if h["status"] != 0 or json.loads(p) != {"Sum": 4}:
        fail("dealer: after cancel", h, p)
    print("dealer ok cancel-unknown", flush=True)
    s.close()


def history(addr, node_id, topic, want):
    # $history, as the README's wire section gives it: the newest `want`
    # messages the node keeps of topic.
    s = socket(zmq.DEALER, addr)
    s.connect("tcp://" + addr)
    req = bytes([1]) + uvarint(want) + uvarint(0) + topic.encode()
    s.send_multipart([b"$history\x00", header(CONTROL, codec=b"colugo-history", request_id=21, deadline=2 * 10**9), req])
    f = recv(s, "history")
    h = parse_header(f[1])
    if h["kind"] != REPLY or h["status"] != 0 or h["request_id"] != 21 or h["codec"] != "colugo-history":
        fail("history: reply header", h)
    r = Reader(f[2])
    flags, depth, latest = r.byte(), r.uvarint(), r.uvarint()
    seqs, values = [], []
    while r.i < len(r.b):
        hb = r.string(1 << 20)
        eh = parse_header(hb, ext=True)
        body = r.string(64 << 20)
        if eh["kind"] != PUBLISH or eh["sender"] != node_id or (3, b"") not in eh["ext"]:
            fail("history: entry", eh)
        check_time(eh)
        seqs.append(str(eh["seq"]))
        values.append(str(json.loads(body)["Seq"]))
    print("history ok flags", flags, "depth", depth, "latest", latest, "seqs", ",".join(seqs), "values", ",".join(values), flush=True)

    s.send_multipart([b"$history\x00", header(CONTROL, codec=b"colugo-history", request_id=22), bytes([1]) + uvarint(1) + uvarint(0) + b"not/published"])
    h = parse_header(recv(s, "history unknown topic")[1])
    if h["status"] != 8:  # not served
        fail("history: unknown topic", h)
    print("history ok unknown", h["status"], h["error"], flush=True)
    s.close()


def hostile(addr):
    s = socket(zmq.DEALER, addr)
    s.connect("tcp://" + addr)
    good = header(REQUEST, request_id=1)
    bad = [
        [b"math/add\x00"],                                          # one frame
        [b"math/add\x00", good],                                    # two
        [b"math/add\x00", good, b"{}", b"extra", b"frames"],        # five
        [b"math/add\x00", header(REQUEST, magic=0xC2), b"{}"],      # version 2
        [b"math/add\x00", header(REQUEST, magic=0x01), b"{}"],      # not colugo
        [b"math/add\x00", header(99), b"{}"],                       # unknown kind
        [b"math/add\x00", header(REPLY), b"{}"],                    # reply to a router
        [b"math/add", good, b"{}"],                                 # no NUL
        [b"\xff\xfe\x00", good, b"{}"],                             # not UTF-8
        [b"math/add\x00", good[:6], b"{}"],                         # truncated header
        [b"math/add\x00", good + b"x", b"{}"],                      # trailing byte
        [b"math/add\x00", bytes([MAGIC, REQUEST, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), b"{}"],  # giant codec length
    ]
    for m in bad:
        s.send_multipart(m)
    print("sent", len(bad), flush=True)
    s.send_multipart([b"math/add\x00", header(REQUEST, request_id=5, deadline=2 * 10**9), b'{"A":1,"B":2}'])
    f = recv(s, "hostile: good request")
    h = parse_header(f[1])
    if h["request_id"] != 5 or h["status"] != 0 or json.loads(f[2]) != {"Sum": 3}:
        fail("hostile: reply", h, f)
    print("hostile ok", len(bad), flush=True)
    s.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "sub":
        sub(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]) if len(sys.argv) > 6 else 0)
    elif mode == "history":
        history(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "dealer":
        dealer(sys.argv[2], sys.argv[3])
    else:
        hostile(sys.argv[2])
    zmq.Context.instance().term()
