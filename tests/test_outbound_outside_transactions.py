"""No transaction or row lock is held while we wait on a platform (issue 7.12).

Processing fetches what a handler needs (Eventbrite's ``api_url``) before it claims the row, and the
"check connection" page calls the platform outside the request's tenant transaction. The fake
platform here answers from a ``responses`` callback, which runs in the thread that made the call:
it looks at that thread's connection at the moment of the request, and (on PostgreSQL) makes a real
redelivery through the receiver from another thread, which must be counted while the platform has
not answered yet. These tests commit for real (``transaction=True``): inside a test transaction
every connection is always in an atomic block.
"""

import json
import threading
import uuid

import pytest
import responses
from django.conf import settings
from django.db import connection, connections
from django.test import Client

from conftest import requires_postgres
from contacts.models import Contact, PendingSignup
from integrations.providers.easyappointments.testing import TOKENS, connect_ea, fake_ea  # noqa: F401
from integrations.models import TenantIntegration
from tenants.context import tenant_context
from tenants.models import Tenant
from webhooks.models import WebhookLog
from webhooks.tasks import process_webhook
from webhooks.testing import PROVIDERS_DIR, connect, fixture_bytes, webhook_path

DATABASES = [alias for alias in ("default", "owner") if alias in settings.DATABASES]
committed = pytest.mark.django_db(transaction=True, databases=DATABASES)
API = "https://www.eventbriteapi.com/v3"
ORDER_URL = f"{API}/orders/2091828963/"
URL_TOKEN = "eb-url-token-outside-0123456789abcdef"
DELIVERY_ID = "eb-delivery-7f3a"


def order() -> str:
    return (PROVIDERS_DIR / "eventbrite" / "fixtures" / "api" / "order.json").read_text()


@pytest.fixture
def tenant(db, settings):
    settings.EVENTBRITE_API_BASE = API
    tenant = Tenant.objects.create(slug=f"out-{uuid.uuid4().hex[:8]}", name="Outside")
    connect(tenant, "eventbrite", URL_TOKEN, private_token="EB-PRIVATE-OUTSIDE-000000")
    yield tenant
    for alias in DATABASES:
        connections[alias].close()


def stored_order_placed(tenant) -> WebhookLog:
    """An ``order.placed`` delivery as the receiver stored it, not yet processed."""
    with tenant_context(tenant):
        return WebhookLog.objects.create(
            source="eventbrite", event_id=DELIVERY_ID, event_type="order.placed",
            body=fixture_bytes("eventbrite", "order_placed"), headers={"X-Eventbrite-Delivery": DELIVERY_ID},
        )


def row_of(tenant, pk) -> WebhookLog:
    with tenant_context(tenant):
        return WebhookLog.objects.get(pk=pk)


@committed
def test_the_platform_is_called_outside_any_transaction(tenant):
    seen = []

    def platform(request):
        seen.append(connection.in_atomic_block)  # the calling thread's connection, right now
        return 200, {}, order()

    # The probe itself: inside a tenant context it does see the transaction.
    with tenant_context(tenant):
        assert connection.in_atomic_block
    row = stored_order_placed(tenant)
    with responses.RequestsMock() as fake:
        fake.add_callback(responses.GET, ORDER_URL, callback=platform)
        assert process_webhook.apply(args=(row.pk, str(tenant.pk))).get() == "processed"
    assert seen == [False]
    with tenant_context(tenant):
        assert PendingSignup.objects.filter(source="eventbrite").count() == 2


@requires_postgres
@committed
def test_a_redelivery_is_counted_while_the_platform_has_not_answered(tenant):
    """The duplicate counter is an UPDATE of the row: with the row locked across the fetch, this
    redelivery would wait (holding a web worker) until the platform answered."""
    row = stored_order_placed(tenant)
    answers, answered_first = [], []

    def redeliver():
        try:
            response = Client().post(
                webhook_path(tenant, "eventbrite") + f"?token={URL_TOKEN}", data=fixture_bytes("eventbrite", "order_placed"),
                content_type="application/json", HTTP_X_EVENTBRITE_DELIVERY=DELIVERY_ID,
            )
            answers.append((response.status_code, response.json().get("status")))
        except Exception as exc:  # reported by the assertion below
            answers.append(repr(exc))
        finally:
            connections.close_all()

    def platform(request):
        # The platform answers only once the redelivery has been answered. The bound is for a
        # broken build (the redelivery blocked on our lock), never reached by a working one.
        thread = threading.Thread(target=redeliver)
        thread.start()
        thread.join(timeout=30)
        answered_first.append(not thread.is_alive())
        return 200, {}, order()

    with responses.RequestsMock() as fake:
        fake.add_callback(responses.GET, ORDER_URL, callback=platform)
        assert process_webhook.apply(args=(row.pk, str(tenant.pk))).get() == "processed"
    assert answered_first == [True], "the redelivery waited for the platform's answer"
    assert answers == [(200, "duplicate")]
    row = row_of(tenant, row.pk)
    assert (row.status, row.delivery_count, row.attempts) == (WebhookLog.Status.PROCESSED, 2, 1)


def garble_credentials(tenant) -> None:
    """Make the stored credentials undecryptable, so any code that loads them fails loudly."""
    with tenant_context(tenant):
        integration = TenantIntegration.objects.get(provider="eventbrite")
        with connection.cursor() as cursor:
            cursor.execute("UPDATE integrations_tenantintegration SET credentials = 'not-a-fernet-token' WHERE id = %s",
                           [integration.pk])


@pytest.mark.django_db
def test_credentials_are_decrypted_only_for_a_handler_that_calls_the_platform(tenant):
    """An ``attendee.checked_in`` has a fetcher (it needs the token); a Posh.VIP purchase has none,
    so its processing never reads the tenant's credentials (here: a Posh.VIP integration whose
    stored credentials cannot be decrypted is processed all the same)."""
    connect(tenant, "poshvip", "posh-secret-outside-0123456789")
    with tenant_context(tenant):
        posh = TenantIntegration.objects.get(provider="poshvip")
        with connection.cursor() as cursor:
            cursor.execute("UPDATE integrations_tenantintegration SET credentials = 'not-a-fernet-token' WHERE id = %s",
                           [posh.pk])
        purchase = WebhookLog.objects.create(source="poshvip", event_id="pur:1", event_type="purchase.created",
                                             body=fixture_bytes("poshvip", "purchase_created"))
    assert process_webhook.apply(args=(purchase.pk, str(tenant.pk))).get() == "processed"

    garble_credentials(tenant)  # the control: a fetcher needs them, and they do not decrypt
    row = stored_order_placed(tenant)
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        assert process_webhook.apply(args=(row.pk, str(tenant.pk))).get() == "failed"
    assert row_of(tenant, row.pk).error.startswith("the saved credentials could not be read")


@committed
def test_check_connection_calls_the_platform_outside_the_request_transaction(world, client, settings):
    settings.MANYCHAT_API_BASE = "https://api.manychat.test"
    connect(world.acme, "manychat", "mc-token-outside-0123456789", api_key="123:manychat-key-outside")
    seen = []

    def platform(request):
        seen.append(connection.in_atomic_block)
        return 200, {}, json.dumps({"status": "success", "data": {"name": "Acme page"}})

    client.force_login(world.alice)  # an owner of acme
    with responses.RequestsMock() as fake:
        fake.add_callback(responses.GET, "https://api.manychat.test/fb/page/getInfo", callback=platform)
        response = client.post("/setup/manychat/check/", follow=True)
    assert seen == [False]
    assert "ManyChat answered: page Acme page." in response.content.decode()


@committed
def test_easyappointments_looks_a_customer_up_outside_any_transaction(tenant, fake_ea, monkeypatch):
    """A bare E!A appointment (only ``id_users_customer``) is completed with ``GET
    /customers/{id}`` in the fetch phase: the look-up is made with no transaction open."""
    from integrations.providers.easyappointments.client import EasyAppointmentsClient

    connect_ea(tenant, fake_ea, token=TOKENS["acme"])  # reads the fake's acme installation
    seen, real_get = [], EasyAppointmentsClient.get

    def spy(self, resource, params=None):
        seen.append((resource, connection.in_atomic_block))  # the calling thread's connection, now
        return real_get(self, resource, params)

    monkeypatch.setattr(EasyAppointmentsClient, "get", spy)
    with tenant_context(tenant):
        row = WebhookLog.objects.create(
            source="easyappointments", event_id="appointment_save:9:x", event_type="appointment_save",
            body=json.dumps({"action": "appointment_save", "payload": {
                "id": 9, "start_datetime": "2026-12-01 09:00:00", "id_users_customer": 1}}).encode())
    assert process_webhook.apply(args=(row.pk, str(tenant.pk))).get() == "processed"
    assert seen == [("customers/1", False)]
    with tenant_context(tenant):
        assert Contact.objects.filter(email="jordan.blake@acme.example", source="easyappointments").exists()


@committed
def test_the_booking_endpoints_call_easyappointments_outside_any_transaction(world, fake_ea, monkeypatch, client):
    """``add-bookers-to-queue`` reads E!A with no transaction open, then writes in a short one."""
    from integrations.providers.easyappointments.client import EasyAppointmentsClient
    from tenants.models import ApiToken

    connect_ea(world.acme, fake_ea)
    seen, real_get = [], EasyAppointmentsClient.get

    def spy(self, resource, params=None):
        seen.append(connection.in_atomic_block)
        return real_get(self, resource, params)

    monkeypatch.setattr(EasyAppointmentsClient, "get", spy)
    _, key = ApiToken.issue(world.acme, world.alice)
    response = client.post("/api/admin/easyappointments/add-bookers-to-queue",
                           data=json.dumps({"date_from": "2026-12-01", "date_to": "2026-12-05"}),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.json() == {"added": 3, "already_queued": 0, "skipped": 0, "approved": 0}
    assert seen and not any(seen), seen
    response = client.get("/api/admin/easyappointments/booking-stats?date_from=2026-12-01&date_to=2026-12-05",
                          HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.json()["total_bookings"] == 6 and not any(seen)
