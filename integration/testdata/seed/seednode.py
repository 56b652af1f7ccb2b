"""A tiny seed (Python colugo) node for the Go tests, built on the seed's own classes.

Run it only inside the test's private network namespace: the seed sends mDNS.
PYTHONPATH must hold a patched copy of seed-colugo (see seed-colugo/README.md).

    seednode.py pub TOPIC PERIOD_MS     publish "seed-pub N" every PERIOD_MS until SIGINT or stdin closes
    seednode.py rep TOPIC               reply "seed-echo:<request>" until SIGINT or stdin closes
    seednode.py sub TOPIC COUNT LIMIT_S subscribe; exit after COUNT messages, or after LIMIT_S seconds

Lines on stdout (flushed), for the test to wait on:
    READY <port>              pub, rep: the socket is bound and registered
    BROWSED <seconds> <name>  the seed's browser handled <name>, which took <seconds> (resolution included)
    FIRST <seconds>           sub: first message, <seconds> after the Node was made (its discovery time)
    DONE <n>                  sub: n messages received
    TIMEOUT <n>               sub: LIMIT_S passed with n messages
    EXCEPTION <where> <what>  an exception escaped a thread (the zeroconf browser's, say) or was logged
"""
import sys
import threading
import time

from colugo.py.discovery import Discovery
from colugo.py.node import Node
from seedlog import say


_add_service = Discovery.add_service


def add_service(self, zeroconf, service_type, name):
    began = time.monotonic()
    try:
        _add_service(self, zeroconf, service_type, name)
    finally:
        say("BROWSED", "%.3f" % (time.monotonic() - began), name)


Discovery.add_service = add_service


class Pub(Node):
    def __init__(self, topic, period_ms):
        super().__init__("seedpub")
        self.n = 0
        self.pub = self.add_publisher(topic)
        say("READY", self.pub.port)
        self.rep = self.add_repeater(period_ms, self.tick)
        threading.Thread(target=self.watch_stdin, daemon=True).start()

    def tick(self):
        self.n += 1
        self.pub.send("seed-pub %d" % self.n)

    def watch_stdin(self):
        sys.stdin.read()  # the test closed our stdin (or exited)
        self.loop.add_callback(self.stop)


class Rep(Node):
    def __init__(self, topic):
        super().__init__("seedrep")
        self.rep = self.add_reply_server(topic, self.serve)
        say("READY", self.rep.port)
        threading.Thread(target=self.watch_stdin, daemon=True).start()

    def serve(self, message, reply):
        reply("seed-echo:" + message)

    def watch_stdin(self):
        sys.stdin.read()
        self.loop.add_callback(self.stop)


class Sub(Node):
    def __init__(self, topic, count, limit_s):
        self.began = time.monotonic()
        super().__init__("seedsub")
        self.count = count
        self.n = 0
        self.sub = self.add_subscriber(topic, self.got)
        self.add_delayed_callback(limit_s * 1000, self.timeout)

    def got(self, message):
        self.n += 1
        if self.n == 1:
            say("FIRST", "%.3f" % (time.monotonic() - self.began))
        if self.n == self.count:
            say("DONE", self.n)
            self.stop()

    def timeout(self):
        say("TIMEOUT", self.n)
        self.stop()


def main():
    role, topic = sys.argv[1], sys.argv[2]
    if role == "pub":
        node = Pub(topic, int(sys.argv[3]))
    elif role == "rep":
        node = Rep(topic)
    elif role == "sub":
        node = Sub(topic, int(sys.argv[3]), float(sys.argv[4]))
    else:
        raise SystemExit("unknown role " + role)
    node.start()


main()
