"""The receiver's fast path (``webhooks.fastpath``, issue 11) on real PostgreSQL as the runtime
role, RLS in force: each property the view's path has, proved on the fast path, and one statement
per cached delivery.

A delivery takes the fast path once the view has seen the connection in this process (the cache is
filled by the view's own lookup); ``served_fast`` tells from the statements Django ran whether the
store function answered it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import requires_postgres
from integrations.models import TenantIntegration
from integrations.providers.stripe.tests import stripe_signature
from tenants.context import tenant_context
from tenants.models import Tenant
from webhooks import fastpath
from webhooks.models import WebhookLog
from webhooks.testing import STRIPE_SECRETS, rows, webhook_path

pytestmark = requires_postgres

SIGNATURE = "webhooks_store_delivery(uuid, bigint, bigint, varchar, varchar, varchar, jsonb, bytea, inet)"


@pytest.fixture(autouse=True)
def empty_cache():
    fastpath.clear()
    yield
    fastpath.clear()


def event(event_id: str | None = None, event_type: str = "payment_intent.succeeded", **extra) -> bytes:
    event_id = event_id or f"evt_fast_{uuid.uuid4().hex[:12]}"
    return json.dumps({
        "id": event_id, "object": "event", "type": event_type, "created": int(time.time()),
        "data": {"object": {"id": f"pi_{event_id}", "object": "payment_intent", "amount": 1500,
                            "amount_received": 1500, "currency": "eur", "status": "succeeded",
                            "receipt_email": "pat@example.com", **extra}},
    }).encode()


class Poster:
    """Posts to a tenant's Stripe URL and records which path stored it."""

    def __init__(self, client, capture):
        self.client, self.capture = client, capture
        self.fast: list[bool] = []
        self.statements: list[list[str]] = []

    def post(self, tenant, body: bytes, secret: str | None = None, signed: bool = True, path: str | None = None,
             timestamp: int | None = None, **extra):
        headers = {}
        if signed:
            secret = secret or STRIPE_SECRETS[tenant.slug]
            headers["HTTP_STRIPE_SIGNATURE"] = stripe_signature(body, secret, timestamp)
        # Processing (eager, on commit) runs after the capture of the request's own statements.
        with self.capture(execute=True), CaptureQueriesContext(connection) as queries:
            response = self.client.post(path or webhook_path(tenant, "stripe"), data=body,
                                        content_type=extra.pop("content_type", "application/json"), **headers, **extra)
        statements = [q["sql"] for q in queries.captured_queries]
        self.statements.append(statements)
        # Answered by the store function, without the view's integration lookup.
        self.fast.append(any("webhooks_store_delivery" in sql for sql in statements)
                         and not any('FROM "integrations_tenantintegration"' in sql for sql in statements))
        return response

    @property
    def served_fast(self) -> bool:
        return self.fast[-1]

    def warm(self, tenant):
        """One delivery through the view, which fills the cache for the tenant's URL."""
        response = self.post(tenant, event())
        assert response.status_code == 200 and not self.served_fast
        assert fastpath.lookup(str(tenant.pk), "stripe") is not None


@pytest.fixture
def poster(stripe, client, django_capture_on_commit_callbacks):
    return Poster(client, django_capture_on_commit_callbacks)


def integration_of(tenant) -> TenantIntegration:
    with tenant_context(tenant):
        return TenantIntegration.objects.get(provider="stripe")


# --- the function itself ---------------------------------------------------------------------


def function_definition() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef(%s::regprocedure)", [SIGNATURE])
        return cursor.fetchone()[0]


def test_the_functions_insert_names_every_column_of_the_model_in_order(db):
    """A field added to ``WebhookLog`` fails here until the function is given a new version."""
    columns = re.search(r"INSERT INTO webhooks_webhooklog \((.*?)\)", function_definition(), re.S).group(1)
    meta = WebhookLog._meta
    assert [c.strip() for c in columns.split(",")] == [
        f.column for f in meta.local_concrete_fields if f is not meta.auto_field
    ]


def test_the_function_is_security_invoker_owned_by_the_owner_and_only_executable(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.prosecdef, pg_get_userbyid(p.proowner), current_user,"
            " has_function_privilege(current_user, p.oid, 'EXECUTE'),"
            " EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0)"  # 0: PUBLIC
            " FROM pg_proc p WHERE p.oid = %s::regprocedure", [SIGNATURE],
        )
        definer, owner, me, may_execute, public_may = cursor.fetchone()
    assert (definer, may_execute, public_may) == (False, True, False)
    assert owner != me
    replacement = function_definition().replace("outcome := 'inserted'", "outcome := 'replaced'")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(replacement)  # only the owner may replace it
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP FUNCTION {SIGNATURE}")


def call_store(tenant_id, integration: TenantIntegration, event_id: str = "evt_direct", version=None):
    with connection.cursor() as cursor:
        cursor.execute(fastpath.STORE, [tenant_id, integration.pk,
                                        integration.secrets_version if version is None else version, "stripe",
                                        event_id, "payment_intent.succeeded", "{}", b"{}", None])
        return tuple(cursor.fetchone())


def test_the_function_stores_nothing_for_another_tenant(stripe, db_tenant_setting):
    """Tenant A's id with tenant B's integration (its id and version): RLS hides B's integration
    from A's context, so the check fails and nothing is stored at either tenant."""
    acme, globex = stripe.acme, stripe.globex
    theirs = integration_of(globex)
    assert call_store(acme.pk, theirs) == ("stale", None)
    assert rows(acme, event_id="evt_direct") == [] and rows(globex, event_id="evt_direct") == []
    # B's integration is never stored under B either by a call that names A: the row's tenant is
    # the one the function set, and the integration it checks must be that tenant's.
    with tenant_context(acme):
        assert call_store(acme.pk, theirs) == ("stale", None)
        assert db_tenant_setting()[0] == str(acme.pk)  # put back as it was
    assert db_tenant_setting()[0] == ""
    ours = integration_of(acme)
    outcome, log_id = call_store(acme.pk, ours)
    assert outcome == "inserted" and [r.pk for r in rows(acme, event_id="evt_direct")] == [log_id]
    assert call_store(acme.pk, ours) == ("duplicate", None)
    assert call_store(acme.pk, ours, event_id="evt_other", version=ours.secrets_version + 1) == ("stale", None)
    assert rows(globex, event_id="evt_direct") == [] and rows(acme, event_id="evt_other") == []


def test_every_write_that_changes_what_verification_reads_moves_the_version(stripe):
    acme = stripe.acme
    seen = [integration_of(acme).secrets_version]

    def changed(**values):
        with tenant_context(acme):
            TenantIntegration.objects.filter(provider="stripe").update(**values)
        seen.append(integration_of(acme).secrets_version)
        return seen[-1] > seen[-2]

    assert changed(previous_webhook_secret_expires_at=timezone.now())
    assert changed(is_active=False) and changed(is_active=True)
    assert changed(settings={"x": "y"})
    assert changed(webhook_secret="whsec_other_0123456789abcdefghijkl")
    assert not changed(last_event_at=timezone.now())  # what the worker writes leaves the cache alone
    assert not changed(secrets_version=0)  # nor can a stale copy saved back turn it back


# --- each property, on the fast path ------------------------------------------------------------


def test_a_cached_delivery_is_stored_by_one_statement_processed_and_counted(poster, stripe):
    from engarde.metrics import DELIVERIES

    acme = stripe.acme
    poster.warm(acme)
    before = DELIVERIES.labels("stripe", "received", "")._value.get()
    body = event("evt_fast_one")
    response = poster.post(acme, body)
    assert response.status_code == 200 and response.json() == {"status": "received", "event_id": "evt_fast_one"}
    assert poster.served_fast
    (row,) = rows(acme, event_id="evt_fast_one")
    assert row.status == WebhookLog.Status.PROCESSED and bytes(row.body) == body and row.delivery_count == 1
    assert row.remote_addr == "127.0.0.1" and row.origin == WebhookLog.Origin.DELIVERY
    assert DELIVERIES.labels("stripe", "received", "")._value.get() == before + 1


def test_the_statements_parameters_are_bound_apart_and_stored_exactly(poster, stripe):
    """The store statement binds its parameters server side by default (``DB_SERVER_SIDE_BINDING``:
    the body as binary bytea, the headers as text cast to jsonb): what arrives is what is stored,
    byte for byte, whatever the text holds: quotes, backslashes, a dollar sign, non-ASCII,
    something like SQL."""
    acme = stripe.acme
    poster.warm(acme)
    tricky = "Zoë's \\ \"gala\" $1 €; DROP TABLE webhooks_webhooklog; --" + "x" * 20_000
    body = event("evt_fast_bytes", description=tricky)
    response = poster.post(acme, body, HTTP_X_NOTE="O'Brien $2 \\ ünïcode")
    assert response.status_code == 200 and poster.served_fast
    (row,) = rows(acme, event_id="evt_fast_bytes")
    assert bytes(row.body) == body
    assert json.loads(bytes(row.body))["data"]["object"]["description"] == tricky
    assert row.headers["X-Note"] == "O'Brien $2 \\ ünïcode"
    assert row.event_type == "payment_intent.succeeded"


def test_a_duplicate_is_counted_on_the_first_row_and_processed_once(poster, stripe):
    acme = stripe.acme
    poster.warm(acme)
    body = event("evt_fast_dup")
    assert poster.post(acme, body).status_code == 200 and poster.served_fast
    response = poster.post(acme, body)
    assert response.json() == {"status": "duplicate", "event_id": "evt_fast_dup"} and poster.served_fast
    (row,) = rows(acme, event_id="evt_fast_dup")
    assert row.delivery_count == 2 and row.attempts == 1 and row.last_delivery_at > row.received_at


def test_a_rotated_secret_is_refused_on_the_next_delivery_after_its_grace(poster, stripe):
    acme = stripe.acme
    old, new = STRIPE_SECRETS["acme"], "whsec_acme_rotated_0123456789abcdefgh"
    poster.warm(acme)
    integration = integration_of(acme)
    with tenant_context(acme):
        integration.set_webhook_secret(new, grace=timedelta(hours=1))
        integration.save()
    # The cache still holds the old secret only: the function says stale, the view answers.
    assert poster.post(acme, event(), secret=new).status_code == 200 and not poster.served_fast
    assert poster.post(acme, event(), secret=old).status_code == 200 and poster.served_fast  # in grace
    assert poster.post(acme, event(), secret=new).status_code == 200 and poster.served_fast
    with tenant_context(acme):
        TenantIntegration.objects.filter(provider="stripe").update(
            previous_webhook_secret_expires_at=timezone.now() - timedelta(seconds=1)
        )
    response = poster.post(acme, event("evt_after_grace"), secret=old)
    assert response.status_code == 401 and response.json()["status"] == "rejected"
    assert [r.status for r in rows(acme, event_id="evt_after_grace")] == []  # rejected rows key on the body hash
    assert rows(acme, status=WebhookLog.Status.REJECTED)[-1].error == "signature does not match"
    # Replaced without grace: the old one is refused at once.
    with tenant_context(acme):
        integration = TenantIntegration.objects.get(provider="stripe")
        integration.set_webhook_secret("whsec_acme_third_0123456789abcdefghij")
        integration.save()
    assert poster.post(acme, event(), secret=new).status_code == 401


def test_a_deactivated_integration_or_tenant_is_404_on_the_next_delivery(poster, stripe):
    acme, globex = stripe.acme, stripe.globex
    poster.warm(acme)
    poster.warm(globex)
    with tenant_context(acme):
        TenantIntegration.objects.filter(provider="stripe").update(is_active=False)
    body = event("evt_after_deactivation")
    assert poster.post(acme, body).status_code == 404
    Tenant.objects.filter(pk=globex.pk).update(is_active=False)  # past save(): the function reads it live
    assert poster.post(globex, body).status_code == 404
    assert rows(acme, event_id="evt_after_deactivation") == rows(globex, event_id="evt_after_deactivation") == []
    assert fastpath.lookup(str(acme.pk), "stripe") is None and fastpath.lookup(str(globex.pk), "stripe") is None


def test_secrets_are_never_stored(poster, stripe):
    acme = stripe.acme
    poster.warm(acme)
    secret = STRIPE_SECRETS["acme"]
    body = event("evt_fast_secret", description=f"echo {secret}")
    response = poster.post(acme, body, HTTP_X_ECHO=f"token {secret}", HTTP_AUTHORIZATION="Bearer abc")
    assert response.status_code == 200 and poster.served_fast
    (row,) = rows(acme, event_id="evt_fast_secret")
    stored = json.dumps(row.headers) + bytes(row.body).decode()
    assert secret not in stored and "[redacted]" in bytes(row.body).decode()
    assert row.headers["Stripe-Signature"] == row.headers["Authorization"] == "[redacted]"
    assert row.headers["X-Echo"] == "token [redacted]"


def test_the_rate_limit_counts_fast_deliveries_once(poster, stripe, monkeypatch):
    from webhooks.testing import freeze_rate_windows

    freeze_rate_windows(monkeypatch)
    acme = stripe.acme
    with override_settings(WEBHOOK_RATE_LIMIT=3):
        poster.warm(acme)
        assert poster.post(acme, event()).status_code == 200 and poster.served_fast
        # Counted by the fast path, then left to the view (stale): not counted twice.
        with tenant_context(acme):
            TenantIntegration.objects.filter(provider="stripe").update(settings={"moved": "1"})
        assert poster.post(acme, event()).status_code == 200 and not poster.served_fast
        response = poster.post(acme, event())
        assert response.status_code == 429 and response["Retry-After"] == "30"
        assert poster.statements[-1] == []  # refused by the fast path, before any statement


def bad_inputs(world):
    acme, globex = world.acme, world.globex
    old = int(time.time()) - 400  # 100 s past the tolerance: the two paths run a moment apart
    return {
        "unsigned": dict(signed=False),
        "wrong signature": dict(secret="whsec_not_the_secret_0123456789abcdef"),
        "another tenant's secret": dict(secret=STRIPE_SECRETS["globex"]),
        "stale timestamp": dict(timestamp=old),
        "future timestamp": dict(timestamp=int(time.time()) + 400),
        "malformed JSON": dict(body=b'{"id": "evt_x", "type": '),
        "not an object": dict(body=b"[1, 2]"),
        "ignored event type": dict(body=event(event_type="customer.created")),
        "unknown event type": dict(body=event(event_type="no.such.event")),
        "oversize": dict(settings={"WEBHOOK_MAX_BODY_BYTES": 64}),
        "wrong content type": dict(content_type="application/xml"),
        "cross-tenant URL": dict(path=webhook_path(globex, "stripe")),
        "unknown tenant": dict(path=f"/api/webhooks/{uuid.uuid4()}/stripe/"),
        "legacy URL form": dict(path=webhook_path(acme, "stripe", legacy=True)),
        "no slash": dict(path=webhook_path(acme, "stripe", slash=False)),
        "valid": dict(),
    }


def answer(poster, world, case: dict):
    """What a delivery of ``case`` to acme gets: status, JSON status, and the rows it left."""
    case = dict(case)
    body = case.pop("body", None) or event("evt_case")
    with override_settings(**case.pop("settings", {})):
        response = poster.post(world.acme, body, **case)
    kept = [(r.status, r.error, r.delivery_count) for t in (world.acme, world.globex)
            for r in rows(t, source="stripe") if r.event_id != "evt_warm"]
    return response.status_code, response.json().get("status"), kept


CASES = ["unsigned", "wrong signature", "another tenant's secret", "stale timestamp", "future timestamp",
         "malformed JSON", "not an object", "ignored event type", "unknown event type", "oversize",
         "wrong content type", "cross-tenant URL", "unknown tenant", "legacy URL form", "no slash", "valid"]


@pytest.mark.parametrize("name", CASES)
def test_every_input_gets_the_same_answer_on_both_paths(poster, stripe, name):
    world = stripe
    case = bad_inputs(world)[name]
    results = {}
    for path in ("view", "fast"):
        for tenant in (world.acme, world.globex):
            with tenant_context(tenant):
                WebhookLog.objects.all().delete()
        fastpath.clear()
        if path == "fast":
            for tenant in (world.acme, world.globex):
                response = poster.post(tenant, event("evt_warm"))  # the view fills the cache
                assert response.status_code == 200
            with override_settings(WEBHOOK_FAST_PATH=True):
                results[path] = answer(poster, world, case)
        else:
            with override_settings(WEBHOOK_FAST_PATH=False):
                results[path] = answer(poster, world, case)
                assert not poster.served_fast
    assert results["fast"] == results["view"]
    assert poster.served_fast == (name in ("valid", "legacy URL form", "no slash"))


def test_a_slug_url_and_sqlite_style_settings_go_the_views_way(poster, stripe):
    acme = stripe.acme
    poster.warm(acme)
    assert poster.post(acme, event(), path=f"/api/webhooks/{acme.slug}/stripe/").status_code == 200
    assert not poster.served_fast  # a slug can move to another tenant; the id cannot
    with override_settings(WEBHOOK_FAST_PATH=False):
        assert poster.post(acme, event()).status_code == 200 and not poster.served_fast
    assert poster.post(acme, event()).status_code == 200 and poster.served_fast


def test_without_the_grant_the_fast_path_pauses_and_the_view_answers(poster, stripe, caplog):
    """A deployment that ran migrate but not setup_app_role again: no EXECUTE on the function."""
    from tests.test_reliability import owner_connection

    acme = stripe.acme
    poster.warm(acme)
    from conftest import OPERATOR_ROLE

    # The operator role too: in tests the runtime role is a member of it (conftest, "The operator role").
    roles = f'"{connection.settings_dict["USER"]}", "{OPERATOR_ROLE}"'
    with owner_connection(autocommit=True) as owner:  # committed at once, seen by the test's connection
        owner.execute(f"REVOKE EXECUTE ON FUNCTION {SIGNATURE} FROM {roles}")
        try:
            # Also makes the test's long transaction see the revoke (it reads pg_proc, a lock taken:
            # the catalog caches are refreshed then; a request's own transaction starts fresh).
            with connection.cursor() as cursor:
                cursor.execute("SELECT has_function_privilege(current_user, %s, 'EXECUTE')", [SIGNATURE])
                assert cursor.fetchone() == (False,)
            with caplog.at_level("WARNING", logger="webhooks.fastpath"):
                assert poster.post(acme, event("evt_no_grant")).status_code == 200
            assert not fastpath.enabled() and "setup_app_role" in caplog.text
            assert [r.status for r in rows(acme, event_id="evt_no_grant")] == [WebhookLog.Status.PROCESSED]
        finally:
            owner.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {roles}")


# --- round trips, counted on the wire ------------------------------------------------------------


def round_trips(send) -> int:
    """The protocol round trips ``send()`` makes on Django's connection (libpq's own trace: a
    simple ``Query`` or an extended query's ``Sync`` each wait for the server)."""
    import psycopg.pq

    connection.ensure_connection()
    connection.close_if_unusable_or_obsolete()  # what the start of a request does (request_started)
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            send()
        finally:
            pgconn.untrace()
        os.fsync(trace.fileno())
        trace.seek(0)
        lines = trace.read().splitlines()
    return sum(1 for line in lines if re.match(r"F\t\d+\t(Query|Sync)\b", line))


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
@pytest.mark.parametrize("queue", ["tasks", "rows"])
def test_a_cached_delivery_costs_one_round_trip(queue, client):
    """Committed rows, autocommit as in production, a real publish to Redis (no worker)."""
    from tests.test_reliability import REDIS_URL, SECRET, celery_broker, requires_redis, stripe_event
    from webhooks.testing import connect

    if requires_redis.args[0]:
        pytest.skip(requires_redis.kwargs["reason"])
    import redis

    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    tenant = Tenant.objects.create(slug=f"fast-{uuid.uuid4().hex[:8]}", name="Fast")
    connect(tenant, "stripe", SECRET)

    def deliver(n: int):
        body = stripe_event(f"evt_rt_{queue}_{n}", f"pi_rt_{queue}_{n}", "rt@example.com")
        response = client.post(f"/api/webhooks/{tenant.pk}/stripe/", data=body, content_type="application/json",
                               HTTP_STRIPE_SIGNATURE=stripe_signature(body, SECRET))
        assert response.status_code == 200, response.content

    from django.core.cache import cache

    from webhooks.drain import WAKE_KEY

    cache.delete(WAKE_KEY)
    try:
        with override_settings(WEBHOOK_QUEUE=queue, WEBHOOK_WAKE_SECONDS=60), celery_broker(REDIS_URL):
            through_the_view = round_trips(lambda: deliver(1))
            fast = [round_trips(lambda n=n: deliver(n)) for n in range(2, 5)]
        assert through_the_view >= 5 and fast == [1, 1, 1], (through_the_view, fast)
        with tenant_context(tenant):
            assert WebhookLog.objects.filter(status=WebhookLog.Status.RECEIVED).count() == 4
        published = broker.llen("webhooks")
        assert published == (4 if queue == "tasks" else 1)  # rows: one wake-up for the burst
    finally:
        broker.flushdb()
        broker.close()


# --- the middleware that answers it (webhooks.views.FastPathMiddleware) -------------------------


def test_a_cached_delivery_is_answered_before_the_rest_of_the_middleware_with_the_views_headers(poster, stripe):
    acme = stripe.acme
    poster.warm(acme)
    with override_settings(WEBHOOK_FAST_PATH=False):
        slow = poster.post(acme, event("evt_headers_view"))
    fast = poster.post(acme, event("evt_headers_fast"))
    assert slow.status_code == fast.status_code == 200 and poster.served_fast
    # Answered by the middleware: the tenant middleware, the resolver and the view never ran.
    assert hasattr(slow.wsgi_request, "tenant") and not hasattr(fast.wsgi_request, "tenant")
    assert sorted(fast.headers) == sorted(slow.headers)
    for name in ("Content-Type", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
                 "Cross-Origin-Opener-Policy"):
        assert fast.headers.get(name) == slow.headers.get(name), name
    assert fast.headers["Content-Length"] == str(len(fast.content))


def test_the_middleware_still_checks_the_host_and_refuses_a_nul(poster, stripe):
    acme = stripe.acme
    poster.warm(acme)
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        response = poster.post(acme, event("evt_bad_host"), HTTP_HOST="attacker.example")
    assert response.status_code == 400
    response = poster.post(acme, event("evt_nul_header"), HTTP_X_EXTRA="a\x00b")
    assert response.status_code == 400 and response.json()["status"] == "bad_request"
    assert rows(acme, event_id="evt_bad_host") == [] and rows(acme, event_id="evt_nul_header") == []
    assert poster.post(acme, event("evt_after")).status_code == 200 and poster.served_fast
