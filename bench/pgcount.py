"""A counting TCP proxy between an application and PostgreSQL, for ``make bench``'s round trips.

Every byte is forwarded unchanged both ways; the client-to-server stream is also parsed as the
PostgreSQL wire protocol (v3) to count the messages that end a round trip: ``Sync`` (``S``, the
end of an extended-protocol exchange: Parse/Bind/Describe/Execute/Sync, what psycopg sends for a
statement) and ``Query`` (``Q``, the simple protocol: psycopg's BEGIN/COMMIT/ROLLBACK). The
client then waits for ``ReadyForQuery``, so each of them is one wait on the database. The start-up
packets (SSLRequest, GSSENCRequest, StartupMessage) carry no type byte and are skipped; connect
through the proxy with ``sslmode=disable`` so the stream stays readable.

Only loopback upstreams; ``CountingProxy(("127.0.0.1", 5432)).start()`` listens on a free
127.0.0.1 port (``.port``); ``.snapshot()`` is the counts so far (``round_trips``, ``messages``
by type, ``connections``).
"""

from __future__ import annotations

import socket
import threading
from collections import Counter

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
ROUND_TRIP_TYPES = {ord("S"), ord("Q")}


class FrontendStream:
    """Parses one connection's client-to-server bytes incrementally and counts its messages."""

    def __init__(self, counts: Counter, lock: threading.Lock):
        self.counts, self.lock = counts, lock
        self.buffer = bytearray()
        self.startup = True  # until the StartupMessage: untyped, length-prefixed packets

    def feed(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        seen: list[int] = []
        while True:
            if self.startup:
                if len(buffer) < 8:
                    break
                length = int.from_bytes(buffer[0:4], "big")
                code = int.from_bytes(buffer[4:8], "big")
                if length < 8 or len(buffer) < length:
                    break
                del buffer[:length]
                if code not in (SSL_REQUEST, GSSENC_REQUEST):
                    self.startup = code == CANCEL_REQUEST  # a cancel request ends its connection
            else:
                if len(buffer) < 5:
                    break
                length = int.from_bytes(buffer[1:5], "big")
                if len(buffer) < 1 + length:
                    break
                seen.append(buffer[0])
                del buffer[:1 + length]
        if seen:
            with self.lock:
                for kind in seen:
                    self.counts[kind] += 1


class CountingProxy:
    def __init__(self, upstream: tuple[str, int]):
        if upstream[0] not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the counting proxy only forwards to loopback")
        self.upstream = upstream
        self.counts: Counter = Counter()
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        self.sockets: list[socket.socket] = []

    def start(self) -> CountingProxy:
        threading.Thread(target=self._accept, daemon=True, name="pgcount-accept").start()
        return self

    def snapshot(self) -> dict:
        with self.lock:
            messages = {chr(kind): n for kind, n in sorted(self.counts.items())}
            trips = sum(n for kind, n in self.counts.items() if kind in ROUND_TRIP_TYPES)
            return {"round_trips": trips, "messages": messages, "connections": self.connections}

    def close(self) -> None:
        """Stop, and end every forwarded connection: a socket another thread is blocked reading is
        not released by ``close()`` alone (the backend behind it would stay connected, idle), so each
        is shut down first, which wakes that thread and tells PostgreSQL the client is gone."""
        self.closed = True
        for sock in [self.listener, *self.sockets]:
            try:
                if sock is not self.listener:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
                self.sockets += [client, server]
            stream = FrontendStream(self.counts, self.lock)
            threading.Thread(target=self._pump, args=(client, server, stream.feed), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, feed) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if feed is not None:
                    feed(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
