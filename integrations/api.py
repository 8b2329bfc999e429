from rest_framework import serializers

from engarde.api import TenantScopedViewSet
from integrations.models import TenantIntegration


class IntegrationSerializer(serializers.ModelSerializer):
    """An integration as the API shows it: whether it is configured, never a secret."""

    label = serializers.CharField(source="provider_obj.label", read_only=True)
    configured = serializers.BooleanField(source="is_configured", read_only=True)
    missing = serializers.ListField(source="missing_fields", child=serializers.CharField(), read_only=True)
    webhook_url = serializers.SerializerMethodField()

    class Meta:
        model = TenantIntegration
        fields = [
            "id", "provider", "label", "is_active", "configured", "missing", "settings", "webhook_url",
            "last_event_at", "last_error", "last_error_at", "created_at", "updated_at",
        ]

    def get_webhook_url(self, integration) -> str | None:
        return integration.webhook_url if integration.provider_obj.receives_webhooks else None


class IntegrationViewSet(TenantScopedViewSet):
    model = TenantIntegration
    serializer_class = IntegrationSerializer
    ordering = ("provider",)

    def filter_queryset_for_request(self, queryset):
        return queryset.select_related("tenant")
