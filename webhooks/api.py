from django.db import transaction
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from engarde.api import TenantScopedViewSet
from integrations.models import TenantIntegration
from tenants.permissions import IsTenantAdmin
from webhooks import processing
from webhooks.models import WebhookLog
from webhooks.pages import redacted_request


class WebhookEventListSerializer(serializers.ModelSerializer):
    """A list row: what happened, never the request itself (headers and bodies can be large and
    are the detail's business)."""

    class Meta:
        model = WebhookLog
        fields = [
            "id", "source", "event_id", "event_type", "status", "remote_addr", "delivery_count", "attempts",
            "error", "unstored_rejections", "received_at", "last_delivery_at", "processed_at",
        ]


class WebhookEventSerializer(WebhookEventListSerializer):
    """One delivery with its headers and body, redacted again with the secrets in force now."""

    headers = serializers.DictField(child=serializers.CharField(), read_only=True)
    body = serializers.CharField(read_only=True)

    class Meta(WebhookEventListSerializer.Meta):
        fields = [*WebhookEventListSerializer.Meta.fields, "headers", "body"]

    def to_representation(self, obj):
        data = super().to_representation(obj)
        integration = TenantIntegration.objects.filter(provider=obj.source).first()
        data["headers"], data["body"] = redacted_request(obj, integration)
        return data


class WebhookEventViewSet(TenantScopedViewSet):
    model = WebhookLog
    serializer_class = WebhookEventSerializer
    ordering = ("-received_at", "-pk")

    def get_serializer_class(self):
        return WebhookEventListSerializer if self.action == "list" else WebhookEventSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.defer("headers", "body") if self.action == "list" else queryset

    def filter_queryset_for_request(self, queryset):
        params = self.request.query_params
        for name in ("source", "status"):
            if params.get(name):
                queryset = queryset.filter(**{name: params[name]})
        return queryset

    @action(detail=True, methods=["post"], permission_classes=[IsTenantAdmin])
    def replay(self, request, pk=None):
        """Process a stored delivery again (tenant owners and admins; another tenant's row is 404).

        202: queued, processed once the request commits (handlers are idempotent, so a replayed
        payment is not counted twice). 409: a rejected delivery (never verified), one whose body
        retention removed, or one no handler takes cannot be replayed."""
        row = self.get_object()
        with transaction.atomic():
            queued = processing.replay(row)
        if not queued:
            if row.status == WebhookLog.Status.REJECTED:
                reason = "a rejected delivery was never verified and cannot be replayed"
            elif row.pruned_at:
                reason = "its body was removed by retention (WEBHOOK_RETENTION_DAYS): nothing to replay"
            else:
                reason = f"no handler for event type {row.event_type or '(none)'}: nothing to replay"
            return Response({"status": "not_replayable", "id": row.pk, "reason": reason},
                            status=status.HTTP_409_CONFLICT)
        return Response({"status": "queued", "id": row.pk}, status=status.HTTP_202_ACCEPTED)
