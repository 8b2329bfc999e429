"""Tenant users' pages of the tenants app: the dashboard, picking a tenant, the members."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from integrations.models import TenantIntegration, webhook_url
from integrations.registry import PROVIDERS
from tenants.decorators import acts_as_owner, can_administer, tenant_page
from tenants.forms import InviteForm
from tenants.models import Membership, Tenant
from tenants.resolution import SESSION_KEY
from tenants.staff import VIEW_TENANT
from webhooks.models import WebhookLog

CHANGE_MEMBERS = "tenants.change_membership"
FAILING = (WebhookLog.Status.FAILED, WebhookLog.Status.DEAD)


def _start_of_today(tenant) -> datetime:
    zone = ZoneInfo(tenant.timezone or "UTC")
    return datetime.combine(timezone.now().astimezone(zone).date(), time.min, tzinfo=zone)


def platform_states(tenant) -> list[dict]:
    """Every platform with its state for this tenant, in three queries whatever the numbers."""
    integrations = {i.provider: i for i in TenantIntegration.objects.all()}
    day_ago = timezone.now() - timezone.timedelta(hours=24)
    stats = {
        row["source"]: row
        for row in WebhookLog.objects.exclude(status=WebhookLog.Status.REJECTED)
        .values("source")
        .annotate(
            today=Count("pk", filter=Q(received_at__gte=_start_of_today(tenant))),
            last=Max("received_at"),
            failing=Count("pk", filter=Q(status__in=FAILING, updated_at__gte=day_ago)),
        )
    }
    states = []
    for name, provider in PROVIDERS.items():
        integration = integrations.get(name)
        stat = stats.get(name, {})
        if integration is None or not integration.is_active:
            state, label = "not-connected", "Not connected"
        elif stat.get("failing") or (
            integration.last_error_at and integration.last_error_at >= (stat.get("last") or integration.last_error_at)
        ):
            state, label = "failing", "Failing"
        elif stat.get("last"):
            state, label = "receiving", "Receiving"
        elif not integration.is_configured:
            state, label = "incomplete", "Setup incomplete"
        else:
            state, label = "connected", "Connected"
        states.append({
            "provider": provider, "integration": integration, "state": state, "label": label,
            "today": stat.get("today", 0), "last_event_at": stat.get("last"),
            "last_error": integration.last_error if integration and state == "failing" else "",
            "webhook_url": webhook_url(tenant, name) if provider.receives_webhooks else "",
        })
    return states


@tenant_page(reads=("integrations.view_tenantintegration", "webhooks.view_webhooklog"))
def dashboard(request):
    return render(request, "tenants/dashboard.html", {
        "section": "dashboard", "platforms": platform_states(request.tenant),
    })


@login_required
def pick_tenant(request):
    """Staff choose any tenant; a user of several tenants chooses among theirs. Remembered in the session."""
    if request.user.is_staff and request.user.has_perm(VIEW_TENANT):
        tenants = list(Tenant.objects.order_by("name"))
    else:
        tenants = [m.tenant for m in Membership.of_user(request.user)]
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.method == "POST":
        chosen = next((t for t in tenants if t.slug == request.POST.get("tenant")), None)
        if chosen is None:
            raise Http404("No such tenant.")
        request.session[SESSION_KEY] = chosen.slug
        if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
            next_url = ""
        return redirect(next_url or "dashboard")
    return render(request, "tenants/pick_tenant.html", {"tenants": tenants, "next": next_url})


@tenant_page(reads=("tenants.view_membership",))
def members(request):
    memberships = Membership.objects.select_related("user").order_by("role", "user__email")
    return render(request, "tenants/members.html", {
        "section": "members", "memberships": memberships, "can_manage": can_administer(request, CHANGE_MEMBERS),
        "form": InviteForm(request=request),
    })


@tenant_page(admin_only=True, reads=("tenants.view_membership",), changes=CHANGE_MEMBERS)
@require_POST
def invite_member(request):
    form = InviteForm(request.POST, request=request)
    if form.is_valid():
        try:
            membership, created = form.save()
        except ValidationError:
            membership = None  # refused (an ambiguous account, an owner's role): the form carries why
    if form.is_valid() and membership is not None:
        messages.success(
            request, f"{membership.user.email} is now {membership.get_role_display().lower()}"
            + (" — an e-mail to choose a password is on its way." if created else ".")
        )
        return redirect("members")
    memberships = Membership.objects.select_related("user").order_by("role", "user__email")
    return render(request, "tenants/members.html", {
        "section": "members", "memberships": memberships, "can_manage": True, "form": form,
    }, status=400)


@tenant_page(admin_only=True, reads=("tenants.view_membership",), changes=CHANGE_MEMBERS)
@require_POST
def remove_member(request, membership_id: int):
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
    acting_is_owner = acts_as_owner(request)
    if membership.role == Membership.Role.OWNER and not acting_is_owner:
        messages.error(request, "Only an owner can remove an owner.")
    elif membership.role == Membership.Role.OWNER and Membership.objects.filter(role="owner").count() == 1:
        messages.error(request, "The last owner cannot be removed.")
    else:
        membership.delete()
        messages.success(request, f"{membership.user.email or membership.user} was removed.")
    return redirect("members")
