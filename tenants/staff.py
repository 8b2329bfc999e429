"""What staff may do for a tenant outside the admin: Django's permissions, as the admin uses them.

Staff who are not members of a tenant act for it only when they name it (``?tenant=``, ``X-Tenant``
or the tenant picked earlier), and then each page and API view asks for the permission of the data
it shows or changes:

- reading a model's rows needs ``tenants.view_tenant`` and the model's ``view_<model>`` permission
  (``contacts.view_contact``, …);
- changing them needs ``change_<model>`` (replay: ``webhooks.change_webhooklog``; saving a
  connection: ``integrations.change_tenantintegration``; members: ``tenants.change_membership``);
- making, demoting or removing owners needs ``tenants.act_as_owner``, and replacing or generating a
  tenant's secrets and tokens needs ``tenants.rotate_secrets`` (custom permissions of ``Tenant``).

A page or API view that does not declare what it reads is closed to staff acting for a tenant
until it says which permission opens it. Every request a staff user
makes for a tenant is written to the ``engarde.audit`` log, with the permissions it was allowed or
refused on (the reason), after the response.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_permission_codename

audit_log = logging.getLogger("engarde.audit")

ACT_AS_OWNER = "tenants.act_as_owner"
ROTATE_SECRETS = "tenants.rotate_secrets"
VIEW_TENANT = "tenants.view_tenant"


def model_permission(model, action: str) -> str:
    """``"contacts.view_contact"`` for ``(Contact, "view")``."""
    return f"{model._meta.app_label}.{get_permission_codename(action, model._meta)}"


def acting_as_staff(request) -> bool:
    """The request acts for a tenant through staff powers, not through a membership."""
    return bool(getattr(request, "staff_acting", False))


def staff_allowed(request, *permissions: str) -> bool:
    """Whether the staff user holds every permission; each answer is kept for the audit line.
    No permission named means the caller did not say what it needs: only full operators pass."""
    permissions = permissions or (ACT_AS_OWNER,)
    grants = request.__dict__.setdefault("staff_grants", {})
    allowed = True
    for permission in permissions:
        grants[permission] = request.user.has_perm(permission)
        allowed = allowed and grants[permission]
    return allowed


def audit_staff_request(request, response) -> None:
    """One line per staff request for a tenant: who, what, which tenant, the answer, and why."""
    grants = getattr(request, "staff_grants", {})
    reason = ", ".join(f"{p} {'granted' if ok else 'refused'}" for p, ok in grants.items()) or "no permission checked"
    audit_log.info(
        "staff user %s (%s) %s %s for tenant %s: %s (%s)",
        request.user.pk, request.user.get_username(), request.method, request.path,
        request.tenant.slug, response.status_code, reason,
    )
