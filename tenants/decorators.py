"""Guards for the tenant users' pages.

A page always belongs to the tenant the request acts for (``TenantMiddleware``). Naming a tenant
the user is not in is a 404, like any other page of a tenant they cannot see; a signed-in user with
no tenant gets a page saying so (403); staff pick a tenant first. The page renders in the tenant's
time zone.
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


def can_administer(request) -> bool:
    """Owners and admins of the tenant, and staff."""
    return request.user.is_staff or bool(request.membership and request.membership.is_admin)


def tenant_page(view=None, *, admin_only=False):
    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.tenant_refused:
                raise Http404("No such page.")
            if request.tenant is None:
                if request.user.is_staff:
                    return redirect(f"{reverse('pick-tenant')}?{urlencode({'next': request.get_full_path()})}")
                return render(request, "tenants/no_tenant.html", status=403)
            if admin_only and not can_administer(request):
                raise PermissionDenied("Only the tenant's owners and admins may do this.")
            # Every time on a tenant's page is in the tenant's zone (pages say which one).
            with timezone.override(ZoneInfo(request.tenant.timezone or "UTC")):
                return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view else decorate
