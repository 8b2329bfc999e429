"""The tenant's webhook log: list with filters, one delivery, replay (owners and admins)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from integrations.models import TenantIntegration
from integrations.registry import PROVIDERS
from tenants.decorators import can_administer, tenant_page
from webhooks import processing
from webhooks.filters import WebhookLogFilter
from webhooks.models import WebhookLog
from webhooks.redaction import known_secrets, redact_headers, redact_text

PAGE_SIZE = 50
REPLAY = "webhooks.change_webhooklog"


@tenant_page(reads=("webhooks.view_webhooklog",))
def log_list(request):
    form = WebhookLogFilter(request.GET, tenant=request.tenant)
    page = Paginator(form.queryset(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "webhooks/log.html", {
        "section": "log", "page": page, "form": form,
        "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "can_replay": can_administer(request, REPLAY),
    })


def redacted_request(row: WebhookLog, integration: TenantIntegration | None) -> tuple[dict[str, str], str]:
    """A stored delivery's headers and body as shown anywhere (page, API, admin): redacted again,
    by name and by value with the secrets held now, so a row stored by anything but the receiver
    (an import, an older version) shows no secret either."""
    provider = PROVIDERS.get(row.source)
    secrets = known_secrets(integration)
    headers = redact_headers(row.headers or {}, secrets, provider.secret_headers if provider else ())
    return headers, redact_text(row.body_text, secrets)


def _row(pk: int) -> WebhookLog:
    # The tenant's rows only (the manager is scoped): another tenant's id is a 404 like any other.
    return get_object_or_404(WebhookLog.objects, pk=pk)


@tenant_page(reads=("webhooks.view_webhooklog",))
def log_detail(request, pk: int):
    row = _row(pk)
    headers, body = redacted_request(row, TenantIntegration.objects.filter(provider=row.source).first())
    return render(request, "webhooks/detail.html", {
        "section": "log", "row": row, "headers": headers, "body": body,
        "provider": PROVIDERS.get(row.source),
        "can_replay": can_administer(request, REPLAY) and row.status != WebhookLog.Status.REJECTED,
    })


@tenant_page(admin_only=True, reads=("webhooks.view_webhooklog",), changes=REPLAY)
@require_POST
def log_replay(request, pk: int):
    row = _row(pk)
    with transaction.atomic():
        queued = processing.replay(row)
    if queued:
        messages.success(request, f"Delivery {row.event_id} queued again.")
    else:
        messages.error(request, "This delivery cannot be replayed (rejected, or no handler for its event type).")
    return redirect("webhook-detail", row.pk)
