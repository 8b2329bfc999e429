"""GoHighLevel (LeadConnector): two ways in.

* Marketplace app webhooks are signed with GoHighLevel's published key, the same for every
  GoHighLevel customer: ``x-ghl-signature`` (Ed25519, base64, over the raw body), or the legacy
  ``x-wh-signature`` (RSA-SHA256 PKCS#1 v1.5, base64; being retired in 2026). The keys are
  platform-wide settings. A valid signature only proves that *some* GoHighLevel account sent the
  body, so the payload's ``locationId`` must also be this tenant's configured location: without
  that check, any GoHighLevel customer could write into any tenant that uses GoHighLevel.
* Workflow "custom webhook" actions are unsigned: they must carry the tenant's token in
  ``X-Webhook-Token`` (never in the URL); a location they name must still be the tenant's.
"""

import base64
import binascii
import functools

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings

from integrations.http import get_with_bearer
from integrations.providers.base import (
    TEST_EVENT_TYPE,
    CredentialField,
    Provider,
    VerificationFailed,
    WebhookAuth,
    body_hash,
    load_json,
)
from integrations.providers.ghl.handlers import EVENT_DOCS, HANDLERS, IGNORED_EVENTS, WORKFLOW_EVENT
from integrations.providers.ghl.schemas import SCHEMAS
from integrations.providers.validators import matches


@functools.lru_cache(maxsize=4)
def ed25519_key(text: str) -> Ed25519PublicKey:
    """The key as GoHighLevel publishes it (PEM, or its base64 body alone), or the raw 32 bytes as
    base64 or hex, as its SDK takes it. ``\\n`` escapes (a PEM squeezed into one environment line) are undone."""
    text = text.strip().replace("\\n", "\n")
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode())
        elif len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
        else:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None)
            key = Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else serialization.load_der_public_key(raw)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise VerificationFailed("GHL_WEBHOOK_PUBLIC_KEY is not a readable public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise VerificationFailed("GHL_WEBHOOK_PUBLIC_KEY is not an Ed25519 key")
    return key


@functools.lru_cache(maxsize=4)
def rsa_key(text: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(text.strip().replace("\\n", "\n").encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise VerificationFailed("GHL_WEBHOOK_RSA_PUBLIC_KEY is not a readable PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise VerificationFailed("GHL_WEBHOOK_RSA_PUBLIC_KEY is not an RSA key")
    return key


def _signature(value: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed("signature is not base64") from None


def payload_location(payload) -> str:
    """The location a delivery belongs to, read from the field GoHighLevel documents for its type:

    * ``Invoice…`` events: ``altId`` when ``altType`` is ``"location"`` (they carry no ``locationId``);
    * ``Order…`` events: ``locationId``, else ``altId`` + ``altType`` (they carry both);
    * ``LocationCreate`` / ``LocationUpdate``: the location is the object itself, ``id``;
    * every other app event: ``locationId``; workflow webhooks: ``location.id``.

    Anything else (a wrong type, an ``altType`` that is not a location) reads as no location."""
    if not isinstance(payload, dict):
        return ""
    kind = payload.get("type") if isinstance(payload.get("type"), str) else ""
    by_alt = _text(payload.get("altId")) if payload.get("altType") == "location" else ""
    if kind.startswith("Invoice"):
        return by_alt
    if kind.startswith("Location"):
        return _text(payload.get("id"))
    if kind.startswith("Order"):
        return _text(payload.get("locationId")) or by_alt
    location = payload.get("location")
    return _text(payload.get("locationId")) or (_text(location.get("id")) if isinstance(location, dict) else "")


def location_field(payload) -> str:
    """The name of the field ``payload_location`` reads, for messages."""
    kind = payload.get("type") if isinstance(payload, dict) and isinstance(payload.get("type"), str) else ""
    if kind.startswith("Invoice"):
        return "altId (altType location)"
    if kind.startswith("Location"):
        return "id"
    return "locationId"


def _text(value) -> str:
    return value if isinstance(value, str) else ""


class GoHighLevelProvider(Provider):
    name = "ghl"
    label = "GoHighLevel"
    # Marketplace webhooks are signed with GoHighLevel's published key (GHL_WEBHOOK_PUBLIC_KEY);
    # workflow "custom webhook" actions are unsigned and carry this tenant's token instead.
    webhook_auth = WebhookAuth.PLATFORM_KEY
    webhook_secret_label = "Workflow webhook token"
    docs_url = "https://marketplace.gohighlevel.com/docs/webhook/WebhookIntegrationGuide"
    credential_fields = (
        CredentialField("api_key", "Private integration token", required=False),
        CredentialField(
            "location_id", "Location ID", secret=False,
            help_text="Deliveries whose locationId differs are rejected: GoHighLevel's signing key is shared by all its customers.",
            example="ve9EPM428h8vShlRW1KT",
            validators=(matches(r"[A-Za-z0-9_-]{1,64}", "A GoHighLevel location id is letters and digits "
                                                         "(Settings → Business Profile → Location ID)."),),
        ),
    )
    handlers = HANDLERS
    schemas = SCHEMAS
    ignored_events = IGNORED_EVENTS
    signature_headers = ("x-ghl-signature", "x-wh-signature")
    event_docs = EVENT_DOCS

    def verify(self, request, integration):
        ed_header, rsa_header = self.signature_headers
        ed_signature, rsa_signature = request.headers.get(ed_header, ""), request.headers.get(rsa_header, "")
        if ed_signature or rsa_signature:
            self._verify_signature(request.body, ed_signature, rsa_signature)
            self._check_location(request.body, integration, required=True)
        else:
            self.verify_token(request, integration)
            self._check_location(request.body, integration, required=False)

    def _verify_signature(self, body: bytes, ed_signature: str, rsa_signature: str) -> None:
        """Ed25519 when it is sent and its key is set; else the legacy RSA. A signature that
        fails is final: the other header is never tried as a second chance."""
        try:
            if ed_signature and settings.GHL_WEBHOOK_PUBLIC_KEY:
                ed25519_key(settings.GHL_WEBHOOK_PUBLIC_KEY).verify(_signature(ed_signature), body)
            elif rsa_signature and settings.GHL_WEBHOOK_RSA_PUBLIC_KEY:
                rsa_key(settings.GHL_WEBHOOK_RSA_PUBLIC_KEY).verify(
                    _signature(rsa_signature), body, padding.PKCS1v15(), hashes.SHA256()
                )
            else:
                raise VerificationFailed("signed delivery, but no GoHighLevel public key is configured for it")
        except InvalidSignature:
            raise VerificationFailed("signature does not match") from None

    def _check_location(self, body: bytes, integration, required: bool) -> None:
        try:
            payload = load_json(body)
        except ValueError:
            payload = None  # not JSON: a signed one is refused below, an unsigned one is kept as malformed
        location = payload_location(payload)
        if not location and not required:
            return
        expected = integration.value("location_id")
        if not expected:
            raise VerificationFailed("no GoHighLevel location id is configured for this tenant")
        if location != expected:
            # Name the field read for this event type: "locationId" on an invoice (which has none) misled operators.
            raise VerificationFailed(f"{location_field(payload)} does not match this tenant's location")

    def event_type(self, payload, request):
        """``type`` of an app webhook; a workflow webhook has none and is named ``WORKFLOW_EVENT``."""
        if payload.get("type"):
            return str(payload["type"])
        return WORKFLOW_EVENT if payload.get("contact_id") else ""

    def event_id(self, payload, request):
        """``webhookId`` where GoHighLevel sends one (the same on its retries). Else
        ``<type>:<object id>:<when>``: the object is the appointment, else the payload's ``id``
        (contact, opportunity…); ``when`` is ``timestamp``, else ``dateUpdated``, else, for a
        ``…Create`` only, ``dateAdded`` (an update's ``dateAdded`` would make every update of one
        contact look like one event). Anything short of that, workflow deliveries included: the
        body's SHA-256, so only identical bytes are one event."""
        if payload.get("webhookId"):
            return str(payload["webhookId"])
        kind = str(payload.get("type") or "")
        obj = payload["appointment"] if isinstance(payload.get("appointment"), dict) else payload
        object_id = obj.get("id") or payload.get("id") or payload.get("_id")  # invoices and orders: ``_id``
        when = (payload.get("timestamp") or obj.get("dateUpdated") or payload.get("updatedAt")
                or (obj.get("dateAdded") if kind.endswith("Create") else ""))
        if kind and object_id and when:
            return f"{kind}:{object_id}:{when}"
        return body_hash(request.body)

    def test_event(self, integration, event_id, sent_at):
        # The tenant's own location: a test delivery goes through the same location check.
        return {"type": TEST_EVENT_TYPE, "webhookId": event_id, "locationId": integration.value("location_id") or ""}

    def setup_steps(self, webhook_url):
        return [
            "Enter your GoHighLevel Location ID (Settings → Business Profile, or the id in the sub-account's "
            "URL). Deliveries for any other location are refused.",
            f"Marketplace app (one you create for your own agency): under Advanced Settings → Webhooks set the "
            f"Default Webhook URL to {webhook_url}, give the app the scopes contacts.readonly and "
            "calendars/events.readonly, invoices.readonly and payments/orders.readonly (GoHighLevel only sends "
            "events the app's scopes cover), subscribe to the events listed below, and install the app on your "
            "location. GoHighLevel signs these deliveries: nothing to copy here.",
            f"Or a workflow: add the action “Custom Webhook” (POST) with the URL {webhook_url} and a header "
            "X-Webhook-Token whose value is the workflow webhook token shown here (only this header is accepted: "
            "a token in the URL is refused). These deliveries are not signed: the token is their only proof, "
            "so keep it private.",
            "Optional: a private integration token (Settings → Private Integrations) lets En Garde look up and "
            "update contacts.",
        ]

    def check_connection(self, integration) -> str:
        """GET /locations/{id} with the private integration token (and the API's Version header)."""
        token, location = integration.value("api_key"), integration.value("location_id")
        if not (token and location):
            raise ValueError("enter the private integration token and the location ID first")
        answer = get_with_bearer(f"{settings.GHL_API_BASE}/locations/{location}", token, platform="GoHighLevel",
                                 headers={"Version": settings.GHL_API_VERSION})
        return f"location {(answer.get('location') or {}).get('name', location)}"
