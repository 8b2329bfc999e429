from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from tenants.models import ApiToken


def authenticate_bearer(request) -> None:
    """Check an ``Authorization: Bearer`` token and make its creator the request's user. The
    token's tenant, and the creator's membership there at the token's role, become the request's
    tenant and membership (``tenants.resolution``).

    A bad token is remembered, not ignored: the API answers 401 rather than treating the caller
    as anonymous (or as whoever the session cookie says)."""
    request.api_token = None
    request.bearer_invalid = False
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer":
        return
    token = ApiToken.authenticate(key.strip()) if key.strip() else None
    if token is None:
        request.bearer_invalid = True
        return
    request.api_token = token
    request.user = token.created_by


class BearerTokenAuthentication(BaseAuthentication):
    """DRF's view of what ``TenantMiddleware`` found in the ``Authorization`` header."""

    def authenticate(self, request):
        django_request = request._request
        if getattr(django_request, "bearer_invalid", False):
            raise AuthenticationFailed("Invalid token.")
        token = getattr(django_request, "api_token", None)
        if token is not None:
            return (token.created_by, token)
        return None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
