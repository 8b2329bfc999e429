"""Every stored delivery, for operators: read-only, as it arrived (headers already redacted).

The one thing this page changes is a row's place in the queue: the "replay" action puts the
selected deliveries back to ``received`` and queues them once the action's transaction commits
(the admin runs in an operator context, so rows of several tenants can be replayed at once; each
is processed in its own tenant's context). Rejected rows and rows no handler takes are skipped.
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.contrib.auth import get_permission_codename
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import ngettext

from engarde.admin_confirm import confirm_first
from integrations.models import TenantIntegration
from integrations.filters import WebhookPlatformFilter
from integrations.registry import label_of
from webhooks import processing
from webhooks.models import WebhookLog
from webhooks.pages import redacted_request


@admin.register(WebhookLog)
class WebhookLogAdmin(admin.ModelAdmin):
    list_display = ("received_at", "tenant", "platform", "event_type", "short_event_id", "status", "origin",
                    "delivery_count", "attempts")
    list_filter = ("tenant", WebhookPlatformFilter, "status", "origin")
    search_fields = ("event_id",)
    list_select_related = ("tenant",)
    actions = ("replay",)
    fieldsets = (
        # The traceback is for operators only: tenant pages and the API show the sentence (error).
        (None, {"fields": ("tenant", "platform", "event_type", "event_id", "status", "error", "traceback")}),
        ("Delivery", {"fields": (
            "origin", "received_at", "last_delivery_at", "processed_at", "delivery_count", "attempts", "remote_addr",
            "unstored_rejections",
        )}),
        ("Request", {"fields": ("headers_display", "body_display")}),
    )
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        # Headers and bodies can be large: the list never loads them, the detail page loads its one.
        return super().get_queryset(request).defer("body", "headers")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    # Deleting stays allowed (deleting a tenant in the admin needs it for the tenant's rows), but
    # there is no bulk "delete" action: the log is the record, retention prunes it.
    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)
        return actions

    def has_replay_permission(self, request):
        """Replaying changes a row's state: it takes the model's change permission (superusers
        have it), even though no field of a row can be edited here."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")

    @admin.action(description="Replay selected deliveries (process them again)", permissions=["replay"])
    @confirm_first("Replay these deliveries?", "Each is put back in the queue and processed again by its "
                   "platform's handler (rejected ones and ones no handler takes are skipped).", "Yes, replay them")
    def replay(self, request, queryset):
        queued = skipped = 0
        for row in queryset.select_related(None).only("pk", "tenant_id", "source", "event_type", "status", "event_id"):
            if processing.replay(row):
                queued += 1
                self.log_change(request, row, "Replayed (queued for processing again).")
            else:
                skipped += 1
        self.message_user(
            request,
            ngettext("%d delivery queued for replay.", "%d deliveries queued for replay.", queued) % queued,
            messages.SUCCESS if queued else messages.WARNING,
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%d delivery skipped: rejected, or no handler for its event type.",
                    "%d deliveries skipped: rejected, or no handler for their event type.",
                    skipped,
                ) % skipped,
                messages.WARNING,
            )

    def _shown(self, obj) -> tuple[dict[str, str], str]:
        # The admin runs in an operator context: name the row's tenant.
        integration = TenantIntegration.objects.filter(tenant_id=obj.tenant_id, provider=obj.source).first()
        return redacted_request(obj, integration)

    @admin.display(description="platform", ordering="source")
    def platform(self, obj):
        return label_of(obj.source)

    @admin.display(description="event id", ordering="event_id")
    def short_event_id(self, obj):
        # Whole on the row's page; here cut so the list fits a 1280 px screen.
        return format_html('<span title="{}">{}</span>', obj.event_id, Truncator(obj.event_id).chars(32))

    @admin.display(description="headers")
    def headers_display(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(self._shown(obj)[0], indent=2, sort_keys=True))

    @admin.display(description="body")
    def body_display(self, obj):
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', self._shown(obj)[1])
