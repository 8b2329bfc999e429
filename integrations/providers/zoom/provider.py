"""Zoom: ``x-zm-signature: v0=<hex>``, HMAC-SHA256 of ``"v0:<x-zm-request-timestamp>:<raw body>"``
with the app's Secret Token; a timestamp more than 300 s away from our clock is refused, so a
captured delivery cannot be replayed later. Zoom signs its endpoint check (``endpoint.url_validation``)
the same way, and repeats it every 72 h; we answer it only after the signature held.

Zoom gives no event id: see ``event_id`` for the key we derive.
"""

import hmac
import time
from datetime import timedelta

from django.conf import settings

from integrations.http import make_session
from integrations.providers.base import (
    TEST_EVENT_TYPE,
    CredentialField,
    Provider,
    VerificationFailed,
    WebhookAuth,
    body_hash,
    hmac_sha256_hex,
)
from integrations.providers.validators import matches
from integrations.providers.zoom.handlers import EVENT_DOCS, HANDLERS, IGNORED_EVENTS
from integrations.providers.zoom.schemas import SCHEMAS

TOLERANCE_SECONDS = 300
#: What Zoom's account and client IDs look like (22 url-safe characters as issued; a margin either way).
ZOOM_ID = r"[A-Za-z0-9_-]{8,64}"
#: The granular scopes the attendee sync uses (S2S apps get the ``:admin`` ones), with the classic
#: scope that covers each on older apps.
SYNC_SCOPES = {
    "meeting:read:list_meetings:admin": "meeting:read:admin",
    "meeting:read:list_registrants:admin": "meeting:read:admin",
    "webinar:read:list_webinars:admin": "webinar:read:admin",
    "webinar:read:list_registrants:admin": "webinar:read:admin",
}
URL_VALIDATION = "endpoint.url_validation"


def _minutes(minutes: float) -> str:
    return "hour" if minutes == 60 else f"{minutes:g} minutes"


def missing_scopes(granted: str) -> list[str]:
    """The sync's scopes a token's ``scope`` list lacks (a classic scope covers its granular ones)."""
    have = set(granted.split())
    return [scope for scope, classic in SYNC_SCOPES.items() if scope not in have and classic not in have]


def _dict(value) -> dict:
    """A verified body can still be oddly shaped: naming it must not fail (handlers may)."""
    return value if isinstance(value, dict) else {}


class ZoomProvider(Provider):
    name = "zoom"
    label = "Zoom"
    webhook_auth = WebhookAuth.SIGNATURE
    webhook_secret_label = "Secret token (Features → Event subscriptions)"
    docs_url = "https://developers.zoom.us/docs/api/webhooks/"
    #: The tenant's own Server-to-Server OAuth app, for the attendee sync only: all optional, so
    #: a webhook-only Zoom is complete without them (``sync_fields``: no sync until they are set).
    credential_fields = (
        CredentialField(
            "account_id", "Account ID", secret=False, required=False, example="D8cJuqWVQ623CI4Q8yQK0Q",
            help_text="Server-to-Server OAuth app → App Credentials → Account ID. Only for the attendee sync.",
            validators=(matches(ZOOM_ID, "A Zoom account ID is the letters and digits (and - or _) shown as "
                                         "“Account ID” under the app's App Credentials, about 22 characters."),),
        ),
        CredentialField(
            "client_id", "Client ID", secret=False, required=False, example="Iq8rNw2uT3mZ0aKcY5vXbA",
            help_text="App Credentials → Client ID.",
            validators=(matches(ZOOM_ID, "A Zoom client ID is the letters and digits (and - or _) shown as "
                                         "“Client ID” under the app's App Credentials, about 22 characters."),),
        ),
        CredentialField(
            "client_secret", "Client secret", required=False, help_text="App Credentials → Client secret.",
            validators=(matches(r"[!-~]{16,256}", "A Zoom client secret is the letters and digits shown as "
                                                  "“Client secret” under App Credentials (32 as Zoom issues "
                                                  "them), without spaces."),),
        ),
        CredentialField(
            "user_id", "Zoom user", secret=False, required=False, example="host@example.com",
            help_text="Whose meetings and webinars are synced: a user ID or e-mail of the account. Empty: "
                      "the user who created the app (“me”).",
            validators=(matches(r"me|[A-Za-z0-9_-]{8,64}|[^@\s/?#]{1,64}@[^@\s/?#]{1,255}\.[^@\s/?#]{1,63}",
                                "The Zoom user is a user ID (letters and digits) or the user's e-mail address."),),
        ),
    )
    sync_fields = ("account_id", "client_id", "client_secret")
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
        scopes = ", ".join(SYNC_SCOPES)
        return [
            "In your own Zoom account, open marketplace.zoom.us → Develop → Build App. For live "
            "registrations a webhook-only app is enough; to also fill in registrations a webhook missed, "
            "create a Server-to-Server OAuth app (an account admin, or a role with “Server-to-Server OAuth "
            "app” permission, can). Zoom limits Server-to-Server apps to internal use: the app must belong "
            "to your account, not to En Garde.",
            "Server-to-Server apps only: under App Credentials copy the Account ID, Client ID and Client "
            "secret into this page; under Scopes add " + scopes + " (older apps: meeting:read:admin and "
            "webinar:read:admin); then activate the app (Activation). The attendee sync uses them every "
            f"{_minutes(settings.ZOOM_SYNC_INTERVAL_MINUTES)}, with the registrants of upcoming meetings and "
            f"webinars and of those of the last {settings.ZOOM_LOOKBACK_DAYS} days; “Check connection” asks "
            "Zoom for a token and names a missing scope.",
            "Optional: “Zoom user” names whose meetings are read (a user ID or e-mail); empty means the "
            "user who created the app.",
            "Copy the app's Secret Token (shown under Features → Access) and save it here as the webhook "
            "secret before the next step: Zoom's URL check is signed with it.",
            f"Features → Event Subscriptions: add a subscription with the endpoint URL {webhook_url} "
            "and click Validate.",
            "Add the events Meeting → “Meeting registration created”, “… cancelled”, “… denied” and "
            "“… approved”, and the same four under Webinar (the list below), then save and activate.",
            "If you regenerate the Secret Token in Zoom, enter the new one here at once; the previous one "
            "keeps working for the grace period you choose.",
        ]

    def check_connection(self, integration) -> str:
        """Ask Zoom for a new Server-to-Server OAuth token (``account_credentials``): proves the three
        values and that the app is activated, and shows which of the sync's scopes it lacks. A
        token that works also lifts a sync stopped by a refused token or a missing scope (the
        tenant fixed it in Zoom, where no credential of ours changed) and is cached for the sync."""
        from integrations.providers.zoom.client import Tokens

        tokens = Tokens(integration, make_session())
        tokens.renew()  # ValueError (values missing), TokenRefused (an ApiError), RateLimited, network
        lacking = missing_scopes(tokens.scope)
        if integration.sync_disabled_reason and not lacking:
            from integrations.models import TenantIntegration
            from tenants.context import tenant_context

            with tenant_context(integration.tenant_id):
                TenantIntegration.objects.filter(pk=integration.pk).update(sync_disabled_reason="")
        if lacking:
            return f"token issued, but the app lacks the scopes {', '.join(lacking)} that the attendee sync needs"
        return f"token issued (scopes: {tokens.scope or 'none listed'})"

    # --- the attendee sync (integrations/providers/zoom/sync.py) --------------------------------
    @property
    def sync_interval(self):
        return timedelta(minutes=settings.ZOOM_SYNC_INTERVAL_MINUTES)

    def sync(self, integration, since=None):
        """Registrants of upcoming and recent meetings and webinars → contacts and sign-ups."""
        from integrations.providers.zoom.sync import ZoomSync

        return ZoomSync(integration, since=since).run()

    def test_event(self, integration, event_id, sent_at):
        return {"event": TEST_EVENT_TYPE, "event_ts": int(sent_at.timestamp() * 1000),
                "payload": {"object": {"id": event_id}}}

    def test_delivery_auth(self, body, secret):
        timestamp = str(int(time.time()))
        signature = hmac_sha256_hex(secret, f"v0:{timestamp}:".encode() + body)
        return {"x-zm-request-timestamp": timestamp, "x-zm-signature": f"v0={signature}"}, {}
