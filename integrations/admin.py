"""Connecting a tenant's platforms: the integration admin and its inline on the tenant page.

Secrets are write-only here (see ``integrations.forms``): no page shows a saved value, only its
masked tail. A token made here (generated on saving, or rotated) is shown once, on the answer to
that very request, in the tenant setup page's box with a copy button and the next step
(``includes/token_once.html``), and never through the messages framework, which keeps messages in
the session until they are shown. The admin's history records which fields changed, by name,
never a value.
"""

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from integrations.forms import ProviderChoiceForm, integration_form_for
from integrations.models import TenantIntegration
from integrations.registry import PROVIDERS
from integrations.state import state_of, state_of_listed, with_delivery_stats
from integrations.testevents import CannotTest, send_test_event
from integrations.tokens import admin_next_step
from tenants.staff import ROTATE_SECRETS

# How long a rotated token keeps working, so a platform being reconfigured loses no delivery.
ROTATION_GRACE = timedelta(hours=24)

STATUS_FIELDS = ("last_event_at", "last_error_at", "last_error", "created_at", "updated_at")
#: Where ``save_model`` leaves a token it made for the response of the same request.
NEW_TOKEN_ATTR = "_engarde_new_token"


def lowercase_first(text: str) -> str:
    """ "Webhook token (X-Webhook-Token header)" inside a sentence; the header's name kept as it is."""
    return text[:1].lower() + text[1:]


def copyable_webhook_url(integration, wrapped: bool = False) -> str:
    """The webhook URL in a read-only input, ready to select and copy (no secret in it)."""
    if not integration.provider_obj.receives_webhooks:
        return "— (this platform sends no webhooks)"
    # The whole URL (sized to it, never cut off) and a button that copies it (static/engarde.js).
    url = integration.webhook_url
    if wrapped:  # in a table row: the whole URL on as many lines as it takes, so the table fits
        return format_html(
            '<span class="copy-row"><code id="webhook-url-{}" class="webhook-url wrapped">{}</code> '
            '<button type="button" class="button" data-copy-target="webhook-url-{}">Copy</button></span>',
            integration.pk, url, integration.pk,
        )
    return format_html(
        '<span class="copy-row"><input type="text" readonly value="{}" size="{}" id="webhook-url-{}" '
        'class="vTextField webhook-url" aria-label="Webhook URL"> '
        '<button type="button" class="button" data-copy-target="webhook-url-{}">Copy</button></span>',
        url, len(url), integration.pk, integration.pk,
    )


class CopyButtons:
    """The script behind the copy buttons, on the admin pages that show webhook URLs."""

    class Media:
        js = ("engarde.js",)
        css = {"all": ("engarde-admin.css",)}


class IntegrationDisplays:
    """Read-only columns shared by the integration admin and the tenant page's inline."""

    @admin.display(description="webhook URL")
    def webhook_url_display(self, obj):
        return copyable_webhook_url(obj)

    @admin.display(description="actions")
    def operator_buttons(self, obj):
        """Buttons inside the tenant's form: ``formaction`` posts the form (and its CSRF token) to
        the integration's own action URL, which comes back to this page."""
        if not obj.provider_obj.receives_webhooks:
            return "—"
        test = reverse("admin:integrations_tenantintegration_send_test_event", args=[obj.pk])
        buttons = format_html(
            '<button type="submit" class="button" formaction="{}" formnovalidate>Send test event</button>', test
        )
        if obj.provider_obj.generates_webhook_secret:
            rotate = reverse("admin:integrations_tenantintegration_rotate_token", args=[obj.pk])
            buttons += format_html(
                ' <button type="submit" class="button" formaction="{}" formnovalidate>Rotate token (24 h grace)</button>',
                rotate,
            )
        return buttons


@admin.register(TenantIntegration)
class TenantIntegrationAdmin(CopyButtons, IntegrationDisplays, admin.ModelAdmin):
    # The state says "not connected" for a switched-off one and "setup incomplete" for one missing
    # a value: no separate columns for those, so the list fits 1280 px.
    list_display = ("tenant", "provider", "state_pill", "last_event_at", "last_error_at")
    list_filter = ("provider", "is_active")
    search_fields = ("tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    actions = ("send_test_events", "rotate_tokens")
    readonly_fields = (
        "state_display", "webhook_url_display", "configured_display", "operator_buttons", "credential_summary",
        "webhook_secret_status", *STATUS_FIELDS,
    )

    def get_queryset(self, request):
        # Each row's delivery numbers in the list query itself (the state column): one query
        # however many rows the page shows.
        return with_delivery_stats(super().get_queryset(request).select_related("tenant"))

    @staticmethod
    def provider_for(request, obj):
        """The provider of the form: the integration's own, or the add URL's ``?provider=``."""
        if obj is not None:
            return obj.provider_obj
        return PROVIDERS.get(request.GET.get("provider", ""))

    # --- the form --------------------------------------------------------------------------
    def get_form(self, request, obj=None, change=False, **kwargs):
        provider = self.provider_for(request, obj)
        if provider is None:
            kwargs.update(form=ProviderChoiceForm, fields=["tenant", "provider"])
        else:
            # Tenant and provider are fixed once the integration exists (see get_readonly_fields).
            model_fields = ["tenant", "provider", "is_active"] if obj is None else ["is_active"]
            kwargs.update(form=integration_form_for(provider), fields=model_fields)
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ("tenant", "provider", *self.readonly_fields) if obj else self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        provider = self.provider_for(request, obj)
        if provider is None:
            return [(None, {
                "fields": ["tenant", "provider"],
                "description": "Choose the tenant and the platform; the next step asks for its credentials.",
            })]
        main = ["tenant", "provider", "is_active"]
        if obj:
            main += ["state_display", "webhook_url_display", "configured_display", "operator_buttons"]
        fieldsets = [(None, {"fields": main})]
        # A view-only user gets no form, and Django would render every fieldset name as a
        # read-only value: give them the masked summaries instead of the input names.
        can_change = obj is None or self.has_change_permission(request, obj)
        credentials = [f.name for f in provider.credential_fields] if can_change else ["credential_summary"]
        if credentials:
            fieldsets.append(("Credentials", {"fields": credentials}))
        if provider.receives_webhooks:
            if not can_change:
                secret = ["webhook_secret_status"]
            else:
                secret = ["new_webhook_secret"]
                if provider.generates_webhook_secret:
                    secret.append("generate_webhook_secret")
                if obj and obj.webhook_secret:
                    secret += ["webhook_secret_grace_hours", "webhook_secret_status"]
            fieldsets.append(("Webhook secret", {"fields": secret}))
        if obj:
            fieldsets.append(("Status", {"fields": STATUS_FIELDS}))
        return fieldsets

    def add_view(self, request, form_url="", extra_context=None):
        # Step one posts only tenant and provider: on success, go on to that provider's form
        # (same URL with ?tenant=&provider=) instead of saving a half-made integration.
        if request.method == "POST" and self.provider_for(request, None) is None:
            if not self.has_add_permission(request):
                raise PermissionDenied
            form = self.get_form(request)(request.POST)
            if form.is_valid():
                query = urlencode({"tenant": form.cleaned_data["tenant"].pk, "provider": form.cleaned_data["provider"]})
                return HttpResponseRedirect(f"{request.path}?{query}")
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.generated_token:
            # Shown by response_add / response_change on this very answer, never in a message.
            setattr(request, NEW_TOKEN_ATTR, form.generated_token)
        if missing := obj.missing_fields():
            messages.warning(request, f"Still missing for {obj.provider_obj.label}: {', '.join(missing)}.")

    def construct_change_message(self, request, form, formsets, add=False):
        # The names that really changed (from set_values / set_webhook_secret), not the inputs
        # that were filled in: re-entering the same secret is no change. Names, never values.
        if add or not getattr(form, "changed_names", None):
            return super().construct_change_message(request, form, formsets, add)
        return [{"changed": {"fields": form.changed_names}}]

    def response_post_save_add(self, request, obj):
        # On to the new integration's page: its webhook URL is what the operator needs next.
        return HttpResponseRedirect(reverse("admin:integrations_tenantintegration_change", args=[obj.pk]))

    def response_add(self, request, obj, post_url_continue=None):
        return self._with_new_token(request, obj, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._with_new_token(request, obj, super().response_change(request, obj))

    def _with_new_token(self, request, obj, response):
        """Instead of the redirect after saving, the page that shows the token just generated
        (its "Done" goes where the redirect went)."""
        token = getattr(request, NEW_TOKEN_ATTR, "")
        if not token or not isinstance(response, HttpResponseRedirect):
            return response
        return self.new_tokens_page(request, [(obj, token, "")], back=response.url)

    def new_tokens_page(self, request, made, back: str):
        """Tokens just made (``(integration, token, note)``), each in its box, once; not cached."""
        tokens = [{
            "integration": integration, "token": token, "token_id": f"new-token-{integration.pk}",
            "heading": f"{integration}: new {lowercase_first(integration.provider_obj.webhook_secret_label)}",
            "next_step": admin_next_step(integration.provider_obj, note),
            "webhook_url": copyable_webhook_url(integration),
        } for integration, token, note in made]
        response = TemplateResponse(request, "admin/integrations/tenantintegration/new_tokens.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "tokens": tokens, "back": back,
            "title": "New token, shown once" if len(tokens) == 1 else "New tokens, shown once",
        })
        response["Cache-Control"] = "no-store"
        return response

    # --- operator actions: a test event, a token rotation ----------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view  # staff check, then the operator context
        return [
            path("<path:object_id>/send-test-event/", wrap(self.send_test_event_view),
                 name="integrations_tenantintegration_send_test_event"),
            path("<path:object_id>/rotate-token/", wrap(self.rotate_token_view),
                 name="integrations_tenantintegration_rotate_token"),
            *super().get_urls(),
        ]

    def _test_one(self, request, integration) -> bool:
        label = f"{integration.provider_obj.label} of {integration.tenant}"
        try:
            outcome = send_test_event(integration)
        except CannotTest as exc:
            self.message_user(request, f"{label}: no test event sent ({exc}).", messages.ERROR)
            return False
        if outcome.status == 200 and outcome.body.get("status") == "ignored":
            self.message_user(request, f"{label}: the test event passed verification and was stored.")
            return True
        reason = outcome.body.get("reason") or outcome.body.get("status", "")
        self.message_user(request, f"{label}: the test event was refused ({outcome.status}, {reason}).", messages.ERROR)
        return False

    def _rotate_one(self, request, integration) -> str:
        """The new token (the caller shows it, once), or "" with the reason in a message."""
        label = f"{integration.provider_obj.label} of {integration.tenant}"
        if not request.user.has_perm(ROTATE_SECRETS):
            self.message_user(request, f"{label}: rotating a token needs the “rotate secrets” permission "
                                       "(tenants.rotate_secrets).", messages.ERROR)
            return ""
        if not integration.provider_obj.generates_webhook_secret:
            self.message_user(
                request, f"{label}: its signing secret comes from {integration.provider_obj.label}; enter the new one "
                         "on the integration's page, with a grace period.", messages.WARNING)
            return ""
        token = TenantIntegration.generate_token()
        integration.set_webhook_secret(token, grace=ROTATION_GRACE)
        integration.save(update_fields=["webhook_secret", "previous_webhook_secret",
                                        "previous_webhook_secret_expires_at", "updated_at"])
        self.log_change(request, integration, [{"changed": {"fields": ["webhook_secret"]}}])
        return token

    @staticmethod
    def rotation_note() -> str:
        return f"The old token keeps working for {ROTATION_GRACE.total_seconds() / 3600:.0f} h more."

    @admin.action(description="Send a test event (checks the stored secret end to end)", permissions=["change"])
    def send_test_events(self, request, queryset):
        for integration in queryset.select_related("tenant"):
            self._test_one(request, integration)

    @admin.action(description="Rotate the webhook token (the old one works 24 h more)", permissions=["change"])
    def rotate_tokens(self, request, queryset):
        made = [(integration, token, self.rotation_note()) for integration in queryset.select_related("tenant")
                if (token := self._rotate_one(request, integration))]
        if made:  # the new tokens, once, on this answer; refusals are in the messages above them
            return self.new_tokens_page(request, made, back=request.get_full_path())
        return None

    def _object_action(self, request, object_id, act, needs_change: bool, shows_token: bool = False):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = self.get_object(request, unquote(object_id))
        if integration is None:
            raise Http404
        if needs_change and not self.has_change_permission(request, integration):
            raise PermissionDenied
        outcome = act(request, integration)
        back = request.POST.get("next") or reverse("admin:integrations_tenantintegration_change", args=[integration.pk])
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
            back = reverse("admin:integrations_tenantintegration_change", args=[integration.pk])
        if shows_token and outcome:  # the new token, once, on this answer ("Done" goes back)
            return self.new_tokens_page(request, [(integration, outcome, self.rotation_note())], back=back)
        return HttpResponseRedirect(back)

    def send_test_event_view(self, request, object_id):
        # It writes a row into the tenant's log: the same right as changing the integration.
        return self._object_action(request, object_id, self._test_one, needs_change=True)

    def rotate_token_view(self, request, object_id):
        return self._object_action(request, object_id, self._rotate_one, needs_change=True, shows_token=True)

    # --- read-only displays (values masked) --------------------------------------------------
    @admin.display(description="state")
    def state_pill(self, obj):
        """The one answer of ``integrations.state`` (as on the dashboard, the setup page and the
        API), as a coloured pill; its reason on hover."""
        state = state_of_listed(obj)
        return format_html('<span class="state {}" title="{}">{}</span>', state.key, state.reason, state.label)

    @admin.display(description="state")
    def state_display(self, obj):
        state = state_of(obj)
        return format_html("<strong>{}</strong>{}", state.label, f" — {state.reason}" if state.reason else "")

    @admin.display(description="configured")
    def configured_display(self, obj):
        missing = obj.missing_fields()
        return f"no, missing: {', '.join(missing)}" if missing else "yes"

    @admin.display(description="credentials")
    def credential_summary(self, obj):
        rows = (
            (field.label, (obj.masked(field.name) if field.secret else obj.value(field.name)) or "not set")
            for field in obj.provider_obj.credential_fields
        )
        return format_html_join("", "<div>{}: {}</div>", rows)

    @admin.display(description="current secret")
    def webhook_secret_status(self, obj):
        status = obj.masked("webhook_secret") or "not set"
        expires = obj.previous_webhook_secret_expires_at
        if obj.previous_webhook_secret and expires:
            return format_html("{}; the previous one stays valid until {}", status, expires.isoformat(timespec="minutes"))
        return status


class TenantIntegrationInline(IntegrationDisplays, admin.TabularInline):
    """The tenant's integrations at a glance; changes go through the integration's own page."""

    model = TenantIntegration
    template = "admin/tenants/tenant/integrations_inline.html"  # the table plus an "add" link
    fields = readonly_fields = (
        "provider_label", "state_label", "webhook_url_display", "last_event_at", "last_error_display",
        "change_link", "operator_buttons",
    )
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="webhook URL")
    def webhook_url_display(self, obj):
        return copyable_webhook_url(obj, wrapped=True)

    @admin.display(description="platform")
    def provider_label(self, obj):
        return obj.provider_obj.label

    @admin.display(description="state")
    def state_label(self, obj):
        return state_of(obj).label

    @admin.display(description="last error")
    def last_error_display(self, obj):
        if not obj.last_error_at:
            return "—"
        return format_html("{}: {}", obj.last_error_at.isoformat(timespec="minutes"), obj.last_error[:200])

    @admin.display(description="")
    def change_link(self, obj):
        url = reverse("admin:integrations_tenantintegration_change", args=[obj.pk])
        return format_html('<a href="{}">Credentials and secret</a>', url)


# The tenants' own admin page shows their integrations and deliveries, so it lives here, above the
# apps whose data it shows (tenants/ is the bottom layer). Imported last: it uses the inline above.
from integrations import tenant_admin  # noqa: E402, F401
