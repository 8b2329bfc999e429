import json
from decimal import Decimal

import pytest
import responses
from responses import matchers

from contacts.models import Contact, Payment, PendingSignup
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import (
    PROVIDERS_DIR,
    WebhookSecuritySuite,
    connect,
    fixture_bytes,
    fixture_names,
    rows,
    webhook_path,
)

API = "https://www.eventbriteapi.com/v3"
ORDER_URL = f"{API}/orders/2091828963/"
ATTENDEE_URL = f"{API}/events/717926867587/attendees/2915364963/"
PRIVATE_TOKENS = {"acme": "EB-PRIVATE-ACME-0000000000", "globex": "EB-PRIVATE-GLOBEX-000000000"}


def api_fixture(name: str) -> dict:
    return json.loads((PROVIDERS_DIR / "eventbrite" / "fixtures" / "api" / f"{name}.json").read_text())


def delivery(action: str, api_url) -> bytes:
    return json.dumps({"config": {"action": action, "user_id": "192837465012", "webhook_id": "11894523"},
                       "api_url": api_url}).encode()


class TestEventbrite(WebhookSecuritySuite):
    source = "eventbrite"
    valid_fixture = "order_placed"

    def sign(self, body, secret, timestamp=None):
        return {"query": {"token": secret}}

    def connect_tenant(self, tenant, secret):
        return connect(tenant, "eventbrite", secret, private_token=PRIVATE_TOKENS[tenant.slug])

    @pytest.fixture(autouse=True)
    def api(self, settings):
        """A local fake of the Eventbrite API; an unregistered URL raises instead of going out."""
        settings.EVENTBRITE_API_BASE = API
        with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
            fake.get(ORDER_URL, json=api_fixture("order"), match=[matchers.query_param_matcher({"expand": "attendees"})])
            fake.get(ATTENDEE_URL, json=api_fixture("attendee"))
            self.api = fake
            yield fake

    def test_a_retry_of_attendee_updated_is_not_processed_twice(self, hooks):
        """Without Eventbrite's delivery id the same body may be a retry or a new change: both are
        stored and fetched, and the fetched ``changed`` tells them apart."""
        self.deliver("attendee_updated")
        self.deliver("attendee_updated")  # a retry: Eventbrite answers the same change
        updated = api_fixture("attendee") | {"changed": "2025-12-06T09:00:00Z", "status": "Attending"}
        self.api.replace(responses.GET, ATTENDEE_URL, json=updated)
        self.deliver("attendee_updated")  # a new change behind the very same body
        assert [r.status for r in rows(self.world.acme, source="eventbrite")] == ["processed"] * 3
        assert len(self.api.calls) == 3
        activity = self.contact(self.world.acme, "taylor.brooks@example.com").activity
        assert [(e["kind"], e["status"]) for e in activity] == [
            ("attendee_updated", "Checked In"), ("attendee_updated", "Attending")]

    def test_a_retry_of_order_updated_is_not_processed_twice(self, hooks):
        self.deliver("order_placed")
        self.deliver("order_updated")
        with tenant_context(self.world.acme):  # the tenant handles the queue meanwhile
            PendingSignup.objects.filter(source="eventbrite").update(status="approved")
            Contact.objects.filter(email="quinn.ortiz@example.com").update(phone="+15035550000")
        self.deliver("order_updated")  # the retry: same `changed`, nothing is written again
        assert self.contact(self.world.acme, "quinn.ortiz@example.com").phone == "+15035550000"
        buyer = self.contact(self.world.acme, "taylor.brooks@example.com")
        assert [e["key"] for e in buyer.activity] == ["eventbrite:order:2091828963:2025-11-21T16:20:11Z"]
        assert self.contact(self.world.globex, "taylor.brooks@example.com") is None

    def deliver(self, name_or_body, tenant=None, headers=None):
        tenant = tenant or self.world.acme
        body = name_or_body if isinstance(name_or_body, bytes) else fixture_bytes("eventbrite", name_or_body)
        signed = {**self.sign(body, self.secret_a if tenant == self.world.acme else self.secret_b), "headers": headers or {}}
        response = self.post(tenant, body, signed)
        assert response.status_code == 200, response.content

    def signups(self, tenant):
        with tenant_context(tenant):
            return {s.external_id: (s.contact.email, s.metadata) for s in PendingSignup.objects.filter(source="eventbrite")}

    def contact(self, tenant, email):
        with tenant_context(tenant):
            return Contact.objects.filter(email=email).first()

    def test_every_fixture_is_accepted(self, hooks):
        for name in fixture_names("eventbrite"):
            self.deliver(name)
        statuses = {r.event_type: r.status for r in rows(self.world.acme, source="eventbrite")}
        assert statuses == {"order.placed": "processed", "order.updated": "processed", "order.refunded": "processed",
                            "attendee.updated": "processed", "attendee.checked_in": "processed",
                            "attendee.checked_out": "processed"}

    def test_order_placed(self, hooks):
        """Each ticket holder: a contact and a sign-up keyed on the attendee; the cancelled one: none."""
        self.deliver("order_placed")
        (row,) = rows(self.world.acme, source="eventbrite")
        assert row.event_id == f"order.placed:{ORDER_URL}"
        assert self.signups(self.world.acme) == {
            "2915364963": ("taylor.brooks@example.com",
                           {"order_id": "2091828963", "event_id": "717926867587", "ticket_class": "General Admission"}),
            "2915364964": ("quinn.ortiz@example.com",
                           {"order_id": "2091828963", "event_id": "717926867587", "ticket_class": "VIP"}),
        }
        taylor = self.contact(self.world.acme, "taylor.brooks@example.com")
        assert (taylor.first_name, taylor.last_name, taylor.phone, taylor.source) == ("Taylor", "Brooks", "+15035550101", "eventbrite")
        assert self.contact(self.world.acme, "rowan.hale@example.com") is None
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(source="eventbrite")
            assert (payment.payment_event_id, payment.amount, payment.currency, payment.status) == (
                "order:2091828963", Decimal("54.99"), "USD", "succeeded")
            assert payment.contact.email == "taylor.brooks@example.com"
        assert self.signups(self.world.globex) == {}
        assert self.contact(self.world.globex, "taylor.brooks@example.com") is None
        (call,) = self.api.calls
        assert call.request.url == f"{ORDER_URL}?expand=attendees"

    def test_each_tenant_fetches_with_its_own_private_token(self, hooks):
        self.deliver("order_placed", tenant=self.world.acme)
        self.deliver("order_placed", tenant=self.world.globex)
        assert [c.request.headers["Authorization"] for c in self.api.calls] == [
            f"Bearer {PRIVATE_TOKENS['acme']}", f"Bearer {PRIVATE_TOKENS['globex']}"]
        assert set(self.signups(self.world.globex)) == {"2915364963", "2915364964"}

    def test_order_updated(self, hooks):
        """Fetched afresh: a changed buyer detail fills in; the sign-ups are not doubled."""
        self.deliver("order_placed")
        changed = api_fixture("order")
        changed["attendees"][1]["profile"]["cell_phone"] = "+15035550199"
        self.api.replace(responses.GET, ORDER_URL, json=changed)
        self.deliver("order_updated")
        assert set(self.signups(self.world.acme)) == {"2915364963", "2915364964"}
        assert self.contact(self.world.acme, "quinn.ortiz@example.com").phone == "+15035550199"
        with tenant_context(self.world.globex):
            assert not PendingSignup.objects.filter(source="eventbrite").exists()

    def test_order_without_attendees_signs_up_the_buyer(self, hooks):
        bare = {**api_fixture("order"), "attendees": []}
        self.api.replace(responses.GET, ORDER_URL, json=bare)
        self.deliver("order_placed")
        assert self.signups(self.world.acme) == {
            "2091828963": ("taylor.brooks@example.com", {"order_id": "2091828963", "event_id": "717926867587"})}

    def test_attendee_updated(self, hooks):
        self.deliver("attendee_updated", tenant=self.world.globex)
        contact = self.contact(self.world.globex, "taylor.brooks@example.com")
        assert (contact.last_name, contact.phone) == ("Brooks-Lane", "+15035550102")
        (entry,) = contact.activity
        assert (entry["kind"], entry["attendee_id"], entry["status"]) == ("attendee_updated", "2915364963", "Checked In")
        assert entry["key"] == "eventbrite:2915364963:2025-12-05T18:03:27Z"
        assert self.contact(self.world.acme, "taylor.brooks@example.com") is None
        assert self.api.calls[0].request.headers["Authorization"] == f"Bearer {PRIVATE_TOKENS['globex']}"

    def test_attendee_checked_in(self, hooks):
        """One check-in line per attendee, even when Eventbrite delivers it again under a new id."""
        self.deliver("attendee_checked_in", headers={"X-Eventbrite-Delivery": "dlv-1"})
        self.deliver("attendee_checked_in", headers={"X-Eventbrite-Delivery": "dlv-2"})
        assert [r.event_id for r in rows(self.world.acme, source="eventbrite")] == ["dlv-1", "dlv-2"]
        contact = self.contact(self.world.acme, "taylor.brooks@example.com")
        assert [(e["kind"], e["event_id"], e["order_id"]) for e in contact.activity] == [
            ("checked_in", "717926867587", "2091828963")]
        assert self.contact(self.world.globex, "taylor.brooks@example.com") is None

    def test_a_token_in_a_header_only_is_rejected(self, hooks):
        response = self.post(self.world.acme, self.body(), {"headers": {"X-Webhook-Token": self.secret_a}})
        assert response.status_code == 401
        (row,) = rows(self.world.acme, source="eventbrite")
        assert row.status == WebhookLog.Status.REJECTED and row.error == "no token in the request"
        assert len(self.api.calls) == 0

    @pytest.mark.parametrize("api_url", [  # the full list is in test_client.py
        "https://evil.example/v3/orders/1/",
        "https://www.eventbriteapi.com@169.254.169.254/v3/orders/1/",
        "https://www.eventbriteapi.com/v3/../internal/",
        42,
    ])
    def test_a_url_outside_the_eventbrite_api_is_never_fetched(self, hooks, api_url):
        self.deliver(delivery("order.placed", api_url))
        (row,) = rows(self.world.acme, source="eventbrite")
        # No retry can make the URL safe: dead at once (issue 7.9), with the reason.
        assert (row.status, row.attempts) == (WebhookLog.Status.DEAD, 1)
        assert row.error.startswith("refusing to fetch api_url")
        assert len(self.api.calls) == 0
        assert self.signups(self.world.acme) == {}

    def test_a_429_fails_the_row_as_rate_limited_for_a_retry(self, hooks):
        self.api.replace(responses.GET, ORDER_URL, status=429, headers={"Retry-After": "30"})
        self.deliver("order_placed")
        (row,) = rows(self.world.acme, source="eventbrite")
        assert row.status == WebhookLog.Status.FAILED and row.processed_at is None
        assert row.error == "the platform is rate-limiting us; retrying after 30 s"
        assert self.signups(self.world.acme) == {}

    def test_nothing_is_ever_answered_410(self, hooks):
        """Eventbrite deletes a webhook answered 410: garbage, unknown, unauthorised, or an object
        Eventbrite itself says is gone must all get some other answer."""
        acme, body, token = self.world.acme, self.body(), {"query": {"token": self.secret_a}}
        path = webhook_path(acme, "eventbrite") + f"?token={self.secret_a}"
        self.api.replace(responses.GET, ORDER_URL, status=410)
        answers = {
            "garbage": self.post(acme, b"\x00garbage", token).status_code,
            "not an object": self.post(acme, b"[]", token).status_code,
            "unknown action": self.post(acme, delivery("no.such.action", None), token).status_code,
            "test ping": self.post(acme, delivery("test", "https://www.eventbriteapi.com/v3/"), token).status_code,
            "object gone at Eventbrite": self.post(acme, body, token).status_code,
            "no token": self.post(acme, body).status_code,
            "wrong token": self.post(acme, body, {"query": {"token": "nope"}}).status_code,
            "unknown tenant": self.post(acme, body, token, path="/api/webhooks/no-such/eventbrite/").status_code,
            "xml": self.post(acme, b"<x/>", token, content_type="application/xml").status_code,
            "put": self.client.put(path, data=body, content_type="application/json").status_code,
            "delete": self.client.delete(path).status_code,
        }
        assert 410 not in answers.values(), answers
        gone = [r for r in rows(acme, source="eventbrite") if r.event_type == "order.placed"]
        assert [(r.status, r.error) for r in gone] == [("failed", "Eventbrite answered 410 to GET /v3/orders/2091828963/")]

    def test_the_url_token_is_not_stored_in_the_body(self, hooks):
        body = json.dumps({"config": {"action": "order.placed", "webhook_id": "11894523",
                                      "endpoint_url": f"https://hub.example/x/?token={self.secret_a}"},
                           "api_url": ORDER_URL}).encode()
        self.deliver(body)
        (row,) = rows(self.world.acme, source="eventbrite")
        assert self.secret_a.encode() not in bytes(row.body)

    # --- refunds and check-outs ----------------------------------------------------------------
    def test_order_refunded(self, hooks):
        """The payment refunded, every sign-up of the order out of the queue; globex's look-alike
        order is untouched."""
        for tenant in (self.world.acme, self.world.globex):
            self.deliver("order_placed", tenant=tenant)
        self.api.replace(responses.GET, ORDER_URL, json=api_fixture("order_refunded"),
                         match=[matchers.query_param_matcher({"expand": "attendees"})])
        self.deliver("order_refunded")
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(source="eventbrite")
            assert (payment.status, payment.amount_refunded) == ("refunded", Decimal("54.99"))
            signups = dict(PendingSignup.objects.filter(source="eventbrite").values_list("external_id", "status"))
            decided = set(PendingSignup.objects.filter(source="eventbrite").values_list("decided_at", flat=True))
        assert signups == {"2915364963": "cancelled", "2915364964": "cancelled", "2915364965": "cancelled"}
        assert {d.isoformat() for d in decided} == {"2025-12-03T10:15:00+00:00"}
        with tenant_context(self.world.globex):
            assert Payment.objects.get(source="eventbrite").status == "succeeded"
            assert set(PendingSignup.objects.filter(source="eventbrite").values_list("status", flat=True)) == {"pending"}

    def test_a_partly_refunded_order_refunds_what_the_attendees_paid(self, hooks):
        self.deliver("order_placed")
        partly = api_fixture("order_refunded") | {"status": "placed"}
        for attendee in partly["attendees"][1:]:
            attendee.update(refunded=False, cancelled=False, status="Attending")
        self.api.replace(responses.GET, ORDER_URL, json=partly)
        self.deliver("order_refunded")
        with tenant_context(self.world.acme):
            payment = Payment.objects.get(source="eventbrite")
            assert (payment.status, payment.amount_refunded) == ("partially_refunded", Decimal("27.50"))
        assert {k: v for k, v in self.statuses(self.world.acme).items()} == {
            "2915364963": "cancelled", "2915364964": "pending"}

    def statuses(self, tenant):
        with tenant_context(tenant):
            return dict(PendingSignup.objects.filter(source="eventbrite").values_list("external_id", "status"))

    def test_attendee_checked_out(self, hooks):
        self.api.replace(responses.GET, ATTENDEE_URL, json=api_fixture("attendee_checked_out"))
        self.deliver("attendee_checked_out")
        self.deliver("attendee_checked_out")  # a retry: one line
        contact = self.contact(self.world.acme, "taylor.brooks@example.com")
        assert [(e["kind"], e["attendee_id"], e["key"]) for e in contact.activity] == [
            ("checked_out", "2915364963", "eventbrite:2915364963:checked_out:2025-12-05T21:40:02Z")]
        assert self.contact(self.world.globex, "taylor.brooks@example.com") is None

    # --- odd but signed, or oddly answered (issue 7.21) --------------------------------------------
    @pytest.mark.parametrize("body, sentence", [
        (b'{"config": {"action": "order.placed"}}', "has no `api_url`"),
        (b'{"config": {"action": "order.placed"}, "api_url": {"url": 1}}', "`api_url` in the Eventbrite order.placed event is not text"),
    ])
    def test_odd_deliveries_are_malformed_with_a_sentence(self, hooks, body, sentence):
        """(A ``config`` that is not an object names no action: stored as ``ignored``, no handler.)"""
        self.deliver(body)
        (row,) = rows(self.world.acme, source="eventbrite")
        assert row.status == WebhookLog.Status.MALFORMED and sentence in row.error, row.error
        assert len(self.api.calls) == 0

    @pytest.mark.parametrize("change, sentence", [
        ({"costs": {"gross": {"currency": "USD", "value": "NaN"}}}, "`costs.gross.value` in what Eventbrite answered"),
        ({"costs": {"gross": {"currency": "USD", "value": 12.7}}}, "is not a whole number of minor units"),
        ({"costs": {"gross": {"currency": "DOLLARS", "value": 100}}}, "is not a three-letter ISO 4217 code"),
        ({"attendees": "all of them"}, "`attendees` in what Eventbrite answered for the order.placed delivery's api_url is not a list"),
        ({"email": "not an address"}, "is not an e-mail address"),
    ])
    def test_an_odd_answer_from_eventbrite_is_malformed_with_a_sentence(self, hooks, change, sentence):
        self.api.replace(responses.GET, ORDER_URL, json=api_fixture("order") | change)
        self.deliver("order_placed")
        (row,) = rows(self.world.acme, source="eventbrite")
        assert (row.status, row.attempts) == (WebhookLog.Status.MALFORMED, 1) and sentence in row.error, row.error
        assert self.signups(self.world.acme) == {}
