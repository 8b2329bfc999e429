"""Shared pieces of the tenant-scoped read API."""

from __future__ import annotations

import re
from types import SimpleNamespace

from django import forms
from django.db import models
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError

# What a query parameter may hold, as JSON Schema (the OpenAPI schema prints these, and the API
# checks each value against them before the filter form sees it, so the two cannot disagree).
NO_NUL = "^[^\\u0000]*$"
ISO_DAY = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def parameter_schema(field: forms.Field, override: dict | None = None) -> dict:
    if override:
        return override
    if isinstance(field, forms.ChoiceField):
        return {"type": "string", "enum": [str(value) for value, _label in field.choices if value != ""]}
    if isinstance(field, forms.DateField):
        return {"type": "string", "format": "date", "pattern": ISO_DAY}
    schema = {"type": "string", "pattern": NO_NUL}
    if getattr(field, "max_length", None):
        schema["maxLength"] = field.max_length
    return schema


def filter_parameters(form_class, aliases: dict[str, str]) -> dict[str, tuple[str, dict, str]]:
    """Query name -> (the form's field name, its JSON Schema, its description), for a filter form."""
    form = form_class({}, tenant=SimpleNamespace(timezone="UTC"))
    names = {field: name for name, field in {**getattr(form_class, "QUERY_NAMES", {}), **aliases}.items()}
    overrides = getattr(form_class, "parameter_schemas", {})
    descriptions = getattr(form_class, "descriptions", {})
    return {
        names.get(name, name): (
            name, parameter_schema(field, overrides.get(name)),
            descriptions.get(name) or field.help_text or str(field.label or name),
        )
        for name, field in form.fields.items()
    }


def schema_errors(value: str, schema: dict) -> str:
    """Why ``value`` does not fit ``schema`` (the few keywords ``parameter_schema`` writes), or ""."""
    if "enum" in schema and value not in schema["enum"]:
        return "Not one of: " + ", ".join(schema["enum"]) + "."
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"At most {schema['maxLength']} characters."
    # JSON Schema patterns are ECMAScript; ours are written to mean the same in Python (fullmatch:
    # ``$`` must not match before a trailing newline).
    if "pattern" in schema and not re.fullmatch(schema["pattern"].replace("\\u0000", "\x00"), value):
        return "Not in the expected form" + (" (YYYY-MM-DD)." if schema["pattern"] == ISO_DAY else ".")
    return ""


class TenantScopedViewSet(viewsets.ReadOnlyModelViewSet):
    """A read-only view of one tenant-owned model.

    The queryset is built per request, inside the request's tenant context, from the model's
    fail-closed manager: there is no class-level queryset that could be evaluated unscoped.

    ``filter_form``: the list's search and filters, a form taking the query string and the tenant
    (the pages' own filter forms, so the API filters as the pages do). ``?search=`` is the form's
    ``q``. An empty value is no filter; a value that does not parse is a 400 naming the parameter.
    """

    model: type[models.Model]
    ordering: tuple[str, ...] = ("-pk",)
    filter_form = None
    #: API parameter -> the form's field, where the pages call it something else
    query_aliases = {"search": "q"}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no tenant, no rows
            return models.QuerySet(self.model).none()
        queryset = self.filter_queryset_for_request(self.model.objects.order_by(*self.ordering))
        if self.filter_form is not None and self.action == "list":
            queryset = self.filtered(queryset)
        return queryset

    def filtered(self, queryset):
        data, errors = {}, {}
        for name, (field, schema, _description) in filter_parameters(self.filter_form, self.query_aliases).items():
            value = self.request.query_params.get(name, "")
            if value and (problem := schema_errors(value, schema)):
                errors[name] = [problem]
            data[field] = value
        # Keyed by the form's field names, which the form also takes (it maps ``from`` to ``date_from``).
        form = self.filter_form(data, tenant=self.request._request.tenant)
        if not errors and not form.is_valid():
            names = {field: name for name, (field, *_rest) in filter_parameters(self.filter_form, self.query_aliases).items()}
            errors = {names.get(field, field): list(messages) for field, messages in form.errors.items()}
        if errors:
            raise ValidationError(errors)
        return form.filter(queryset)

    def filter_queryset_for_request(self, queryset):
        return queryset

