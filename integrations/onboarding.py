"""One admin page to onboard a tenant: its name, slug, owner's e-mail (invited), time zone, report
e-mail and its first platforms, instead of the tenant form, a user pop-up and a two-step add per
integration. It is the tenant admin's "add" page.

The platforms chosen are created switched off (not connected): each needs its secrets, entered on
its own page, to which the tenant's page links. The owner gets the tenant's invitation.
"""

import logging
import zoneinfo

from django import forms
from django.db import transaction

from integrations.models import TenantIntegration
from integrations.registry import PROVIDERS
from tenants import invitations
from tenants.context import tenant_context
from tenants.models import Membership, Tenant

audit_log = logging.getLogger("engarde.audit")


def timezone_choices():
    return [(name, name) for name in sorted(zoneinfo.available_timezones()) if "/" in name or name == "UTC"]


class OnboardTenantForm(forms.ModelForm):
    owner_email = forms.EmailField(label="Owner's e-mail", help_text="They get an e-mail inviting them to the tenant.")
    timezone = forms.ChoiceField(choices=timezone_choices, initial="UTC",
                                 help_text="The tenant's days, times and weekly report follow it.")
    platforms = forms.MultipleChoiceField(
        label="First platforms", required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(name, provider.label) for name, provider in PROVIDERS.items()],
        help_text="Made now, not connected yet: each one's secrets are entered on its own page next.",
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug", "owner_name", "owner_email", "timezone", "report_email", "platforms"]


def onboard(request, form: OnboardTenantForm) -> Tenant:
    """Create the tenant, invite its owner and make its first (not yet connected) integrations, all
    or nothing."""
    with transaction.atomic():
        tenant = form.save()
        with tenant_context(tenant):
            invite_owner(request, tenant, form.cleaned_data["owner_email"])
            for name in form.cleaned_data["platforms"]:
                TenantIntegration.objects.create(provider=name, is_active=False)
    audit_log.info("user %s onboarded tenant %s (platforms: %s)", request.user.pk, tenant.slug,
                   ", ".join(form.cleaned_data["platforms"]) or "none")
    return tenant


def invite_owner(request, tenant, email: str) -> None:
    """The members page's invitation, as owner: the e-mail names the tenant and the operator."""
    previous = getattr(request, "tenant", None)
    request.tenant = tenant  # invitations.invite names the request's tenant
    try:
        invitations.invite(request, email, Membership.Role.OWNER)
    finally:
        request.tenant = previous
