import unicodedata

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError

from tenants.accounts import AmbiguousAccount, find_or_create_user
from tenants.decorators import acts_as_owner
from tenants.models import Membership


class InviteForm(forms.Form):
    """Add someone to the request's tenant. New accounts get an e-mail to choose their password.
    Only owners (and staff) may make owners."""

    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.acting_is_owner = acts_as_owner(request)
        if not self.acting_is_owner:
            self.fields["role"].choices = [c for c in Membership.Role.choices if c[0] != Membership.Role.OWNER]

    def save(self) -> tuple[Membership, bool]:
        """Raises ``ValidationError`` (and the form carries it) when the invitation is refused."""
        try:
            user, created = find_or_create_user(self.cleaned_data["email"])
        except AmbiguousAccount as exc:
            self.add_error("email", exc.message)
            raise
        role = self.cleaned_data["role"]
        existing = Membership.objects.filter(user=user).first()
        if existing and existing.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
            # Inviting someone already here changes their role: the rules of removing an owner
            # apply to demoting one.
            if not self.acting_is_owner:
                refusal = "Only an owner can change an owner's role."
            elif Membership.objects.filter(role=Membership.Role.OWNER).count() == 1:
                refusal = "The last owner must stay an owner."
            else:
                refusal = ""
            if refusal:
                self.add_error("role", refusal)
                raise ValidationError(refusal)
        membership, _ = Membership.objects.update_or_create(user=user, defaults={"role": role})
        if created:
            reset = PasswordResetForm({"email": user.email})
            if reset.is_valid():
                # Unusable passwords are skipped by PasswordResetForm.get_users: ask for this one.
                reset.get_users = lambda email, user=user: [user]
                reset.save(request=self.request, use_https=self.request.is_secure())
        return membership, created


def _same_address(a: str, b: str) -> bool:
    return unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()


class ResetPasswordForm(PasswordResetForm):
    """Django's reset form, also for accounts that never chose a password. Django skips unusable
    passwords (meant for sign-in elsewhere, which we do not have); here they are the people invited
    from the members page or added by ``add_tenant_user``, and an expired or lost invitation
    must not lock them out."""

    def get_users(self, email):
        User = get_user_model()
        field = User.get_email_field_name()
        users = User._default_manager.filter(**{f"{field}__iexact": email, "is_active": True})
        # The exact comparison keeps Django's guard against look-alike Unicode addresses.
        return (user for user in users if _same_address(email, getattr(user, field)))
