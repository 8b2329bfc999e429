from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers

from engarde.api import TenantScopedViewSet
from integrations.models import TenantIntegration
from integrations.state import state_of


class IntegrationSerializer(serializers.ModelSerializer):
    """An integration as the API shows it: whether it is configured, never a secret."""

    label = serializers.CharField(source="provider_obj.label", read_only=True)
    configured = serializers.BooleanField(source="is_configured", read_only=True)
    missing = serializers.ListField(source="missing_fields", child=serializers.CharField(), read_only=True)
    webhook_url = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField(help_text="The platform's state, as the dashboard shows it "
                                                        "(not-connected, incomplete, connected, receiving, failing, sync-failing).")
    state_label = serializers.SerializerMethodField()
    state_reason = serializers.SerializerMethodField(help_text="Why it is failing or incomplete, as a sentence.")

    class Meta:
        model = TenantIntegration
        fields = [
            "id", "provider", "label", "is_active", "configured", "missing", "settings", "webhook_url",
            "state", "state_label", "state_reason",
            "last_event_at", "last_error", "last_error_at", "last_synced_at", "last_sync_error", "last_sync_error_at",
            "sync_disabled_reason", "created_at", "updated_at",
        ]

    def _state(self, integration):
        # One answer per integration and response (integrations.state is the only judge).
        cache = self.context.setdefault("states", {})
        if integration.pk not in cache:
            cache[integration.pk] = state_of(integration)
        return cache[integration.pk]

    def get_state(self, integration) -> str:
        return self._state(integration).key

    def get_state_label(self, integration) -> str:
        return self._state(integration).label

    def get_state_reason(self, integration) -> str:
        return self._state(integration).reason

    def get_webhook_url(self, integration) -> str | None:
        return integration.webhook_url if integration.provider_obj.receives_webhooks else None


@extend_schema_view(
    list=extend_schema(summary="List connected platforms", description="Every platform your tenant has connected, "
                       "with whether its setup is complete (and what is missing), its webhook URL and its last "
                       "error. Secrets are never shown."),
    retrieve=extend_schema(summary="Get a connected platform", description="One connection of your tenant, by id."),
)
class IntegrationViewSet(TenantScopedViewSet):
    model = TenantIntegration
    serializer_class = IntegrationSerializer
    ordering = ("provider",)

    def filter_queryset_for_request(self, queryset):
        return queryset.select_related("tenant")
