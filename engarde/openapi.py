"""What the OpenAPI schema (``/api/schema/``) says beyond what drf-spectacular reads from a view.

- Every operation that acts for a tenant takes ``?tenant=`` and ``X-Tenant``, and documents the
  401, 403 and 404 it can answer (``TenantAwareSchema``).
- A list with a filter form (``TenantScopedViewSet.filter_form``) documents each of its fields as
  a query parameter with the JSON Schema the view checks values against (``engarde.api``), so the
  schema and the filter cannot drift apart.
- The webhook receiver is a plain Django view on raw bytes (no DRF): it is described by hand
  (``add_webhook_receiver``, a post-processing hook).

Wiring, not a layer of its own: settings name it, nothing imports it.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from engarde.api import filter_parameters
from tenants.permissions import IsTenantMember


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in a sentence.")


TENANT_PARAMETERS = [
    OpenApiParameter(
        "tenant", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
        description="The tenant to act for, by slug or id, when your account belongs to several (or you are "
        "staff). Without it: your first tenant. A tenant you do not belong to is a 403.",
    ),
    OpenApiParameter(
        "X-Tenant", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
        description="The same as `?tenant=`, as a header.",
    ),
]

ERRORS = {
    "401": OpenApiResponse(ErrorSerializer, description="No credentials, or an API token that is not valid."),
    "403": OpenApiResponse(
        ErrorSerializer,
        description="You belong to no tenant, not to the one you named, or your role (or staff permissions) "
        "does not allow this.",
    ),
    "404": OpenApiResponse(
        ErrorSerializer, description="Nothing by that id or name for you (another tenant's rows and tenants do "
        "not exist for you), or, in a list, a page number past the end.",
    ),
}
# A NUL anywhere in a request under /api/ is refused before any view (engarde.middleware).
UNSTORABLE = {
    "type": "object", "required": ["status", "reason"],
    "properties": {"status": {"type": "string", "enum": ["bad_request"]}, "reason": {"type": "string"}},
}
BAD_REQUEST = {
    "description": "A NUL character in the path, the query or a header.",
    "content": {"application/json": {"schema": UNSTORABLE}},
}
INVALID = {
    "description": "A filter value that does not parse: the answer names each parameter and why (or a NUL "
                   "character anywhere in the request).",
    "content": {"application/json": {"schema": {"anyOf": [
        {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
         "example": {"from": ["Enter a valid date."]}},
        UNSTORABLE,
    ]}}},
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http", "scheme": "bearer",
            "description": "`Authorization: Bearer <token>`: an API token of your tenant, made on its `/tokens/` page; it answers for that tenant only (README: API tokens).",
        }


class TenantAwareSchema(AutoSchema):
    def _acts_for_a_tenant(self) -> bool:
        return any(isinstance(p, IsTenantMember) for p in self.view.get_permissions())

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._acts_for_a_tenant():
            parameters += TENANT_PARAMETERS
        return parameters

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        form_class = getattr(self.view, "filter_form", None)
        if operation is not None and form_class is not None and self._is_list_view():
            # Raw parameter objects: drf-spectacular's cannot say ``allowEmptyValue`` (an empty value
            # is no filter) or ``maxLength``; the schemas are the ones the view checks values against.
            operation["parameters"] = sorted([*operation.get("parameters", []), *(
                {"name": name, "in": "query", "required": False, "allowEmptyValue": True,
                 "description": description, "schema": schema}
                for name, (_field, schema, description) in filter_parameters(form_class, self.view.query_aliases).items()
            )], key=lambda p: (p["in"], p["name"]))
        return operation

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        if getattr(self.view, "filter_form", None) is not None and self._is_list_view():
            responses.setdefault("400", INVALID)
        responses.setdefault("400", BAD_REQUEST)
        if self.get_auth():
            for code in ("401", "403"):
                responses.setdefault(code, self._get_response_for_code(ERRORS[code], code))
        if self._acts_for_a_tenant() or "{" in self.path:
            responses.setdefault("404", self._get_response_for_code(ERRORS["404"], "404"))
        return responses


# --- the receiver, by hand --------------------------------------------------------------------
_ANSWER = {"type": "object", "properties": {"status": {"type": "string"}}, "additionalProperties": True}


def _answer(description: str, **headers) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": _ANSWER}}}
    if headers:
        response["headers"] = {name: {"schema": {"type": "string"}, "description": text} for name, text in headers.items()}
    return response


RECEIVER_RESPONSES = {
    "400": BAD_REQUEST,
    "200": _answer("Stored (`received`, then processed in the background), a duplicate of a stored delivery "
                   "(counted, not processed again), a known event we ignore, or an answer to the platform's "
                   "endpoint check (Zoom)."),
    "401": _answer("The delivery did not verify with this tenant's secret: stored as `rejected`, nothing "
                   "processed. (`WEBHOOK_REJECTED_STATUS` may make this a 200.)"),
    "404": _answer("Unknown or inactive tenant, unknown source, or the source is not connected for this tenant."),
    "405": _answer("Only POST delivers; GET and HEAD answer a health check.", Allow="GET, HEAD, POST"),
    "413": _answer("Larger than `WEBHOOK_MAX_BODY_BYTES`: not stored."),
    "415": _answer("Not a content type the platform sends."),
    "429": _answer("Too many deliveries for this tenant in the window.", **{"Retry-After": "Seconds to wait."}),
    "503": _answer("The database is unavailable: nothing was stored; send again later.",
                   **{"Retry-After": "Seconds to wait."}),
}


def webhook_sources() -> list[str]:
    from integrations.registry import PROVIDERS

    return sorted(name for name, provider in PROVIDERS.items() if provider.receives_webhooks)


def add_webhook_receiver(result, generator, request, public):
    """Post-processing hook: ``/api/webhooks/{tenant}/{source}/``, where the platforms post."""
    parameters = [
        {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "The tenant's slug or id, as in the webhook URL the setup page shows."},
        {"name": "source", "in": "path", "required": True, "schema": {"type": "string", "enum": webhook_sources()},
         "description": "The platform that sends the deliveries."},
    ]
    result["paths"]["/api/webhooks/{tenant}/{source}/"] = {
        "post": {
            "parameters": parameters,
            "operationId": "webhook_receive",
            "tags": ["webhooks"],
            "summary": "Receive a platform's webhook",
            "description": "Where a platform posts its deliveries. Each is verified with the tenant's own secret "
                           "(the platform's signature header, or the token En Garde generated), stored, and "
                           "processed in the background. Not for API clients: no API token is needed or read.",
            "security": [],
            # The platform's own JSON, as it sends it (some send it as text/plain).
            "requestBody": {"required": False, "content": {
                "application/json": {"schema": {"type": "object", "additionalProperties": True}},
                "text/plain": {"schema": {"type": "string"}},
            }},
            "responses": RECEIVER_RESPONSES,
        },
        "get": {
            "parameters": parameters,
            "operationId": "webhook_health",
            "tags": ["webhooks"],
            "summary": "Check that the webhook URL answers",
            "description": "A health answer for people and platforms checking the URL: no tenant details, no secrets.",
            "security": [],
            "responses": {"200": _answer("The source exists and accepts POST."),
                          "400": BAD_REQUEST, "404": RECEIVER_RESPONSES["404"]},
        },
    }
    return result
