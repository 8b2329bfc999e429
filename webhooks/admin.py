"""Every stored delivery, for operators: read-only, as it arrived (headers already redacted).

Replay comes later (an admin action here); nothing in this page changes a row.
"""

import json

from django.contrib import admin
from django.utils.html import format_html

from webhooks.models import WebhookLog


@admin.register(WebhookLog)
class WebhookLogAdmin(admin.ModelAdmin):
    list_display = ("received_at", "tenant", "source", "event_type", "event_id", "status", "delivery_count", "attempts")
    list_filter = ("tenant", "source", "status")
    search_fields = ("event_id",)
    list_select_related = ("tenant",)
    fieldsets = (
        (None, {"fields": ("tenant", "source", "event_type", "event_id", "status", "error")}),
        ("Delivery", {"fields": (
            "received_at", "last_delivery_at", "processed_at", "delivery_count", "attempts", "remote_addr",
        )}),
        ("Request", {"fields": ("headers_display", "body_display")}),
    )
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        # Bodies can be large: the list never shows them, the detail page loads its one.
        return super().get_queryset(request).defer("body")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    # Deleting stays allowed: deleting a tenant in the admin needs it for the tenant's rows.

    @admin.display(description="headers")
    def headers_display(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2, sort_keys=True))

    @admin.display(description="body")
    def body_display(self, obj):
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.body_text)
