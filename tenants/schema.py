"""Tells drf-spectacular how the API authenticates, so the OpenAPI schema documents it."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token of one tenant, from its `/tokens/` page or `manage.py add_tenant_user`."}
