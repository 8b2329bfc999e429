"""Issue 10's Easy!Appointments admin endpoints against the local fake E!A (``fake_api``), the local
fake Claude (``reports.fake_claude``) and a fake Brevo (``responses``, with the fake E!A passed
through): two tenants whose installations hold look-alike data (the same ids, names and times, other
e-mails); acme reads with an API token, globex with an admin user. Who may call them: owners and
admins (members 403, another tenant's token 403), staff naming the tenant with the right permissions.
"""

import json
import re

import pytest
import responses

from conftest import api_auth, make_staff, make_user
from contacts.models import Contact, PendingSignup
from integrations.providers.easyappointments.testing import USERS, connect_ea, fake_ea  # noqa: F401
from reports.fake_claude import FakeClaude
from tenants.context import tenant_context
from tenants.models import Membership
from webhooks.testing import connect

BASE = "/api/admin/easyappointments"
STATS = f"{BASE}/booking-stats"
INSIGHTS = f"{BASE}/insights"
QUEUE = f"{BASE}/add-bookers-to-queue"
EMAIL = f"{BASE}/sync-to-email-list"
RANGE = "date_from=2026-12-01&date_to=2026-12-05"
BREVO = "https://brevo.fake/v3"
BREVO_KEYS = {"acme": "xkeysib-acme-bookings-0123456789abcdef", "globex": "xkeysib-globex-bookings-0123456789ab"}

ACME_STATS = {
    "date_from": "2026-12-01", "date_to": "2026-12-05", "total_bookings": 6, "unique_customers": 3,
    "by_status": {"Booked": 3, "Confirmed": 1, "Cancelled": 1, "unspecified": 1},
    "by_service": {"Initial consultation": 3, "Follow-up": 3},
    "by_provider": {"Dana Kim": 3, "Sam Ortiz": 3},
    "by_weekday": {"Monday": 0, "Tuesday": 2, "Wednesday": 1, "Thursday": 1, "Friday": 1, "Saturday": 1, "Sunday": 0},
    "by_hour": {**{f"{h:02d}": 0 for h in range(24)}, "09": 3, "10": 1, "14": 1, "16": 1},
}


def bearer(user) -> dict:
    return api_auth(user)


staff = make_staff


@pytest.fixture
def ea(world, fake_ea):
    """Both tenants connected; globex's installation has lost its Saturday booking."""
    connect_ea(world.acme, fake_ea)
    connect_ea(world.globex, fake_ea)
    fake_ea.by_slug["globex"].appointments.pop()
    with tenant_context(world.acme):
        admin = make_user("adele")
        Membership.objects.create(user=admin, role=Membership.Role.ADMIN)
    world.adele = admin
    return fake_ea


@pytest.fixture
def claude(settings):
    with FakeClaude(reply="Tuesdays at nine are the busiest.") as server:
        settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL = "sk-ant-test-bookings", server.base
        settings.ANTHROPIC_MODEL, settings.ANTHROPIC_TIMEOUT_SECONDS = "claude-test-model", 0.5
        yield server


def post(client, url, body, headers):
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


# --- who may call them --------------------------------------------------------------------------------


def test_owner_and_admin_get_their_own_tenants_stats(client, world, ea):
    for user in (world.alice, world.adele):
        response = client.get(f"{STATS}?{RANGE}", **bearer(user))
        assert response.status_code == 200, response.content
        assert response.json() == ACME_STATS
    globex = client.get(f"{STATS}?{RANGE}", **bearer(world.dana)).json()
    assert globex["total_bookings"] == 5 and globex["by_weekday"]["Saturday"] == 0
    assert [(r["auth"], r["ok"]) for r in ea.requests if r["path"].endswith("/appointments")] == [
        ("bearer", True), ("bearer", True), ("basic", True)]


@pytest.mark.parametrize("url", [STATS, INSIGHTS])
def test_a_member_an_outsider_and_nobody_are_refused_reads(client, world, ea, url):
    assert client.get(f"{url}?{RANGE}").status_code == 401
    member = client.get(f"{url}?{RANGE}", **bearer(world.bob))
    assert member.status_code == 403 and member.json()["detail"] == "Only the tenant's owners and admins may see this."
    assert client.get(f"{url}?{RANGE}&tenant=acme", **bearer(world.dana)).status_code == 403
    assert client.get(f"{url}?{RANGE}", **bearer(world.charlie)).status_code == 403
    assert ea.requests == []  # nobody refused reached E!A


@pytest.mark.parametrize("url", [QUEUE, EMAIL])
def test_a_member_and_an_outsider_are_refused_actions(client, world, ea, url):
    assert post(client, url, {}, bearer(world.bob)).status_code == 403
    assert post(client, f"{url}?tenant=acme", {}, bearer(world.dana)).status_code == 403
    assert ea.requests == []
    with tenant_context(world.acme):
        assert not PendingSignup.objects.filter(source="easyappointments").exists()


def test_staff_name_the_tenant_and_need_the_permissions(client, world, ea):
    viewer = staff("viewer", ["tenants.view_tenant", "integrations.view_tenantintegration"])
    assert client.get(f"{STATS}?{RANGE}", **bearer(viewer)).status_code == 403  # no tenant named
    assert client.get(f"{STATS}?{RANGE}&tenant=acme", **bearer(viewer)).json() == ACME_STATS
    assert client.get(f"{STATS}?{RANGE}&tenant=globex", **bearer(viewer)).json()["total_bookings"] == 5
    assert client.get(f"{STATS}?{RANGE}&tenant=acme", **bearer(staff("nobody"))).status_code == 403
    # The viewer may not change anything; an operator with the sign-ups' permissions may.
    assert post(client, f"{QUEUE}?tenant=acme", {"date_from": "2026-12-01", "date_to": "2026-12-05"},
                bearer(viewer)).status_code == 403
    operator = staff("operator", ["tenants.view_tenant", "contacts.view_pendingsignup", "contacts.change_pendingsignup"])
    assert post(client, QUEUE, {}, bearer(operator)).status_code == 403
    answer = post(client, f"{QUEUE}?tenant=acme", {"date_from": "2026-12-01", "date_to": "2026-12-05"}, bearer(operator))
    assert answer.json() == {"added": 3, "already_queued": 0, "skipped": 0, "approved": 0}


# --- bad input, not connected, E!A failing ----------------------------------------------------------------


@pytest.mark.parametrize("query, field, reason", [
    ("date_from=2026-13-01&date_to=2026-12-05", "date_from", "date_from must be a date as YYYY-MM-DD; '2026-13-01'"),
    ("date_from=12/01/2026&date_to=2026-12-05", "date_from", "date_from must be a date as YYYY-MM-DD; '12/01/2026'"),
    ("date_from=2026-12-1&date_to=2026-12-05", "date_from", "date_from must be a date as YYYY-MM-DD."),
    ("date_from=2026-12-05&date_to=2026-12-01", "date_to", "date_to (2026-12-01) is before date_from (2026-12-05)."),
    ("date_from=2025-11-30&date_to=2026-12-01", "date_to", "The range is 367 days; at most 366."),
    (f"{RANGE}&analysis_type=horoscope", "analysis_type", "analysis_type must be one of: overview, demographics"),
    # Days no arithmetic reaches: 30 days before 0001-01-01 would overflow (was a 500).
    ("date_to=0001-01-01", "date_to", "date_to must be between 1970-01-01 and 2999-12-31"),
    ("date_from=2026-12-01&date_to=9999-12-31", "date_to", "date_to must be between 1970-01-01 and 2999-12-31"),
])
def test_bad_dates_ranges_and_types_are_400_with_the_reason(client, world, ea, query, field, reason):
    url = INSIGHTS if "analysis_type" in query else STATS
    response = client.get(f"{url}?{query}", **bearer(world.alice))
    assert response.status_code == 400 and response.json()["field"] == field
    assert response.json()["reason"].startswith(reason), response.json()
    body = {k: v for k, v in (pair.split("=") for pair in query.split("&")) if k.startswith("date")}
    if field != "analysis_type":
        answer = post(client, QUEUE, body, bearer(world.alice))
        assert answer.status_code == 400 and answer.json()["reason"].startswith(reason)
    assert ea.requests == []


def test_366_days_are_fine_and_no_dates_mean_the_last_30(client, world, ea):
    assert client.get(f"{STATS}?date_from=2025-12-01&date_to=2026-12-01", **bearer(world.alice)).status_code == 200
    body = client.get(STATS, **bearer(world.alice)).json()
    from datetime import date

    assert (date.fromisoformat(body["date_to"]) - date.fromisoformat(body["date_from"])).days == 29


@pytest.mark.parametrize("body, field", [({"auto_invite": "yes"}, "auto_invite"), ({"status_filter": 7}, "status_filter"),
                                         ({"list_id": "seven"}, "list_id")])
def test_bad_bodies_are_400(client, world, ea, body, field):
    connect(world.acme, "brevo", api_key=BREVO_KEYS["acme"], list_id="7")
    url = EMAIL if field == "list_id" else QUEUE
    response = post(client, url, body, bearer(world.alice))
    assert response.status_code == 400 and response.json()["field"] == field


def test_not_connected_is_409_with_the_reason(client, world, fake_ea):
    connect_ea(world.acme, fake_ea)
    response = client.get(f"{STATS}?{RANGE}", **bearer(world.dana))
    assert response.status_code == 409
    assert response.json() == {"reason": "Easy!Appointments is not connected for this tenant: connect it on its setup "
                                          "page first."}
    connect(world.globex, "easyappointments", "ea-webhook-only-0123456789", url="https://booking.example.com")
    response = post(client, QUEUE, {}, bearer(world.dana))
    assert response.status_code == 409 and "connected for webhooks only" in response.json()["reason"]
    # sync-to-email-list also needs Brevo.
    response = post(client, EMAIL, {}, bearer(world.alice))
    assert response.status_code == 409 and response.json()["reason"].startswith("Brevo is not connected")


def test_ea_refusing_is_502_with_the_reason_and_no_secret(client, world, ea):
    ea.by_slug["globex"].users = {}
    response = client.get(f"{STATS}?{RANGE}", **bearer(world.dana))
    assert response.status_code == 502
    assert response.json()["reason"].startswith("Easy!Appointments refused the API user name or password (401")
    assert USERS["globex"][1] not in response.content.decode()
    ea.fail("/appointments", status=429, headers={"Retry-After": "9"})
    response = client.get(f"{STATS}?{RANGE}", **bearer(world.alice))
    assert response.status_code == 502 and "429" in response.json()["reason"]


# --- insights ------------------------------------------------------------------------------------------------


def test_insights_by_claude_from_aggregates_only(client, world, ea, claude):
    response = client.get(f"{INSIGHTS}?{RANGE}&analysis_type=patterns", **bearer(world.alice))
    assert response.status_code == 200, response.content
    assert response.json() == {"analysis_type": "patterns", "date_from": "2026-12-01", "date_to": "2026-12-05",
                               "stats": ACME_STATS, "insights": "Tuesdays at nine are the busiest.",
                               "model": "claude-test-model"}
    (body,) = claude.bodies
    (message,) = body["messages"]
    sent = json.loads(message["content"])
    assert sent["analysis_type"] == "patterns" and sent["by_provider"] == {"Provider 1": 3, "Provider 2": 3}
    assert {k: sent[k] for k in ("total_bookings", "unique_customers", "by_status", "by_weekday", "by_hour")} == {
        k: ACME_STATS[k] for k in ("total_bookings", "unique_customers", "by_status", "by_weekday", "by_hour")}
    everything = json.dumps(body)
    for person in ea.by_slug["acme"].customers + ea.by_slug["acme"].providers:
        for value in (person.get("firstName"), person.get("lastName"), person.get("email"), person.get("phone")):
            if value:
                assert value not in everything, value
    assert "@" not in everything and not re.search(r"\+44", everything)
    assert "when people book" in body["system"]


@pytest.mark.parametrize("mode, reason", [("fail", "Claude failed (InternalServerError)"),
                                          ("slow", "Claude did not answer in time")])
def test_claude_failing_is_502_with_the_stats(client, world, ea, claude, mode, reason):
    claude.mode = mode
    response = client.get(f"{INSIGHTS}?{RANGE}", **bearer(world.alice))
    assert response.status_code == 502
    assert response.json() == {"status": "failed", "reason": reason, "analysis_type": "overview",
                               "date_from": "2026-12-01", "date_to": "2026-12-05", "stats": ACME_STATS}
    assert claude.bodies


def test_no_anthropic_key_is_503(client, world, ea, settings):
    settings.ANTHROPIC_API_KEY = ""
    response = client.get(f"{INSIGHTS}?{RANGE}", **bearer(world.alice))
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable",
                               "reason": "Insights need ANTHROPIC_API_KEY, which this installation does not set."}


# --- the sign-up queue ---------------------------------------------------------------------------------------


def queued(tenant):
    with tenant_context(tenant):
        return sorted((s.contact.email, s.status, s.external_id) for s in
                      PendingSignup.objects.filter(source="easyappointments").select_related("contact"))


def test_bookers_become_contacts_and_one_sign_up_each_idempotently(client, world, ea):
    ea.by_slug["acme"].customers[2]["email"] = ""  # Robin has no e-mail in acme's E!A
    body = {"date_from": "2026-12-01", "date_to": "2026-12-05"}
    assert post(client, QUEUE, body, bearer(world.alice)).json() == {"added": 2, "already_queued": 0, "skipped": 1,
                                                                     "approved": 0}
    assert post(client, QUEUE, body, bearer(world.adele)).json() == {"added": 0, "already_queued": 2, "skipped": 1,
                                                                     "approved": 0}
    assert queued(world.acme) == [("casey.morgan@acme.example", "pending", "customer:2"),
                                  ("jordan.blake@acme.example", "pending", "customer:1")]
    with tenant_context(world.acme):
        jordan = Contact.objects.get(email="jordan.blake@acme.example")
        assert (jordan.source, jordan.first_name, jordan.phone) == ("easyappointments", "Jordan", "+441632960001")
    assert queued(world.globex) == []
    assert post(client, QUEUE, body, bearer(world.dana)).json()["added"] == 3
    assert [e for e, *_ in queued(world.globex)] == ["casey.morgan@globex.example", "jordan.blake@globex.example",
                                                     "robin.lee@globex.example"]


def test_status_filter_and_auto_invite(client, world, ea):
    body = {"date_from": "2026-12-01", "date_to": "2026-12-05", "status_filter": "CANCELLED", "auto_invite": True}
    assert post(client, QUEUE, body, bearer(world.alice)).json() == {"added": 1, "already_queued": 0, "skipped": 0,
                                                                     "approved": 1}
    assert queued(world.acme) == [("robin.lee@acme.example", "approved", "customer:3")]
    with tenant_context(world.acme):
        assert PendingSignup.objects.get(external_id="customer:3").decided_by == world.alice
    body["status_filter"] = "all"
    assert post(client, QUEUE, body, bearer(world.alice)).json() == {"added": 2, "already_queued": 1, "skipped": 0,
                                                                     "approved": 2}


# --- the Brevo list ----------------------------------------------------------------------------------------------


@pytest.fixture
def brevo(settings, ea):
    settings.BREVO_API_BASE = BREVO
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        fake.add_passthru(ea.url)
        yield fake


def upserts(fake):
    return [(c.request.headers["api-key"], json.loads(c.request.body)) for c in fake.calls
            if c.request.url == f"{BREVO}/contacts"]


def test_bookers_go_into_the_tenants_brevo_list_with_its_key(client, world, brevo):
    connect(world.acme, "brevo", api_key=BREVO_KEYS["acme"], list_id="7")
    brevo.add(responses.POST, f"{BREVO}/contacts", status=429, headers={"x-sib-ratelimit-reset": "1"})
    brevo.add(responses.POST, f"{BREVO}/contacts", status=201, json={"id": 1})
    answer = post(client, EMAIL, {"date_from": "2026-12-01", "date_to": "2026-12-05"}, bearer(world.alice))
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"synced": 3, "failed": 0, "list_id": 7}
    sent = upserts(brevo)
    assert len(sent) == 4  # the 429, then each of the three
    assert {key for key, _ in sent} == {BREVO_KEYS["acme"]}
    assert sorted({b["email"] for _, b in sent}) == ["casey.morgan@acme.example", "jordan.blake@acme.example",
                                                      "robin.lee@acme.example"]
    assert all(b["listIds"] == [7] and b["updateEnabled"] for _, b in sent)
    assert BREVO_KEYS["acme"] not in answer.content.decode()


def test_a_named_list_and_a_refusal(client, world, brevo, settings):
    settings.BREVO_BATCH_SIZE = 2
    connect(world.globex, "brevo", api_key=BREVO_KEYS["globex"], list_id="9")
    brevo.add(responses.POST, f"{BREVO}/contacts", status=400, json={"code": "invalid_parameter", "message": "bad"})
    brevo.add(responses.POST, f"{BREVO}/contacts", status=201, json={"id": 1})
    answer = post(client, EMAIL, {"date_from": "2026-12-01", "date_to": "2026-12-05", "list_id": 12}, bearer(world.dana))
    assert answer.json() == {"synced": 2, "failed": 1, "list_id": 12}
    assert {b["email"].split("@")[1] for _, b in upserts(brevo)} == {"globex.example"}
    assert {key for key, _ in upserts(brevo)} == {BREVO_KEYS["globex"]}


def test_admin_and_staff_on_insights_and_the_email_list(client, world, brevo, claude):
    connect(world.acme, "brevo", api_key=BREVO_KEYS["acme"], list_id="7")
    brevo.add(responses.POST, f"{BREVO}/contacts", status=201, json={"id": 1})
    body = {"date_from": "2026-12-01", "date_to": "2026-12-05"}
    assert client.get(f"{INSIGHTS}?{RANGE}", **bearer(world.adele)).json()["insights"] == "Tuesdays at nine are the busiest."
    assert post(client, EMAIL, body, bearer(world.adele)).json() == {"synced": 3, "failed": 0, "list_id": 7}
    viewer = staff("viewer", ["tenants.view_tenant", "integrations.view_tenantintegration"])
    assert client.get(f"{INSIGHTS}?{RANGE}&tenant=acme", **bearer(viewer)).json()["stats"] == ACME_STATS
    assert client.get(f"{INSIGHTS}?{RANGE}", **bearer(viewer)).status_code == 403
    assert post(client, f"{EMAIL}?tenant=acme", body, bearer(viewer)).status_code == 403
    lister = staff("lister", ["tenants.view_tenant", "contacts.view_contact", "contacts.change_contact"])
    assert post(client, EMAIL, body, bearer(lister)).status_code == 403  # no tenant named
    assert post(client, f"{EMAIL}?tenant=acme", body, bearer(lister)).json()["synced"] == 3
    assert {key for key, _ in upserts(brevo)} == {BREVO_KEYS["acme"]}
