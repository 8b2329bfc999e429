"""Checks of what a tenant types into a credential field, by what each platform issues.

Each is a callable ``(value) -> None`` that raises Django's ``ValidationError`` with a sentence a
tenant can act on; a provider declares them on its ``CredentialField(validators=...)`` (or as its
``webhook_secret_validators``), and ``CredentialField.clean`` runs them for the setup page, the
admin and ``connect_integration`` alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

Validator = Callable[[str], None]


def starts_with(*prefixes: str, what: str, refused: Mapping[str, str] | None = None) -> Validator:
    """The value starts with one of ``prefixes`` (what the platform issues); a known wrong kind of
    key (``refused``: prefix -> why) is named as such rather than only "does not start with"."""

    def check(value: str) -> None:
        for prefix, reason in (refused or {}).items():
            if value.startswith(prefix):
                raise ValidationError(reason)
        if not value.startswith(prefixes):
            raise ValidationError(f"This is not {what}: it starts with {' or '.join(p + '…' for p in prefixes)}.")

    return check


def matches(pattern: str, message: str) -> Validator:
    compiled = re.compile(pattern)

    def check(value: str) -> None:
        if not compiled.fullmatch(value):
            raise ValidationError(message)

    return check


def whole_number(what: str) -> Validator:
    return matches(r"[0-9]{1,18}", f"{what} is a number (digits only), as the platform shows it.")


def http_url(value: str) -> None:
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise ValidationError("Enter the full address, starting with https:// (or http://).") from None
