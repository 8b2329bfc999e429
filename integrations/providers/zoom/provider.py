"""Zoom: ``x-zm-signature: v0=<hex>``, HMAC-SHA256 of ``"v0:<x-zm-request-timestamp>:<raw body>"``
with the app's Secret Token; a timestamp more than 300 s away from our clock is refused, so a
captured delivery cannot be replayed later. Zoom signs its endpoint check (``endpoint.url_validation``)
the same way, and repeats it every 72 h; we answer it only after the signature held.

Zoom gives no event id: see ``event_id`` for the key we derive.
"""

import hmac
import time

from django.conf import settings

from integrations.http import call_json, make_session
from integrations.providers.base import (
    TEST_EVENT_TYPE,
    CredentialField,
    Provider,
    VerificationFailed,
    WebhookAuth,
    body_hash,
    hmac_sha256_hex,
)
from integrations.providers.zoom.handlers import EVENT_DOCS, HANDLERS, IGNORED_EVENTS
from integrations.providers.zoom.schemas import SCHEMAS

TOLERANCE_SECONDS = 300
URL_VALIDATION = "endpoint.url_validation"


def _dict(value) -> dict:
    """A verified body can still be oddly shaped: naming it must not fail (handlers may)."""
    return value if isinstance(value, dict) else {}


class ZoomProvider(Provider):
    name = "zoom"
    label = "Zoom"
    webhook_auth = WebhookAuth.SIGNATURE
    webhook_secret_label = "Secret token (Features → Event subscriptions)"
    docs_url = "https://developers.zoom.us/docs/api/webhooks/"
    credential_fields = (
        CredentialField("account_id", "Account ID", secret=False, help_text="Of the Server-to-Server OAuth app."),
        CredentialField("client_id", "Client ID", secret=False),
        CredentialField("client_secret", "Client secret"),
    )
    handlers = HANDLERS
    schemas = SCHEMAS
    ignored_events = IGNORED_EVENTS
    signature_headers = ("x-zm-signature",)
    event_docs = EVENT_DOCS

    def verify(self, request, integration):
        self.signing_secret(request, integration)

    def signing_secret(self, request, integration) -> str:
        """The tenant secret (current, or previous within its grace period) that signed this
        delivery; ``VerificationFailed`` when none did or the timestamp is out of tolerance.

        Every secret is compared, in constant time, before the answer is known, so the timing
        does not tell which one matched. The signature is checked before the age, so a stale
        reason is only ever given for a genuine (replayed or delayed) delivery."""
        signature = request.headers.get(self.signature_headers[0], "")
        timestamp = request.headers.get("x-zm-request-timestamp", "")
        if not signature:
            raise VerificationFailed("no x-zm-signature header")
        if not timestamp.isascii() or not timestamp.isdigit():
            raise VerificationFailed("no valid x-zm-request-timestamp header")
        secrets = self.verification_secrets(integration)
        if not secrets:
            raise VerificationFailed("no secret token is configured for this tenant")
        message = b"v0:" + timestamp.encode() + b":" + request.body
        matches = [
            hmac.compare_digest(signature.encode(), f"v0={hmac_sha256_hex(secret, message)}".encode())
            for secret in secrets
        ]
        if not any(matches):
            raise VerificationFailed("signature does not match")
        age = time.time() - int(timestamp)
        if age > TOLERANCE_SECONDS:
            raise VerificationFailed(f"signature timestamp is older than {TOLERANCE_SECONDS} s")
        if age < -TOLERANCE_SECONDS:
            raise VerificationFailed(f"signature timestamp is more than {TOLERANCE_SECONDS} s in the future")
        return secrets[matches.index(True)]

    def handshake(self, request, payload, integration):
        """Zoom's URL validation: ``encryptedToken`` is the plainToken's HMAC with the secret that
        signed the request (during a rotation, the one Zoom still holds)."""
        if payload.get("event") != URL_VALIDATION:
            return None
        plain_token = _dict(payload.get("payload")).get("plainToken")
        if not isinstance(plain_token, str) or not plain_token:
            return None  # stored as an unhandled event, where an operator can see it
        secret = self.signing_secret(request, integration)
        return {"plainToken": plain_token, "encryptedToken": hmac_sha256_hex(secret, plain_token.encode())}

    def event_type(self, payload, request):
        return str(payload.get("event") or "")

    def event_id(self, payload, request):
        """``<event>:<event_ts>:<object id>:<object uuid>:<registrant or participant>``.

        A retry repeats the body, so it repeats the key; two registrations for one meeting in the
        same millisecond still differ by the registrant. The participant part is its
        ``participant_uuid``, else ``id``/``user_id``, else its e-mail (Zoom fills them unevenly).
        Without ``event_ts`` nothing identifies the event but the bytes: the body's SHA-256."""
        event_ts = payload.get("event_ts")
        if not event_ts:
            return body_hash(request.body)
        obj = _dict(_dict(payload.get("payload")).get("object"))
        registrant, participant = _dict(obj.get("registrant")), _dict(obj.get("participant"))
        person = registrant.get("id") or next(
            (participant[k] for k in ("participant_uuid", "id", "user_id", "email") if participant.get(k)), ""
        )
        parts = [payload.get("event") or "", event_ts, obj.get("id"), obj.get("uuid"), person]
        return ":".join(str(part) if part not in (None, "") else "-" for part in parts)

    def setup_steps(self, webhook_url):
        return [
            "In your own Zoom account, open marketplace.zoom.us → Develop → Build App and create a "
            "Server-to-Server OAuth app (or a webhook-only app if you only want live registrations). "
            "Zoom limits Server-to-Server apps to internal use: the app must belong to your account, "
            "not to En Garde.",
            "Server-to-Server apps only: copy the Account ID, Client ID and Client secret into this page, "
            "and add the scopes meeting:read:list_meetings:admin, meeting:read:list_registrants:admin, "
            "webinar:read:list_webinars:admin and webinar:read:list_registrants:admin. They are used only "
            "by the attendee sync, which fills in registrations a webhook missed.",
            "Copy the app's Secret Token (shown under Features) and save it here as the webhook secret "
            "before the next step: Zoom's URL check is signed with it.",
            f"Features → Event Subscriptions: add a subscription with the endpoint URL {webhook_url} "
            "and click Validate.",
            "Add the events Meeting → “Meeting registration created”, “… cancelled”, “… denied” and "
            "“… approved”, and the same four under Webinar (the list below), then save and activate.",
            "If you regenerate the Secret Token in Zoom, enter the new one here at once; the previous one "
            "keeps working for the grace period you choose.",
        ]

    def check_connection(self, integration) -> str:
        """Ask Zoom for a Server-to-Server OAuth token (account_credentials): proves the three values."""
        values = [integration.value(n) for n in ("account_id", "client_id", "client_secret")]
        if not all(values):
            raise ValueError("enter the account ID, client ID and client secret first")
        account_id, client_id, client_secret = values
        answer = call_json(make_session(), "POST", settings.ZOOM_OAUTH_URL, platform="Zoom",
                           params={"grant_type": "account_credentials", "account_id": account_id},
                           auth=(client_id, client_secret))
        if not answer.get("access_token"):
            raise ValueError("Zoom issued no token")
        return f"token issued (scopes: {answer.get('scope', 'none listed')})"

    def test_event(self, integration, event_id, sent_at):
        return {"event": TEST_EVENT_TYPE, "event_ts": int(sent_at.timestamp() * 1000),
                "payload": {"object": {"id": event_id}}}

    def test_delivery_auth(self, body, secret):
        timestamp = str(int(time.time()))
        signature = hmac_sha256_hex(secret, f"v0:{timestamp}:".encode() + body)
        return {"x-zm-request-timestamp": timestamp, "x-zm-signature": f"v0={signature}"}, {}
