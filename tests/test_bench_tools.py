"""The pieces ``make bench`` measures with: the round-trip counting proxy (``bench/pgcount.py``)
and the HTTP sender (``bench/sender.py``). Counts only, never durations."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import inproc  # noqa: E402
import pgcount  # noqa: E402
import sender  # noqa: E402


def message(kind: str, payload: bytes = b"") -> bytes:
    return kind.encode() + (4 + len(payload)).to_bytes(4, "big") + payload


def startup(code: int, payload: bytes = b"") -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + code.to_bytes(4, "big") + payload


def test_the_frontend_stream_counts_each_message_once_however_the_bytes_arrive():
    stream = (
        startup(pgcount.SSL_REQUEST) + startup(196608, b"user\x00app\x00\x00") + message("p", b"secret\x00")
        + message("Q", b"BEGIN\x00")
        + message("P", b"\x00SELECT 1\x00\x00\x00") + message("B", b"\x00" * 8) + message("D", b"P\x00")
        + message("E", b"\x00\x00\x00\x00\x00") + message("S")
        + message("Q", b"COMMIT\x00") + message("X")
    )
    for chunk in (len(stream), 1, 3, 7):
        counts, lock = Counter(), threading.Lock()
        parser = pgcount.FrontendStream(counts, lock)
        for at in range(0, len(stream), chunk):
            parser.feed(stream[at:at + chunk])
        assert {chr(k): n for k, n in counts.items()} == {"p": 1, "Q": 2, "P": 1, "B": 1, "D": 1, "E": 1, "S": 1, "X": 1}
        assert sum(n for k, n in counts.items() if k in pgcount.ROUND_TRIP_TYPES) == 3


@pytest.mark.django_db(transaction=True)
def test_the_proxy_counts_a_real_clients_round_trips():
    import psycopg

    db = connection.settings_dict
    proxy = pgcount.CountingProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))).start()
    try:
        with psycopg.connect(host="127.0.0.1", port=proxy.port, user=db["USER"], password=db.get("PASSWORD") or None,
                             dbname=db["NAME"], sslmode="disable", autocommit=True) as conn:
            conn.execute("SELECT 1").fetchone()  # the first statement settles the connection's own start-up
            before = proxy.snapshot()["round_trips"]
            for value in range(3):
                assert conn.execute("SELECT %s::int", [value]).fetchone() == (value,)
            with conn.transaction():  # BEGIN, the statement, COMMIT
                conn.execute("SELECT 2").fetchone()
            assert proxy.snapshot()["round_trips"] - before == 6
        assert proxy.snapshot()["connections"] == 1
    finally:
        proxy.close()


def test_pgcount_forwards_only_to_loopback():
    with pytest.raises(ValueError):
        pgcount.CountingProxy(("192.0.2.1", 5432))


class _Receiver(BaseHTTPRequestHandler):
    seen: list[tuple[str, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.headers["Stripe-Signature"], body))
        status = 200 if body != b"refuse" else 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("rate", [None, 500])
def test_the_sender_posts_each_delivery_once_and_counts_the_answers(rate):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.seen = []
    batch = [(f"t=1,v1={i}", f"body{i}".encode()) for i in range(20)] + [("t=1,v1=x", b"refuse")]
    try:
        result = sender.send(server.server_address[1], "/hook/", batch, rate=rate, connections=4)
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(_Receiver.seen) == sorted(batch)
    assert (result["sent"], result["ok"], result["non2xx"], result["errors"]) == (21, 20, 1, 0)


def test_the_in_process_harness_refuses_in_one_line_without_its_state(tmp_path, monkeypatch, capsys):
    state = tmp_path / "inproc.json"
    monkeypatch.setattr(inproc, "STATE", state)
    monkeypatch.setattr(inproc.bench, "ROOT", tmp_path)
    for content in (None, "not json", "{}", "[]", '{"SECRET_KEY": "k", "FIELD_ENCRYPTION_KEYS": "f", "tenant": "t"}'):
        if content is not None:
            state.write_text(content)
        for what in ("cpu", "instructions"):
            assert inproc.main([what, "--app", "minimal"]) == 1, content
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "bench/inproc.py prepare" in err and "Traceback" not in err


def test_the_in_process_harness_refuses_a_count_below_one(capsys):
    with pytest.raises(SystemExit) as exit_:
        inproc.main(["cpu", "-n", "0"])
    assert exit_.value.code == 2 and "-n must be at least 1" in capsys.readouterr().err
