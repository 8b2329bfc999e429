"""What webhooks and syncs produced, across tenants, for operators to look up and fix."""

from django import forms
from django.contrib import admin

from contacts.models import Contact, Payment, PendingSignup
from integrations.filters import PlatformFilter
from integrations.registry import label_of
from tenants.models import TenantOwned


class SameTenantForm(forms.ModelForm):
    """A relation to another tenant-owned row must stay inside the row's tenant. The model
    refuses to save otherwise; this turns that refusal into a form error."""

    def clean(self):
        cleaned = super().clean()
        tenant = cleaned.get("tenant")
        tenant_id = tenant.pk if tenant else self.instance.tenant_id
        for name, value in list(cleaned.items()):  # add_error removes the name from cleaned
            if isinstance(value, TenantOwned) and tenant_id and value.tenant_id != tenant_id:
                self.add_error(name, "This belongs to another tenant.")
        return cleaned


class TenantOwnedAdmin(admin.ModelAdmin):
    """A row's tenant is chosen when the row is made, and never changed afterwards."""

    form = SameTenantForm
    list_select_related = ("tenant",)

    @admin.display(description="platform", ordering="source")
    def platform(self, obj):
        return label_of(obj.source)

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        return ("tenant", *readonly) if obj else readonly


@admin.register(Contact)
class ContactAdmin(TenantOwnedAdmin):
    list_display = ("email", "full_name", "tenant", "platform", "subscription_status", "mc_id", "ghl_id", "created_at")
    list_filter = ("tenant", PlatformFilter, "subscription_status")
    search_fields = ("email", "first_name", "last_name", "phone", "mc_id", "ghl_id")
    readonly_fields = ("created_at", "updated_at")


@admin.register(Payment)
class PaymentAdmin(TenantOwnedAdmin):
    list_display = ("created_at", "tenant", "amount", "currency", "status", "platform", "external_id", "contact")
    list_filter = ("tenant", "status", "dispute", PlatformFilter, "currency")
    search_fields = ("external_id", "payment_event_id", "invoice_id", "contact__email", "contact__first_name",
                     "contact__last_name")
    list_select_related = ("tenant", "contact")
    raw_id_fields = ("contact",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(PendingSignup)
class PendingSignupAdmin(TenantOwnedAdmin):
    list_display = ("created_at", "tenant", "contact", "platform", "external_id", "status", "decided_at", "decided_by")
    list_filter = ("tenant", "status", PlatformFilter)
    search_fields = ("external_id", "contact__email", "contact__first_name", "contact__last_name")
    list_select_related = ("tenant", "contact", "decided_by")
    raw_id_fields = ("contact", "decided_by")
    readonly_fields = ("created_at", "updated_at")
