"""Seed (Python colugo) programs for the exchanges with Go nodes, built on the seed's own classes.

Run it only inside the test's private network namespace: the seed sends mDNS.
PYTHONPATH must hold a patched copy of seed-colugo (see seed-colugo/README.md).

    seedapp.py pub TOPIC N       publish "warm" every 10 ms until a line "go" on stdin, then
                                 "m 0".."m N-1" at full rate; SENT N; run until stdin closes
    seedapp.py sub TOPIC N       subscribe; READY once subscribed, FIRST <s> at the first
                                 message (s after the Node was made), GOT N once "m 0".."m N-1" arrived in order (other
                                 messages ignored), AGAIN at the first "again" after that; run
                                 until stdin closes
    seedapp.py req TOPIC N BODY  a request client (READY once made): once connected, N
                                 requests BODY one after the other (each sent when the previous is answered, a 2 s timeout
                                 each, the seed's default); FIRST <s> <reply> at the first reply,
                                 REPLIES k TIMEOUTS t when done; run until stdin closes
    seedapp.py pubbytes TOPIC HEX
                                 publish the bytes HEX every 10 ms (send(bytes), as the seed's
                                 pub_proto.py sends a serialized message); READY <port>
    seedapp.py rep TOPIC         reply "seed-echo:<request>" until stdin closes; READY <port>

Lines on stdout are flushed. EXCEPTION <where> <what>: an exception escaped a thread or
was logged (the seed's callbacks).
"""
import sys
import threading
import time

import zmq

from colugo.py.node import Node
from seedlog import say


class App(Node):
    def __init__(self, name):
        self.began = time.monotonic()
        super().__init__(name)

    def start(self):
        # Not in __init__: starting a thread there gives the seed's browser,
        # started by Node.__init__, time to resolve a service before the
        # subclass adds its socket, and the seed connects a client only to
        # services resolved after it was added (go-first runs lost the Go
        # record that way: 2 of 5 on a busy host). The examples, too, add
        # their sockets right after Node.__init__.
        threading.Thread(target=self.watch_stdin, daemon=True).start()
        super().start()

    def watch_stdin(self):
        for line in sys.stdin:
            self.loop.add_callback(self.command, line.strip())
        self.loop.add_callback(self.stop)

    def command(self, line):
        pass


class Pub(App):
    def __init__(self, topic, n):
        super().__init__("seedapp-pub")
        self.n = n
        self.pub = self.add_publisher(topic)
        # libzmq's PUB drops past SNDHWM (1000): a burst of n must fit.
        self.pub.zmq_socket.setsockopt(zmq.SNDHWM, max(1000, 4 * n))
        say("READY", self.pub.port)
        self.warm = self.add_repeater(10, lambda: self.pub.send("warm"))

    def command(self, line):
        if line != "go":
            return
        self.warm.stop()
        for i in range(self.n):
            self.pub.send("m %d" % i)
        say("SENT", self.n)


class PubBytes(App):
    def __init__(self, topic, data):
        super().__init__("seedapp-pubbytes")
        self.pub = self.add_publisher(topic)
        say("READY", self.pub.port)
        self.tick = self.add_repeater(10, lambda: self.pub.send(data))


class Sub(App):
    def __init__(self, topic, n):
        super().__init__("seedapp-sub")
        self.n = n
        self.want = 0
        self.first = self.again = False
        self.sub = self.add_subscriber(topic, self.got)
        # The seed connects a subscriber only to publishers it resolves after
        # add_subscriber: one resolved while the Node was being made is lost.
        say("READY")

    def got(self, message):
        if not self.first:
            self.first = True
            say("FIRST", "%.3f" % (time.monotonic() - self.began))
        if message == "again" and self.want == self.n and not self.again:
            self.again = True
            say("AGAIN")
        elif self.want < self.n and message == "m %d" % self.want:
            self.want += 1
            if self.want == self.n:
                say("GOT", self.n)
        elif message.startswith("m ") and 0 < self.want < self.n:
            say("EXCEPTION", "order", "got %r, want m %d" % (message, self.want))


class Req(App):
    def __init__(self, topic, n, body):
        super().__init__("seedapp-req")
        self.n, self.body = n, body
        self.sent = self.replies = self.timeouts = 0
        self.started = False
        self.client = self.add_request_client(topic, self.connected)
        say("READY")  # as Sub: servers resolved before this line are lost

    def connected(self):
        # On the zeroconf browser's thread: start on the loop, once.
        self.loop.add_callback(self.start_once)

    def start_once(self):
        if not self.started:
            self.started = True
            self.next()

    def next(self):
        if self.sent == self.n:
            say("REPLIES", self.replies, "TIMEOUTS", self.timeouts)
            return
        self.sent += 1
        self.client.send(self.body, self.reply, timeout=2000, timeout_handler=self.timeout)

    def reply(self, message):
        self.replies += 1
        if self.replies == 1:
            say("FIRST", "%.3f" % (time.monotonic() - self.began), message)
        self.loop.add_callback(self.next)

    def timeout(self):
        self.timeouts += 1
        self.loop.add_callback(self.next)


class Rep(App):
    def __init__(self, topic):
        super().__init__("seedapp-rep")
        self.rep = self.add_reply_server(topic, self.serve)
        say("READY", self.rep.port)

    def serve(self, message, reply):
        reply("seed-echo:" + message)


def main():
    mode, topic = sys.argv[1], sys.argv[2]
    if mode == "pub":
        node = Pub(topic, int(sys.argv[3]))
    elif mode == "pubbytes":
        node = PubBytes(topic, bytes.fromhex(sys.argv[3]))
    elif mode == "sub":
        node = Sub(topic, int(sys.argv[3]))
    elif mode == "req":
        node = Req(topic, int(sys.argv[3]), sys.argv[4])
    elif mode == "rep":
        node = Rep(topic)
    else:
        say("EXCEPTION", "args", "mode %r" % mode)
        sys.exit(2)
    node.start()


if __name__ == "__main__":
    main()
