"""System checks of what the environment says about providers (``manage.py check``, start-up)."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def fallback_secrets_name_providers(app_configs=None, **kwargs):
    """A ``<SOURCE>_WEBHOOK_SECRET`` that names no provider taking a fallback secret is a typo or
    a leftover: it lets nothing in, so say so instead of ignoring it silently."""
    from integrations.registry import PROVIDERS

    known = {p.fallback_secret_env for p in PROVIDERS.values() if p.fallback_secret_env}
    return [
        Warning(
            f"{source.upper()}_WEBHOOK_SECRET is set, but no provider takes a platform-wide fallback secret by that name.",
            hint="Known: " + ", ".join(sorted(known)),
            id="integrations.W001",
        )
        for source in sorted(settings.WEBHOOK_FALLBACK_SECRETS)
        if f"{source.upper()}_WEBHOOK_SECRET" not in known
    ]
