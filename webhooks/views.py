"""The webhook receiver and its two helper endpoints. HTTP only: decisions live in ``ingest``.

Status codes (README, "Webhooks"): 404 unknown/inactive tenant, unknown source or source not
connected (nothing stored, a log line); 405 other methods; 413 body over the limit; 415 a body
type no platform sends; 429 too many verified deliveries for one tenant; 401 (or the configured status)
rejected; 200 stored (new, duplicate, ignored or malformed); 503 database unreachable, so the
sender retries. A POST is never redirected: both URL forms match with or without the slash.

A POST to a connection this process has seen first tries ``webhooks.fastpath`` (one statement);
whatever it does not store comes here unchanged, so this view stays the one place for every
unusual case.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import uuid
from functools import lru_cache, wraps
from types import MappingProxyType

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
import engarde.metrics as metrics
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from integrations.models import TenantIntegration, webhook_url
from integrations.providers.base import WebhookRequest
from integrations.registry import PROVIDERS
from tenants.authentication import authenticate_bearer
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tenants.staff import audit_log
from webhooks import fastpath, ratelimit
from webhooks.api import HELPER_PARAMETERS_DOC, WebhookReadinessSerializer, WebhookUrlSerializer, helper_parameters
from webhooks.ingest import receive
from webhooks.models import WebhookLog

log = logging.getLogger(__name__)

ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain", "")
#: What a 415 names (no content type at all is accepted too, but is not a type to name).
ACCEPTED_MEDIA_TYPES = [t for t in ACCEPTED_CONTENT_TYPES if t]


def _json(status_code: int, body: dict, **headers) -> HttpResponse:
    # JsonResponse's bytes, without its encoder class: the receiver's answers hold plain strings.
    response = HttpResponse(json.dumps(body), status=status_code, content_type="application/json")
    response.delivery_status = body.get("status") or "handshake"  # for engarde_webhook_deliveries_total
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _not_found(reason: str, **context) -> HttpResponse:
    log.info("webhook 404: %s %s", reason, context)
    return _json(404, {"status": "not_found"})


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The sender's address: REMOTE_ADDR, or the last hop our own proxy added to the header
    named by ``WEBHOOK_CLIENT_IP_HEADER`` (a sender can forge the earlier hops, not that one)."""
    header = settings.WEBHOOK_CLIENT_IP_HEADER
    if header and request.META.get(header):
        address = request.META[header].split(",")[-1].strip()
    else:
        address = request.META.get("REMOTE_ADDR") or ""
    # Senders come from few addresses: kept per process, but only what could be an address (the
    # longest IPv6 text is 45 characters), so a header's junk takes no room in the cache.
    return _cached_address(address) if len(address) <= 45 else _normalized_address(address)


def _normalized_address(address: str) -> str | None:
    """The address in its canonical text, or None when it is not one (a misconfigured proxy):
    stored as unknown, never a 500."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


_cached_address = lru_cache(maxsize=1024)(_normalized_address)

#: A delivery's query when its URL has none (read-only, as ``request.GET`` is).
_NO_QUERY = MappingProxyType({})

#: The receiver's URL for the fast path (``engarde/urls.py``, name ``webhook``), tenant first.
_RECEIVER_PATH = re.compile(r"^/api/webhooks/(?P<first>[^/]+)/(?P<second>[^/]+)/?$")


class FastPathMiddleware:
    """The fast path (``webhooks.fastpath``) before the rest of Django's middleware and the URL
    resolver: a POST to a connection this process has seen is answered here, the common delivery
    with none of what it does not use (sessions, CSRF, which the receiver is exempt from,
    authentication, the tenant middleware, messages, Axes, WhiteNoise; about a fifth of the web
    process's CPU per delivery in ``make bench``).

    Placed after ``ProbeMiddleware``, ``SecurityMiddleware`` (the HTTPS redirect, its headers on
    the answer) and ``RefuseUnstorableText`` (a NUL anywhere: 400). It checks the Host header as
    ``CommonMiddleware`` would (``DisallowedHost``: 400), and gives the answer the headers the
    skipped middleware would have (``X-Frame-Options``, ``Content-Length``). Everything else,
    and whatever the fast path does not store, goes on through the whole stack to the view, as if
    this did not exist."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path_info.startswith("/api/webhooks/"):
            match = _RECEIVER_PATH.match(request.path_info)
            if match and match["second"] in PROVIDERS and fastpath.lookup(match["first"], match["second"]):
                request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it for every view
                response = _receive_fast(request, match["first"], match["second"])
                if response is not None:
                    metrics.delivery(match["second"], response.delivery_status, response.delivery_tenant)
                    response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
                    response["Content-Length"] = str(len(response.content))
                    return response
                request.webhook_fast_path_tried = True  # the view does not try it again
        return self.get_response(request)


@csrf_exempt
def receive_webhook(request, first: str, second: str):
    """``/api/webhooks/<tenant>/<source>/`` and the older ``/api/webhooks/<source>/<tenant-uuid>``."""
    if second in PROVIDERS:
        tenant_key, source = first, second
    elif first in PROVIDERS:
        tenant_key, source = second, first
    else:
        return _not_found("unknown source", path=request.path)
    try:
        response = _receive_fast(request, tenant_key, source) or _receive(request, tenant_key, source)
    except (OperationalError, InterfaceError) as exc:
        # The database is unreachable: nothing could be stored, so ask the sender to retry.
        log.error("webhook %s for %s: database unavailable (%s)", source, tenant_key, exc.__class__.__name__)
        response = _json(503, {"status": "unavailable"}, Retry_After="30")
    if request.method == "POST" and source in PROVIDERS:
        # The tenant only once its integration was found: a label never takes a value from a URL alone.
        metrics.delivery(source, response.delivery_status, getattr(response, "delivery_tenant", None))
    return response


def _refusal(request):
    """413 or 415 before the body is read, else None."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > settings.WEBHOOK_MAX_BODY_BYTES:
        return _json(413, {"status": "too_large", "limit_bytes": settings.WEBHOOK_MAX_BODY_BYTES})
    content_type = request.content_type or ""
    if content_type not in ACCEPTED_CONTENT_TYPES and not content_type.endswith("+json"):
        return _json(415, {"status": "unsupported_media_type",
                           "reason": "send the event as application/json (or text/plain)",
                           "accepted": [*ACCEPTED_MEDIA_TYPES, "application/*+json"]},
                     Accept_Post=", ".join(ACCEPTED_MEDIA_TYPES))
    return None


def _admit(request, tenant_id):
    """Count a verified delivery against its tenant's budget, once per request: when the fast path
    counted it and then left it to the view (a stale cache entry, a database error), it is not
    counted again."""
    if getattr(request, "webhook_admitted", False):
        return None
    request.webhook_admitted = True
    return ratelimit.over(f"tenant:{tenant_id}", settings.WEBHOOK_RATE_LIMIT)


def _answer(outcome, tenant_id):
    response = _json(outcome.status, outcome.body, **{k.replace("-", "_"): v for k, v in outcome.headers.items()})
    response.delivery_tenant = tenant_id
    if outcome.body.get("status") == "rejected":
        # ``ingest`` logs a sample of rejections itself; Django's "Unauthorized: <path>" line for
        # every one would give a flood of forgeries the unbounded log it must not have.
        response._has_been_logged = True
    return response


def _receive_fast(request, tenant_key: str, source: str):
    """A POST to a connection this process has seen (``webhooks.fastpath``): stored with one
    statement, or None, and the view below answers as if the fast path did not exist."""
    if request.method != "POST" or getattr(request, "webhook_fast_path_tried", False) or not fastpath.enabled():
        return None
    entry = fastpath.lookup(tenant_key, source)
    if entry is None or _refusal(request) is not None:
        return None
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return None
    # Most deliveries carry no query string: no QueryDict to build for them.
    query = request.GET if request.META.get("QUERY_STRING") else _NO_QUERY
    delivery = WebhookRequest(body=body, headers=request.headers, query=query, remote_addr=client_ip(request))
    outcome = fastpath.receive(entry, delivery, admit=lambda: _admit(request, entry.tenant_id))
    return None if outcome is None else _answer(outcome, entry.tenant_id)


def _receive(request, tenant_key: str, source: str):
    if request.method not in ("POST", "GET", "HEAD"):
        return _json(405, {"status": "method_not_allowed"}, Allow="GET, HEAD, POST")
    provider = PROVIDERS.get(source)
    if provider is None or not provider.receives_webhooks:
        return _not_found("unknown source", source=source)
    if request.method in ("GET", "HEAD"):
        # A health answer for people and platforms checking the URL: no tenant details, no secrets.
        return _json(200, {"status": "ok", "source": source, "accepts": "POST application/json"})

    refusal = _refusal(request)
    if refusal is not None:
        return refusal

    tenant_id = _uuid_or_none(tenant_key)
    if tenant_id is None:  # a slug: look it up (the URLs we hand out carry the id)
        tenant = Tenant.resolve(tenant_key)
        if tenant is None:
            return _not_found("unknown or inactive tenant", tenant=tenant_key, source=source)
        tenant_id = tenant.pk
    # Verify first: a delivery that verifies is never refused because of forgeries. The budget of
    # verified deliveries is counted after verification (``admit``); rejected ones only cost a
    # sample of stored rows per tenant and window (``ingest``), never the answer to a genuine one.
    sender = client_ip(request)
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return _json(413, {"status": "too_large", "limit_bytes": settings.WEBHOOK_MAX_BODY_BYTES})
    delivery = WebhookRequest(body=body, headers=request.headers, query=request.GET, remote_addr=sender)
    with tenant_context(tenant_id):
        # One query for the tenant (active) and its active integration; the credentials are not
        # needed to verify a delivery, so they are neither loaded nor decrypted here.
        integration = (
            TenantIntegration.objects.select_related("tenant").defer("credentials")
            .filter(provider=source, is_active=True, tenant__is_active=True).first()
        )
        if integration is None:
            return _not_found("unknown or inactive tenant, or source not connected", tenant=tenant_key, source=source)
        # The next delivery to this URL can take the fast path (only for a URL with the tenant's id).
        fastpath.remember(tenant_key, source, provider, integration)
        outcome = receive(provider, integration, delivery, admit=lambda: _admit(request, tenant_id))
    return _answer(outcome, tenant_id)


# --- For tenant users and operators: "where do I point the platform?" and "is it working?" ----


def _tenant_for_user(request, tenant_key: str) -> Tenant:
    """The tenant named in the URL, if the user is staff or one of its members; else 404 (a
    tenant's existence is not confirmed to outsiders)."""
    tenant = Tenant.resolve(tenant_key, active_only=False)
    if tenant is None:
        raise NotFound()
    if any(m.tenant_id == tenant.pk for m in Membership.of_user(request.user)):
        return tenant
    if request.user.is_staff:
        # Staff powers follow Django permissions (tenants.staff): these views show an integration.
        allowed = request.user.has_perm("integrations.view_tenantintegration")
        audit_log.info("staff user %s %s %s for tenant %s: %s", request.user.pk, request.method, request.path,
                       tenant.slug, "integrations.view_tenantintegration " + ("granted" if allowed else "refused"))
        if allowed:
            return tenant
        raise PermissionDenied()
    raise NotFound()


def _provider_or_404(source: str):
    provider = PROVIDERS.get(source)
    if provider is None or not provider.receives_webhooks:
        raise NotFound()
    return provider


def _prepare(view):
    """These views sit under /api/webhooks/, where TenantMiddleware does not run: read the bearer
    token here so DRF's authentication sees it."""

    @wraps(view)  # keeps DRF's ``cls`` on the function, so the schema sees these views
    def wrapped(request, *args, **kwargs):
        authenticate_bearer(request)
        return view(request, *args, **kwargs)

    wrapped.csrf_exempt = True
    return wrapped


@extend_schema(summary="Get a tenant's webhook URL for a platform", tags=["webhooks"], responses=WebhookUrlSerializer,
               parameters=helper_parameters(),
               description="The URL to enter at the platform, with the setup steps. " + HELPER_PARAMETERS_DOC)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def _generate_url(request, source: str, tenant_key: str):
    provider = _provider_or_404(source)
    tenant = _tenant_for_user(request, tenant_key)
    url = webhook_url(tenant, source)
    return Response(
        {"tenant_id": str(tenant.pk), "tenant_name": tenant.name, "webhook_url": url,
         "instructions": provider.setup_steps(url)}
    )


@extend_schema(summary="Check whether a platform's webhooks can arrive", tags=["webhooks"],
               responses=WebhookReadinessSerializer, parameters=helper_parameters(),
               description="Whether the tenant's secret is set and the connection active, and when the last "
                           "delivery arrived. Sends nothing. " + HELPER_PARAMETERS_DOC)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def _test_connection(request, source: str, tenant_key: str):
    provider = _provider_or_404(source)
    tenant = _tenant_for_user(request, tenant_key)
    with tenant_context(tenant):
        integration = TenantIntegration.objects.filter(provider=source).first()
        last = WebhookLog.objects.filter(source=source).exclude(status=WebhookLog.Status.REJECTED)
        last_event_at = last.order_by("-received_at").values_list("received_at", flat=True).first()
    configured = bool(integration and provider.verification_secrets(integration))
    active = bool(integration and integration.is_active and tenant.is_active)
    return Response(
        {
            "status": "ready" if configured and active else "not_configured",
            "tenant_id": str(tenant.pk),
            "tenant_name": tenant.name,
            "webhook_url": webhook_url(tenant, source),
            "webhook_secret_configured": configured,
            "connection_active": active,
            "supported_events": provider.supported_events,
            "last_event_at": last_event_at.isoformat() if last_event_at else None,
        },
        status=status.HTTP_200_OK,
    )


generate_url = _prepare(_generate_url)
test_connection = _prepare(_test_connection)
