"""``?search=`` and the field filters of the API's lists: the same meaning as on the pages, one
tenant's rows only, and a clear 400 for a value that does not parse (a NUL included)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from conftest import api_auth
from contacts.models import Contact, Payment, PendingSignup
from tenants.context import tenant_context
from webhooks.models import WebhookLog


def bearer(user) -> dict:
    return api_auth(user)


@pytest.fixture
def rows(world):
    """Besides the world's look-alike rows (Pat at both tenants): more of acme's, and one of globex
    that would match every acme search below."""
    with tenant_context(world.acme):
        ada = Contact.objects.create(email="ada@lovelace.test", first_name="Ada", last_name="Lovelace",
                                     phone="+44 20 7946 0001", source="stripe")
        Payment.objects.create(contact=ada, amount=Decimal("10.00"), currency="GBP", source="stripe",
                               external_id="pi_ada", payment_event_id="evt_pi_ada", status=Payment.Status.REFUNDED)
        Payment.objects.create(contact=ada, amount=Decimal("20.00"), currency="EUR", source="zoom", external_id="z_ada",
                               payment_event_id="evt_z_ada")
        PendingSignup.objects.create(contact=ada, source="zoom", external_id="reg-ada", status=PendingSignup.Status.APPROVED)
        WebhookLog.objects.create(source="stripe", event_id="evt_ada_1", event_type="charge.refunded", body=b"{}",
                                  status=WebhookLog.Status.REJECTED, error="signature does not match")
    with tenant_context(world.globex):
        twin = Contact.objects.create(email="ada@lovelace.test", first_name="Ada", last_name="Lovelace", source="stripe")
        Payment.objects.create(contact=twin, amount=Decimal("10.00"), currency="GBP", source="stripe",
                               external_id="pi_ada", payment_event_id="evt_pi_ada", status=Payment.Status.REFUNDED)
        WebhookLog.objects.create(source="stripe", event_id="evt_ada_1", event_type="charge.refunded", body=b"{}",
                                  status=WebhookLog.Status.REJECTED, error="signature does not match")
    return world


def listed(client, user, url):
    response = client.get(url, **bearer(user))
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("query, emails", [
    ("search=ada", ["ada@lovelace.test"]),
    ("search=lovelace%20ADA", ["ada@lovelace.test"]),  # every word, any field, any case
    ("search=7946", ["ada@lovelace.test"]),  # the phone
    ("search=example.com", ["pat@example.com"]),
    ("source=manychat", ["pat@example.com"]),
    ("search=ada&source=manychat", []),
    ("sort=email", ["ada@lovelace.test", "pat@example.com"]),
])
def test_contacts_search_and_filters(rows, client, query, emails):
    body = listed(client, rows.alice, f"/api/v1/contacts/?{query}")
    assert [c["email"] for c in body["results"]] == emails
    assert body["count"] == len(emails)


def test_a_date_range_is_days_in_the_tenants_time_zone(rows, client):
    today = timezone.now().date()
    assert listed(client, rows.alice, f"/api/v1/contacts/?from={today - timedelta(days=1)}")["count"] == 2
    assert listed(client, rows.alice, f"/api/v1/contacts/?to={today - timedelta(days=1)}")["count"] == 0
    assert listed(client, rows.alice, f"/api/v1/contacts/?from={today + timedelta(days=2)}")["count"] == 0


@pytest.mark.parametrize("query, external_ids", [
    ("status=refunded", ["pi_ada"]),
    ("currency=gbp", ["pi_ada"]),
    ("source=zoom", ["z_ada"]),
    ("search=ada%20pi_", ["pi_ada"]),
    ("sort=amount", ["pi_ada", "z_ada", "pi_same"]),
])
def test_payments_filters_as_on_the_payments_page(rows, client, query, external_ids):
    body = listed(client, rows.alice, f"/api/v1/payments/?{query}")
    assert [p["external_id"] for p in body["results"]] == external_ids


def test_sign_ups_and_deliveries_filter_by_status_and_search(rows, client):
    assert [s["external_id"] for s in listed(client, rows.alice, "/api/v1/pending-signups/?status=approved")["results"]] \
        == ["reg-ada"]
    assert [s["external_id"] for s in listed(client, rows.alice, "/api/v1/pending-signups/?search=pat")["results"]] \
        == ["reg-1"]
    events = listed(client, rows.alice, "/api/v1/webhook-events/?status=rejected&search=signature")["results"]
    assert [e["event_id"] for e in events] == ["evt_ada_1"]
    assert listed(client, rows.alice, "/api/v1/webhook-events/?source=manychat")["count"] == 1


def test_a_search_finds_only_the_tenants_own_rows(rows, client):
    """globex has the very same Ada: acme's owner never sees her, globex's owner sees only her."""
    acme = listed(client, rows.alice, "/api/v1/payments/?search=ada")["results"]
    globex = listed(client, rows.dana, "/api/v1/payments/?search=ada")["results"]
    assert len(acme) == 2 and len(globex) == 1
    assert {p["id"] for p in acme}.isdisjoint({p["id"] for p in globex})
    assert listed(client, rows.dana, "/api/v1/webhook-events/?status=rejected")["count"] == 1


def test_an_empty_value_is_no_filter(rows, client):
    assert listed(client, rows.alice, "/api/v1/contacts/?search=&source=&from=&sort=")["count"] == 2


@pytest.mark.parametrize("url, parameter", [
    ("/api/v1/contacts/?source=myspace", "source"),
    ("/api/v1/contacts/?from=yesterday", "from"),
    ("/api/v1/contacts/?from=2026-02-30", "from"),
    ("/api/v1/contacts/?to=03/01/2026", "to"),  # only YYYY-MM-DD, as the schema says
    ("/api/v1/contacts/?search=" + "x" * 201, "search"),
    ("/api/v1/payments/?currency=EURO", "currency"),
    ("/api/v1/payments/?status=paid", "status"),
    ("/api/v1/contacts/?sort=-email", "sort"),
])
def test_a_value_that_does_not_parse_is_a_400_naming_the_parameter(rows, client, url, parameter):
    response = client.get(url, **bearer(rows.alice))
    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body) == [parameter] and body[parameter][0]


@pytest.mark.parametrize("url", [
    "/api/v1/contacts/?search=pat%00", "/api/v1/webhook-events/?status=%00", "/api/v1/webhook-events/?source=%00",
    "/api/v1/pending-signups/?status=%00",
])
def test_a_nul_in_a_filter_is_a_400_too(rows, client, url):
    response = client.get(url, **bearer(rows.alice))
    assert response.status_code == 400
    assert "NUL" in response.content.decode()

