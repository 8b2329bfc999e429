"""The ORM wall: a default manager that fails closed.

Every query path of a tenant-owned model goes through ``get_queryset()`` (filter, get, exists,
count, aggregate, values, create, bulk_create, update, delete, related managers), so raising there
when no tenant is active covers them all. Inside ``tenant_context`` the queryset is filtered by the
tenant; inside ``operator_context`` it is not filtered (operators work across tenants).
"""

from django.db import models

from tenants.context import TenantNotSet, current_tenant_id, is_operator


class TenantQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.stamp_tenant()
        return super().bulk_create(objs, *args, **kwargs)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    def get_queryset(self):
        tenant_id = current_tenant_id()
        queryset = super().get_queryset()
        if tenant_id is not None:
            return queryset.filter(tenant_id=tenant_id)
        if is_operator():
            return queryset
        raise TenantNotSet(
            f"{self.model.__name__} is tenant-owned: query it inside tenant_context(tenant) "
            "or an explicit operator_context(reason)"
        )
