"""``{{ row.source|platform_label }}``: "Posh.VIP", not "poshvip", wherever a person reads it."""

from django import template

from integrations.registry import label_of

register = template.Library()
register.filter("platform_label", label_of)
