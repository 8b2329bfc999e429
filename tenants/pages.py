"""Tenant users' pages of the tenants app: picking a tenant (the members: ``tenants.members``)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from tenants.models import Membership, Tenant
from tenants.resolution import SESSION_KEY
from tenants.staff import VIEW_TENANT


@login_required
def pick_tenant(request):
    """Staff choose any tenant; a user of several tenants chooses among theirs. Remembered in the session."""
    if request.user.is_staff and request.user.has_perm(VIEW_TENANT):
        tenants = list(Tenant.objects.order_by("name"))
    else:
        tenants = [m.tenant for m in Membership.of_user(request.user)]
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.method == "POST":
        chosen = next((t for t in tenants if t.slug == request.POST.get("tenant")), None)
        if chosen is None:
            raise Http404("No such tenant.")
        request.session[SESSION_KEY] = chosen.slug
        if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
            next_url = ""
        return redirect(next_url or "dashboard")
    return render(request, "tenants/pick_tenant.html", {"tenants": tenants, "next": next_url})

