"""CSV exports of what a list page shows, streamed row by row.

A ``StreamingHttpResponse`` is consumed after the view (and ``TenantMiddleware``'s tenant context)
has returned, so the rows are read inside a fresh ``tenant_context`` of their own, in chunks from
the database: memory stays flat however many rows the tenant has, and the rows are the tenant's
whatever the connection did before (the queryset is filtered by tenant and RLS stands behind it).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from tenants.context import tenant_context

CHUNK_SIZE = 500
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value) -> str:
    """The text of one cell, with a leading apostrophe where a spreadsheet would see a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose ``write`` hands back what it was given (Django's CSV recipe)."""

    def write(self, value: str) -> str:
        return value


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat(timespec="seconds") if value else ""


def stream_csv(
    filename: str, tenant, header: Iterable[str], queryset: QuerySet, to_row: Callable[[object], Iterable]
) -> StreamingHttpResponse:
    """Rows of ``queryset`` (already filtered and ordered), one line each, as they are read."""

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(list(header))
        with tenant_context(tenant):
            for obj in queryset.iterator(chunk_size=CHUNK_SIZE):
                yield writer.writerow([safe_cell(cell) for cell in to_row(obj)])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().astimezone(ZoneInfo(tenant.timezone or "UTC")).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{tenant.slug}-{filename}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
