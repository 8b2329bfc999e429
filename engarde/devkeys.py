"""Development keys for the embedded default (DEBUG on, no keys in the environment).

Generated once and kept in a git-ignored file so that a restart can still decrypt what the
previous run encrypted. Never used when DEBUG is off: settings refuse to start instead.
"""

import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def development_keys(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        pass
    keys = {"SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once agree on one set of keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return json.loads(path.read_text())
    with os.fdopen(fd, "w") as fh:
        json.dump(keys, fh)
    return keys
