"""Onboarding tenants: the tenant list, and each tenant's integrations and members on its page."""

from django.contrib import admin
from django.db.models import Count

from integrations.admin import TenantIntegrationInline
from tenants.models import Membership, Tenant


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role")
    autocomplete_fields = ("user",)
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "integration_count", "created_at")
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
        return super().get_queryset(request).annotate(integration_count=Count("integrations"))

    @admin.display(description="integrations", ordering="integration_count")
    def integration_count(self, obj):
        return obj.integration_count
