"""What to do with a token just made, said beside it (``includes/token_once.html``): the tenant
setup page and the admin show a new token once, in the same box, with this next step."""

from __future__ import annotations


def setup_next_step(provider, has_url: bool) -> str:
    """On the tenant's setup page, above the numbered steps."""
    url = " (with the webhook URL)" if has_url else ""
    return (f"put it into {provider.label} as the steps below say{url}, then save there. "
            "If you lose it, generate a new one here.")


def admin_next_step(provider, note: str = "") -> str:
    """In the admin, where the operator (or the tenant they pass it to) configures the platform."""
    text = (f"put it into {provider.label}, in {provider.token_location}, with the webhook URL below "
            "(or pass both to the tenant), then save there.")
    return f"{text} {note}".strip()
