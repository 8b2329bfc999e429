import json
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest

from contacts.models import Contact, PendingSignup
from integrations.models import TenantIntegration
from integrations.providers.base import WebhookRequest, body_hash, hmac_sha256_hex
from integrations.registry import get_provider
from tenants.context import tenant_context
from webhooks.models import WebhookLog
from webhooks.testing import SignedBodyTests, SignedTimestampTests, WebhookSecuritySuite, fixture_bytes, rows


def zoom_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict:
    """What Zoom sends: the timestamp header and ``v0=`` + HMAC of ``v0:<ts>:<body>``."""
    t = str(int(time.time()) if timestamp is None else timestamp)
    return {"x-zm-request-timestamp": t, "x-zm-signature": "v0=" + hmac_sha256_hex(secret, f"v0:{t}:".encode() + body)}


MEETING_SIGNUP = "meeting:85746065432:abcdefghij0-klmnopq23456"
WEBINAR_SIGNUP = "webinar:98765432109:wbr-7Qz2LmN4pR8sT1uV"


class TestZoom(SignedBodyTests, SignedTimestampTests, WebhookSecuritySuite):
    source = "zoom"
    valid_fixture = "meeting_registration_created"
    secret_a = "zoom-secret-token-acme-0123456789"
    secret_b = "zoom-secret-token-globex-987654321"

    def sign(self, body, secret, timestamp=None):
        return {"headers": zoom_headers(body, secret, timestamp)}

    # --- the suite, where Zoom differs ---------------------------------------------------------
    def test_signature_headers_are_stored_redacted(self, hooks):
        """The signature is redacted; the timestamp is not a secret and is kept for forensics
        (the suite's generic check would demand every signed header value be hidden)."""
        body = self.body()
        headers = zoom_headers(body, self.secret_a)
        self.post(self.world.acme, body, {"headers": headers})
        (row,) = rows(self.world.acme, source="zoom")
        stored = json.dumps(row.headers)
        assert headers["x-zm-signature"] not in stored and self.secret_a not in stored
        assert row.headers["X-Zm-Signature"] == "[redacted]"
        assert row.headers["X-Zm-Request-Timestamp"] == headers["x-zm-request-timestamp"]

    # --- handshake -----------------------------------------------------------------------------
    def test_url_validation_is_answered_with_the_encrypted_token(self, hooks):
        response = self.post_signed(self.world.acme, fixture_bytes("zoom", "endpoint_url_validation"))
        assert response.status_code == 200
        assert response.json() == {
            "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
            "encryptedToken": hmac_sha256_hex(self.secret_a, b"qgg8vlvZRS6UYooatFL8Aw"),
        }
        assert rows(self.world.acme, source="zoom") == []  # a check, not an event

    def test_url_validation_with_a_wrong_signature_is_401(self, hooks):
        body = fixture_bytes("zoom", "endpoint_url_validation")
        for secret in (self.secret_b, "not-the-secret-token-000000000"):
            response = self.post_signed(self.world.acme, body, secret=secret)
            assert response.status_code == 401
            assert "encryptedToken" not in response.json()
        response = self.post(self.world.acme, body)  # unsigned
        assert response.status_code == 401 and "encryptedToken" not in response.json()

    def test_url_validation_during_a_rotation_uses_the_secret_that_signed(self, hooks):
        new = "zoom-secret-token-acme-rotated-000"
        with tenant_context(self.world.acme):
            integration = TenantIntegration.objects.get(provider="zoom")
            integration.set_webhook_secret(new, grace=timedelta(hours=1))
            integration.save()
        body = fixture_bytes("zoom", "endpoint_url_validation")
        for secret in (new, self.secret_a):
            answer = self.post_signed(self.world.acme, body, secret=secret).json()
            assert answer["encryptedToken"] == hmac_sha256_hex(secret, b"qgg8vlvZRS6UYooatFL8Aw")

    # --- timestamps --------------------------------------------------------------------------
    def test_missing_or_non_numeric_timestamp_is_rejected(self, hooks):
        body = self.body()
        good = zoom_headers(body, self.secret_a)
        missing = {"x-zm-signature": good["x-zm-signature"]}
        garbage = {**good, "x-zm-request-timestamp": "yesterday"}
        for headers in (missing, garbage):
            assert self.post(self.world.acme, body, {"headers": headers}).status_code == 401
        assert {r.error for r in rows(self.world.acme, source="zoom")} == {"no valid x-zm-request-timestamp header"}

    def test_timestamp_far_in_the_future_is_rejected(self, hooks):
        body = self.body()
        response = self.post(self.world.acme, body, self.sign(body, self.secret_a, timestamp=int(time.time()) + 3600))
        assert response.status_code == 401
        assert "future" in rows(self.world.acme, source="zoom")[0].error

    def test_timestamp_within_tolerance_is_accepted(self, hooks):
        body = self.body()
        response = self.post(self.world.acme, body, self.sign(body, self.secret_a, timestamp=int(time.time()) - 240))
        assert response.status_code == 200

    # --- one test per fixture ----------------------------------------------------------------
    def test_meeting_registration_created(self, hooks):
        self.deliver("meeting_registration_created")
        with tenant_context(self.world.acme):
            signup = PendingSignup.objects.get(source="zoom", external_id=MEETING_SIGNUP)
            assert signup.status == "pending"
            assert signup.metadata["meeting_id"] == 85746065432
            assert signup.metadata["topic"] == "Spring Gala: speaker briefing"
            contact = signup.contact
            assert (contact.email, contact.first_name, contact.last_name) == ("jill.chill@example.com", "Jill", "Chill")
            assert contact.phone == "+16505550100" and contact.source == "zoom"
        with tenant_context(self.world.globex):
            assert not Contact.objects.filter(email="jill.chill@example.com").exists()
            assert not PendingSignup.objects.filter(external_id=MEETING_SIGNUP).exists()

    def test_webinar_registration_created_fills_in_the_tenants_own_contact(self, hooks):
        """pat@example.com exists at both tenants: only acme's Pat learns a last name."""
        self.deliver("webinar_registration_created")
        with tenant_context(self.world.acme):
            (pat,) = Contact.objects.filter(email="pat@example.com")
            assert (pat.first_name, pat.last_name, pat.source) == ("Pat", "Morgan", "manychat")
            signup = PendingSignup.objects.get(source="zoom", external_id=WEBINAR_SIGNUP)
            assert signup.contact == pat
            assert signup.metadata["webinar_id"] == 98765432109
            assert signup.metadata["registrant_status"] == "pending"
        with tenant_context(self.world.globex):
            assert Contact.objects.get(email="pat@example.com").last_name == ""
            assert list(PendingSignup.objects.values_list("external_id", flat=True)) == ["reg-1"]

    def test_meeting_started_is_stored_as_ignored(self, hooks):
        self.deliver("meeting_started")
        (row,) = rows(self.world.acme, source="zoom")
        assert (row.status, row.error, row.event_type) == (WebhookLog.Status.IGNORED, "", "meeting.started")

    def test_meeting_participant_joined_is_stored_as_ignored(self, hooks):
        before = self.contacts_and_signups()
        self.deliver("meeting_participant_joined")
        (row,) = rows(self.world.acme, source="zoom")
        assert row.status == WebhookLog.Status.IGNORED and row.error == ""
        assert self.contacts_and_signups() == before

    def contacts_and_signups(self):
        with tenant_context(self.world.acme):
            return Contact.objects.count(), PendingSignup.objects.count()

    # --- the derived event id ------------------------------------------------------------------
    def test_two_registrants_of_one_meeting_in_the_same_millisecond_are_two_events(self, hooks):
        body = fixture_bytes("zoom", "meeting_registration_created")
        other = body.replace(b"abcdefghij0-klmnopq23456", b"zyxwvutsrq9-other000001").replace(
            b"Jill.Chill@example.com", b"kim@example.com")
        assert self.post_signed(self.world.acme, body).status_code == 200
        assert self.post_signed(self.world.acme, other).status_code == 200
        ids = [r.event_id for r in rows(self.world.acme, source="zoom")]
        assert ids == [
            "meeting.registration_created:1763801234567:85746065432:4444AAAiAAAAAiAAAiAAAA==:abcdefghij0-klmnopq23456",
            "meeting.registration_created:1763801234567:85746065432:4444AAAiAAAAAiAAAiAAAA==:zyxwvutsrq9-other000001",
        ]
        with tenant_context(self.world.acme):
            assert PendingSignup.objects.filter(source="zoom").exclude(external_id="reg-1").count() == 2

    def test_event_id_of_a_participant_and_without_event_ts(self):
        provider = get_provider("zoom")
        body = fixture_bytes("zoom", "meeting_participant_joined")
        request = WebhookRequest(body=body, headers={}, query={})
        assert provider.event_id(json.loads(body), request) == (
            "meeting.participant_joined:1763803500123:85746065432:4444AAAiAAAAAiAAAiAAAA==:8b29rgg4bb2yDgcjnZ0hjQ=="
        )
        payload = {"event": "meeting.started", "payload": {"object": {"id": 1}}}
        assert provider.event_id(payload, request) == body_hash(body)

    def test_registration_without_email_is_malformed_at_once_and_writes_nothing(self, hooks):
        body = fixture_bytes("zoom", "meeting_registration_created").replace(b'"Jill.Chill@example.com"', b'""')
        before = self.contacts_and_signups()
        assert self.post_signed(self.world.acme, body).status_code == 200  # stored: the sender is not to blame
        (row,) = rows(self.world.acme, source="zoom")
        assert (row.status, row.attempts) == (WebhookLog.Status.MALFORMED, 1)
        assert row.error == "`payload.object.registrant.email` in the Zoom meeting.registration_created event is empty"
        assert self.contacts_and_signups() == before

    # --- odd but signed (issue 7.21) -----------------------------------------------------------
    @pytest.mark.parametrize("change, sentence", [
        ({"registrant": "jill@example.com"}, "`payload.object.registrant` in the Zoom {event} event is not an object"),
        ({"registrant": None}, "`payload.object.registrant` in the Zoom {event} event is not an object"),
        ({"registrant": ["x"]}, "`payload.object.registrant` in the Zoom {event} event is not an object"),
        ({"id": {"nested": 1}}, "`payload.object.id` in the Zoom {event} event is not an id (text or a number)"),
        ({"registrant": {"id": "r1", "email": "not-an-address"}},
         "`payload.object.registrant.email` in the Zoom {event} event: the e-mail 'not-an-address' is not an e-mail address"),
        ({"registrant": {"id": "r" * 300, "email": "jill@example.com"}},
         "`payload.object.registrant.id` in the Zoom {event} event: the id is longer than 255 characters"),
    ])
    @pytest.mark.parametrize("event", ["meeting_registration_created", "webinar_registration_cancelled"])
    def test_odd_registrations_are_malformed_with_a_sentence(self, hooks, event, change, sentence):
        payload = json.loads(fixture_bytes("zoom", event))
        payload["payload"]["object"].update(change)
        before = self.contacts_and_signups()
        self.deliver(json.dumps(payload).encode())
        (row,) = rows(self.world.acme, source="zoom")
        assert (row.status, row.error) == ("malformed", sentence.format(event=payload["event"]))
        assert self.contacts_and_signups() == before

    def test_an_event_time_beyond_any_date_is_malformed(self, hooks):
        payload = json.loads(fixture_bytes("zoom", "meeting_registration_cancelled"))
        payload["event_ts"] = 2**63
        self.deliver(json.dumps(payload).encode())
        (row,) = rows(self.world.acme, source="zoom")
        assert row.status == "malformed" and row.error.startswith("`event_ts` in the Zoom")

    def test_nul_and_overlong_names_are_cleaned_and_fitted(self, hooks):
        payload = json.loads(fixture_bytes("zoom", "meeting_registration_created"))
        payload["payload"]["object"]["registrant"].update(first_name="Ji\u0000ll", last_name="C" * 400)
        self.deliver(json.dumps(payload).encode())  # the NUL arrives escaped, as JSON has it: \u0000
        contact = self.contact(self.world.acme, "jill.chill@example.com")
        assert contact.first_name == "Jill" and len(contact.last_name) == 150

    def test_oddly_shaped_bodies_are_stored_not_crashed_on(self, hooks):
        odd = b'{"event": "meeting.started", "event_ts": 1763803456789, "payload": "not an object"}'
        no_token = b'{"event": "endpoint.url_validation", "event_ts": 1763800000000, "payload": {}}'
        for body in (odd, no_token):
            response = self.post_signed(self.world.acme, body)
            assert response.status_code == 200 and "encryptedToken" not in response.json()
        assert [(r.event_type, r.status) for r in rows(self.world.acme, source="zoom")] == [
            ("meeting.started", "ignored"), ("endpoint.url_validation", "ignored")]

    # --- registrations settled on Zoom ---------------------------------------------------------
    def signup(self, tenant, key):
        with tenant_context(tenant):
            return PendingSignup.objects.select_related("contact").filter(source="zoom", external_id=key).first()

    def settled(self, fixture, key, status, when):
        """Deliver the same fixture to both tenants; each settles only its own sign-up."""
        self.deliver(self.created_of(fixture))
        self.deliver(fixture)
        signup = self.signup(self.world.acme, key)
        assert (signup.status, signup.decided_by_id) == (status, None)
        assert signup.decided_at == datetime.fromtimestamp(when / 1000, tz=dt_timezone.utc)
        assert self.signup(self.world.globex, key) is None
        self.deliver(self.created_of(fixture), tenant=self.world.globex)
        assert self.signup(self.world.globex, key).status == "pending"
        return signup

    @staticmethod
    def created_of(fixture):
        return fixture.split("_registration_")[0] + "_registration_created"

    def test_meeting_registration_cancelled(self, hooks):
        signup = self.settled("meeting_registration_cancelled", MEETING_SIGNUP, "cancelled", 1763890000123)
        assert signup.contact.email == "jill.chill@example.com"

    def test_meeting_registration_denied(self, hooks):
        self.settled("meeting_registration_denied", MEETING_SIGNUP, "denied", 1763890100456)

    def test_meeting_registration_approved(self, hooks):
        self.settled("meeting_registration_approved", MEETING_SIGNUP, "approved", 1763890200789)

    def test_webinar_registration_cancelled(self, hooks):
        self.settled("webinar_registration_cancelled", WEBINAR_SIGNUP, "cancelled", 1763890300000)

    def test_webinar_registration_denied(self, hooks):
        self.settled("webinar_registration_denied", WEBINAR_SIGNUP, "denied", 1763890400000)

    def test_webinar_registration_approved(self, hooks):
        self.settled("webinar_registration_approved", WEBINAR_SIGNUP, "approved", 1763890500000)

    def test_a_cancellation_before_the_registration_stays_cancelled(self, hooks):
        """Zoom does not promise order: the late "created" must not put it back in the queue."""
        self.deliver("meeting_registration_cancelled")
        self.deliver("meeting_registration_created")
        assert self.signup(self.world.acme, MEETING_SIGNUP).status == "cancelled"

    def test_approved_on_zoom_does_not_undo_the_tenants_dismissal(self, hooks):
        self.deliver("meeting_registration_created")
        with tenant_context(self.world.acme):
            PendingSignup.objects.filter(external_id=MEETING_SIGNUP).update(status="dismissed")
        self.deliver("meeting_registration_approved")
        assert self.signup(self.world.acme, MEETING_SIGNUP).status == "dismissed"
        self.deliver("meeting_registration_cancelled")
        assert self.signup(self.world.acme, MEETING_SIGNUP).status == "cancelled"

    def test_a_webinar_registrant_sharing_a_meetings_registrant_id_is_its_own_signup(self, hooks):
        meeting = fixture_bytes("zoom", "meeting_registration_created")
        webinar = fixture_bytes("zoom", "webinar_registration_created").replace(
            b"wbr-7Qz2LmN4pR8sT1uV", b"abcdefghij0-klmnopq23456")
        self.deliver(meeting)
        self.deliver(webinar)
        cancelled = fixture_bytes("zoom", "webinar_registration_cancelled").replace(
            b"wbr-7Qz2LmN4pR8sT1uV", b"abcdefghij0-klmnopq23456")
        self.deliver(cancelled)
        with tenant_context(self.world.acme):
            signups = dict(PendingSignup.objects.filter(source="zoom").values_list("external_id", "status"))
        assert signups == {
            "reg-1": "pending", MEETING_SIGNUP: "pending",
            "webinar:98765432109:abcdefghij0-klmnopq23456": "cancelled",
        }
