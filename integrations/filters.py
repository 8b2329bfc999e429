"""Admin list filters that read a platform's name the way people do ("Posh.VIP", not "poshvip")."""

from django.contrib import admin

from integrations.registry import PROVIDERS


class PlatformFilter(admin.SimpleListFilter):
    """The platforms by their labels, filtering on the stored ``source`` name. ``only``: which of
    the registry's providers to offer (all of them by default)."""

    title, parameter_name = "platform", "source"

    @staticmethod
    def only(provider) -> bool:
        return True

    def lookups(self, request, model_admin):
        return [(name, provider.label) for name, provider in PROVIDERS.items() if self.only(provider)]

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


class WebhookPlatformFilter(PlatformFilter):
    """Only the platforms that post webhooks (the webhook log's)."""

    @staticmethod
    def only(provider) -> bool:
        return provider.receives_webhooks
