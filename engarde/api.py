"""Shared pieces of the tenant-scoped read API."""

from django.db import models
from rest_framework import viewsets


class TenantScopedViewSet(viewsets.ReadOnlyModelViewSet):
    """A read-only view of one tenant-owned model.

    The queryset is built per request, inside the request's tenant context, from the model's
    fail-closed manager: there is no class-level queryset that could be evaluated unscoped.
    """

    model: type[models.Model]
    ordering: tuple[str, ...] = ("-pk",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no tenant, no rows
            return models.QuerySet(self.model).none()
        return self.filter_queryset_for_request(self.model.objects.order_by(*self.ordering))

    def filter_queryset_for_request(self, queryset):
        return queryset
