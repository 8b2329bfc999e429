"""The smallest correct Stripe receiver: the yardstick ``make bench`` measures En Garde against.

A plain WSGI app, served by the same gunicorn settings as the full app. For each POST it does
what no receiver may skip: check the ``Stripe-Signature`` (HMAC-SHA256 over ``"<t>.<body>"``,
constant-time, any ``v1`` may match, 300 s tolerance), store the raw event before answering
(``INSERT ... ON CONFLICT (event_id) DO NOTHING``, so a repeat is a no-op), then answer 200.
Nothing else: no tenants, no framework, no queue.

Environment: ``MINIMAL_DATABASE_URL`` (a libpq URL), ``MINIMAL_SIGNING_SECRET``. One psycopg
connection per gunicorn worker (sync workers: one request at a time), in autocommit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

import psycopg

TOLERANCE_SECONDS = 300
SECRET = os.environ.get("MINIMAL_SIGNING_SECRET", "").encode()
DATABASE_URL = os.environ.get("MINIMAL_DATABASE_URL", "")
INSERT = "INSERT INTO bench_minimal_event (event_id, body) VALUES (%s, %s) ON CONFLICT (event_id) DO NOTHING"

_connection: psycopg.Connection | None = None


def _db() -> psycopg.Connection:
    """This worker's connection, opened on first use (after gunicorn forked) and reopened if broken."""
    global _connection
    if _connection is None or _connection.closed or _connection.broken:
        _connection = psycopg.connect(DATABASE_URL, autocommit=True)
    return _connection


def verified(body: bytes, header: str, now: float) -> bool:
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value.encode())
    if not timestamp or not timestamp.isdigit() or not signatures:
        return False
    expected = hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest().encode()
    matched = False
    for signature in signatures:  # compare every one, in constant time
        matched |= hmac.compare_digest(expected, signature)
    return matched and abs(now - int(timestamp)) <= TOLERANCE_SECONDS


def _answer(start_response, status: str, body: dict) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        return _answer(start_response, "405 Method Not Allowed", {"status": "method_not_allowed"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > 1024 * 1024:
        return _answer(start_response, "413 Content Too Large", {"status": "too_large"})
    body = environ["wsgi.input"].read(length)
    if not SECRET or not verified(body, environ.get("HTTP_STRIPE_SIGNATURE", ""), time.time()):
        return _answer(start_response, "401 Unauthorized", {"status": "rejected"})
    try:
        event = json.loads(body)
        event_id = str(event["id"])
    except (ValueError, KeyError, TypeError):
        return _answer(start_response, "400 Bad Request", {"status": "malformed"})
    try:
        _db().execute(INSERT, (event_id, body))
    except psycopg.OperationalError:
        return _answer(start_response, "503 Service Unavailable", {"status": "unavailable"})
    return _answer(start_response, "200 OK", {"status": "received", "event_id": event_id})


app = application
