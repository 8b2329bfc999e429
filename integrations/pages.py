"""Setup pages: one per platform, for the tenant's own users."""

import logging
from functools import cache

import requests
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from integrations.forms import IntegrationForm, integration_form_for
from integrations.http import ApiError, RateLimited
from integrations.models import TenantIntegration, webhook_url
from integrations.registry import PROVIDERS
from integrations.state import platform_state, state_of
from integrations.tokens import setup_next_step
from tenants.context import tenant_context
from tenants.decorators import can_administer, outside_tenant_transaction, tenant_page
from tenants.staff import ROTATE_SECRETS, acting_as_staff, staff_allowed
from webhooks.models import WebhookLog

audit_log = logging.getLogger("engarde.audit")
RECENT_DELIVERIES = 10
CHANGE = "integrations.change_tenantintegration"


@cache
def setup_form_class(provider):
    """The admin's form for this provider, without the tenant and provider fields: on a tenant's
    page both are given by the request and the URL."""

    class Meta(IntegrationForm.Meta):
        fields = ["is_active"]

    base = integration_form_for(provider)
    # Whoever is signed in (a tenant user, or staff acting for the tenant), what is typed on a
    # tenant's page is tenant-entered: its URLs stay public https (TenantIntegration.allowed_networks).
    return type(f"{base.__name__}Setup", (base,), {"Meta": Meta, "by_operator": False})


def _provider(name):
    provider = PROVIDERS.get(name)
    if provider is None:
        raise Http404("No such platform.")
    return provider


@tenant_page(reads=("integrations.view_tenantintegration", "webhooks.view_webhooklog"))
def setup(request, provider_name: str):
    provider = _provider(provider_name)
    integration = TenantIntegration.objects.filter(provider=provider.name).first()
    instance = integration or TenantIntegration(provider=provider.name, is_active=True)
    form_class = setup_form_class(provider)
    can_edit = can_administer(request, CHANGE)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only the tenant's owners and admins can change a connection.")
        form = form_class(request.POST, instance=instance)
        if form.is_valid() and form.replaces_secrets() and acting_as_staff(request):
            if not staff_allowed(request, ROTATE_SECRETS):
                raise PermissionDenied("Replacing a tenant's secrets needs the rotate_secrets permission.")
        if form.is_valid():
            integration = form.save()
            audit_log.info(
                "integration %s of tenant %s saved by user %s (%s)", provider.name, request.tenant.slug,
                request.user.pk, ", ".join(form.changed_names) or "no change",
            )
            if not form.generated_token:
                messages.success(request, f"{provider.label} saved.")
                return redirect("setup", provider.name)
            # A new token is shown once, on this very answer: never through the message store
            # (a cookie or the session) and never again after a reload.
            messages.success(request, f"{provider.label} saved. Copy the new token now: it is shown only once.")
            return render_setup(request, provider, integration, form_class(instance=integration),
                                new_token=form.generated_token)
    else:
        form = form_class(instance=instance)
    return render_setup(request, provider, integration, form, status=400 if request.method == "POST" else 200)


def render_setup(request, provider, integration, form, new_token: str = "", status: int = 200):
    url = webhook_url(request.tenant, provider.name) if provider.receives_webhooks else ""
    deliveries = (
        WebhookLog.objects.filter(source=provider.name).defer("body", "headers").order_by("-received_at")[:RECENT_DELIVERIES]
    )
    # What members (who may look, not change) see of the connection: never a secret's value.
    summary = [
        (field.label, (integration.masked(field.name) or "not set") if field.secret else (integration.value(field.name) or "not set"))
        if integration else (field.label, "not set")
        for field in provider.credential_fields
    ]
    if provider.receives_webhooks:
        summary.append((provider.webhook_secret_label, (integration.masked("webhook_secret") if integration else "") or "not set"))
    response = render(request, "integrations/setup.html", {
        "summary": summary, "new_token": new_token,
        "token_heading": f"Your new {provider.webhook_secret_label.lower()}",
        "token_next_step": setup_next_step(provider, has_url=bool(url)),
        "state": state_of(integration) if integration else platform_state(provider, None),
        "section": "dashboard", "provider": provider, "integration": integration, "form": form,
        "webhook_url": url, "steps": provider.setup_steps(url) if url else provider.setup_steps(""),
        "deliveries": deliveries, "can_edit": can_administer(request),
        "sync_notice": provider.sync_notice(integration) if integration and provider.syncs else "",
        "can_check": integration is not None and hasattr(provider, "check_connection"),
    }, status=status)
    if new_token:
        response["Cache-Control"] = "no-store"
    return response


@outside_tenant_transaction
@tenant_page(admin_only=True, reads=("integrations.view_tenantintegration",), changes=CHANGE)
@require_POST
def check_connection(request, provider_name: str):
    """Call the platform's API with the tenant's credentials and say whether it answered. Runs
    outside the request's tenant transaction: only the read of the integration is in one, so no
    transaction is held while the platform takes its time (timeouts 5 + 20 s, three retries)."""
    provider = _provider(provider_name)
    with tenant_context(request.tenant):
        integration = TenantIntegration.objects.filter(provider=provider.name).first()
    if integration is None or not hasattr(provider, "check_connection"):
        raise Http404("Nothing to check.")
    try:
        detail = provider.check_connection(integration)
    except RateLimited as exc:  # not a failed connection: the platform asks us to wait
        messages.error(request, f"{provider.label} is rate-limiting us; try again in {exc.retry_after:.0f} s.")
    except (ApiError, requests.RequestException, OSError, ValueError) as exc:
        sentence = check_failure_sentence(provider, exc)
        record_check(integration, sentence)
        messages.error(request, sentence)
    else:
        record_check(integration, "")
        messages.success(request, f"{provider.label} answered: {detail or 'connection works'}.")
    return redirect("setup", provider.name)


def check_failure_sentence(provider, exc: Exception) -> str:
    """Why "check connection" failed, as a sentence for the tenant (never an exception's name, and
    never a request's text, which may quote a header holding a credential)."""
    if isinstance(exc, ApiError):  # our own message: the status and the path, never a credential
        return f"{provider.label} did not accept the connection: {exc}."
    if isinstance(exc, requests.Timeout):
        return f"{provider.label} did not answer in time. Try again in a minute."
    if isinstance(exc, (requests.RequestException, OSError)):
        return f"{provider.label} could not be reached. Check the address, or try again in a minute."
    return f"{provider.label}: {exc}."  # the provider's own "enter … first"


def record_check(integration, sentence: str) -> None:
    """A failed check makes the platform "failing" with its reason, the same for every platform
    (``integrations.state``); a check that works clears it."""
    now = timezone.now()
    # Its own short transaction: the page runs outside the request's (see check_connection).
    with tenant_context(integration.tenant_id):
        TenantIntegration.objects.filter(pk=integration.pk).update(
            last_error=sentence, last_error_at=now if sentence else None, updated_at=now
        )
