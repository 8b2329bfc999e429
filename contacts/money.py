"""The one money parser: every amount a handler or a sync stores comes through ``parse_amount``.

An amount from outside is refused (``InvalidValue``, a sentence naming it) unless it is a plain
decimal number: no NaN, no infinity, no exponent (``"1e1000"``), no bool, nothing finer than the
currency's minor unit (``12.7`` cents, ``12.345`` dollars), nothing the ``Payment`` columns cannot
hold (15 digits, 3 places) and, unless asked for, nothing negative. Silent rounding or truncation
would book a different sum than the platform's.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from contacts.values import InvalidValue, shown

# ISO 4217 currencies whose minor unit is the major unit (Stripe's list), and three-decimal ones.
ZERO_DECIMAL_CURRENCIES = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL_CURRENCIES = frozenset("BHD JOD KWD OMR TND".split())
#: ``Payment.amount`` is ``DecimalField(max_digits=15, decimal_places=3)``: below 10¹² in major units.
MAX_MAJOR = Decimal(10) ** 12
#: A count of minor units that fits a major amount below ``MAX_MAJOR`` in any currency.
MAX_MINOR = MAX_MAJOR * 1000
_PLAIN = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


def parse_currency(value: Any, what: str = "currency") -> str:
    """Three ISO 4217 letters, upper-cased (``"eur"`` -> ``"EUR"``); anything else is refused."""
    text = value.strip() if isinstance(value, str) else ""
    if not _CURRENCY.fullmatch(text):
        raise InvalidValue(f"the {what} {shown(value)} is not a three-letter ISO 4217 code")
    return text.upper()


def minor_unit_places(currency: str) -> int:
    """How many decimal places the currency's minor unit is: JPY 0, KWD 3, most 2."""
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    return 3 if currency in THREE_DECIMAL_CURRENCIES else 2


def plain_number(value: Any, what: str = "amount") -> Decimal:
    """A JSON number or numeric text as a ``Decimal``, refusing what is not a plain decimal."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidValue(f"the {what} {shown(value)} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"the {what} {shown(value)} is not a finite number")
    text = str(value).strip() if not isinstance(value, float) else repr(value)
    if not _PLAIN.fullmatch(text):
        raise InvalidValue(f"the {what} {shown(value)} is not a plain decimal number (no exponent, NaN or infinity)")
    return Decimal(text)


def minor_units(value: Any, what: str = "amount") -> int:
    """A whole count of minor units (cents): ``12.7`` is refused, never truncated to 12."""
    number = plain_number(value, what)
    if number != number.to_integral_value():
        raise InvalidValue(f"the {what} {shown(value)} is not a whole number of minor units (cents)")
    if abs(number) >= MAX_MINOR:
        raise InvalidValue(f"the {what} {shown(value)} is too large to store")
    return int(number)


def parse_amount(value: Any, currency: Any, *, minor: bool = False, signed: bool = False,
                 what: str = "amount") -> Decimal:
    """``value`` in major units of ``currency`` (``parse_amount(1999, "usd", minor=True)`` is
    ``Decimal("19.99")``; ``parse_amount("19.99", "USD")`` the same; 1000 JPY minor is 1000).

    ``minor``: the platform counts minor units (Stripe). ``signed``: a negative amount is allowed
    (an adjustment); payments are never negative."""
    currency = parse_currency(currency)
    places = minor_unit_places(currency)
    number = Decimal(minor_units(value, what)).scaleb(-places) if minor else plain_number(value, what)
    if abs(number) >= MAX_MAJOR:
        raise InvalidValue(f"the {what} {shown(value)} is too large to store")
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise InvalidValue(f"the {what} {shown(value)} is finer than the smallest unit of {currency}")
    if number < 0 and not signed:
        raise InvalidValue(f"the {what} {shown(value)} is negative")
    return number
