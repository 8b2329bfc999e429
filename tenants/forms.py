import unicodedata

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm, SetPasswordMixin
from django.core.exceptions import ValidationError

from tenants.decorators import acts_as_owner
from tenants.invitations import account_for, invite
from tenants.models import Invitation, Membership


class InviteForm(forms.Form):
    """Invite someone to the request's tenant, or change the role of someone already in it.
    Nobody joins without accepting the e-mailed invitation (``tenants.invitations``). Only owners
    (and staff with ``tenants.act_as_owner``) may make owners, and the last owner stays one."""

    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.acting_is_owner = acts_as_owner(request)
        if not self.acting_is_owner:
            self.fields["role"].choices = [c for c in Membership.Role.choices if c[0] != Membership.Role.OWNER]

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()

    def save(self) -> Membership | Invitation:
        """The changed membership of someone already here, or the invitation sent. Raises
        ``ValidationError`` (and the form carries it) when refused."""
        email, role = self.cleaned_data["email"], self.cleaned_data["role"]
        user = account_for(email)
        existing = Membership.objects.filter(user=user).first() if user else None
        if existing is None:
            return invite(self.request, email, role)
        if existing.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
            # Inviting someone already here changes their role: the rules of removing an owner
            # apply to demoting one.
            if not self.acting_is_owner:
                refusal = "Only an owner can change an owner's role."
            elif Membership.objects.filter(role=Membership.Role.OWNER).count() == 1:
                refusal = LAST_OWNER
            else:
                refusal = ""
            if refusal:
                self.add_error("role", refusal)
                raise ValidationError(refusal)
        existing.role = role
        existing.save(update_fields=["role"])
        return existing


LAST_OWNER = "The last owner must stay an owner."


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


class JoinForm(SetPasswordMixin, forms.Form):
    """Someone new accepting an invitation: their name and a password (the link proved the address)."""

    first_name = forms.CharField(max_length=150, label="First name")
    last_name = forms.CharField(max_length=150, label="Last name", required=False)
    password1, password2 = SetPasswordMixin.create_password_fields(label1="Choose a password")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self):
        self.validate_passwords()
        self.user.first_name = self.cleaned_data.get("first_name", "")
        self.user.last_name = self.cleaned_data.get("last_name", "")
        self.validate_password_for_user(self.user)
        return super().clean()

    def save(self):
        return self.set_password_and_save(self.user)
