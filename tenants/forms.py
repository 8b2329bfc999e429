from django import forms
from django.contrib.auth.forms import PasswordResetForm

from tenants.accounts import AmbiguousAccount, find_or_create_user
from tenants.models import Membership


class InviteForm(forms.Form):
    """Add someone to the request's tenant. New accounts get an e-mail to choose their password.
    Only owners (and staff) may make owners."""

    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        membership = request.membership
        if not (request.user.is_staff or (membership and membership.role == Membership.Role.OWNER)):
            self.fields["role"].choices = [c for c in Membership.Role.choices if c[0] != Membership.Role.OWNER]

    def save(self) -> tuple[Membership, bool]:
        try:
            user, created = find_or_create_user(self.cleaned_data["email"])
        except AmbiguousAccount as exc:
            self.add_error("email", exc.message)
            raise
        membership, _ = Membership.objects.update_or_create(user=user, defaults={"role": self.cleaned_data["role"]})
        if created:
            reset = PasswordResetForm({"email": user.email})
            if reset.is_valid():
                # Unusable passwords are skipped by PasswordResetForm.get_users: ask for this one.
                reset.get_users = lambda email, user=user: [user]
                reset.save(request=self.request, use_https=self.request.is_secure())
        return membership, created
