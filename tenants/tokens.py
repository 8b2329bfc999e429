"""The tenant's API tokens page (``/tokens/``): its owners and admins list, make and revoke the
tenant's tokens. A token is shown once, in the page's answer (``includes/token_once.html``, never in
a message or the session), and acts for this tenant only, with at most its creator's role
(``ApiToken``). Members get 403; staff acting for a tenant they are not in may see the list with
``tenants.view_apitoken`` but not make tokens (a token needs a member to act as)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from tenants.decorators import tenant_page
from tenants.models import ROLE_RANK, ApiToken, Membership
from tenants.staff import acting_as_staff, audit_log

READS = ("tenants.view_apitoken",)
CHANGES = "tenants.delete_apitoken"


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “CRM export script”.")
    role = forms.ChoiceField(help_text="What it may do. Never more than you may.")

    def __init__(self, *args, membership=None, **kwargs):
        super().__init__(*args, **kwargs)
        rank = ROLE_RANK[membership.role] if membership else -1
        self.fields["role"].choices = [(value, label) for value, label in Membership.Role.choices
                                       if ROLE_RANK[value] <= rank][::-1]
        self.fields["role"].initial = Membership.Role.MEMBER


def _page(request, form, status=200, new=None, key=""):
    response = render(request, "tenants/tokens.html", {
        "section": "tokens",
        "tokens": ApiToken.objects.select_related("created_by"),
        "form": form, "can_create": not acting_as_staff(request),
        "new": new, "new_key": key,
        "next_step": "send it as “Authorization: Bearer <token>” to the API (/api/docs/). "
                     "Keep it where secrets go; if it is lost, revoke it and make another.",
    }, status=status)
    response["Cache-Control"] = "no-store"
    return response


@tenant_page(admin_only=True, reads=READS, changes=CHANGES)
def tokens(request):
    return _page(request, TokenForm(membership=request.membership))


@tenant_page(admin_only=True, reads=READS, changes=CHANGES)
@require_POST
def create_token(request):
    if acting_as_staff(request):
        raise PermissionDenied("API tokens are made by the tenant's own owners and admins.")
    form = TokenForm(request.POST, membership=request.membership)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        token, key = ApiToken.issue(request.tenant, request.user, role=form.cleaned_data["role"],
                                    name=form.cleaned_data["name"])
    except ValidationError as exc:
        form.add_error(None, exc)
        return _page(request, form, status=400)
    audit_log.info("user %s made API token %s (%s) of tenant %s", request.user.pk, token.pk, token.role,
                   request.tenant.slug)
    return _page(request, TokenForm(membership=request.membership), new=token, key=key)


@tenant_page(admin_only=True, reads=READS, changes=CHANGES)
@require_http_methods(["GET", "POST"])
def revoke_token(request, token_id: int):
    token = get_object_or_404(ApiToken.objects.select_related("created_by"), pk=token_id)  # this tenant's only
    if request.method == "GET":  # the confirmation step
        return render(request, "tenants/token_revoke.html", {"section": "tokens", "token": token})
    token.delete()
    audit_log.info("user %s revoked API token %s of tenant %s", request.user.pk, token_id, request.tenant.slug)
    messages.success(request, f"The token “{token.name or '…' + token.key_tail}” was revoked: it no longer works.")
    return redirect("tokens")
