"""What a handler reads, declared per event type: pydantic models in the provider's ``schemas.py``.

A provider states ``schemas = {"event.type": SomeSchema, ...}``. Processing validates the parsed
payload against the event type's schema *before* the handler runs and hands the handler the model
(``event.data``); what does not fit is marked ``malformed`` at once, without retries, with one
sentence naming the field (``the Stripe charge.refunded event has no `data.object```). So handlers
read typed, cleaned values and never meet a ``KeyError``, ``TypeError`` or ``InvalidOperation``.

Why pydantic (v2, pinned in requirements.txt): it validates nested, optional and alternative
shapes of plain JSON declaratively, reports every error with its path (which makes the sentence),
and is fast; DRF serializers are built for request bodies and models, not for reading nested
third-party payloads, and report errors as nested dicts without a path.

Declare only what the handler reads (extra fields are ignored), with the types below: they clean
and check through the same functions ``contacts.services`` uses, so a value that passes the schema
also passes the write. A handler may still raise ``Malformed`` for a rule across fields.

    class Customer(Schema):
        email: Email
        first_name: Text = ""

    class PurchaseCreated(Schema):
        purchase: Purchase          # missing or not an object: malformed, naming `purchase`
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from contacts import money, values


class Schema(BaseModel):
    """Base for payload schemas: unknown fields are ignored, instances are read-only."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _text(value: Any) -> str:
    if isinstance(value, (dict, list, bool)):
        raise ValueError("is not text")
    return values.clean_text(value)


def _id(value: Any) -> str:
    if isinstance(value, (dict, list, bool)) or value is None:
        raise ValueError("is not an id (text or a number)")
    text = values.clean_id(value)
    if not text:
        raise ValueError("is empty")
    return text


def _object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError("is not an object")
    return values.clean_json(value)


#: Text, cleaned of NUL and lone surrogates and stripped; numbers become text, ``None`` is "".
#: Not cut here: ``contacts.services`` fits it to its column.
Text = Annotated[str, BeforeValidator(_text)]
#: A non-empty id (text or a JSON number), at most 255 characters, never cut.
Id = Annotated[str, BeforeValidator(_id)]
#: An e-mail address, lowercased; "" or ``None`` is "" (say ``Email`` *and* check it in the
#: handler when one is required, or use ``RequiredEmail``).
Email = Annotated[str, BeforeValidator(lambda value: values.clean_email(value) if value is not None else "")]
RequiredEmail = Annotated[str, BeforeValidator(lambda value: _required(values.clean_email(value)))]
#: Three ISO 4217 letters, upper-cased.
Currency = Annotated[str, BeforeValidator(money.parse_currency)]
#: A whole count of minor units (Stripe's ``amount``); convert with ``money.parse_amount(...,
#: minor=True)`` once the currency is known.
MinorUnits = Annotated[int, BeforeValidator(money.minor_units)]
#: A plain decimal amount in major units (``"199.00"``); ``record_payment`` checks it against
#: the currency's minor unit.
MajorAmount = Annotated[Decimal, BeforeValidator(money.plain_number)]
#: ISO 8601 text or Unix seconds, as an aware datetime; "" or ``None`` is ``None``.
Moment = Annotated[datetime | None, BeforeValidator(values.parse_moment)]
#: A JSON object, kept as a dict with its strings cleaned for jsonb.
JsonObject = Annotated[dict, BeforeValidator(_object)]


def _required(email: str) -> str:
    if not email:
        raise ValueError("is empty")
    return email


OBJECT_ERRORS = ("model_type", "model_attributes_type", "dict_type")


def _path(location: tuple) -> str:
    parts = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def describe(error: ValidationError, subject: str) -> str:
    """One sentence for the tenant about the first problem (and how many more), naming the field:
    ``the Posh.VIP purchase.created event has no `purchase```. It quotes at most a short,
    cleaned piece of a bad value (the money and value parsers do), never the whole input."""
    first = error.errors(include_url=False, include_input=False)[0]
    path, kind = _path(tuple(first["loc"])), first["type"]
    message = first["msg"].removeprefix("Value error, ")
    if not path:
        sentence = f"{subject} is not an object" if kind in OBJECT_ERRORS else f"{subject} {message}"
    elif kind == "missing":
        sentence = f"{subject} has no `{path}`"
    elif kind in OBJECT_ERRORS:
        sentence = f"`{path}` in {subject} is not an object"
    elif kind == "list_type":
        sentence = f"`{path}` in {subject} is not a list"
    else:
        sentence = f"`{path}` in {subject} {message}" if message.startswith("is ") else f"`{path}` in {subject}: {message}"
    more = error.error_count() - 1
    return sentence + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
