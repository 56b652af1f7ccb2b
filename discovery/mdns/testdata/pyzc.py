"""Interop peer for the mdns tests (python3-zeroconf, Debian package).

Runs only inside the test's private network namespace, on lo. It browses
_colugo-go._tcp.local. (colugo-go's type), prints one line per resolved instance:
    FOUND <instance> <port> <key=value,...>
registers one colugo-compatible instance (id from argv[1]), prints READY,
and exits after argv[2] seconds (unregistering: goodbye).
"""
import socket
import sys
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, Zeroconf

TYPE = "_colugo-go._tcp.local."


class Listener:
    def __init__(self):
        self.seen = set()

    def _show(self, zc, name):
        info = zc.get_service_info(TYPE, name, timeout=2000)
        if info is None:
            print("UNRESOLVED", name, flush=True)
            return
        props = ",".join(
            "%s=%s" % (k.decode(), (v or b"").decode()) for k, v in sorted(info.properties.items())
        )
        print("FOUND", name, info.port, props, flush=True)

    def add_service(self, zc, type_, name):
        self._show(zc, name)

    def update_service(self, zc, type_, name):
        self._show(zc, name)

    def remove_service(self, zc, type_, name):
        print("REMOVED", name, flush=True)


def main():
    pid, life = sys.argv[1], float(sys.argv[2])
    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    ServiceBrowser(zc, TYPE, Listener())
    info = ServiceInfo(
        TYPE,
        "py-node-%s.%s" % (pid, TYPE),
        addresses=[socket.inet_aton("127.0.0.1")],
        port=7501,
        properties={"v": "1", "id": pid, "pub": "7502", "cat": "pycat"},
        server="py-%s.local." % pid,
    )
    zc.register_service(info)
    print("READY", flush=True)
    time.sleep(life)
    zc.unregister_service(info)
    zc.close()
    print("BYE", flush=True)


main()
