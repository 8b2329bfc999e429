"""The page an invitation link opens: ``/invitations/<tenant>/<token>/`` (issue 7.7).

The link names the tenant, so the invitation is looked up inside that tenant's context (both
walls stand; no cross-tenant lookup by token). Someone without an account (or with one that never
had a password) chooses a name and password here; an existing account signs in and presses "Join".
A link that is unknown, expired, resent or cancelled says so, and nothing changes.
"""

from django.contrib.auth import get_user_model, login
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.views.decorators.debug import sensitive_post_parameters

from tenants import invitations
from tenants.context import tenant_context
from tenants.forms import JoinForm
from tenants.models import Invitation, Tenant

BACKEND = "tenants.backends.EmailOrUsernameBackend"


@sensitive_post_parameters("password1", "password2")
def invitation(request, tenant_slug: str, token: str):
    tenant = Tenant.resolve(tenant_slug)
    if tenant is None:
        return render(request, "tenants/invitation_invalid.html", status=404)
    with tenant_context(tenant):
        found = Invitation.find(token)
        if found is None:
            return render(request, "tenants/invitation_invalid.html", {"tenant": tenant}, status=404)
        return _answer(request, tenant, found)


def _answer(request, tenant, found: Invitation):
    account = invitations.account_for(found.email)
    context = {"tenant": tenant, "invitation": found, "inviter": found.invited_by}
    signed_in_as_other = request.user.is_authenticated and request.user != account
    if signed_in_as_other:
        return render(request, "tenants/invitation.html", {**context, "state": "other-account"})
    if account is None or not account.has_usable_password():
        return _new_account(request, tenant, found, account, context)
    if not request.user.is_authenticated:
        login_url = f"/accounts/login/?{urlencode({'next': request.get_full_path()})}"
        return render(request, "tenants/invitation.html", {**context, "state": "sign-in", "login_url": login_url})
    if request.method == "POST":
        invitations.accept(found, account)
        return redirect(f"/?{urlencode({'tenant': tenant.slug})}")
    return render(request, "tenants/invitation.html", {**context, "state": "join"})


def _new_account(request, tenant, found, account, context):
    if account is None and get_user_model().objects.filter(email__iexact=found.email).exists():
        # Two accounts share the address: which one joins is the operator's call.
        return render(request, "tenants/invitation.html", {**context, "state": "ambiguous"}, status=409)
    user = account or get_user_model()(username=found.email, email=found.email)
    form = JoinForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        invitations.accept(found, user)
        login(request, user, backend=BACKEND)
        return redirect(f"/?{urlencode({'tenant': tenant.slug})}")
    return render(request, "tenants/invitation.html", {**context, "state": "new-account", "form": form},
                  status=400 if request.method == "POST" else 200)
