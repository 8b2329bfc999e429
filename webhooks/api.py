from rest_framework import serializers

from engarde.api import TenantScopedViewSet
from webhooks.models import WebhookLog


class WebhookEventSerializer(serializers.ModelSerializer):
    body = serializers.CharField(source="body_text", read_only=True)

    class Meta:
        model = WebhookLog
        fields = [
            "id", "source", "event_id", "event_type", "status", "headers", "body", "remote_addr",
            "delivery_count", "attempts", "error", "received_at", "last_delivery_at", "processed_at",
        ]


class WebhookEventViewSet(TenantScopedViewSet):
    model = WebhookLog
    serializer_class = WebhookEventSerializer
    ordering = ("-received_at", "-pk")

    def filter_queryset_for_request(self, queryset):
        params = self.request.query_params
        for name in ("source", "status"):
            if params.get(name):
                queryset = queryset.filter(**{name: params[name]})
        return queryset
