"""``{{ row.source|platform_label }}``: "Posh.VIP", not "poshvip", wherever a person reads it."""

from django import template

from integrations.registry import PROVIDERS

register = template.Library()


@register.filter
def platform_label(name: str) -> str:
    provider = PROVIDERS.get(name or "")
    return provider.label if provider else (name or "")
