"""``GET /api/v1/ads/`` and ``GET /api/v1/ad-insights/``: the tenant's own rows only, paginated,
date filters that answer 400 (never 500) to anything malformed."""

from datetime import date
from decimal import Decimal

import pytest

from conftest import SHARED_AD_ID, api_auth
from reports.models import MetaAdInsight
from tenants.context import tenant_context


def bearer(user) -> dict:
    return api_auth(user)


@pytest.fixture
def insights(world):
    for tenant, spend in ((world.acme, "12.50"), (world.globex, "999.00")):
        with tenant_context(tenant):
            for day in (date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 9)):
                MetaAdInsight.objects.create(ad_id=SHARED_AD_ID, date=day, spend=Decimal(spend), clicks=7,
                                             impressions=700, currency="EUR")
    return world


@pytest.mark.parametrize("url", ["/api/v1/ads/", "/api/v1/ad-insights/"])
def test_each_tenant_sees_only_its_own_ads_data(insights, client, url):
    acme = client.get(url, **bearer(insights.alice)).json()
    globex = client.get(url, **bearer(insights.dana)).json()
    assert set(acme) == {"count", "next", "previous", "results"}
    assert acme["count"] == globex["count"] >= 1
    assert {r["ad_id"] for r in acme["results"]} == {SHARED_AD_ID}
    first = acme["results"][0]["id"]
    assert client.get(f"{url}{first}/", **bearer(insights.dana)).status_code == 404
    assert client.get(url).status_code == 401
    assert client.get(url, **bearer(insights.charlie)).status_code == 403


def test_insights_filtered_by_date_with_the_contract_fields(insights, client):
    body = client.get("/api/v1/ad-insights/?date_from=2026-11-03&date_to=2026-11-09", **bearer(insights.bob)).json()
    assert [(r["date"], r["spend"]) for r in body["results"]] == [("2026-11-09", "12.5000"), ("2026-11-03", "12.5000")]
    row = body["results"][0]
    assert {k: row[k] for k in ("ad_id", "impressions", "clicks", "currency")} == {
        "ad_id": SHARED_AD_ID, "impressions": 700, "clicks": 7, "currency": "EUR",
    }


@pytest.mark.parametrize("query", [
    "date_from=yesterday", "date_to=2026-13-01", "date_from=2026-11-09&date_to=2026-11-01", "date_from=%00",
    "date_to=" + "9" * 5000,
])
def test_malformed_dates_get_400(insights, client, query):
    response = client.get(f"/api/v1/ad-insights/?{query}", **bearer(insights.alice))
    assert response.status_code == 400, response.content
