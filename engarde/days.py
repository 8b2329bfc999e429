"""Days people type (``YYYY-MM-DD`` in a query string or a command's option), read one way.

A day far from now (``0001-01-01``, ``9999-12-31``) is a valid ``date`` but breaks the arithmetic
done with it (a week before it, its midnight in a time zone west of UTC: ``OverflowError``), and no
data of ours is there: it is refused like a day that does not exist, with the range named.
"""

from __future__ import annotations

import argparse
from datetime import date

EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)


def parse_day(text, name: str = "the date", bounded: bool = True) -> date:
    """``text`` as a day between ``EARLIEST`` and ``LATEST`` (any day with ``bounded=False``: the
    caller checks the range later, with ``check_bounds``); ``ValueError`` with a sentence naming
    ``name`` otherwise."""
    if not isinstance(text, str) or len(text) != 10:
        raise ValueError(f"{name} must be a date as YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a date as YYYY-MM-DD; {text[:40]!r} is not a day") from None
    if bounded:
        check_bounds(day, name)
    return day


def check_bounds(day: date, name: str = "the date") -> None:
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"{name} must be between {EARLIEST} and {LATEST}; {day.isoformat()} is not")


def day_option(name: str):
    """An argparse ``type=`` for a command's day option: a bad day is argparse's one-line error
    (``error: argument --since: …``, exit 2), never a traceback."""

    def parse(text: str) -> date:
        try:
            return parse_day(text, name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "day"
    return parse
