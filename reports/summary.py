"""A short written summary of the week from Claude (the ``anthropic`` SDK), when
``ANTHROPIC_API_KEY`` is set. Claude gets the week's aggregates only (``reports.weekly.figures``:
counts and sums by source, currency, platform and status) and never a contact's name, e-mail or
phone, nor the tenant's owner's name. If Claude fails or times out the report goes without it:
the failure is logged (its class only) and the e-mail says nothing about it."""

from __future__ import annotations

import json
import logging

from django.conf import settings

log = logging.getLogger(__name__)

SYSTEM = (
    "You write the two or three sentence summary at the top of a small business's weekly report. "
    "You get this week's and last week's aggregates as JSON. Say what changed that matters (spend, new "
    "contacts, payments, sign-ups, failing webhooks) in plain words, with numbers. No greeting, no advice "
    "you cannot back with the figures, no markdown."
)


def prompt(week: dict, before: dict) -> str:
    """Exactly what Claude is sent (the tests assert on it)."""
    return json.dumps({"this_week": week, "last_week": before}, sort_keys=True)


def ask_claude(system: str, content: str, max_tokens: int = 300) -> str:
    """One message to Claude (``ANTHROPIC_MODEL`` at ``ANTHROPIC_BASE_URL``, ``ANTHROPIC_TIMEOUT_SECONDS``,
    one retry): its text, at most 4000 characters. Raises whatever the SDK raises (``anthropic.APIError``
    and its timeouts); callers decide what a failure means. Needs ``ANTHROPIC_API_KEY``.

    The SDK is imported here, not with the module: it takes about 2.5 s to import, which every
    process (each ``manage.py`` command, gunicorn and Celery worker) paid at start-up through the
    report task's import, most of them never asking Claude anything."""
    import anthropic

    client = anthropic.Anthropic(
        api_key=settings.ANTHROPIC_API_KEY, base_url=settings.ANTHROPIC_BASE_URL or None,
        timeout=settings.ANTHROPIC_TIMEOUT_SECONDS, max_retries=1,
    )
    message = client.messages.create(
        model=settings.ANTHROPIC_MODEL, max_tokens=max_tokens, system=system,
        messages=[{"role": "user", "content": content}],
    )
    return "".join(getattr(block, "text", "") for block in message.content).strip()[:4000]


def claude_summary(week: dict, before: dict) -> str:
    if not settings.ANTHROPIC_API_KEY:
        return ""
    try:
        text = ask_claude(SYSTEM, prompt(week, before))
    except Exception as exc:  # any failure of an optional extra: the report goes without it
        log.warning("weekly report summary from Claude failed (%s); sending without it", exc.__class__.__name__)
        return ""
    return text[:2000]
