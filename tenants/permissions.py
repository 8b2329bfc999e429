from rest_framework.permissions import BasePermission

from tenants.staff import VIEW_TENANT, acting_as_staff, model_permission, staff_allowed


def _staff_permission(view, action: str) -> list[str]:
    """What staff need for this view: ``view.staff_permission`` when it names one (views without a
    model), else the ``action`` permission of ``view.model``; nothing known: refused."""
    if action == "view" and getattr(view, "staff_permission", ""):
        return [view.staff_permission]
    model = getattr(view, "model", None)
    return [model_permission(model, action)] if model is not None else []


class IsTenantMember(BasePermission):
    """The request acts for a tenant: a member of it, or staff who named it and hold the view
    permission of what the view shows."""

    message = "You are not a member of any tenant, or not of the one you named, or lack the permission."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated and getattr(request._request, "tenant", None)):
            return False
        if acting_as_staff(request._request):
            needed = _staff_permission(view, "view")
            return bool(needed) and staff_allowed(request._request, VIEW_TENANT, *needed)
        return True


class IsTenantAdmin(IsTenantMember):
    message = "Only the tenant's owners and admins may do this."

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if acting_as_staff(request._request):
            return staff_allowed(request._request, *_staff_permission(view, "change"))
        membership = getattr(request._request, "membership", None)
        return bool(membership and membership.is_admin)



class IsTenantAdminToRead(IsTenantMember):
    """Reads for the tenant's owners and admins only (members are refused); staff who named the
    tenant need only the view permission (``staff_permission``), as for any read."""

    message = "Only the tenant's owners and admins may see this."

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if acting_as_staff(request._request):
            return True
        membership = getattr(request._request, "membership", None)
        return bool(membership and membership.is_admin)
