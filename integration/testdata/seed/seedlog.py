"""What the seed programs of the Go tests share: flushed result lines, and an EXCEPTION line
for every exception that escapes a thread (the zeroconf browser's, say) or is logged
(tornado and pyzmq log the exceptions of callbacks). Importing it installs the hooks."""
import logging
import threading


def say(*words):
    print(*words, flush=True)


def on_thread_exception(args):
    say("EXCEPTION", "thread=" + (args.thread.name if args.thread else "?"),
        "%s: %s" % (args.exc_type.__name__, args.exc_value))


class Errors(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.ERROR:
            say("EXCEPTION", "log=" + record.name, record.getMessage().replace("\n", " "))


threading.excepthook = on_thread_exception
logging.getLogger().addHandler(Errors())
logging.getLogger().setLevel(logging.WARNING)  # the seed logs every message at DEBUG
# The seed's discovery says which services it resolved (Service added) and
# which it lost: few lines, and the evidence when a test finds nothing.
logging.getLogger("Discovery").setLevel(logging.DEBUG)
