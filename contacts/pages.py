"""The tenant's own data: contacts and payments (search, filters, sort, pages, CSV export), a
contact's page, and the pending sign-up queue (approve or dismiss, one by one or in bulk)."""

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from contacts.export import local_time, stream_csv
from contacts.filters import ContactFilter, PaymentFilter
from contacts.models import Contact, PendingSignup
from contacts.services import decide_signups
from integrations.registry import label_of
from tenants.decorators import can_administer, tenant_page
from webhooks.models import WebhookLog

PAGE_SIZE = 50
CONTACT_PAGE_ROWS = 50  # payments, sign-ups and deliveries shown on one contact's page


def _list_page(request, filter_class, template: str, section: str):
    form = filter_class(request.GET, tenant=request.tenant)
    page = Paginator(form.queryset(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, template, {
        "section": section, "form": form, "page": page,
        "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
    })


@tenant_page(reads=("contacts.view_contact",))
@require_GET
def contact_list(request):
    return _list_page(request, ContactFilter, "contacts/contacts.html", "contacts")


@tenant_page(reads=("contacts.view_payment",))
@require_GET
def payment_list(request):
    return _list_page(request, PaymentFilter, "contacts/payments.html", "payments")


@tenant_page(reads=("contacts.view_contact", "contacts.view_payment", "contacts.view_pendingsignup", "webhooks.view_webhooklog"))
@require_GET
def contact_detail(request, pk: int):
    # The tenant's contacts only (the manager is scoped): another tenant's id is a 404.
    contact = get_object_or_404(Contact.objects, pk=pk)
    link_ids = list(contact.deliveries.order_by("-created_at").values_list("webhook_log_id", flat=True)[:CONTACT_PAGE_ROWS])
    deliveries = WebhookLog.objects.filter(pk__in=link_ids).defer("body", "headers").order_by("-received_at", "-pk")
    return render(request, "contacts/contact.html", {
        "section": "contacts", "contact": contact,
        "payments": contact.payments.order_by("-created_at", "-pk")[:CONTACT_PAGE_ROWS],
        "signups": contact.pending_signups.order_by("-created_at", "-pk")[:CONTACT_PAGE_ROWS],
        "activity": list(reversed(contact.activity or []))[:CONTACT_PAGE_ROWS],
        "deliveries": deliveries, "source_label": label_of(contact.source),
    })


@tenant_page(reads=("contacts.view_contact",))
@require_GET
def contact_export(request):
    zone = ZoneInfo(request.tenant.timezone or "UTC")
    header = ["id", "first_name", "last_name", "email", "phone", "source", "manychat_id", "gohighlevel_id",
              f"created_at ({zone.key})"]
    return stream_csv("contacts", request.tenant, header, ContactFilter(request.GET, tenant=request.tenant).queryset(),
                      lambda c: [c.pk, c.first_name, c.last_name, c.email, c.phone, label_of(c.source),
                                 c.mc_id, c.ghl_id, local_time(c.created_at, zone)])


@tenant_page(reads=("contacts.view_payment", "contacts.view_contact"))
@require_GET
def payment_export(request):
    zone = ZoneInfo(request.tenant.timezone or "UTC")
    header = ["id", f"when ({zone.key})", "amount", "amount_refunded", "currency", "status", "source", "external_id",
              "description", "contact_email", "contact_name"]
    return stream_csv("payments", request.tenant, header, PaymentFilter(request.GET, tenant=request.tenant).queryset(),
                      lambda p: [p.pk, local_time(p.when, zone), p.amount, p.amount_refunded, p.currency, p.status,
                                 label_of(p.source), p.external_id, p.description,
                                 p.contact.email if p.contact else "", p.contact.full_name if p.contact else ""])


DECIDE = "contacts.change_pendingsignup"
DECISIONS = {"approve": PendingSignup.Status.APPROVED, "dismiss": PendingSignup.Status.DISMISSED}


@tenant_page(reads=("contacts.view_pendingsignup",))
def signups(request):
    status = request.GET.get("status", PendingSignup.Status.PENDING)
    rows = PendingSignup.objects.select_related("contact").order_by("-created_at", "-pk")
    if status in PendingSignup.Status.values:
        rows = rows.filter(status=status)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "contacts/signups.html", {
        "section": "signups", "page": page, "status": status, "statuses": PendingSignup.Status.choices,
        "can_decide": can_administer(request, DECIDE),
    })


@tenant_page(admin_only=True, reads=("contacts.view_pendingsignup",), changes=DECIDE)
@require_POST
def decide(request):
    """Approve or dismiss the checked sign-ups, or the one whose own button was pressed."""
    decision = DECISIONS.get(request.POST.get("decision", ""))
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
    for name, single in (("approve_one", "approve"), ("dismiss_one", "dismiss")):
        if request.POST.get(name, "").isdigit():
            decision, ids = DECISIONS[single], [int(request.POST[name])]
    if decision is None or not ids:
        messages.error(request, "Choose at least one sign-up and approve or dismiss.")
        return redirect("signups")
    # Only this tenant's pending rows: ids of another tenant's rows match nothing.
    changed = decide_signups(ids, decision, request.user)
    messages.success(request, f"{changed} sign-up{'s' if changed != 1 else ''} {decision}.")
    return redirect("signups")
