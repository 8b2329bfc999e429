"""Tenant users' pages of the tenants app: picking a tenant, the members."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tenants.decorators import acts_as_owner, can_administer, tenant_page
from tenants.forms import InviteForm
from tenants.models import Membership, Tenant
from tenants.resolution import SESSION_KEY
from tenants.staff import VIEW_TENANT

CHANGE_MEMBERS = "tenants.change_membership"


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
