"""The webhook log page: search by event id or e-mail, date range, platform and status, the reason
as a column, a pill per status, the total; never another tenant's rows."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from conftest import SHARED_EMAIL, SHARED_EVENT_ID
from tenants.context import tenant_context
from webhooks.models import WebhookLog

UTC = ZoneInfo("UTC")


def page_of(user, **query) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/webhooks/", query)
    assert response.status_code == 200
    return response.content.decode()


def listed(page: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-testid="delivery-(\d+)"', page)}


@pytest.fixture
def log(world):
    with tenant_context(world.acme):
        rows = {
            "rejected": WebhookLog.objects.create(source="stripe", event_id="evt_forged_1", status="rejected",
                                                  error="The Stripe-Signature header does not match.", body=b"{}"),
            "dead": WebhookLog.objects.create(source="poshvip", event_id="pur_dead_9", event_type="purchase.created",
                                              status="dead", error="The Posh.VIP purchase has no customer e-mail.",
                                              body=b"{}"),
            "processed": WebhookLog.objects.create(source="stripe", event_id="evt_ok_2", event_type="charge.refunded",
                                                   status="processed", body=b"{}"),
        }
        WebhookLog.objects.filter(pk=rows["dead"].pk).update(received_at=datetime(2026, 1, 10, 12, tzinfo=UTC))
        shared = WebhookLog.objects.get(event_id=SHARED_EVENT_ID)
    rows["shared"] = shared
    return rows


def test_total_reason_column_and_pills(world, log):
    page = page_of(world.alice)
    assert 'data-testid="total">4 deliveries' in page
    row = re.search(rf'data-testid="delivery-{log["rejected"].pk}">(.*?)</tr>', page, re.S).group(1)
    assert 'class="state rejected"' in row and "The Stripe-Signature header does not match." in row and "Stripe" in row
    row = re.search(rf'data-testid="delivery-{log["processed"].pk}">(.*?)</tr>', page, re.S).group(1)
    assert 'class="state processed"' in row and 'class="muted">—' in row
    assert "Posh.VIP" in page and ">poshvip<" not in page


@pytest.mark.parametrize("query, expected", [
    ({"q": "evt_forged"}, {"rejected"}), ({"q": "PUR_DEAD"}, {"dead"}), ({"q": "charge.refunded"}, {"processed"}),
    ({"q": SHARED_EMAIL}, {"shared"}),  # the delivery that made the world's contact
    ({"status": "rejected"}, {"rejected"}), ({"source": "poshvip"}, {"dead"}),
    ({"from": "2026-01-10", "to": "2026-01-10"}, {"dead"}), ({"to": "2026-01-09"}, set()),
])
def test_search_and_filters(world, log, query, expected):
    assert listed(page_of(world.alice, **query)) == {log[name].pk for name in expected}


def test_another_tenants_rows_never_match(world, log):
    with tenant_context(world.globex):
        theirs = WebhookLog.objects.get(event_id=SHARED_EVENT_ID)
    assert theirs.pk not in listed(page_of(world.alice, q=SHARED_EMAIL))
    assert listed(page_of(world.dana, q="evt_forged")) == set()


@pytest.mark.parametrize("query", [{"from": "yesterday"}, {"status": "nope"}, {"q": "x" * 3000}, {"page": "-1"}])
def test_bad_filters_are_a_page_not_a_500(world, log, query):
    page_of(world.alice, **query)
