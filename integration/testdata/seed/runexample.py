"""Runs one of the seed's example programs with its INFO log on stdout, so that the
Go test sees what it received ("<logger> <message>" lines); the examples log but
configure no handler.

    runexample.py PATH    (PYTHONPATH: the patched seed-colugo)
"""
import logging
import os
import runpy
import signal
import sys
import threading

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
import seedlog  # noqa: E402,F401  EXCEPTION lines; after basicConfig, whose handler shows the log

logging.getLogger().setLevel(logging.INFO)  # seedlog keeps the seed programs' at WARNING
for noisy in ("Socket", "Discovery"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


def stop_when_stdin_closes():
    sys.stdin.read()
    # The examples run until SIGINT, whose handler (colugo.py.node) stops
    # the node, goodbyes included; the test closes stdin instead.
    os.kill(os.getpid(), signal.SIGINT)


threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
sys.stdout.reconfigure(line_buffering=True)
runpy.run_path(sys.argv[1], run_name="__main__")
