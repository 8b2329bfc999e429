"""Keep tokens out of every log line we write.

A few platforms can only authenticate with a token in the URL (``?token=``, see
``Provider.token_in_query``), and a URL is what request logs print: Django's ``django.server``
and ``django.request`` lines, gunicorn's access log (``gunicorn.conf.py`` installs this filter
there), and any line of ours that names a URL. ``RedactTokens`` rewrites the finished message so
that the value of every credential-like query parameter reads ``[redacted]``.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

#: Query parameters whose values are credentials (ours is ``token``; the rest are common names).
SECRET_PARAMETERS = ("token", "access_token", "api_key", "apikey", "key", "secret", "signature", "password")
_IN_QUERY = re.compile(
    r"([?&;](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&;#\s\"']*",
    re.IGNORECASE,
)


def redact_query_values(text: str) -> str:
    """``text`` with the value of every credential-like query parameter replaced."""
    return _IN_QUERY.sub(lambda match: match.group(1) + REDACTED, text)


class RedactTokens(logging.Filter):
    """A filter for handlers and loggers: lets every record through, with its message redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's to report, not ours
            return True
        redacted = redact_query_values(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class OneLine(logging.Filter):
    """For loggers whose records carry a traceback nobody needs (``django.security.DisallowedHost``:
    every scanner that sends a foreign Host header): the message stays, at WARNING, without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
