"""The tenant's own data on pages: /contacts/, /payments/, a contact's page and the CSV exports.

Search, filters, sort, the total and page numbers; the export holds the page's rows (and only the
tenant's), streamed, with cells a spreadsheet cannot run as formulas. The conftest world gives
acme and globex the same contact (pat@example.com) and the same payment event id, so each test
about data is one about isolation too.
"""

import csv
import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.http import StreamingHttpResponse
from django.test import Client

from conftest import SHARED_EMAIL
from contacts.export import safe_cell
from contacts.models import Contact, ContactDelivery, Payment
from contacts.services import record_activity
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import fixture_bytes, post_stripe

PARIS = ZoneInfo("Europe/Paris")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def csv_rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def people(world):
    """acme: Pat (the world's), plus Ada, Bo and a formula-looking name; globex: only its Pat."""
    with tenant_context(world.acme):
        ada = Contact.objects.create(email="ada@lovelace.test", first_name="Ada", last_name="Lovelace",
                                     phone="+33 6 12 34 56 78", source="stripe")
        bo = Contact.objects.create(email="bo@example.org", first_name="Bo", source="ghl", ghl_id="ghl-777")
        evil = Contact.objects.create(email="evil@example.org", first_name="=HYPERLINK(\"http://x\")", source="ghl")
        Payment.objects.create(contact=ada, amount=Decimal("120.00"), currency="usd", source="stripe",
                               external_id="pi_ada", payment_event_id="evt_ada", status=Payment.Status.SUCCEEDED,
                               occurred_at=datetime(2026, 3, 1, 23, 30, tzinfo=PARIS))
        Payment.objects.create(contact=bo, amount=Decimal("5000"), currency="jpy", source="poshvip",
                               external_id="pur_bo", payment_event_id="evt_bo", status=Payment.Status.REFUNDED,
                               occurred_at=datetime(2026, 3, 2, 0, 30, tzinfo=PARIS))
    return {"ada": ada, "bo": bo, "evil": evil}


def listed(page: str, prefix: str) -> set[str]:
    import re

    return set(re.findall(rf'data-testid="{prefix}-(\d+)"', page))


def test_contacts_list_shows_the_tenants_contacts_with_total(world, people):
    page = text(client_for(world.alice).get("/contacts/"))
    assert 'data-testid="total">4 contacts' in page
    assert "Ada Lovelace" in page and "Stripe" in page and "GoHighLevel" in page
    assert str(people["ada"].pk) in listed(page, "contact")
    with tenant_context(world.globex):
        globex_pat = Contact.objects.get(email=SHARED_EMAIL)
    assert str(globex_pat.pk) not in listed(page, "contact")


@pytest.mark.parametrize("query, expected", [
    ("ada", {"ada"}), ("LOVELACE", {"ada"}), ("lovelace.test", {"ada"}), ("12 34", {"ada"}),
    ("ghl-777", {"bo"}), ("bo example", {"bo"}), ("nobody", set()),
])
def test_search_matches_name_email_phone_and_platform_ids(world, people, query, expected):
    page = text(client_for(world.alice).get("/contacts/", {"q": query}))
    assert listed(page, "contact") == {str(people[name].pk) for name in expected}
    for name in expected:  # each row links to the contact's page (not the API's)
        assert f'href="/contacts/{people[name].pk}/"' in page


def test_filters_by_platform_and_dates_in_the_tenants_time_zone(world, people):
    world.acme.timezone = "Europe/Paris"
    world.acme.save()
    alice = client_for(world.alice)
    assert listed(text(alice.get("/contacts/", {"source": "ghl"})), "contact") == {
        str(people["bo"].pk), str(people["evil"].pk)}
    # 23:30 on 1 March in Paris is 22:30 UTC: it belongs to 1 March for a Paris tenant.
    with tenant_context(world.acme):
        ada_payment, bo_payment = Payment.objects.get(external_id="pi_ada"), Payment.objects.get(external_id="pur_bo")
    march_first = text(alice.get("/payments/", {"from": "2026-03-01", "to": "2026-03-01"}))
    assert listed(march_first, "payment") == {str(ada_payment.pk)}
    march_second = text(alice.get("/payments/", {"from": "2026-03-02"}))
    assert str(bo_payment.pk) in listed(march_second, "payment") and str(ada_payment.pk) not in listed(march_second, "payment")


def test_payment_filters_status_currency_and_sort(world, people):
    alice = client_for(world.alice)
    with tenant_context(world.acme):
        ids = {p.external_id: str(p.pk) for p in Payment.objects.all()}
    assert listed(text(alice.get("/payments/", {"status": "refunded"})), "payment") == {ids["pur_bo"]}
    assert listed(text(alice.get("/payments/", {"currency": "usd"})), "payment") == {ids["pi_ada"]}
    page = text(alice.get("/payments/", {"sort": "-amount"}))
    assert page.index(f'payment-{ids["pur_bo"]}') < page.index(f'payment-{ids["pi_ada"]}') < page.index(f'payment-{ids["pi_same"]}')
    page = text(alice.get("/payments/", {"sort": "amount"}))
    assert page.index(f'payment-{ids["pi_same"]}') < page.index(f'payment-{ids["pi_ada"]}')
    assert "5,000 JPY" in page and "120.00 USD" in page and "Refunded" in page


@pytest.mark.parametrize("query", [
    {"from": "not-a-date"}, {"to": "2026-13-45"}, {"currency": "EURO"}, {"currency": "€€€"},
    {"status": "stolen"}, {"source": "nowhere"}, {"sort": "password"}, {"page": "999"}, {"page": "x"},
    {"q": "x" * 5000}, {"q": "a\x00b"},
])
def test_bad_query_values_get_a_page_not_a_500(world, people, query):
    for path in ("/payments/", "/contacts/", "/payments/export.csv", "/contacts/export.csv"):
        response = client_for(world.alice).get(path, query)
        assert response.status_code == 200, (path, query)


def test_a_refused_filter_value_is_named_and_the_others_still_apply(world, people):
    page = text(client_for(world.alice).get("/payments/", {"currency": "EU1", "status": "refunded"}))
    assert "A currency is three letters" in page
    assert len(listed(page, "payment")) == 1


def test_page_numbers_keep_the_filters(world):
    with tenant_context(world.acme):
        Contact.objects.bulk_create([Contact(email=f"bulk{i}@example.com", first_name="Bulk", source="ghl") for i in range(120)])
    page = text(client_for(world.alice).get("/contacts/", {"q": "bulk", "page": "2"}))
    assert 'data-testid="total">120 contacts match' in page
    assert len(listed(page, "contact")) == 50
    assert 'aria-current="page">2<' in page
    assert '?q=bulk&amp;page=3' in page and '?q=bulk&amp;page=1' in page


def test_contact_export_holds_the_pages_rows_and_is_formula_safe(world, people):
    response = client_for(world.alice).get("/contacts/export.csv", {"source": "ghl"})
    assert 'attachment; filename="acme-contacts-' in response["Content-Disposition"]
    header, *rows = csv_rows(response)
    assert header[0] == "id" and header[-1] == "created_at (UTC)"
    assert {row[0] for row in rows} == {str(people["bo"].pk), str(people["evil"].pk)}
    evil = next(row for row in rows if row[0] == str(people["evil"].pk))
    assert evil[1] == "'=HYPERLINK(\"http://x\")"
    assert next(row for row in rows if row[0] == str(people["bo"].pk))[5] == "GoHighLevel"


def test_payment_export_is_the_tenants_only_and_follows_the_filters(world, people):
    alice_rows = csv_rows(client_for(world.alice).get("/payments/export.csv"))[1:]
    dana_rows = csv_rows(client_for(world.dana).get("/payments/export.csv"))[1:]
    with tenant_context(world.acme):
        acme_ids = {str(pk) for pk in Payment.objects.values_list("pk", flat=True)}
    with tenant_context(world.globex):
        globex_ids = {str(pk) for pk in Payment.objects.values_list("pk", flat=True)}
    assert {r[0] for r in alice_rows} == acme_ids and {r[0] for r in dana_rows} == globex_ids
    assert not acme_ids & globex_ids
    refunded = csv_rows(client_for(world.alice).get("/payments/export.csv", {"status": "refunded"}))[1:]
    assert [(r[4], r[5], r[6], r[7]) for r in refunded] == [("JPY", "refunded", "Posh.VIP", "pur_bo")]


def test_export_streams_in_chunks(world, monkeypatch):
    """Rows are read from the database in chunks as the response is consumed, not built first."""
    import contacts.export as export

    with tenant_context(world.acme):
        Contact.objects.bulk_create([Contact(email=f"many{i}@example.com", source="ghl") for i in range(25)])
    monkeypatch.setattr(export, "CHUNK_SIZE", 10)
    response = client_for(world.alice).get("/contacts/export.csv")
    stream = iter(response.streaming_content)
    assert next(stream).startswith(b"id,")  # the header, before any row was read
    assert len(list(stream)) == 26


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+33 6", "'+33 6"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("plain", "plain"), (None, ""), (42, "42"),
])
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_contact_page_shows_payments_signups_activity_and_the_delivery_that_made_it(
    world, stripe, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(Client(), world.acme, fixture_bytes("stripe", "payment_intent_succeeded"))
    assert response.status_code == 200
    with tenant_context(world.acme):
        log = WebhookLog.objects.get(source="stripe")
        assert log.status == WebhookLog.Status.PROCESSED, log.error
        contact = Contact.objects.get(email="sam.lee@example.com")
        assert list(ContactDelivery.objects.filter(contact=contact).values_list("webhook_log_id", flat=True)) == [log.pk]
        record_activity(contact, "checked_in", event="Spring gala")
    page = text(client_for(world.alice).get(f"/contacts/{contact.pk}/"))
    assert "125.50 USD" in page
    assert f'href="/webhooks/{log.pk}/"' in page and "payment_intent.succeeded" in page
    assert "checked_in" in page and "Spring gala" in page
    with tenant_context(world.acme):
        pat = Contact.objects.get(email=SHARED_EMAIL)
    page = text(client_for(world.alice).get(f"/contacts/{pat.pk}/"))
    assert "49.00 EUR" in page and "Zoom" in page  # the world's payment and sign-up


def test_a_replay_adds_no_second_link(world, stripe, django_capture_on_commit_callbacks):
    from webhooks import processing

    with django_capture_on_commit_callbacks(execute=True):
        post_stripe(Client(), world.acme, fixture_bytes("stripe", "payment_intent_succeeded"))
    with django_capture_on_commit_callbacks(execute=True), tenant_context(world.acme):
        processing.replay(WebhookLog.objects.get(source="stripe"))
    with tenant_context(world.acme):
        assert ContactDelivery.objects.filter(contact__email="sam.lee@example.com").count() == 1


def test_another_tenants_contact_is_404(world):
    with tenant_context(world.globex):
        theirs = Contact.objects.get(email=SHARED_EMAIL)
    assert client_for(world.alice).get(f"/contacts/{theirs.pk}/").status_code == 404
    assert client_for(world.dana).get(f"/contacts/{theirs.pk}/").status_code == 200


def test_pages_need_a_sign_in_and_a_tenant(world):
    for path in ("/contacts/", "/payments/", "/contacts/export.csv", "/payments/export.csv"):
        assert Client().get(path).status_code == 302, path
        assert client_for(world.charlie).get(path).status_code == 403, path


def test_times_are_in_the_tenants_zone_and_say_so(world, people):
    world.acme.timezone = "Asia/Tokyo"
    world.acme.save()
    with tenant_context(world.acme):
        Contact.objects.filter(pk=people["ada"].pk).update(created_at=datetime(2026, 3, 1, 20, 0, tzinfo=ZoneInfo("UTC")))
    page = text(client_for(world.alice).get("/contacts/", {"q": "ada"}))
    assert "2026-03-02 05:00" in page and "times in Asia/Tokyo" in page
    rows = csv_rows(client_for(world.alice).get("/contacts/export.csv", {"q": "ada"}))
    assert rows[0][-1] == "created_at (Asia/Tokyo)" and rows[1][-1] == "2026-03-02T05:00:00+09:00"
