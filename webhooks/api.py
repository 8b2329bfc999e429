from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from contacts.api import StatusListFilter
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
            "id", "source", "event_id", "event_type", "status", "origin", "remote_addr", "delivery_count", "attempts",
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


class WebhookEventFilter(StatusListFilter):
    status_choices = WebhookLog.Status.choices
    search_fields = ("event_id", "event_type", "error")
    sorts = {"-received": ("-received_at", "Newest first"), "received": ("received_at", "Oldest first")}
    date_field = "received_at"
    descriptions = {
        "q": "Every word must match the event id, the event type or the reason it was rejected or failed.",
        "source": "Only deliveries from this platform.",
        "status": "Only deliveries in this state: `received` (waiting), `processed`, `failed` (will be retried), "
                  "`dead` (retries used up), `rejected` (did not verify), `ignored`, `malformed`.",
        "date_from": "Received on or after this day, in your tenant's time zone.",
        "date_to": "Received on or before this day, in your tenant's time zone.",
        "sort": "The order of the list; the first value listed is the default.",
    }


class WebhookUrlSerializer(serializers.Serializer):
    tenant_id = serializers.UUIDField()
    tenant_name = serializers.CharField()
    webhook_url = serializers.URLField(help_text="Where the platform must send its webhooks for this tenant.")
    instructions = serializers.ListField(child=serializers.CharField(), help_text="The setup steps, in order.")


class WebhookReadinessSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "not_configured"],
                                     help_text="`ready` when a secret is set and the connection is active.")
    tenant_id = serializers.UUIDField()
    tenant_name = serializers.CharField()
    webhook_url = serializers.URLField()
    webhook_secret_configured = serializers.BooleanField()
    connection_active = serializers.BooleanField()
    supported_events = serializers.ListField(child=serializers.CharField(), help_text="Event types that are processed.")
    last_event_at = serializers.DateTimeField(allow_null=True, help_text="The last delivery that verified, if any.")


def helper_parameters():
    """The path parameters of generate-url and test, for the schema."""
    from drf_spectacular.utils import OpenApiParameter

    from integrations.registry import PROVIDERS

    sources = sorted(name for name, provider in PROVIDERS.items() if provider.receives_webhooks)
    return [
        OpenApiParameter("source", str, OpenApiParameter.PATH, enum=sources, description="The platform."),
        OpenApiParameter("tenant_key", str, OpenApiParameter.PATH, description="The tenant's slug or id."),
    ]


HELPER_PARAMETERS_DOC = (
    "`source` is the platform (stripe, zoom, ghl, …); `tenant_key` the tenant's slug or id. A tenant you do not "
    "belong to is a 404; staff need `integrations.view_tenantintegration`."
)


class ReplayQueuedSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["queued"])
    id = serializers.IntegerField(help_text="The delivery's id.")


class ReplayRefusedSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["not_replayable"])
    id = serializers.IntegerField(help_text="The delivery's id.")
    reason = serializers.CharField(help_text="Why it cannot be replayed, in a sentence.")


@extend_schema_view(
    list=extend_schema(summary="List webhook deliveries", description="Every delivery your platforms sent, newest "
                       "first, with its state and, when it was rejected or failed, why. Secrets in headers and "
                       "bodies are redacted."),
    retrieve=extend_schema(summary="Get a webhook delivery", description="One delivery of your tenant, by id."),
)
class WebhookEventViewSet(TenantScopedViewSet):
    model = WebhookLog
    serializer_class = WebhookEventSerializer
    ordering = ("-received_at", "-pk")
    filter_form = WebhookEventFilter

    def get_serializer_class(self):
        return WebhookEventListSerializer if self.action == "list" else WebhookEventSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.defer("headers", "body") if self.action == "list" else queryset

    @extend_schema(
        summary="Replay a webhook delivery",
        description="Process a stored delivery again, for your tenant's owners and admins. Takes no body. "
                    "Handlers are idempotent: a replayed payment is not counted twice.",
        request=None,
        responses={
            202: OpenApiResponse(ReplayQueuedSerializer, description="Queued: processed in the background."),
            409: OpenApiResponse(ReplayRefusedSerializer, description="Not replayable: a rejected delivery was "
                                 "never verified, or no handler takes its event type."),
        },
    )
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
