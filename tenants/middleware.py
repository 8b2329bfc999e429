from django.db import transaction
from django.urls import Resolver404, resolve

from tenants.authentication import authenticate_bearer
from tenants.context import tenant_context
from tenants.resolution import SESSION_KEY, requested_tenant_key, resolve_request_tenant
from tenants.staff import audit_log, audit_staff_request

# Paths that pick their tenant themselves: the admin works in an operator context, and webhook
# receivers take the tenant from the URL and prove it with the tenant's secret.
SELF_SCOPED_PREFIXES = ("/admin/", "/api/webhooks/", "/static/")


def _wants_transaction(request) -> bool:
    """False for a view marked ``tenants.decorators.outside_tenant_transaction``."""
    try:
        return getattr(resolve(request.path_info).func, "tenant_transaction", True)
    except Resolver404:
        return True


class TenantMiddleware:
    """Runs each signed-in request inside ``tenant_context`` of the tenant it acts for.

    Sets ``request.tenant`` and ``request.membership`` (``None`` when there is none), and
    ``request.can_switch_tenant`` for a user of several tenants, ``request.staff_acting`` when
    staff act for a tenant they are not in (``tenants.staff``: audited). A tenant chosen with
    ``?tenant=`` on a page is remembered in the session until another is chosen. Bearer tokens
    are checked here, not only in DRF, so pages and the API resolve a tenant the same way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        request.tenant_refused = request.tenant_forbidden = False
        request.can_switch_tenant = False
        request.staff_acting = False
        if request.path.startswith(SELF_SCOPED_PREFIXES):
            return self.get_response(request)
        authenticate_bearer(request)
        resolution = resolve_request_tenant(request)
        request.tenant_refused = resolution.refused
        request.tenant_forbidden = resolution.forbidden
        if resolution.forbidden and request.api_token is not None:
            audit_log.info("API token %s of tenant %s named tenant %s: 403", request.api_token.pk,
                           request.api_token.tenant.slug, requested_tenant_key(request)[0])
        elif resolution.forbidden:
            audit_log.info("staff user %s (%s) %s %s for tenant %s: 403 (tenants.view_tenant refused)",
                           request.user.pk, request.user.get_username(), request.method, request.path,
                           requested_tenant_key(request)[0])
        if resolution.tenant is None:
            return self.get_response(request)
        request.tenant, request.membership = resolution.tenant, resolution.membership
        request.can_switch_tenant = resolution.can_switch
        request.staff_acting = resolution.staff
        if request.GET.get("tenant") and request.api_token is None and hasattr(request, "session"):
            request.session[SESSION_KEY] = resolution.tenant.slug
        if not _wants_transaction(request):
            response = self.get_response(request)
        else:
            response = self._in_tenant_transaction(request, resolution.tenant)
        if request.staff_acting:
            audit_staff_request(request, response)
        return response

    def _in_tenant_transaction(self, request, tenant):
        with tenant_context(tenant):
            response = self.get_response(request)
            if response.status_code >= 500:
                # Django turns a view's exception into a 500 before it reaches us: undo what the
                # view wrote (and its on-commit tasks) instead of committing half a request.
                transaction.set_rollback(True)
        return response
