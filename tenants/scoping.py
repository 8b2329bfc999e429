"""The tenant scope applied where the SQL is compiled, not where the queryset was built.

Three ways round the ORM wall used to exist (issue 7.14): a queryset built inside
``operator_context`` and evaluated later for a tenant, ``objects.raw()``, and joins into tenant
tables from a model that is not tenant-owned (``Tenant.objects.annotate(Count("contacts"))``).
Each is closed here at the level where all queries pass:

- ``ActiveTenant(column)`` is a condition that reads the scope when its SQL is generated: the
  active tenant's id, nothing in an operator context, ``TenantNotSet`` with no scope. The
  fail-closed manager filters every queryset with it.
- Every relation of a tenant-owned model adds it to the JOIN of the tenant-owned side
  (``get_extra_restriction``, Django's hook for extra join conditions), whichever model the query
  started from: a tenant's join shows no other tenant's rows, and with no scope the join raises.
- ``TenantRawQuery`` wraps raw SQL in ``SELECT * FROM (...) WHERE tenant_id = <active>`` when it
  runs, so its result must carry the ``tenant_id`` column (it fails otherwise, never guesses).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from django.core.exceptions import FullResultSet
from django.db import connections
from django.db.models import BooleanField, Expression, UUIDField
from django.db.models.signals import class_prepared
from django.db.models.sql.query import RawQuery

from tenants.context import TenantNotSet, _scope

_UUID = UUIDField()


def is_tenant_owned(model) -> bool:
    """``TenantOwned`` sets the marker (imported from here, so no import cycle)."""
    return isinstance(model, type) and getattr(model, "_tenant_owned", False)


def _active_tenant_value(connection, what: str):
    """The active tenant's id as the database stores it; ``None`` for an operator context."""
    scope = _scope.get()
    if scope.tenant_id is not None:
        return _UUID.get_db_prep_value(uuid.UUID(scope.tenant_id), connection)
    if scope.operator:
        return None
    raise TenantNotSet(f"{what} is tenant-owned: query it inside tenant_context(tenant) or operator_context(reason)")


class ActiveTenant(Expression):
    """``<column> = <the tenant active when this is compiled>``; always true for operators."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, column, in_join: bool = False):
        super().__init__()
        self.column = column
        # In a JOIN's ON clause "no condition" must be spelt out: Django compiles it unguarded.
        self.in_join = in_join

    def get_source_expressions(self):
        return [self.column]

    def set_source_expressions(self, exprs):
        (self.column,) = exprs

    def as_sql(self, compiler, connection):
        value = _active_tenant_value(connection, getattr(self.column.target.model, "__name__", "a table"))
        if value is None:
            if self.in_join:
                return "1 = 1", ()
            raise FullResultSet
        column_sql, params = compiler.compile(self.column)
        return f"{column_sql} = %s", (*params, value)


def _restriction(model, alias):
    if alias is None or not is_tenant_owned(model):
        return None
    return ActiveTenant(model._meta.get_field("tenant").get_col(alias), in_join=True)


def _restrict_relations(sender, **kwargs):
    """Give each relation of a tenant-owned model the tenant condition on its tenant-owned side.

    Django asks the field for a forward JOIN (``alias`` is the related model's table), the
    reverse relation for a reverse JOIN (``alias`` is this model's table), and the field with
    ``alias=None`` when an ``exclude()`` pushes a reverse join down into a subquery (then
    ``related_alias`` is this model's table)."""
    if not is_tenant_owned(sender) or sender._meta.abstract:
        return
    for field in sender._meta.local_fields:
        if not field.is_relation or field.remote_field is None:
            continue
        field.get_extra_restriction = lambda alias, related_alias, f=field: (
            _restriction(f.related_model, alias) if alias is not None else _restriction(f.model, related_alias)
        )
        field.remote_field.get_extra_restriction = lambda alias, related_alias, f=field: _restriction(f.model, alias)


class_prepared.connect(_restrict_relations, dispatch_uid="tenants.scoping.restrict_relations")


class TenantRawQuery(RawQuery):
    """Raw SQL of a tenant-owned model, filtered by the scope active when it runs."""

    def __init__(self, sql, using, params=(), model=None):
        super().__init__(sql, using, params=params)
        self.model = model

    def clone(self, using):
        return TenantRawQuery(self.sql, using, params=self.params, model=self.model)

    def _execute_query(self):
        value = _active_tenant_value(connections[self.using], self.model.__name__)
        if value is None:
            return super()._execute_query()
        original_sql, original_params = self.sql, self.params
        wrapped = f"SELECT * FROM ({original_sql}) engarde_scoped WHERE engarde_scoped.tenant_id = "
        if isinstance(original_params, Mapping):
            self.sql, self.params = wrapped + "%(engarde_tenant_id)s", {**original_params, "engarde_tenant_id": value}
        else:
            self.sql, self.params = wrapped + "%s", (*(original_params or ()), value)
        try:
            return super()._execute_query()
        finally:
            self.sql, self.params = original_sql, original_params
