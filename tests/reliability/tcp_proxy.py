"""A TCP proxy for fault tests that can lose one answer: the request reaches the server, the
server does the work, and the connection is cut before its reply gets back.

Transparent until `arm`ed. Armed, it watches what clients send for `trigger` (bytes of a query
text, e.g. b"INSERT INTO submissions"); on the connection that sends it, every chunk the server
sends back is first held while `done()` is asked (the test's own check, on a direct connection,
that the work is in: say, the batch's rows are stored). Chunks sent before that (ClickHouse's
sample block, which comes before the data) are passed on; the first one after is dropped and
both sides of that connection are closed. Then the proxy is transparent again (one fault per
arming).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

CHUNK = 64 * 1024


class ReplyDroppingProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._trigger: bytes | None = None
        self._done: Callable[[], bool] | None = None
        self._target: socket.socket | None = None  # the client side of the connection to cut
        self.dropped = threading.Event()  # set once a reply was dropped after `done()`
        self.passed_while_armed = 0  # server chunks passed on the target connection
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def arm(self, trigger: bytes, done: Callable[[], bool]) -> None:
        with self._lock:
            self._trigger, self._done, self._target = trigger, done, None
            self.dropped.clear()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            _close(s)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns += [client, server]
            threading.Thread(target=self._upward, args=(client, server), daemon=True).start()
            threading.Thread(target=self._downward, args=(client, server), daemon=True).start()

    def _upward(self, client: socket.socket, server: socket.socket) -> None:
        tail = b""
        try:
            while chunk := client.recv(CHUNK):
                with self._lock:
                    trigger = self._trigger
                    if trigger is not None and self._target is None and trigger in tail + chunk:
                        self._target = client
                tail = chunk[-256:]
                server.sendall(chunk)
        except OSError:
            pass
        _close(client)
        _close(server)

    def _downward(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while chunk := server.recv(CHUNK):
                with self._lock:
                    targeted = self._target is client and self._done is not None
                    done = self._done
                if targeted and done is not None:
                    if done():
                        with self._lock:
                            self._trigger, self._done, self._target = None, None, None
                        self.dropped.set()
                        break  # the reply is lost: the client sees its connection reset
                    self.passed_while_armed += 1
                client.sendall(chunk)
        except OSError:
            pass
        _close(client)
        _close(server)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
