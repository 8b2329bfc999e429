"""The pending sign-up queue: approve or dismiss, one by one or in bulk."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from contacts.models import PendingSignup
from tenants.decorators import can_administer, tenant_page

DECISIONS = {"approve": PendingSignup.Status.APPROVED, "dismiss": PendingSignup.Status.DISMISSED}


@tenant_page
def signups(request):
    status = request.GET.get("status", PendingSignup.Status.PENDING)
    rows = PendingSignup.objects.select_related("contact").order_by("-created_at", "-pk")
    if status in PendingSignup.Status.values:
        rows = rows.filter(status=status)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "contacts/signups.html", {
        "section": "signups", "page": page, "status": status, "statuses": PendingSignup.Status.choices,
        "can_decide": can_administer(request),
    })


@tenant_page(admin_only=True)
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
    changed = PendingSignup.objects.filter(pk__in=ids, status=PendingSignup.Status.PENDING).update(
        status=decision, decided_at=timezone.now(), decided_by=request.user, updated_at=timezone.now()
    )
    messages.success(request, f"{changed} sign-up{'s' if changed != 1 else ''} {decision}.")
    return redirect("signups")
