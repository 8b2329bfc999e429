"""Which tenant a signed-in request acts for.

- A user with memberships acts for the tenant named by ``?tenant=<slug or id>`` (or the
  ``X-Tenant`` header, or the tenant picked earlier in the session) when it is one of theirs; with
  none named, for their earliest membership. Naming a tenant that is not theirs gives no tenant.
- Staff act through their own memberships like anyone else; naming a tenant they are not in makes
  the request act for it through staff powers (``staff=True``), which ``tenants.staff`` limits to
  the Django permissions they hold. A staff user with no membership must name a tenant.
- A request with an API token acts for the token's tenant, with its creator's membership at the
  token's role (``ApiToken.authenticate``), and for no other: naming another tenant is refused
  with 403 (``forbidden``), whatever else its creator belongs to; no session is read.
- Anyone else (anonymous, or a user with no membership) has no tenant: tenant views answer 403,
  never "everything".
"""

from __future__ import annotations

from dataclasses import dataclass

from tenants.models import Membership, Tenant
from tenants.staff import VIEW_TENANT

SESSION_KEY = "tenant"


@dataclass
class Resolution:
    tenant: Tenant | None = None
    membership: Membership | None = None
    # True when the request named a tenant the user may not act for.
    refused: bool = False
    # True when the user may act for more than one tenant (the header offers "switch").
    can_switch: bool = False
    # True when the tenant is reached through staff powers rather than a membership.
    staff: bool = False
    # True when staff named a tenant without ``tenants.view_tenant``: 403, not 404.
    forbidden: bool = False


def requested_tenant_key(request) -> tuple[str, bool]:
    """The tenant the request names, and whether it named it explicitly (URL or header) rather
    than through the tenant remembered in the session."""
    explicit = request.GET.get("tenant") or request.headers.get("X-Tenant")
    if explicit:
        return explicit, True
    return (request.session.get(SESSION_KEY, "") if hasattr(request, "session") else ""), False


def resolve_request_tenant(request) -> Resolution:
    token = getattr(request, "api_token", None)
    if token is not None:
        named = request.GET.get("tenant") or request.headers.get("X-Tenant")
        if named and named.lower() not in (token.tenant.slug, str(token.tenant.pk)):
            return Resolution(refused=True, forbidden=True)
        return Resolution(tenant=token.tenant, membership=token.membership)
    user = request.user
    if not user.is_authenticated:
        return Resolution()
    key, explicit = requested_tenant_key(request)
    resolution = _resolve(user, key)
    if resolution.refused and not explicit:
        # A remembered tenant the user may no longer act for (membership removed, tenant
        # deleted): forget it and fall back, rather than locking every page.
        request.session.pop(SESSION_KEY, None)
        resolution = _resolve(user, "")
    return resolution


def _resolve(user, key: str) -> Resolution:
    memberships = Membership.of_user(user)
    can_switch = len(memberships) > 1 or user.is_staff
    if key:
        key = key.lower()
        for membership in memberships:
            if key in (membership.tenant.slug, str(membership.tenant.pk)):
                return Resolution(tenant=membership.tenant, membership=membership, can_switch=can_switch)
        if user.is_staff:
            tenant = Tenant.resolve(key, active_only=False)
            if tenant is not None and not user.has_perm(VIEW_TENANT):
                return Resolution(refused=True, forbidden=True, can_switch=True)
            return Resolution(tenant=tenant, refused=tenant is None, can_switch=True, staff=tenant is not None)
        return Resolution(refused=True)
    if memberships:
        return Resolution(tenant=memberships[0].tenant, membership=memberships[0], can_switch=can_switch)
    return Resolution(can_switch=can_switch)
