"""``/healthz``, ``/readyz`` and ``/metrics`` (engarde/probes.py): through the whole middleware
stack with the test client, on PostgreSQL as the runtime role. The broker and database failures are
real ones: a closed port."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection, connections
from django.test import Client, override_settings

from conftest import requires_postgres
from engarde.networks import parse_networks
from tenants.context import tenant_context
from tests.test_reliability import CLOSED_BROKER, REDIS_URL, celery_broker, requires_redis
from webhooks.models import WebhookLog
from webhooks.testing import STRIPE_SECRETS, connect_stripe, post_stripe

TOKEN = "metrics-token-" + "x" * 24


def stripe_body(event_id: str, email: str) -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "type": "payment_intent.succeeded", "created": 1760000000,
        "data": {"object": {"id": "pi_" + event_id, "object": "payment_intent", "amount": 4900,
                            "amount_received": 4900, "currency": "eur", "receipt_email": email,
                            "status": "succeeded", "metadata": {}}},
    }).encode()


# --- /healthz --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_is_ok_without_the_database_over_plain_http_and_any_host(django_assert_num_queries):
    with override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["engarde.example.com"]):
        with django_assert_num_queries(0):
            response = Client().get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    # The same settings refuse any other page for that host (the probe is the exception, not the rule).
    with override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["engarde.example.com"]):
        assert Client().get("/accounts/login/", HTTP_HOST="10.0.0.7:8000").status_code == 400


def test_probes_refuse_other_methods():
    assert Client().post("/healthz").status_code == 405


# --- /readyz ---------------------------------------------------------------------------------


@requires_postgres
@pytest.mark.django_db
def test_readyz_is_ready_when_the_database_answers():
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["status"] == "ready"


@requires_postgres
@pytest.mark.django_db
def test_readyz_names_the_database_when_it_is_down_and_shows_no_address_or_password():
    settings_dict = connections["default"].settings_dict
    saved = settings_dict["PORT"]
    settings_dict["PORT"] = 1  # nothing listens there: connection refused
    try:
        response = Client().get("/readyz")
    finally:
        settings_dict["PORT"] = saved
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"] and body["checks"]["database"] == "unreachable"
    text = response.content.decode()
    for secret in (settings_dict.get("PASSWORD") or "\x00", settings_dict["USER"], settings_dict["NAME"],
                   "127.0.0.1", "postgres", "port"):
        assert secret not in text
    # The kept connection was never touched: the app still works.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@requires_postgres
@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_down():
    with celery_broker(CLOSED_BROKER):
        response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["broker"]
    assert body["checks"] == {"database": "ok", "broker": "unreachable"}
    assert "redis" not in response.content.decode() and ":1" not in response.content.decode()


@requires_postgres
@requires_redis
@pytest.mark.django_db
def test_readyz_checks_a_broker_that_answers():
    with celery_broker(REDIS_URL):
        response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


# --- /metrics --------------------------------------------------------------------------------


def test_metrics_are_off_until_a_token_or_a_network_is_set():
    with override_settings(METRICS_TOKEN="", METRICS_ALLOWED_NETWORKS=()):
        assert Client().get("/metrics").status_code == 404
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.django_db
def test_metrics_need_the_token():
    with override_settings(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=()):
        assert Client().get("/metrics").status_code == 401
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN[:-1] + "y").status_code == 401
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Basic " + TOKEN).status_code == 401
        response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")


@pytest.mark.django_db
def test_metrics_need_an_allowed_network_and_with_both_set_both():
    networks = parse_networks(["10.20.0.0/16"])
    with override_settings(METRICS_TOKEN="", METRICS_ALLOWED_NETWORKS=networks):
        assert Client(REMOTE_ADDR="192.0.2.9").get("/metrics").status_code == 403
        assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics").status_code == 200
    with override_settings(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=networks):
        assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics").status_code == 401
        assert Client(REMOTE_ADDR="192.0.2.9").get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN).status_code == 403
        assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN).status_code == 200


def scrape(**extra) -> str:
    with override_settings(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=(), **extra):
        response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN)
    assert response.status_code == 200
    return response.content.decode()


def sample(text: str, name: str, **labels) -> float:
    """The value of the one series ``name`` whose labels include ``labels``; 0 when none."""
    from prometheus_client.parser import text_string_to_metric_families

    found = [s.value for family in text_string_to_metric_families(text) for s in family.samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, found
    return found[0] if found else 0.0


@requires_postgres
def test_metrics_count_deliveries_show_waiting_rows_and_never_a_secret_or_a_contact(
        world, django_capture_on_commit_callbacks):
    connect_stripe(world)
    client = Client()
    before = scrape()
    email = f"buyer-{uuid.uuid4().hex[:6]}@example.com"
    with django_capture_on_commit_callbacks(execute=True):
        assert post_stripe(client, world.acme, stripe_body("evt_metrics_1", email)).status_code == 200
    assert post_stripe(client, world.acme, stripe_body("evt_metrics_1", email)).status_code == 200
    assert post_stripe(client, world.acme, stripe_body("evt_metrics_2", email), signed=False).status_code == 401
    # Two rows waiting at globex, one old: the gauges come from the database, across tenants.
    with tenant_context(world.globex):
        for i in range(2):
            WebhookLog.objects.create(source="stripe", event_id=f"evt_waiting_{i}", event_type="payment_intent.succeeded",
                                      body=b"{}", status=WebhookLog.Status.RECEIVED)
        WebhookLog.objects.filter(event_id="evt_waiting_0").update(
            received_at=WebhookLog.objects.get(event_id="evt_waiting_0").received_at.replace(year=2020))
    after = scrape()

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("engarde_webhook_deliveries_total", source="stripe", status="received") == 1
    assert delta("engarde_webhook_deliveries_total", source="stripe", status="duplicate") == 1
    assert delta("engarde_webhook_deliveries_total", source="stripe", status="rejected") == 1
    # In-process tasks (tests): the delivery was processed in this process, its lag observed.
    assert delta("engarde_webhook_processed_total", source="stripe", status="processed") == 1
    assert delta("engarde_webhook_processing_lag_seconds_count", source="stripe") == 1
    assert sample(after, "engarde_webhook_rows_waiting", source="stripe", status="received") == 2
    assert sample(after, "engarde_webhook_oldest_waiting_age_seconds", source="stripe", status="received") > 3600 * 24 * 365
    assert sample(after, "engarde_metrics_database_up") == 1
    for secret in (STRIPE_SECRETS["acme"], email, "pi_evt_metrics_1", "evt_metrics", str(world.acme.pk),
                   str(world.globex.pk), world.acme.slug):
        assert secret not in after


@requires_postgres
def test_tenant_labels_only_when_operators_turn_them_on(world):
    connect_stripe(world)
    assert post_stripe(Client(), world.acme, stripe_body("evt_metrics_t", "t@example.com")).status_code == 200
    with tenant_context(world.globex):
        WebhookLog.objects.create(source="stripe", event_id="evt_waiting_t", event_type="payment_intent.succeeded",
                                  body=b"{}", status=WebhookLog.Status.RECEIVED)
    assert str(world.acme.pk) not in scrape() and str(world.globex.pk) not in scrape()
    with override_settings(METRICS_PER_TENANT=True):
        assert post_stripe(Client(), world.acme, stripe_body("evt_metrics_t2", "t@example.com")).status_code == 200
        text = scrape(METRICS_PER_TENANT=True)
    assert sample(text, "engarde_webhook_deliveries_total", source="stripe", status="received",
                  tenant=str(world.acme.pk)) == 1
    assert sample(text, "engarde_webhook_rows_waiting", source="stripe", status="received",
                  tenant=str(world.globex.pk)) == 1


@pytest.mark.django_db
def test_a_delivery_to_an_unknown_tenant_gets_no_tenant_label():
    with override_settings(METRICS_PER_TENANT=True):
        fake = uuid.uuid4()
        assert Client().post(f"/api/webhooks/{fake}/stripe/", data=b"{}", content_type="application/json").status_code == 404
        text = scrape(METRICS_PER_TENANT=True)
    assert str(fake) not in text
    assert sample(text, "engarde_webhook_deliveries_total", source="stripe", status="not_found", tenant="") >= 1


# --- multiprocess: counters summed across gunicorn workers -----------------------------------


@requires_postgres
@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_counters_add_up_across_gunicorn_workers(tmp_path):
    """Three gunicorn workers share PROMETHEUS_MULTIPROC_DIR: whichever worker answers a scrape
    reports every worker's deliveries."""
    import http.client
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from integrations.providers.stripe.tests import stripe_signature
    from tenants.models import Tenant
    from tests.test_reliability import ROOT, child_env, free_port, runtime_database_url, stop, wait_for
    from webhooks.testing import connect

    secret = "whsec_multiproc0123456789abcdefghij"
    tenant = Tenant.objects.create(slug=f"mp-{uuid.uuid4().hex[:8]}", name="Multiprocess")
    connect(tenant, "stripe", secret)
    prom = tmp_path / "prom"
    prom.mkdir()
    port, log = free_port(), tmp_path / "web.log"
    env = child_env(tmp_path, DATABASE_URL=runtime_database_url(), PROMETHEUS_MULTIPROC_DIR=str(prom),
                    METRICS_TOKEN=TOKEN, CELERY_TASK_ALWAYS_EAGER="true")
    with open(log, "wb") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "engarde.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "3",
             "--timeout", "30"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )

    def request(method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def deliver(i):
        body = stripe_body(f"evt_mp_{i}", f"mp{i}@example.com")
        return request("POST", f"/api/webhooks/{tenant.pk}/stripe/", body,
                       {"Content-Type": "application/json", "Stripe-Signature": stripe_signature(body, secret)})[0]

    def up():
        try:
            return request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    try:
        wait_for("the web server", up, timeout=30, interval=0.2, proc=web, log=log)
        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(deliver, range(12))) == [200] * 12
        totals = set()
        for _ in range(6):
            status, text = request("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN})
            assert status == 200
            totals.add(sample(text.decode(), "engarde_webhook_deliveries_total", source="stripe", status="received"))
        print(f"\ncounter files: {sorted(p.name for p in prom.iterdir())}")
        assert totals == {12.0}
    finally:
        stop(web)
        connections["owner"].close()
