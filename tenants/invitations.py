"""Invitations from a tenant's members page: made, sent, resent, accepted (issue 7.7).

An invited person joins only by following the link and accepting: an existing account signs in
first and presses "Join"; someone new chooses a name and password on the link's page, which proves
the address is theirs the way a password-reset link does. ``add_tenant_user`` (operators acting on
their own authority) still adds people at once.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from tenants.models import Invitation, Membership

audit_log = logging.getLogger("engarde.audit")


def invite(request, email: str, role: str) -> Invitation:
    """A new invitation, or the pending one for this address with its role updated and a new link."""
    invitation = Invitation.objects.filter(email=email).first() or Invitation(email=email)
    invitation.role, invitation.invited_by = role, request.user
    token = invitation.new_token()
    invitation.save()
    send(request, invitation, token)
    audit_log.info("user %s invited %s as %s to tenant %s", request.user.pk, email, role, request.tenant.slug)
    return invitation


def resend(request, invitation: Invitation) -> None:
    token = invitation.new_token()
    invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
    send(request, invitation, token)
    audit_log.info("user %s resent the invitation of %s to tenant %s", request.user.pk, invitation.email,
                   request.tenant.slug)


def account_for(email: str):
    """The one account using this address (as e-mail or username), or ``None``."""
    matches = list(get_user_model().objects.filter(Q(email__iexact=email) | Q(username__iexact=email))[:2])
    return matches[0] if len(matches) == 1 else None


def send(request, invitation: Invitation, token: str) -> None:
    tenant = request.tenant
    inviter = request.user.get_full_name() or request.user.email or request.user.get_username()
    link = request.build_absolute_uri(reverse("invitation", args=[tenant.slug, token]))
    existing = account_for(invitation.email)
    context = {
        "tenant": tenant, "inviter": inviter, "link": link, "invitation": invitation,
        "role": invitation.get_role_display().lower(),
        "new_account": existing is None or not existing.has_usable_password(),
    }
    subject = render_to_string("tenants/invitation_subject.txt", context).strip()
    body = render_to_string("tenants/invitation_email.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])


def accept(invitation: Invitation, user) -> Membership:
    """Make the membership the invitation offered (inside the invitation's tenant context)."""
    membership, _ = Membership.objects.update_or_create(user=user, defaults={"role": invitation.role})
    audit_log.info("user %s accepted the invitation of %s as %s to tenant %s", user.pk, invitation.email,
                   invitation.role, invitation.tenant_id)
    invitation.delete()
    return membership
