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

    def update(self, **kwargs):
        self._check_relations(kwargs)
        return super().update(**kwargs)

    def _check_relations(self, values):
        """An update may only point rows at rows of their own tenant (``stamp_tenant`` does the
        same for saves): the target's tenant is looked up, and every updated row must share it."""
        from tenants.models import tenant_relations

        for field in tenant_relations(self.model):
            target = values.get(field.name, values.get(field.attname))
            if target is None or hasattr(target, "resolve_expression"):
                continue
            target_pk = getattr(target, "pk", target)
            owners = field.related_model._base_manager.filter(pk=target_pk).values_list("tenant_id", flat=True)
            owner = next(iter(owners), None)
            if owner is None or self.exclude(tenant_id=owner).exists():
                raise TenantNotSet(f"{self.model.__name__}.{field.name} would point at another tenant's row")

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
        # The filtered queryset is built once per manager and cloned for each use: building it
        # (resolving the condition) cost ten times the clone, six times per webhook event. Safe to
        # share: ActiveTenant reads the scope when the SQL is compiled, never when it is built,
        # and the shared one is never evaluated (a clone carries no results). Keyed on what the
        # build depends on, since Django copies managers (inheritance, ``db_manager``).
        # A new queryset around a clone of the query, not ``_chain()``: that would share the
        # cached one's ``_known_related_objects`` dict, which combining querysets (``|``) updates
        # in place.
        key = (self.model, self._db)
        cached = self.__dict__.get("_walled_query")
        if cached is None or cached[0] != key:
            cached = (key, super().get_queryset().filter(ActiveTenant(F("tenant_id"))).query)
            self._walled_query = cached
        return self._queryset_class(model=self.model, query=cached[1].chain(), using=self._db, hints=self._hints)
