"""The members page of a tenant: who is in it, pending invitations (resend, cancel), inviting,
changing roles and removing. Owners and admins manage; only owners make, demote or remove owners,
and the last owner stays."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tenants import invitations
from tenants.decorators import acts_as_owner, can_administer, tenant_page
from tenants.forms import InviteForm
from tenants.models import Invitation, Membership

CHANGE_MEMBERS = "tenants.change_membership"
READS = ("tenants.view_membership",)


def _page(request, form, status=200):
    return render(request, "tenants/members.html", {
        "section": "members",
        "memberships": Membership.objects.select_related("user").order_by("role", "user__email"),
        "invitations": Invitation.objects.select_related("invited_by").order_by("email"),
        "can_manage": can_administer(request, CHANGE_MEMBERS), "form": form,
    }, status=status)


@tenant_page(reads=READS)
def members(request):
    return _page(request, InviteForm(request=request))


@tenant_page(admin_only=True, reads=READS, changes=CHANGE_MEMBERS)
@require_POST
def invite_member(request):
    form = InviteForm(request.POST, request=request)
    try:
        result = form.save() if form.is_valid() else None
    except ValidationError:
        result = None  # refused (an owner's role): the form carries why
    if result is None:
        return _page(request, form, status=400)
    if isinstance(result, Invitation):
        messages.success(request, f"Invitation sent to {result.email}: they join as "
                                  f"{result.get_role_display().lower()} once they accept.")
    else:
        messages.success(request, f"{result.user.email or result.user} is now {result.get_role_display().lower()}.")
    return redirect("members")


def _invitation(request, invitation_id: int) -> Invitation:
    invitation = get_object_or_404(Invitation.objects, pk=invitation_id)  # the tenant's own only
    if invitation.role == Membership.Role.OWNER and not acts_as_owner(request):
        raise ValidationError("Only an owner can resend or cancel an owner's invitation.")
    return invitation


@tenant_page(admin_only=True, reads=READS, changes=CHANGE_MEMBERS)
@require_POST
def resend_invitation(request, invitation_id: int):
    try:
        invitation = _invitation(request, invitation_id)
    except ValidationError as exc:
        messages.error(request, exc.message)
    else:
        invitations.resend(request, invitation)
        messages.success(request, f"A new invitation link went to {invitation.email}; the old one no longer works.")
    return redirect("members")


@tenant_page(admin_only=True, reads=READS, changes=CHANGE_MEMBERS)
@require_POST
def cancel_invitation(request, invitation_id: int):
    try:
        invitation = _invitation(request, invitation_id)
    except ValidationError as exc:
        messages.error(request, exc.message)
    else:
        invitation.delete()
        invitations.audit_log.info("user %s cancelled the invitation of %s to tenant %s", request.user.pk,
                                   invitation.email, request.tenant.slug)
        messages.success(request, f"The invitation of {invitation.email} was cancelled; its link no longer works.")
    return redirect("members")


@tenant_page(admin_only=True, reads=READS, changes=CHANGE_MEMBERS)
@require_POST
def remove_member(request, membership_id: int):
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
    if membership.role == Membership.Role.OWNER and not acts_as_owner(request):
        messages.error(request, "Only an owner can remove an owner.")
    elif membership.role == Membership.Role.OWNER and Membership.objects.filter(role="owner").count() == 1:
        messages.error(request, "The last owner cannot be removed.")
    else:
        membership.delete()
        messages.success(request, f"{membership.user.email or membership.user} was removed.")
    return redirect("members")
