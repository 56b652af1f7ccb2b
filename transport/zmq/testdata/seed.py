"""libzmq (pyzmq) peers speaking the seed's frames, for seed_pyzmq_test.go.

The seed (the Python colugo) uses plain pyzmq sockets: PUB and REP bind,
SUB subscribes to "" and REQ sets REQ_CORRELATE, REQ_RELAXED, LINGER=0 and
SNDTIMEO=1000, then waits 2 s for each reply. These peers do the same.

    seed.py sub ADDR N        SUB on "": prints "ready"; expects "warm" frames
                              until it prints "warm", then N frames "m <i>"
    seed.py pub MODE N        PUB bound on 127.0.0.1: prints "port P"; sends
                              "warm" until stdin says "go", then N messages
                              (MODE plain: "m <i>"; 3frames: each "m <i>"
                              followed by a 3-frame message; binary: each
                              followed by the non-UTF-8 frame ff fe), then
                              waits for stdin to close
    seed.py rep MODE          bound on 127.0.0.1, prints "port P", serves
                              until stdin closes. MODE echo: a REP answering
                              "echo:<body>"; silent: a REP that never reads;
                              twice: a ROUTER answering each request twice;
                              late: a ROUTER answering after 300 ms
    seed.py req ADDR N        a seed REQ: N requests "r <i>", one at a time,
                              each answer "echo:r <i>" within 2 s
    seed.py req-idle ADDR     a seed REQ: a request, 1 s idle, a request
    seed.py req-cases ADDR    a seed REQ: "fail", "slow", "panic", "bin" must
                              each get "ERR" within 2 s (elapsed printed);
                              then two pipelined requests (REQ_RELAXED): the
                              second's answer arrives

Prints result lines; exits 1 on a failure.
"""
import select
import sys
import time

import zmq


def seed_req(ctx, addr):
    # As the seed's RequestClient does (on the context in the seed).
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.REQ_CORRELATE, 1)
    s.setsockopt(zmq.REQ_RELAXED, 1)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDTIMEO, 1000)
    s.connect("tcp://" + addr)
    return s


def recv_within(s, ms):
    if not s.poll(ms):
        return None
    return s.recv_multipart()


def stdin_line(timeout):
    r, _, _ = select.select([sys.stdin], [], [], timeout)
    if not r:
        return None
    return sys.stdin.readline()


def fail(msg):
    print(msg, flush=True)
    sys.exit(1)


def main():
    ctx = zmq.Context()
    mode = sys.argv[1]
    if mode == "sub":
        addr, n = sys.argv[2], int(sys.argv[3])
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect("tcp://" + addr)
        print("ready", flush=True)
        while True:
            m = recv_within(s, 10000)
            if m is None:
                fail("sub: no warm frame in 10 s")
            if m == [b"warm"]:
                break
        print("warm", flush=True)
        got, start, seen = 0, None, set()
        while got < n:
            m = recv_within(s, 10000)
            if m is None:
                fail("sub: got %d of %d" % (got, n))
            if len(m) != 1:
                fail("sub: %d frames" % len(m))
            if m[0] == b"warm":
                continue
            if start is None:
                start = time.monotonic()
            i = int(m[0].split(b" ")[1])
            if i in seen:
                fail("sub: duplicate %d" % i)
            seen.add(i)
            m[0].decode("utf-8")  # what the seed does with every frame
            got += 1
        el = time.monotonic() - start
        print("sub ok %d/%d %.0f msg/s" % (got, n, got / max(el, 1e-6)), flush=True)
    elif mode == "pub":
        kind, n = sys.argv[2], int(sys.argv[3])
        s = ctx.socket(zmq.PUB)
        # libzmq's default SNDHWM (1000, the seed's) drops what the app
        # queues faster than its I/O thread writes: sending 1000 at full
        # rate lost the tail here (1 of 1000; 501 of 2000 frames) with
        # nothing lost by the reader. A bigger HWM shows what the Go side
        # receives; an unpaced seed publisher loses the rest itself.
        s.setsockopt(zmq.SNDHWM, 100000)
        port = s.bind_to_random_port("tcp://127.0.0.1")
        print("port %d" % port, flush=True)
        while stdin_line(0.001) is None:
            s.send(b"warm")
        for i in range(n):
            s.send(b"m %d" % i)
            if kind == "3frames":
                s.send_multipart([b"a", b"b", b"c"])
            elif kind == "binary":
                s.send(b"\xff\xfe")
        print("sent %d" % n, flush=True)
        sys.stdin.read()
    elif mode == "rep":
        kind = sys.argv[2]
        s = ctx.socket(zmq.ROUTER if kind in ("twice", "late") else zmq.REP)
        port = s.bind_to_random_port("tcp://127.0.0.1")
        print("port %d" % port, flush=True)
        poller = zmq.Poller()
        if kind != "silent":
            poller.register(s, zmq.POLLIN)
        poller.register(sys.stdin.fileno(), zmq.POLLIN)
        while True:
            ev = dict(poller.poll())
            if sys.stdin.fileno() in ev:
                if sys.stdin.readline() == "":
                    break
                continue
            m = s.recv_multipart()
            if kind == "echo":
                s.send_multipart([b"echo:" + m[0]])
            elif kind == "twice":
                s.send_multipart(m[:-1] + [b"echo:" + m[-1]])
                s.send_multipart(m[:-1] + [b"again:" + m[-1]])
            elif kind == "late":
                time.sleep(0.3)
                s.send_multipart(m[:-1] + [b"late:" + m[-1]])
    elif mode == "req":
        addr, n = sys.argv[2], int(sys.argv[3])
        s = seed_req(ctx, addr)
        start = time.monotonic()
        for i in range(n):
            s.send(b"r %d" % i)
            m = recv_within(s, 2000)
            if m != [b"echo:r %d" % i]:
                fail("req: %d: got %r" % (i, m))
        el = time.monotonic() - start
        print("req ok %d/%d %.0f req/s" % (n, n, n / max(el, 1e-6)), flush=True)
    elif mode == "req-idle":
        s = seed_req(ctx, sys.argv[2])
        for body in (b"before", b"after"):
            s.send(body)
            if recv_within(s, 2000) != [b"echo:" + body]:
                fail("req-idle: no answer to " + body.decode())
            time.sleep(1.0)  # idle, longer than the Go side's peer timeout
        print("idle ok", flush=True)
    elif mode == "req-cases":
        s = seed_req(ctx, sys.argv[2])
        for body in (b"fail", b"slow", b"panic", b"bin", b"ok"):
            t0 = time.monotonic()
            s.send(body)
            m = recv_within(s, 2000)
            el = time.monotonic() - t0
            want = [b"echo:ok"] if body == b"ok" else [b"ERR"]
            if m != want:
                fail("req-cases: %s: got %r after %.3f s" % (body.decode(), m, el))
            print("case %s %.3f" % (body.decode(), el), flush=True)
        s.send(b"p1")
        s.send(b"p2")  # REQ_RELAXED: a new request before the reply
        m = recv_within(s, 2000)
        if m != [b"echo:p2"]:
            fail("req-cases: pipelined: got %r" % (m,))
        print("case pipelined ok", flush=True)
    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
