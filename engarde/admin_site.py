"""The operators' admin: Django's admin, with every view inside an explicit operator context.

Tenant-owned models fail closed outside a tenant or operator context, and PostgreSQL row-level
security shows no rows without one. The admin is the operators' cross-tenant tool, so instead of
scoping each ``ModelAdmin`` by hand, the site wraps every view it serves (``admin_view`` is what
``AdminSite.get_urls`` and ``ModelAdmin.get_urls`` route through) in ``operator_context``, after
Django's own staff check: a non-staff user is sent to the login page before any context opens.

Installed as the default site (``EnGardeAdminConfig`` in ``INSTALLED_APPS``), so ``admin.site``
and ``@admin.register`` everywhere, contrib.auth's included, mean this site.
"""

from functools import wraps

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

from tenants.context import operator_context


def in_operator_context(view):
    """Run ``view`` and render its response inside ``operator_context``, reason logged."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        with operator_context(f"admin {request.user.pk} {request.path}"):
            response = view(request, *args, **kwargs)
            # Admin pages are TemplateResponses, rendered after the view returns; their lazy
            # querysets (change list rows, inline rows, related lookups) must run while the
            # context, and on PostgreSQL its transaction, is still open.
            if callable(getattr(response, "render", None)) and not response.is_rendered:
                response.render()
            return response

    return wrapper


class EnGardeAdminSite(admin.AdminSite):
    site_header = "En Garde operators"
    site_title = "En Garde admin"
    index_title = "Tenants and their integrations"

    def admin_view(self, view, cacheable=False):
        # The permission check wraps the context, not the other way round: only staff get one.
        return super().admin_view(in_operator_context(view), cacheable)


class EnGardeAdminConfig(AdminConfig):
    default_site = "engarde.admin_site.EnGardeAdminSite"
