"""New contacts and payments of a drain batch written together: one multi-row INSERT per table
for the batch instead of one INSERT per row (issue 11: "upserts in as few statements as the
database allows").

Inside ``rows_written_together()`` (``webhooks.processing.process_batch``, on PostgreSQL, inside
the batch's transaction and ``optimistic_writes``), ``create(Contact, ...)`` and
``create(Payment, ...)`` return the row as ``Model.objects.create`` would (its primary key, its
tenant, its timestamps, ``_state`` saved) without sending it yet. The rows are written:

- **before any other statement on the connection** (an execute wrapper, like an ORM session's
  autoflush): whatever a handler runs next, a lookup, an update of the row just made, a lock,
  sees the rows as if they had been inserted one by one. So nothing a handler can do reads a
  table without them, and no handler needs to know they wait;
- and at the end of the block, so the batch's final UPDATE and its commit include them.

Contacts go first, then payments (a payment points at its contact). The primary keys come from
the tables' own sequences, taken ahead (``nextval`` over ``generate_series``): at the block's
first row as many of each as the batch has events, in one statement, then doubling: a
payment can point at its contact, a delivery link can name it and a notice can be queued for it
before either is written. Unused ids are gaps in the sequence, as a rolled-back insert leaves.

A waiting row is written by ``bulk_create``: neither ``save()`` nor any model signal runs for it.
What every write of these models must do lives in their ``normalize()`` (before) and
``after_save()`` (after), which ``create`` calls as ``save`` does; their ``save`` writes what waits
first (``flush``), so a row saved again before any other statement keeps ``created_at`` no later
than ``updated_at``. Changes made to a waiting row in memory are written with it, saved or not.

A refusal (a unique key: a stale "absent" of the batch's lookups, a concurrent writer) comes out
of whatever statement flushed the rows, as an ``IntegrityError`` that ``optimistic_writes``
would have raised from the ``create`` itself: the batch rolls back whole and its rows are
processed one by one, where ``create`` is the plain ``objects.create`` in a savepoint. A rolled-back
batch writes nothing, so taking the rows' ids ahead changes nothing of what is stored.

Outside the block, or on SQLite (no sequences; the embedded default), ``create`` is
``Model.objects.create``.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

from django.db import DEFAULT_DB_ALIAS, connections

#: Ids taken at most at once from a sequence (the doubling stops here).
MAX_IDS_AHEAD = 256


class _Pending:
    def __init__(self, connection, models: tuple, expected: int):
        self.connection = connection
        self.expected = max(1, expected)
        self.rows: dict[type, list] = {model: [] for model in models}  # in the order they are written
        self.ids: dict[type, list[int]] = {model: [] for model in models}
        self.taken: dict[type, int] = {model: 0 for model in models}
        self.flushing = False

    def next_id(self, model) -> int:
        if not self.ids[model]:
            if not any(self.taken.values()):
                # The first row of the block: ids for every model at once, as many as it expects
                # rows (a batch's events: most make one contact and one payment), in one statement.
                self._take(list(self.rows), min(MAX_IDS_AHEAD, self.expected))
            else:
                self._take([model], min(MAX_IDS_AHEAD, max(1, self.taken[model])))  # then doubling
        return self.ids[model].pop(0)

    def _take(self, models: list, count: int) -> None:
        columns = ", ".join(["nextval(pg_get_serial_sequence(%s, %s))"] * len(models))
        params = [value for model in models
                  for value in (self.connection.ops.quote_name(model._meta.db_table), model._meta.pk.column)]
        self.flushing = True  # not a reason to write what waits: the sequences are no table's rows
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(f"SELECT {columns} FROM generate_series(1, %s)", [*params, count])
                rows = cursor.fetchall()
        finally:
            self.flushing = False
        for index, model in enumerate(models):
            self.ids[model].extend(row[index] for row in rows)
            self.taken[model] += count

    def flush(self) -> None:
        if self.flushing or not any(self.rows.values()):
            return
        self.flushing = True
        try:
            for model, rows in self.rows.items():
                if rows:
                    waiting, self.rows[model] = rows, []
                    model.objects.using(self.connection.alias).bulk_create(waiting)
        finally:
            self.flushing = False

    def before_statement(self, execute, sql, params, many, context):
        self.flush()
        return execute(sql, params, many, context)


_pending: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar("engarde_deferred_rows", default=None)


@contextmanager
def rows_written_together(*models, expected: int = 1, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """``create(model, ...)`` for each of ``models`` waits inside the block and is written before
    the connection's next statement or when the block ends (listed in the order they are written:
    a model before the models that point at it; ``expected``: about how many rows of each the block
    will make, the ids taken ahead at its first row). Nested blocks join the outer one. Only inside a
    transaction, which the rows commit or roll back with; on an error nothing more is written (the
    caller rolls back)."""
    connection = connections[using]
    if _pending.get() is not None or connection.vendor != "postgresql" or not models:
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("rows written together belong to a transaction: run inside transaction.atomic()")
    pending = _Pending(connection, models, expected)
    token = _pending.set(pending)
    try:
        with connection.execute_wrapper(pending.before_statement):
            yield
            pending.flush()
    finally:
        _pending.reset(token)


def create(model, **values):
    """``model.objects.create(**values)``, or, inside ``rows_written_together`` for ``model``, the
    same row made ready and written with the others (see the module's docstring)."""
    pending = _pending.get()
    if pending is None or model not in pending.rows:
        return model.objects.create(**values)
    obj = model(**values)
    obj.stamp_tenant()  # what TenantOwned.save does first: the active tenant, relations inside it
    obj.normalize()
    obj.pk = pending.next_id(model)
    for field in model._meta.concrete_fields:
        field.pre_save(obj, add=True)  # auto_now(_add) timestamps, as an insert would set them
    obj._state.adding, obj._state.db = False, pending.connection.alias
    pending.rows[model].append(obj)
    obj.after_save()
    return obj


def flush() -> None:
    """Write what waits now (``Contact.save`` and ``Payment.save`` call it first); outside a block,
    nothing."""
    pending = _pending.get()
    if pending is not None:
        pending.flush()
