"""pyzmq stand-ins for the Python colugo's (the seed's) sockets, on loopback.

The seed's sockets as seed-wire.md measured them: one socket per topic, one
frame per message, REQ with REQ_CORRELATE and REQ_RELAXED. No mDNS here: the
Go test tells its node about these sockets through a fake directory.

    seedpeer.py pub N         bind a PUB, print "port P"; send "warm" frames until
                              a line "go" arrives on stdin, then N frames "m <i>",
                              print "sent N", and wait for stdin to close
    seedpeer.py sub PORT N    a SUB of 127.0.0.1:PORT (subscribes to ""); print
                              "ready" at the first frame, then "got N" once it has
                              the N frames "m 0".."m N-1" in order (others ignored)
    seedpeer.py req PORT N BODY
                              a REQ (REQ_CORRELATE, REQ_RELAXED, 2 s receive
                              timeout, as the seed's) sending BODY N times; print
                              "reply <text>" for the first and "replies K" at the end
    seedpeer.py rep MODE      bind a REP, print "port P", then answer until stdin
                              closes; MODE echo (reply = request) or silent (never
                              answers)
    seedpeer.py badpub        bind a PUB, print "port P", send 3-frame messages and
                              non-UTF-8 frames until a line "go", then "m 0", then
                              wait for stdin to close

Prints result lines, exits 1 on a failure.
"""
import sys
import threading

import zmq


def fail(*args):
    print("FAIL", *args, flush=True)
    sys.exit(1)


def wait_line(want):
    for line in sys.stdin:
        if line.strip() == want:
            return True
    return False


def stdin_closed(ev):
    for _ in sys.stdin:
        pass
    ev.set()


def bind(ctx, kind):
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 100000)
    port = s.bind_to_random_port("tcp://127.0.0.1", 10001, 20000)
    print("port", port, flush=True)
    return s


def pub(ctx, n):
    s = bind(ctx, zmq.PUB)
    go = threading.Event()

    def reader():
        if wait_line("go"):
            go.set()
    threading.Thread(target=reader, daemon=True).start()
    while not go.wait(0.005):
        s.send_string("warm")
    for i in range(n):
        s.send_string("m %d" % i)
    print("sent", n, flush=True)
    wait_line("never")  # until stdin closes: closing early would lose the tail


def badpub(ctx):
    s = bind(ctx, zmq.PUB)
    go = threading.Event()

    def reader():
        if wait_line("go"):
            go.set()
    threading.Thread(target=reader, daemon=True).start()
    while not go.wait(0.005):
        s.send_multipart([b"a", b"b", b"c"])
        s.send(b"\xff\xfe not utf-8")
    s.send_string("m 0")
    print("sent 1", flush=True)
    wait_line("never")


def sub(ctx, port, n):
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVHWM, 100000)
    s.setsockopt_string(zmq.SUBSCRIBE, "")
    s.connect("tcp://127.0.0.1:%d" % port)
    s.setsockopt(zmq.RCVTIMEO, 20000)
    ready = False
    want = 0
    while want < n:
        try:
            msg = s.recv_multipart()
        except zmq.Again:
            fail("timeout at", want)
        if len(msg) != 1:
            fail("frames", len(msg))
        text = msg[0].decode("utf-8")  # as the seed: anything else kills it
        if not ready:
            ready = True
            print("ready", flush=True)
        if text == "m %d" % want:
            want += 1
        elif text.startswith("m ") and want > 0:
            fail("out of order: got", text, "want", want)
    print("got", want, flush=True)


def req(ctx, port, n, body):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.REQ_CORRELATE, 1)
    s.setsockopt(zmq.REQ_RELAXED, 1)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 2000)
    s.connect("tcp://127.0.0.1:%d" % port)
    k = 0
    for i in range(n):
        s.send_string(body)
        try:
            rep = s.recv_multipart()
        except zmq.Again:
            fail("no reply to request", i)
        text = rep[0].decode("utf-8")
        if i == 0:
            print("reply", text, flush=True)
        k += 1
    print("replies", k, flush=True)


def rep(ctx, mode):
    s = bind(ctx, zmq.REP)
    done = threading.Event()
    threading.Thread(target=stdin_closed, args=(done,), daemon=True).start()
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    while not done.is_set():
        if not poller.poll(20):
            continue
        msg = s.recv()
        if mode == "silent":
            continue  # a REP that never answers is stuck: it reads nothing more
        s.send(msg)


def main():
    ctx = zmq.Context()
    mode = sys.argv[1]
    if mode == "pub":
        pub(ctx, int(sys.argv[2]))
    elif mode == "badpub":
        badpub(ctx)
    elif mode == "sub":
        sub(ctx, int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "req":
        req(ctx, int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif mode == "rep":
        rep(ctx, sys.argv[2])
    else:
        fail("mode", mode)


if __name__ == "__main__":
    main()
