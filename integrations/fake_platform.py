"""What every local stand-in for a platform's API shares (``integrations/providers/*/fake_*.py``):
a threaded HTTP server on 127.0.0.1 with a free port, the requests it saw, faults scripted by a path
fragment (each served ``times`` times, then the real answer again), and JSON answers.

Each fake keeps what is its platform's own: its ``Fault`` (Zoom's error body is not Eventbrite's),
its data, how it pages and throttles, and its handler's routes.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakePlatform(ThreadingHTTPServer):
    """Subclasses set ``fault_class`` (a dataclass with ``match``, ``times`` and their own fields)
    and pass their handler class."""

    daemon_threads = True
    fault_class: type

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), handler)
        self.requests: list[dict] = []
        self.faults: list = []
        self.lock = threading.Lock()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fail(self, match: str, **kwargs) -> None:
        """The next ``times`` requests whose path contains ``match`` get this fault."""
        with self.lock:
            self.faults.append(self.fault_class(match, **kwargs))

    def record(self, request: dict, path: str):
        """Note ``request`` and take the fault scripted for ``path``, if any, in one step (two
        threads never both take a fault that has one use left)."""
        with self.lock:
            self.requests.append(request)
            return self.take_fault(path)

    def take_fault(self, path: str):
        """The first fault for ``path`` with uses left, one use taken; the caller holds ``lock``."""
        fault = next((f for f in self.faults if f.match in path and f.times > 0), None)
        if fault:
            fault.times -= 1
        return fault

    def paths(self, fragment: str = "") -> list[str]:
        with self.lock:
            return [r["path"] for r in self.requests if fragment in r["path"]]

    def start(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet handler (tests read ``server.requests``) that answers JSON."""

    def log_message(self, *args):
        pass

    def extra_headers(self) -> dict:
        """Headers every answer carries (Meta's usage headers); none by default."""
        return {}

    def answer(self, status: int, body, headers: dict | None = None) -> None:
        raw = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in {**self.extra_headers(), **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a test's timeout)
            pass
