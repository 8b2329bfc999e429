"""The admin's user form asks for the e-mail address: people sign in with it and invitations go to
it. An address another account already uses (in any case) is refused, since sign-in by e-mail
would then match two accounts and sign in neither."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Q


def _unique_email(form, email: str) -> str:
    email = email.strip().lower()
    others = get_user_model().objects.filter(Q(email__iexact=email) | Q(username__iexact=email))
    if form.instance.pk:
        others = others.exclude(pk=form.instance.pk)
    if others.exists():
        raise forms.ValidationError("Another account already uses this address.")
    return email


class UserCreationWithEmailForm(AdminUserCreationForm):
    email = forms.EmailField(required=True, help_text="They sign in with it (in any case) or with the username.")

    class Meta(AdminUserCreationForm.Meta):
        fields = ("username", "email", "first_name", "last_name")

    def clean_email(self):
        return _unique_email(self, self.cleaned_data["email"])


class UserChangeWithEmailForm(UserChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "email" in self.fields:
            self.fields["email"].required = True

    def clean_email(self):
        return _unique_email(self, self.cleaned_data["email"])


class EnGardeUserAdmin(UserAdmin):
    add_form = UserCreationWithEmailForm
    form = UserChangeWithEmailForm
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "first_name", "last_name")}),
        ("Password", {"classes": ("wide",), "fields": ("usable_password", "password1", "password2")}),
    )


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, EnGardeUserAdmin)
