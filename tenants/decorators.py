"""Guards for the tenant users' pages.

A page always belongs to the tenant the request acts for (``TenantMiddleware``). Naming a tenant
the user is not in is a 404, like any other page of a tenant they cannot see; a signed-in user with
no tenant gets a page saying so (403); staff pick a tenant first. The page renders in the tenant's
time zone.

Members pass on their role. Staff acting for a tenant they are not in pass on Django permissions
(``tenants.staff``): each page declares the models it ``reads`` (view permission) and, for pages
that change something, the permission it ``changes`` with.
"""

from functools import wraps
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from tenants.models import Membership
from tenants.staff import ACT_AS_OWNER, VIEW_TENANT, acting_as_staff, staff_allowed


def can_administer(request, permission: str = "") -> bool:
    """Owners and admins of the tenant, and staff who hold ``permission`` (a change permission such
    as ``"webhooks.change_webhooklog"``; none named: full operators only)."""
    if acting_as_staff(request):
        return staff_allowed(request, *([permission] if permission else []))
    return bool(request.membership and request.membership.is_admin)


def tenant_page(view=None, *, admin_only=False, reads=(), changes=""):
    """``reads``: the view permissions staff need to see the page; ``changes``: the permission
    an ``admin_only`` page needs from staff."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.tenant_forbidden:
                raise PermissionDenied("Your staff account may not see tenants outside the admin.")
            if request.tenant_refused:
                raise Http404("No such page.")
            if request.tenant is None:
                if request.user.is_staff:
                    return redirect(f"{reverse('pick-tenant')}?{urlencode({'next': request.get_full_path()})}")
                return render(request, "tenants/no_tenant.html", {
                    "deactivated": Membership.deactivated_tenants_of(request.user),
                }, status=403)
            if acting_as_staff(request) and not (reads and staff_allowed(request, VIEW_TENANT, *reads)):
                raise PermissionDenied("Your staff account may not see this tenant's data here.")
            if admin_only and not can_administer(request, changes):
                raise PermissionDenied("Only the tenant's owners and admins may do this.")
            # Every time on a tenant's page is in the tenant's zone (pages say which one).
            with timezone.override(ZoneInfo(request.tenant.timezone or "UTC")):
                return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view else decorate


def acts_as_owner(request) -> bool:
    """May make, demote and remove owners: an owner of the tenant, or staff with ``act_as_owner``."""
    if acting_as_staff(request):
        return staff_allowed(request, ACT_AS_OWNER)
    return bool(request.membership and request.membership.role == "owner")


def outside_tenant_transaction(view):
    """Mark a view that waits on a platform (check connection): ``TenantMiddleware`` resolves its
    tenant as usual but opens no transaction around it, so none is held across the HTTP call. The
    view opens ``tenant_context(request.tenant)`` itself, briefly, for what it reads or writes."""
    view.tenant_transaction = False
    return view
