"""The E!A client against the local fake (``fake_api``): Bearer or Basic from the credentials,
``page``/``length`` paging until a short page, 401 permanent with the reason, 429 and 5xx
transient, the URL checked and pinned (a tenant-typed http URL is never requested), no secret in
an error or a log line, and each tenant reading its own installation."""

import logging

import pytest

from integrations.providers.easyappointments import client as ea_client
from integrations.providers.easyappointments.client import EasyAppointmentsClient, EasyAppointmentsRefused, NotConnected
from integrations.providers.easyappointments.fake_api import look_alike
from integrations.providers.easyappointments.testing import TOKENS, USERS, connect_ea, fake_ea  # noqa: F401
from integrations.sync import PermanentSyncError, TransientSyncError
from tenants.context import tenant_context


def client_of(tenant):
    from integrations.models import TenantIntegration

    with tenant_context(tenant):
        return EasyAppointmentsClient.for_integration(TenantIntegration.objects.get(provider="easyappointments"))


def test_token_is_bearer_and_a_user_is_basic_and_each_tenant_reads_its_own(world, fake_ea):
    connect_ea(world.acme, fake_ea)
    connect_ea(world.globex, fake_ea)
    acme = client_of(world.acme).customers()
    globex = client_of(world.globex).customers()
    assert [c["email"] for c in acme] == ["jordan.blake@acme.example", "casey.morgan@acme.example", "robin.lee@acme.example"]
    assert [c["email"] for c in globex] == [e.replace("acme", "globex") for e in (c["email"] for c in acme)]
    assert [(r["auth"], r["ok"]) for r in fake_ea.requests] == [("bearer", True), ("basic", True)]
    assert client_of(world.globex).customer(2)["email"] == "casey.morgan@globex.example"


def test_pages_until_a_short_page(world, fake_ea, monkeypatch):
    monkeypatch.setattr(ea_client, "PAGE_LENGTH", 4)
    fake_ea.by_slug["acme"].appointments = look_alike("acme.example", bookings=9).appointments
    connect_ea(world.acme, fake_ea)
    rows = client_of(world.acme).appointments()
    assert [r["id"] for r in rows] == list(range(1000, 1009))
    assert [(r["query"]["page"], r["query"]["length"]) for r in fake_ea.requests] == [("1", "4"), ("2", "4"), ("3", "4")]


def test_an_exact_multiple_ends_on_the_empty_page(world, fake_ea, monkeypatch):
    monkeypatch.setattr(ea_client, "PAGE_LENGTH", 3)
    connect_ea(world.acme, fake_ea)
    assert len(client_of(world.acme).appointments()) == 6
    assert [r["query"]["page"] for r in fake_ea.requests] == ["1", "2", "3"]


def test_an_installation_that_ignores_page_does_not_loop(world, fake_ea, monkeypatch, settings):
    monkeypatch.setattr(ea_client, "PAGE_LENGTH", 3)
    fake_ea.by_slug["acme"].customers = [{"id": 1, "email": "a@acme.example"}] * 3
    connect_ea(world.acme, fake_ea)
    assert len(client_of(world.acme).customers()) == 3
    assert len(fake_ea.requests) == 2


def test_from_and_till_are_sent(world, fake_ea):
    from datetime import date

    connect_ea(world.acme, fake_ea)
    rows = client_of(world.acme).appointments(date(2026, 12, 2), date(2026, 12, 3))
    assert [r["start"][:10] for r in rows] == ["2026-12-02", "2026-12-03"]
    assert fake_ea.requests[0]["query"]["from"] == "2026-12-02" and fake_ea.requests[0]["query"]["till"] == "2026-12-03"


@pytest.mark.parametrize("slug", ["acme", "globex"])
def test_401_is_permanent_with_the_reason_and_no_secret(world, fake_ea, caplog, slug):
    tenant = getattr(world, slug)
    connect_ea(tenant, fake_ea)
    fake_ea.by_slug[slug].token, fake_ea.by_slug[slug].users = "", {}
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermanentSyncError) as raised:
        client_of(tenant).services()
    what = "API token" if slug == "acme" else "API user name or password"
    assert str(raised.value) == (f"Easy!Appointments refused the {what} (401 to GET /index.php/api/v1/services): "
                                 "check them on the setup page")
    secret = TOKENS.get(slug) or USERS[slug][1]
    assert secret not in str(raised.value) and secret not in caplog.text
    assert secret not in repr(client_of(tenant))


def test_429_is_transient_with_the_wait(world, fake_ea):
    connect_ea(world.acme, fake_ea)
    fake_ea.fail("/appointments", status=429, headers={"Retry-After": "7"}, body={"message": "Too many requests"})
    with pytest.raises(TransientSyncError) as raised:
        client_of(world.acme).appointments()
    assert raised.value.retry_after == 7.0 and "429" in str(raised.value)
    assert len(fake_ea.paths("/appointments")) == 1  # never slept on and retried inside the session


def test_a_5xx_is_retried_then_transient(world, fake_ea):
    connect_ea(world.acme, fake_ea)
    fake_ea.fail("/providers", status=500, times=1)
    assert len(client_of(world.acme).providers()) == 2  # the session's retry got the answer
    fake_ea.fail("/providers", status=503, times=10)
    with pytest.raises(TransientSyncError, match="answered 503 to GET /index.php/api/v1/providers"):
        client_of(world.acme).providers()


def test_a_missing_customer_is_refused_not_transient(world, fake_ea):
    connect_ea(world.acme, fake_ea)
    with pytest.raises(EasyAppointmentsRefused) as raised:
        client_of(world.acme).customer(999)
    assert raised.value.status == 404


def test_a_tenant_typed_http_url_is_never_requested(world, fake_ea):
    connect_ea(world.acme, fake_ea, by_operator=False)
    with pytest.raises(PermanentSyncError, match="the Easy!Appointments URL is refused"):
        client_of(world.acme).services()
    assert fake_ea.requests == []


def test_not_connected(world, fake_ea):
    with pytest.raises(NotConnected):
        EasyAppointmentsClient("", "", "")
