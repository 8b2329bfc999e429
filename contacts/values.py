"""Values from outside (webhooks, syncs) made fit for our columns, or refused with a sentence.

A platform (or a fuzzer with a tenant's token) can send anything: a NUL that PostgreSQL refuses in
text and JSON, a lone surrogate that cannot be encoded, a name longer than its column, a date in the
year 300 million. Everything written by ``contacts.services`` passes through here, so no handler can
forget it. Text is *fitted* (cleaned and cut to its column: the raw body keeps the original); what
cannot be fitted without changing its meaning (an id, an e-mail, a date) is refused with
``InvalidValue``, whose message is a sentence for the tenant naming the value. Processing marks such a
delivery ``malformed`` at once: no retry can change the body.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.dateparse import parse_datetime

#: What PostgreSQL cannot store in text or jsonb: NUL, and lone UTF-16 surrogates (not encodable).
_NUL = "\x00"
_SURROGATES = re.compile("[\ud800-\udfff]")
#: How deep a JSON value we clean may be (the receiver refuses far deeper bodies earlier).
MAX_JSON_DEPTH = 64
#: Unix seconds up to the end of year 9999, the largest date Python and PostgreSQL share.
MAX_TIMESTAMP = 253402300799
EMAIL_MAX_LENGTH = 254


class InvalidValue(ValueError):
    """A value that cannot be stored as it is meant. The message names it and is shown to the
    tenant: it never quotes more than a short, cleaned piece of the value."""


def shown(value: Any, limit: int = 40) -> str:
    """A short, printable quotation of a bad value for a sentence."""
    plain = isinstance(value, (str, int, float, Decimal)) and not isinstance(value, bool)
    text = clean_text(str(value) if plain else repr(value))
    return repr(text if len(text) <= limit else text[:limit] + "…")


def strings_in(payload: Any, limit: int) -> Iterator[str]:
    """The strings of a parsed JSON payload (values, not keys), at most ``limit`` of them, breadth
    first: the event's own fields come before the strings of a long nested list, which the bound
    may cut. What a drain batch scans for the ids and addresses its handlers will look up."""
    queue, seen = deque([payload]), 0
    while queue and seen < limit:
        value = queue.popleft()
        if isinstance(value, dict):
            queue.extend(value.values())
        elif isinstance(value, list):
            queue.extend(value)
        elif isinstance(value, str):
            seen += 1
            yield value


def clean_text(value: Any, max_length: int | None = None) -> str:
    """``value`` as text PostgreSQL accepts: ``None`` is empty, NUL removed, lone surrogates
    replaced by U+FFFD, outer whitespace stripped, then cut to ``max_length``."""
    if value is None:
        return ""
    text = _SURROGATES.sub("\ufffd", str(value).replace(_NUL, "")).strip()
    return text[:max_length] if max_length is not None else text


def clean_id(value: Any, max_length: int = 255, what: str = "id") -> str:
    """An identifier: text that is refused rather than cut (a cut id names another object)."""
    text = clean_text(value)
    if len(text) > max_length:
        raise InvalidValue(f"the {what} is longer than {max_length} characters")
    return text


def clean_email(value: Any, what: str = "e-mail") -> str:
    """Lowercased and checked (Django's validator); empty stays empty. A wrong or over-long
    address is refused: cut or guessed, it would be someone else's."""
    email = clean_text(value).lower()
    if not email:
        return ""
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidValue(f"the {what} is longer than {EMAIL_MAX_LENGTH} characters")
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidValue(f"the {what} {shown(email)} is not an e-mail address") from None
    return email


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON value with every string (keys too) cleaned of NUL and lone surrogates, for jsonb."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidValue(f"a JSON value is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value.replace(_NUL, ""))
    if isinstance(value, dict):
        return {clean_json(str(key), depth + 1): clean_json(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(item, depth + 1) for item in value]
    return value


def fit(model, field_name: str, value: Any) -> str:
    """Text cleaned and cut to the column ``model.field_name`` (its ``max_length``)."""
    return clean_text(value, model._meta.get_field(field_name).max_length)


def parse_moment(value: Any, what: str = "time") -> datetime | None:
    """An aware datetime from ISO 8601 text (naive means UTC) or Unix seconds; ``None`` or ``""``
    is ``None``. Out-of-range numbers (``created`` ≥ 2⁶³) and unreadable text are refused."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidValue(f"the {what} {shown(value)} is not a date and time")
    if isinstance(value, (int, float)):
        if not 0 <= value <= MAX_TIMESTAMP:  # also refuses NaN (no comparison holds)
            raise InvalidValue(f"the {what} {shown(value)} is not a date and time we can store")
        return datetime.fromtimestamp(value, tz=dt_timezone.utc)
    try:
        moment = parse_datetime(clean_text(value)) if isinstance(value, str) else None
    except ValueError:  # well formed but impossible: 2026-02-30
        moment = None
    if moment is None:
        raise InvalidValue(f"the {what} {shown(value)} is not an ISO 8601 date and time")
    return moment if moment.tzinfo else moment.replace(tzinfo=dt_timezone.utc)
