"""The ORM wall: a default manager that fails closed.

Every query path of a tenant-owned model goes through ``get_queryset()`` (filter, get, exists,
count, aggregate, values, create, bulk_create, update, delete, related managers, raw), so raising
there when no tenant is active covers them all. The queryset it returns carries the tenant
condition of ``tenants.scoping``, which reads the scope when the SQL is compiled: the rows of the
tenant active *then*, every row inside ``operator_context``, ``TenantNotSet`` with no scope. A
queryset built in one scope and evaluated in another therefore follows the later one.
"""

from django.db import models
from django.db.models import F

from tenants.context import TenantNotSet, current_tenant_id, is_operator
from tenants.scoping import ActiveTenant, TenantRawQuery


class TenantQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.stamp_tenant()
        return super().bulk_create(objs, *args, **kwargs)

    def raw(self, raw_query, params=(), translations=None, using=None):
        queryset = super().raw(raw_query, params=params, translations=translations, using=using)
        queryset.query = TenantRawQuery(raw_query, queryset.db, params=params, model=self.model)
        return queryset


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    def get_queryset(self):
        if current_tenant_id() is None and not is_operator():
            raise TenantNotSet(
                f"{self.model.__name__} is tenant-owned: query it inside tenant_context(tenant) "
                "or an explicit operator_context(reason)"
            )
        return super().get_queryset().filter(ActiveTenant(F("tenant_id")))
