"""The receiver's hardening as the security test found it (issue 7, items 2, 8, 10, 20): HTTP
requests against a real gunicorn (started from the project folder, so it reads
``gunicorn.conf.py``), connected to PostgreSQL as the runtime role, tasks in-process after commit.

Nothing here is mocked; the test only reads the rows and the access log afterwards.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import uuid

import pytest
from django.db import connections

from conftest import requires_postgres
from integrations.providers.stripe.tests import stripe_signature
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.test_reliability import (
    ROOT,
    child_env,
    committed_db,
    free_port,
    requires_gunicorn,
    runtime_database_url,
    stop,
    wait_for,
)
from webhooks.models import WebhookLog
from webhooks.testing import connect, fixture_bytes

STRIPE_SECRET = "whsec_blackbox0123456789abcdefghij"
EVENTBRITE_TOKEN = "eb-url-token-0123456789abcdefghij"
FORGERIES = 30


@pytest.fixture
def server(db, tmp_path):
    """A committed tenant with Stripe and Eventbrite connected, and gunicorn serving the app."""
    tenant = Tenant.objects.create(slug=f"bb-{uuid.uuid4().hex[:8]}", name="Black box")
    connect(tenant, "stripe", STRIPE_SECRET)
    connect(tenant, "eventbrite", EVENTBRITE_TOKEN, private_token="eb-private")
    port, log, access = free_port(), tmp_path / "web.log", tmp_path / "access.log"
    # One rate window from 2001 to 2033: the flood below cannot straddle a window boundary.
    env = child_env(tmp_path, DATABASE_URL=runtime_database_url(), WEBHOOK_REJECTED_SAMPLE="20",
                    WEBHOOK_RATE_WINDOW_SECONDS=str(10**9))
    with open(log, "wb") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "engarde.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--timeout", "30", "--access-logfile", str(access)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )

    def request(method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def up():
        try:
            return request("GET", f"/api/webhooks/{tenant.pk}/stripe/")[0] == 200
        except OSError:
            return False

    try:
        wait_for("the web server", up, timeout=30, interval=0.2, proc=web, log=log)
        yield tenant, request, access, log
    finally:
        stop(web)
        connections["owner"].close()


def stripe_event(event_id: str) -> bytes:
    body = json.loads(fixture_bytes("stripe", "payment_intent_succeeded"))
    body["id"] = event_id
    return json.dumps(body).encode()


@requires_postgres
@requires_gunicorn
@committed_db
def test_the_receiver_holds_against_the_security_tests_requests(server):
    tenant, request, access, log = server
    stripe_url, eventbrite_url = f"/api/webhooks/{tenant.pk}/stripe/", f"/api/webhooks/{tenant.pk}/eventbrite/"

    # 2. A flood of forgeries from the platform's address, then the platform's genuine delivery.
    for i in range(FORGERIES):
        status, _ = request("POST", stripe_url, stripe_event(f"evt_forged_{i}"), {"Stripe-Signature": "t=1,v1=00"})
        assert status == 401
    genuine = stripe_event("evt_blackbox_genuine")
    status, content = request("POST", stripe_url, genuine, {"Stripe-Signature": stripe_signature(genuine, STRIPE_SECRET)})
    assert status == 200, content
    with tenant_context(tenant):
        assert WebhookLog.objects.get(event_id="evt_blackbox_genuine").status == WebhookLog.Status.PROCESSED
        rejected = list(WebhookLog.objects.filter(status=WebhookLog.Status.REJECTED))
    # 3. A sample is stored, the rest is counted on the newest stored one.
    assert len(rejected) == 20
    assert sorted(r.unstored_rejections for r in rejected) == [0] * 19 + [FORGERIES - 20]

    # 8. Signed ten years ahead.
    future = stripe_event("evt_blackbox_future")
    ahead = int(time.time()) + 10 * 365 * 24 * 3600
    status, _ = request("POST", stripe_url, future, {"Stripe-Signature": stripe_signature(future, STRIPE_SECRET, ahead)})
    assert status == 401

    # 20. Each of the fuzzer's 500s.
    deep = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    answers = {
        "NUL in the tenant part": request("POST", f"/api/webhooks/{tenant.slug}%00/stripe/", genuine)[0],
        "NUL in generate-url": request("GET", f"/api/webhooks/stripe/generate-url/{tenant.slug}%00")[0],
        "NUL in test": request("GET", f"/api/webhooks/stripe/test/{tenant.slug}%00")[0],
        "NUL in a status filter": request("GET", "/api/v1/webhook-events/?status=%00")[0],
        "NUL in a source filter": request("GET", "/api/v1/webhook-events/?source=%00")[0],
        "NUL in a sign-up filter": request("GET", "/api/v1/pending-signups/?status=%00")[0],
        "non-ASCII Stripe-Signature": request("POST", stripe_url, genuine, {"Stripe-Signature": "t=1,v1=\xe9"})[0],
        "deep JSON, signed": request("POST", stripe_url, deep, {"Stripe-Signature": stripe_signature(deep, STRIPE_SECRET)})[0],
    }
    assert all(status < 500 for status in answers.values()), answers
    assert answers["NUL in the tenant part"] == answers["NUL in a status filter"] == 400
    with tenant_context(tenant):
        assert WebhookLog.objects.filter(status=WebhookLog.Status.MALFORMED).count() == 1  # the deep one

    # 10. A token in the URL (Eventbrite can send nothing else) is in no line of the access log.
    status, _ = request("POST", f"{eventbrite_url}?token={EVENTBRITE_TOKEN}", b'{"config": {"action": "test"}}')
    assert status == 200
    request("GET", f"{eventbrite_url}?token={EVENTBRITE_TOKEN}")
    wait_for("the access log", lambda: access.exists() and access.read_text().count("eventbrite") >= 2, timeout=10)
    written = access.read_text() + log.read_text()
    assert EVENTBRITE_TOKEN not in written
    assert "token=[redacted]" in access.read_text()
