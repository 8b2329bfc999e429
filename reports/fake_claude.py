"""A local stand-in for Anthropic's Messages API (``POST /v1/messages``) for the report tests:
``ANTHROPIC_BASE_URL`` points at it. ``mode``: ``ok`` answers with ``reply``, ``fail`` with a 500,
``slow`` waits ``delay`` seconds first (longer than the client's timeout). Every request body is
kept in ``bodies``, so a test can assert exactly what Claude was sent."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeClaude(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, reply: str = "Spend rose while new contacts held steady."):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply, self.mode, self.delay = reply, "ok", 2.0
        self.bodies: list[dict] = []
        self.headers_seen: list[dict] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: FakeClaude

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.bodies.append(body)
        self.server.headers_seen.append(dict(self.headers))
        if self.server.mode == "slow":
            time.sleep(self.server.delay)
        if self.server.mode == "fail":
            return self.answer(500, {"type": "error", "error": {"type": "api_error", "message": "Internal error"}})
        self.answer(200, {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model", ""),
            "content": [{"type": "text", "text": self.server.reply}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 10},
        })

    def answer(self, status: int, payload: dict) -> None:
        raw = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass
