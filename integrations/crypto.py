"""Credentials at rest: Fernet tokens under ``FIELD_ENCRYPTION_KEYS`` (newest first).

Encryption always uses the newest key; decryption tries each key, so adding a new key in front
and running ``manage.py rotate_encryption_keys`` moves every row to it without downtime. A value
that no key decrypts raises ``DecryptionError``: it is never handed on as if it were plaintext.
Fernet is randomised, so these columns cannot be filtered on; nothing needs to.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models

from engarde.errors import Explained


class DecryptionError(Explained):
    """Stored ciphertext did not decrypt with any configured key. The message never holds the value."""


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = settings.FIELD_ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes each)"
        ) from None


def _reset(*, setting, **kwargs):
    if setting == "FIELD_ENCRYPTION_KEYS":
        _fernet.cache_clear()


setting_changed.connect(_reset)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError):
        raise DecryptionError(
            "the saved credentials could not be read (they decrypt with no key in FIELD_ENCRYPTION_KEYS): "
            "an operator must restore the key, or the credentials be entered again"
        ) from None


def rotate(token: str) -> str:
    """The same plaintext under the newest key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError):
        raise DecryptionError("a stored credential did not decrypt with any key in FIELD_ENCRYPTION_KEYS") from None


class EncryptedTextField(models.TextField):
    """A string stored as a Fernet token. Empty strings and NULL are stored as they are."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def value_to_string(self, obj):
        # Serialisation (dumpdata) never writes plaintext.
        return "<encrypted>" if self.value_from_object(obj) else ""


class EncryptedJSONField(models.TextField):
    """A JSON object stored as one Fernet token."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        return json.loads(value)

    def get_prep_value(self, value):
        return encrypt(json.dumps(value or {}, sort_keys=True))

    def value_to_string(self, obj):
        # Serialisation (dumpdata) never writes plaintext.
        return "<encrypted>"
