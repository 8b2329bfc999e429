from rest_framework.permissions import BasePermission


class IsTenantMember(BasePermission):
    """The request acts for a tenant: a member of it, or staff who named it."""

    message = "You are not a member of any tenant, or not of the one you named."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and getattr(request._request, "tenant", None))


class IsTenantAdmin(IsTenantMember):
    message = "Only the tenant's owners and admins may do this."

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if request.user.is_staff:
            return True
        membership = getattr(request._request, "membership", None)
        return bool(membership and membership.is_admin)
