"""Onboarding tenants: the tenant list, and each tenant's integrations and members on its page."""

from datetime import timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from engarde.admin_confirm import confirm_first
from integrations.admin import CopyButtons, TenantIntegrationInline
from integrations.onboarding import OnboardTenantForm, onboard
from integrations.registry import PROVIDERS
from tenants.models import Membership, Tenant
from webhooks.models import WebhookLog


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role")
    autocomplete_fields = ("user",)
    extra = 0


@admin.register(Tenant)
class TenantAdmin(CopyButtons, admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "integration_count", "last_event_at", "failures_24h", "created_at")
    actions = ("deactivate", "activate")
    list_filter = ("is_active", "timezone")
    search_fields = ("name", "slug", "owner_name", "report_email")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("id", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "is_active", "owner_name", "report_email", "timezone")}),
        ("Advanced", {"fields": ("config", "id", "created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = (TenantIntegrationInline, MembershipInline)

    def get_queryset(self, request):
        # Counted in the list query itself: one query however many tenants the page shows.
        # Subqueries, not joins, so the counts of one relation do not multiply the other's.
        logs = WebhookLog.objects.filter(tenant=OuterRef("pk")).order_by().values("tenant")
        since = timezone.now() - timedelta(hours=24)
        return super().get_queryset(request).annotate(
            integration_count=Count("integrations"),
            last_event_at=Subquery(
                logs.exclude(status=WebhookLog.Status.REJECTED).annotate(m=Max("received_at")).values("m")
            ),
            failures_24h=Coalesce(
                Subquery(
                    logs.filter(status__in=[WebhookLog.Status.FAILED, WebhookLog.Status.DEAD], updated_at__gte=since)
                    .annotate(c=Count("pk")).values("c"),
                    output_field=IntegerField(),
                ),
                0,
            ),
        )

    def add_view(self, request, form_url="", extra_context=None):
        """Adding a tenant is onboarding it: one page (integrations.onboarding)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = OnboardTenantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            tenant = onboard(request, form)
            chosen = [PROVIDERS[name].label for name in form.cleaned_data["platforms"]]
            self.message_user(request, f"{tenant.name} is onboarded: {form.cleaned_data['owner_email']} is invited as "
                                       "owner." + (f" Next: connect {', '.join(chosen)} below (Credentials and secret)."
                                                   if chosen else ""), messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
        return TemplateResponse(request, "admin/tenants/tenant/onboard.html", {
            **self.admin_site.each_context(request), "title": "Onboard a tenant", "form": form,
            "opts": self.opts, "media": self.media + form.media,
        }, status=400 if request.method == "POST" else 200)

    @admin.display(description="last event", ordering="last_event_at")
    def last_event_at(self, obj):
        return obj.last_event_at

    @admin.display(description="failures (24 h)", ordering="failures_24h")
    def failures_24h(self, obj):
        return obj.failures_24h

    @admin.action(description="Deactivate selected tenants (their webhooks get 404)")
    @confirm_first("Deactivate these tenants?", "Their platforms' webhooks get 404 from now on (deliveries are "
                   "lost unless the platform retries) and their users cannot use En Garde until you activate "
                   "them again.", "Yes, deactivate them")
    def deactivate(self, request, queryset):
        changed = queryset.update(is_active=False, updated_at=timezone.now())
        self.message_user(request, f"{changed} tenant(s) deactivated.", messages.WARNING)

    @admin.action(description="Activate selected tenants")
    def activate(self, request, queryset):
        changed = queryset.update(is_active=True, updated_at=timezone.now())
        self.message_user(request, f"{changed} tenant(s) activated.")

    @admin.display(description="integrations", ordering="integration_count")
    def integration_count(self, obj):
        return obj.integration_count

# The user admin, with the e-mail asked for (issue 12).
from tenants import user_admin  # noqa: E402,F401
