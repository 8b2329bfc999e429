"""The receiver's hardening (issue 7, items 3, 4, 10, 20): where a token may come, secrets
redacted by value, what lists send, NUL in URLs and headers, logs without tokens, retention.

Black-box through the test client (the whole middleware stack and URL routing), as the security
test found them; the gunicorn access log is checked against a real gunicorn in
``test_receiver_blackbox.py``.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import api_auth
from tests.test_reliability import redis_db, requires_redis  # noqa: F401  (redis_db: a fixture)
from integrations.models import TenantIntegration
from integrations.registry import PROVIDERS
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import connect, fixture_bytes, fixture_names, freeze_rate_windows, rows, webhook_path

TOKEN = "ea-token-0123456789abcdef0123"
TOKEN_PROVIDERS = sorted(p.name for p in PROVIDERS.values() if p.generates_webhook_secret)


def bearer(user) -> dict:
    return api_auth(user)


@pytest.fixture
def receiving(world, monkeypatch, django_capture_on_commit_callbacks):
    freeze_rate_windows(monkeypatch)
    return django_capture_on_commit_callbacks


def post(client, tenant, source, body, query="", **headers):
    return client.post(webhook_path(tenant, source) + query, data=body, content_type="application/json", **headers)


# --- item 10: ?token= only where the platform cannot send a header -----------------------------


@pytest.mark.parametrize("source", TOKEN_PROVIDERS)
def test_a_token_in_the_url_is_accepted_only_where_the_platform_cannot_send_a_header(world, client, receiving, source):
    provider = PROVIDERS[source]
    connect(world.acme, source, TOKEN, **({"location_id": "loc-acme"} if source == "ghl" else {}))
    body = fixture_bytes(source, fixture_names(source)[0]) if source != "ghl" else fixture_bytes("ghl", "workflow_webhook")
    with receiving(execute=True):
        response = post(client, world.acme, source, body, query=f"?token={TOKEN}")
    assert response.status_code == (200 if provider.token_in_query else 401), source
    if not provider.token_in_query:
        (row,) = rows(world.acme, source=source, status="rejected")
        assert row.error == "a token in the URL is refused: send it in the X-Webhook-Token header"


def test_the_setup_page_says_where_the_token_goes(world, client):
    client.force_login(world.alice)
    for source in TOKEN_PROVIDERS:
        page = client.get(f"/setup/{source}/").content.decode()
        assert PROVIDERS[source].token_location in page, source
    assert "in the URL only" in PROVIDERS["eventbrite"].token_location
    assert "header only" in PROVIDERS["manychat"].token_location


def test_no_setup_step_offers_the_url_to_a_header_only_platform():
    for source in TOKEN_PROVIDERS:
        provider = PROVIDERS[source]
        if not provider.token_in_query:
            assert "?token=" not in " ".join(provider.setup_steps("https://hub.test/x")), source


# --- item 4: secrets redacted by value, wherever the sender put them ---------------------------


def test_a_token_under_a_header_name_the_sender_chose_is_never_stored_or_shown(world, client, receiving):
    """E!A's admin chooses the header name: the tenant's token under ``X-Ea-Header`` (a name
    that says nothing) or ``Authorization-Token`` is redacted in the row, on the page and in the API."""
    connect(world.acme, "easyappointments", TOKEN)
    body = fixture_bytes("easyappointments", "customer_save")
    with receiving(execute=True):
        response = post(client, world.acme, "easyappointments", body, query=f"?token={TOKEN}",
                        HTTP_X_EA_HEADER=TOKEN, HTTP_AUTHORIZATION_TOKEN=TOKEN, HTTP_X_NOTE=f"see {TOKEN} here")
    assert response.status_code == 200, response.content
    (row,) = rows(world.acme, source="easyappointments")
    assert TOKEN not in json.dumps(row.headers)
    assert row.headers["X-Ea-Header"] == "[redacted]" and row.headers["X-Note"] == "see [redacted] here"

    client.force_login(world.bob)  # a member, not an admin
    assert TOKEN not in client.get(f"/webhooks/{row.pk}/").content.decode()
    api = bearer(world.bob)
    detail = client.get(f"/api/v1/webhook-events/{row.pk}/", **api)
    assert detail.status_code == 200 and TOKEN not in detail.content.decode()
    assert detail.json()["headers"]["X-Note"] == "see [redacted] here"


def test_a_row_stored_before_redaction_by_value_is_redacted_on_display(world, client):
    """Rows written by an older version (or an import) hold the token: display redacts again."""
    connect(world.acme, "easyappointments", TOKEN)
    with tenant_context(world.acme):
        row = WebhookLog.objects.create(source="easyappointments", event_id="old", status="processed",
                                        headers={"X-Whatever": TOKEN}, body=json.dumps({"t": TOKEN}).encode())
    client.force_login(world.bob)
    assert TOKEN not in client.get(f"/webhooks/{row.pk}/").content.decode()
    assert TOKEN not in client.get(f"/api/v1/webhook-events/{row.pk}/", **bearer(world.bob)).content.decode()


# --- item 3: lists never send whole headers and bodies -----------------------------------------


def test_the_api_list_sends_no_headers_or_bodies_and_the_detail_does(world, client):
    with tenant_context(world.acme):
        row = WebhookLog.objects.create(source="stripe", event_id="big", status="rejected",
                                        headers={f"X-{i}": "y" * 100 for i in range(50)}, body=b"z" * 5000)
    listed = client.get("/api/v1/webhook-events/", **bearer(world.alice))
    assert listed.status_code == 200
    items = {item["id"]: item for item in listed.json()["results"]}
    assert "headers" not in items[row.pk] and "body" not in items[row.pk]
    assert b"zzzz" not in listed.content and b"yyyy" not in listed.content
    detail = client.get(f"/api/v1/webhook-events/{row.pk}/", **bearer(world.alice)).json()
    assert len(detail["headers"]) == 50 and detail["body"] == "z" * 5000


# --- item 20: NUL in URLs, query parameters and headers is a 400, never a 500 ------------------


@pytest.mark.parametrize("path", [
    "/api/webhooks/acme%00/stripe/",
    "/api/webhooks/stripe/acme%00",
    "/api/webhooks/stripe/generate-url/acme%00",
    "/api/webhooks/stripe/test/acme%00",
    "/api/v1/webhook-events/?status=%00",
    "/api/v1/webhook-events/?source=%00",
    "/api/v1/pending-signups/?status=%00",
    "/api/v1/contacts/?tenant=acme%00",
])
def test_a_nul_anywhere_in_an_api_url_is_a_400(world, client, path):
    headers = bearer(world.alice)
    for method in (client.get, client.post):
        response = method(path, **headers)
        assert response.status_code == 400, (path, response.status_code)
        assert response.json()["status"] == "bad_request"


@pytest.mark.parametrize("path", ["/webhooks/?status=%00", "/webhooks/?source=stripe%00", "/contacts/?q=a%00b"])
def test_a_page_drops_nul_from_its_query_and_still_answers(world, client, path):
    client.force_login(world.alice)
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("query", ["?status=%2BAAA-", "?status=+AAA-", "?%2BAAA-=received"])
def test_a_nul_that_only_the_senders_charset_makes_is_a_400_too(world, client, query):
    # UTF-7 decodes "+AAA-" to U+0000: the raw query holds no "%00" and no NUL, the parsed one does.
    response = client.get(f"/api/v1/webhook-events/{query}", CONTENT_TYPE="text/plain; charset=utf-7",
                          **bearer(world.alice))
    assert response.status_code == 400, (query, response.status_code)
    assert response.json() == {"status": "bad_request", "reason": "a NUL character in the query"}


def test_a_page_with_nul_in_its_path_is_a_400(world, client):
    client.force_login(world.alice)
    assert client.get("/setup/stripe%00/").status_code == 400


def test_a_nul_in_a_header_is_a_400(world, client):
    response = client.get("/api/v1/contacts/", HTTP_X_TENANT="acme\x00", **bearer(world.alice))
    assert response.status_code == 400


def test_non_ascii_in_stripe_signature_is_refused_not_a_500(world, client, receiving, stripe):
    body = fixture_bytes("stripe", "checkout_session_completed")
    response = post(client, world.acme, "stripe", body, HTTP_STRIPE_SIGNATURE="t=1,v1=é")
    assert response.status_code == 401
    assert rows(world.acme, source="stripe", status="rejected")[-1].error == "Stripe-Signature is not ASCII"


def test_a_sender_address_that_is_not_an_address_is_stored_as_unknown(world, client, receiving):
    connect(world.acme, "easyappointments", TOKEN)
    with override_settings(WEBHOOK_CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR"), receiving(execute=True):
        response = post(client, world.acme, "easyappointments", fixture_bytes("easyappointments", "customer_save"),
                        HTTP_X_WEBHOOK_TOKEN=TOKEN, HTTP_X_FORWARDED_FOR="not-an-address")
    assert response.status_code == 200
    assert rows(world.acme, source="easyappointments")[0].remote_addr is None


# --- item 10: no token in any log line we write ------------------------------------------------


def test_log_lines_never_carry_a_token_from_the_url(world, client, receiving):
    """Through the console handler the settings configure: runserver's request line and a line of
    ours naming a URL with ``?token=`` come out with the value redacted."""
    from engarde.logfilters import RedactTokens

    console = next(h for h in logging.getLogger().handlers if any(isinstance(f, RedactTokens) for f in h.filters))
    stream = io.StringIO()
    previous = console.setStream(stream)
    try:
        path = webhook_path(world.acme, "eventbrite") + f"?token={TOKEN}&x=1"
        logging.getLogger("django.server").warning('"POST %s HTTP/1.1" 401 20', path)
        logging.getLogger("webhooks.views").warning("delivery to %s", path)
    finally:
        console.setStream(previous)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and TOKEN not in stream.getvalue()
    assert all("?token=[redacted]&x=1" in line for line in lines)


def test_the_settings_put_the_token_filter_on_every_handler():
    from django.conf import settings

    for name, handler in settings.LOGGING["handlers"].items():
        assert "redact_tokens" in handler.get("filters", []), name
    assert settings.LOGGING["loggers"]["django.server"]["handlers"] == ["console"]


def test_redact_query_values():
    from engarde.logfilters import redact_query_values

    assert redact_query_values("GET /x/?a=1&token=abc&b=2 200") == "GET /x/?a=1&token=[redacted]&b=2 200"
    assert redact_query_values('"POST /x?TOKEN=abc HTTP/1.1"') == '"POST /x?TOKEN=[redacted] HTTP/1.1"'
    assert redact_query_values("/x?tokens=keep&notoken=keep") == "/x?tokens=keep&notoken=keep"


# --- item 3: retention ------------------------------------------------------------------------


def _aged(tenant, status, days, **fields):
    with tenant_context(tenant):
        row = WebhookLog.objects.create(source="stripe", event_id=f"{status}-{days}-{fields.get('event_id', '')}",
                                        status=status, headers={"X-A": "b"}, body=b"payload",
                                        **{k: v for k, v in fields.items() if k != "event_id"})
        WebhookLog.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(days=days))
    return row.pk


@override_settings(WEBHOOK_RETENTION_DAYS=30, WEBHOOK_REJECTED_RETENTION_DAYS=7)
def test_prune_deletes_old_rejected_rows_and_empties_old_processed_ones_in_batches(world):
    from webhooks.retention import prune

    old_rejected = [_aged(t, "rejected", 8, event_id=str(i)) for t in (world.acme, world.globex) for i in range(3)]
    young_rejected = _aged(world.acme, "rejected", 6)
    old_processed = _aged(world.globex, "processed", 31)
    old_failed = _aged(world.acme, "failed", 31)
    young_processed = _aged(world.acme, "processed", 29)

    assert prune(batch_size=2) == {"rejected_deleted": 6, "bodies_cleared": 1}

    def state(tenant, pk):
        with tenant_context(tenant):
            row = WebhookLog.objects.filter(pk=pk).first()
            return None if row is None else (bytes(row.body), row.headers, row.pruned_at is not None)

    assert all(state(world.acme, pk) is None and state(world.globex, pk) is None for pk in old_rejected)
    assert state(world.acme, young_rejected) == (b"payload", {"X-A": "b"}, False)
    assert state(world.globex, old_processed) == (b"", {}, True)
    assert state(world.acme, old_failed) == (b"payload", {"X-A": "b"}, False)  # may still be replayed
    assert state(world.acme, young_processed) == (b"payload", {"X-A": "b"}, False)
    assert prune(batch_size=2) == {"rejected_deleted": 0, "bodies_cleared": 0}  # idempotent


@override_settings(WEBHOOK_RETENTION_DAYS=0, WEBHOOK_REJECTED_RETENTION_DAYS=0)
def test_prune_keeps_everything_when_retention_is_off(world):
    from webhooks.retention import prune

    _aged(world.acme, "rejected", 400)
    _aged(world.acme, "processed", 400)
    assert prune() == {"rejected_deleted": 0, "bodies_cleared": 0}


@pytest.mark.django_db
def test_the_prune_job_is_scheduled_on_beat_and_registered():
    from engarde.celery import app

    entry = next(e for e in app.conf.beat_schedule.values() if e["task"] == "webhooks.prune_webhooks")
    assert entry["schedule"].remaining_estimate(timezone.now()) <= timedelta(days=1)
    app.loader.import_default_modules()
    assert "webhooks.prune_webhooks" in app.tasks


def test_a_pruned_row_says_so_on_its_page(world, client):
    pk = _aged(world.acme, "processed", 100)
    with tenant_context(world.acme):
        WebhookLog.objects.filter(pk=pk).update(body=b"", headers={}, pruned_at=timezone.now())
    client.force_login(world.bob)
    assert "removed on" in client.get(f"/webhooks/{pk}/").content.decode()


def test_a_pruned_row_cannot_be_replayed(world, client):
    pk = _aged(world.acme, "processed", 100, event_type="checkout.session.completed")
    with tenant_context(world.acme):
        WebhookLog.objects.filter(pk=pk).update(body=b"", headers={}, pruned_at=timezone.now())
    response = client.post(f"/api/v1/webhook-events/{pk}/replay/", **bearer(world.alice))
    assert response.status_code == 409 and "retention" in response.json()["reason"]
    with tenant_context(world.acme):
        assert WebhookLog.objects.get(pk=pk).status == WebhookLog.Status.PROCESSED


def test_the_admin_list_of_deliveries_loads_no_headers_or_bodies(world, client):
    with tenant_context(world.acme):
        WebhookLog.objects.create(source="stripe", event_id="huge", status="rejected",
                                  headers={"X-Big": "h" * 3000}, body=b"b" * 3000)
    client.force_login(world.oscar)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/webhooks/webhooklog/")
    assert page.status_code == 200 and "huge" in page.content.decode()
    loaded = [q["sql"] for q in queries if '"webhooks_webhooklog"."headers"' in q["sql"] or '"webhooks_webhooklog"."body"' in q["sql"]]
    assert not loaded, loaded
    assert "hhhhhhhh" not in page.content.decode() and "bbbbbbbb" not in page.content.decode()


def test_the_rejected_counter_is_shown_with_its_row(world, client):
    with tenant_context(world.acme):
        row = WebhookLog.objects.create(source="stripe", event_id="x", status="rejected", unstored_rejections=41)
        assert TenantIntegration.objects.exists()  # the world's ManyChat connection: any secret lookup works
    client.force_login(world.bob)
    assert "41 more rejected deliveries" in client.get(f"/webhooks/{row.pk}/").content.decode()


# --- item 18: the rate windows run on an injected clock ----------------------------------------


def test_a_rate_window_ends_where_the_clock_says(monkeypatch):
    from webhooks import ratelimit
    from webhooks.testing import FROZEN_RATE_CLOCK

    with override_settings(WEBHOOK_RATE_WINDOW_SECONDS=60):
        freeze_rate_windows(monkeypatch, at=FROZEN_RATE_CLOCK)  # 30 s into a window
        assert ratelimit.over("t", 1) is None
        assert ratelimit.over("t", 1) == 30  # the rest of the window
        monkeypatch.setattr(ratelimit, "now", lambda: FROZEN_RATE_CLOCK + 29)  # the window's last second
        assert ratelimit.over("t", 1) == 1
        monkeypatch.setattr(ratelimit, "now", lambda: FROZEN_RATE_CLOCK + 30)  # the next window
        assert ratelimit.over("t", 1) is None
        assert ratelimit.over("t", 0) is None  # 0: no limit


@requires_redis
def test_on_redis_a_rate_window_is_the_same_and_costs_one_round_trip_a_count(monkeypatch, redis_db):
    """Production's cache (``CACHE_URL=redis://…``): the same windows, counted with one pipelined
    round trip (SET NX EX, INCR) instead of an ``add`` and an ``incr``; the counter is the cache's
    own key, which ``cache.get`` reads, and it expires."""
    import redis

    from django.core.cache import cache
    from webhooks import ratelimit
    from webhooks.testing import FROZEN_RATE_CLOCK
    from tests.test_reliability import REDIS_URL

    trips = {"pipelines": 0, "commands": 0}
    real_execute, real_command = redis.client.Pipeline.execute, redis.client.Redis.execute_command

    def pipeline_execute(self, *args, **kwargs):
        trips["pipelines"] += 1
        return real_execute(self, *args, **kwargs)

    def command(self, *args, **kwargs):
        trips["commands"] += 1
        return real_command(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline_execute)
    redis_cache = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    with override_settings(WEBHOOK_RATE_WINDOW_SECONDS=60, CACHES=redis_cache):
        freeze_rate_windows(monkeypatch, at=FROZEN_RATE_CLOCK)  # 30 s into a window
        monkeypatch.setattr(redis.client.Redis, "execute_command", command)
        assert ratelimit.over("redis-t", 2) is None
        assert ratelimit.over("redis-t", 2) is None
        assert ratelimit.over("redis-t", 2) == 30
        assert trips == {"pipelines": 3, "commands": 0}  # one round trip per count
        monkeypatch.setattr(redis.client.Redis, "execute_command", real_command)
        key, _, _ = ratelimit._window("redis-t")
        assert cache.get(key) == 3
        assert 0 < redis_db.ttl(cache.make_and_validate_key(key)) <= 65
        monkeypatch.setattr(ratelimit, "now", lambda: FROZEN_RATE_CLOCK + 30)  # the next window
        assert ratelimit.over("redis-t", 2) is None


def test_a_foreign_host_is_a_400_and_one_warning_line_without_a_traceback(world, client, settings):
    """Scanners send foreign Host headers all day: each is one WARNING line, not an ERROR with a
    traceback (Django's default), through the console handler the settings configure."""
    from engarde.logfilters import RedactTokens

    settings.ALLOWED_HOSTS = ["hub.example"]
    console = next(h for h in logging.getLogger().handlers if any(isinstance(f, RedactTokens) for f in h.filters))
    stream = io.StringIO()
    previous = console.setStream(stream)
    try:
        response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    finally:
        console.setStream(previous)
    assert response.status_code == 400
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "WARNING django.security.DisallowedHost" in lines[0], lines
    assert "evil.example" in lines[0] and "Traceback" not in stream.getvalue()


def test_a_delivery_of_a_type_we_do_not_read_is_415_with_what_we_accept(world, client, receiving):
    connect(world.acme, "easyappointments", TOKEN)
    response = client.post(webhook_path(world.acme, "easyappointments"), data="a=1",
                           content_type="application/x-www-form-urlencoded", HTTP_X_WEBHOOK_TOKEN=TOKEN)
    assert response.status_code == 415
    answer = response.json()
    assert answer["status"] == "unsupported_media_type" and "application/json" in answer["reason"]
    assert "application/json" in answer["accepted"] and "application/json" in response["Accept-Post"]
