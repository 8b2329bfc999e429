"""Filters for the contact pages: ``{{ payment.amount|money:payment.currency }}`` (49.00 EUR, 1000 JPY,
1.234 KWD) and ``{{ entry.at|iso_local|date:"…" }}`` for times kept as text."""

from decimal import Decimal

from django import template

from contacts.money import minor_unit_places

register = template.Library()


@register.filter
def money(amount, currency: str = "") -> str:
    if amount is None:
        return ""
    digits = minor_unit_places((currency or "").upper())
    return f"{Decimal(amount):,.{digits}f} {(currency or '').upper()}".strip()


@register.filter
def iso_local(value: str):
    """An ISO 8601 text (as kept in a contact's activity) as a datetime, so ``|date`` shows it in
    the active (the tenant's) time zone; the text itself when it does not parse."""
    from django.utils.dateparse import parse_datetime

    try:
        parsed = parse_datetime(str(value))
    except ValueError:
        parsed = None
    return parsed or value
