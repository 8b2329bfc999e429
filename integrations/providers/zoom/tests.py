import json
import time
from datetime import timedelta

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


class TestZoom(SignedBodyTests, SignedTimestampTests, WebhookSecuritySuite):
    source = "zoom"
    valid_fixture = "meeting_registration_created"
    secret_a = "zoom-secret-token-acme-0123456789"
    secret_b = "zoom-secret-token-globex-987654321"

    def sign(self, body, secret, timestamp=None):
        return {"headers": zoom_headers(body, secret, timestamp)}

    def deliver(self, name, tenant=None):
        tenant = tenant or self.world.acme
        response = self.post_signed(tenant, fixture_bytes("zoom", name))
        assert response.status_code == 200, response.content
        return response

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
            signup = PendingSignup.objects.get(source="zoom", external_id="abcdefghij0-klmnopq23456")
            assert signup.status == "pending"
            assert signup.metadata["meeting_id"] == 85746065432
            assert signup.metadata["topic"] == "Spring Gala: speaker briefing"
            contact = signup.contact
            assert (contact.email, contact.first_name, contact.last_name) == ("jill.chill@example.com", "Jill", "Chill")
            assert contact.phone == "+16505550100" and contact.source == "zoom"
        with tenant_context(self.world.globex):
            assert not Contact.objects.filter(email="jill.chill@example.com").exists()
            assert not PendingSignup.objects.filter(external_id="abcdefghij0-klmnopq23456").exists()

    def test_webinar_registration_created_fills_in_the_tenants_own_contact(self, hooks):
        """pat@example.com exists at both tenants: only acme's Pat learns a last name."""
        self.deliver("webinar_registration_created")
        with tenant_context(self.world.acme):
            (pat,) = Contact.objects.filter(email="pat@example.com")
            assert (pat.first_name, pat.last_name, pat.source) == ("Pat", "Morgan", "manychat")
            signup = PendingSignup.objects.get(source="zoom", external_id="wbr-7Qz2LmN4pR8sT1uV")
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

    def test_registration_without_email_fails_visibly_and_writes_nothing(self, hooks):
        body = fixture_bytes("zoom", "meeting_registration_created").replace(b'"Jill.Chill@example.com"', b'""')
        before = self.contacts_and_signups()
        assert self.post_signed(self.world.acme, body).status_code == 200  # stored: the sender is not to blame
        (row,) = rows(self.world.acme, source="zoom")
        assert row.status == WebhookLog.Status.FAILED and "has no e-mail" in row.error
        assert self.contacts_and_signups() == before

    def test_oddly_shaped_bodies_are_stored_not_crashed_on(self, hooks):
        odd = b'{"event": "meeting.started", "event_ts": 1763803456789, "payload": "not an object"}'
        no_token = b'{"event": "endpoint.url_validation", "event_ts": 1763800000000, "payload": {}}'
        for body in (odd, no_token):
            response = self.post_signed(self.world.acme, body)
            assert response.status_code == 200 and "encryptedToken" not in response.json()
        assert [(r.event_type, r.status) for r in rows(self.world.acme, source="zoom")] == [
            ("meeting.started", "ignored"), ("endpoint.url_validation", "ignored")]
