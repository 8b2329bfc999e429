"""Admin forms for ``TenantIntegration``, built from the provider registry.

Adding an integration takes two steps: ``ProviderChoiceForm`` picks the tenant and the platform,
then ``integration_form_for(provider)`` gives that platform's credential form. Secrets are
write-only: password inputs that never render a value, a masked tail in the help text at most,
and a blank input keeps the saved value. Every value is checked by its ``CredentialField`` (what the
platform issues, a length, a choice), and an active integration cannot be saved without what it
needs to work: the form says which field, and nothing is marked connected. The raw ``credentials`` and webhook secret columns are
never form fields; values reach the model only through ``set_values`` and ``set_webhook_secret``.
"""

from datetime import timedelta
from functools import cache

from django import forms
from django.core.exceptions import ImproperlyConfigured, ValidationError

from integrations.models import TenantIntegration
from integrations.providers.base import MAX_CREDENTIAL_LENGTH, CredentialField, Provider

# At most a month: a grace period is for a rotation in progress, not a second permanent secret.
MAX_GRACE_HOURS = 24 * 30


class ProviderChoiceForm(forms.ModelForm):
    """Step one of adding: which tenant, which platform. The (tenant, provider) unique
    constraint is validated here, so a duplicate is refused before any credential is typed."""

    class Meta:
        model = TenantIntegration
        fields = ["tenant", "provider"]


def secret_input() -> forms.PasswordInput:
    # render_value=False: not even a re-displayed form after a validation error holds the value.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class IntegrationForm(forms.ModelForm):
    """One provider's form; ``integration_form_for`` subclasses it with that provider's fields.

    Model fields are only ``tenant``, ``provider`` and ``is_active`` (``Meta.fields``), so no
    declared field, whatever its name, is ever copied onto the model by Django itself.
    """

    provider_obj: Provider
    #: whoever saves this form is an operator (the admin); the setup page's subclass says False, so
    #: a URL a tenant user typed can never reach OUTBOUND_PRIVATE_NETWORKS (``set_values``).
    by_operator = True

    class Meta:
        model = TenantIntegration
        fields = ["tenant", "provider", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "provider" in self.fields:
            # Adding: the provider came from the URL and is fixed for this form. Kept as a
            # (disabled) field so the (tenant, provider) unique constraint is validated.
            self.instance.provider = self.initial["provider"] = self.provider_obj.name
            self.fields["provider"].disabled = True
        for field in self.provider_obj.credential_fields:
            if field.secret:
                self.fields[field.name].help_text = self._secret_help(field.help_text, field.name, field.required)
            else:
                self.initial.setdefault(field.name, self.instance.settings.get(field.name, ""))
        if "new_webhook_secret" in self.fields:
            self.fields["new_webhook_secret"].help_text = self._secret_help(
                "Or generate one below." if self.provider_obj.generates_webhook_secret else "",
                "webhook_secret", required=True,
            )
        if "generate_webhook_secret" in self.fields and not self.instance.webhook_secret:
            self.initial.setdefault("generate_webhook_secret", True)
        if not self.instance.webhook_secret:
            # A first connect has no previous secret to keep valid: no grace period to offer.
            self.fields.pop("webhook_secret_grace_hours", None)
        self.changed_names: list[str] = []
        self.generated_token = ""

    def _secret_help(self, help_text: str, name: str, required: bool) -> str:
        masked = self.instance.masked(name) if self.instance.pk else ""
        if masked:
            state = f"{masked[0].upper()}{masked[1:]}; leave blank to keep it."
        else:
            state = "Not set yet." + (" Required for the connection to work." if required else "")
        return f"{help_text} {state}".strip()

    def clean_new_webhook_secret(self):
        return self.provider_obj.clean_webhook_secret(self.cleaned_data.get("new_webhook_secret"))

    def clean(self):
        cleaned = super().clean()
        replacing = cleaned.get("new_webhook_secret") or cleaned.get("generate_webhook_secret")
        if cleaned.get("new_webhook_secret") and cleaned.get("generate_webhook_secret"):
            self.add_error("generate_webhook_secret", "Enter a secret or generate one, not both.")
        if cleaned.get("webhook_secret_grace_hours") and not replacing:
            self.add_error("webhook_secret_grace_hours", "This only applies when the secret is replaced.")
        if cleaned.get("is_active", self.instance.is_active):
            self._require_what_a_connection_needs(cleaned, bool(replacing))
        return cleaned

    def replaces_secrets(self) -> bool:
        """Whether saving would replace or generate a secret (staff need ``tenants.rotate_secrets``)."""
        data = self.cleaned_data
        secret_fields = [field.name for field in self.provider_obj.credential_fields if field.secret]
        return any(data.get(name) for name in [*secret_fields, "new_webhook_secret", "generate_webhook_secret"])

    def _require_what_a_connection_needs(self, cleaned, replacing: bool) -> None:
        """An active integration without a required value would look connected and receive
        nothing: say which value is missing instead of saving it."""
        label = self.provider_obj.label
        for field in self.provider_obj.credential_fields:
            if not field.required or field.name in self.errors:
                continue
            saved = self.instance.credentials.get(field.name, "") if field.secret else ""
            if not (cleaned.get(field.name) or saved):
                self.add_error(field.name, f"Enter the {field.label.lower()}: {label} does not work without it.")
        if "new_webhook_secret" in self.fields and "new_webhook_secret" not in self.errors:
            if not (replacing or self.instance.webhook_secret):
                what = "enter it or tick “generate”" if self.provider_obj.generates_webhook_secret else "enter it"
                self.add_error("new_webhook_secret", f"{label} cannot be connected without its "
                                                     f"{self.provider_obj.webhook_secret_label.lower()}: {what}.")

    def save(self, commit=True):
        integration = super().save(commit=False)
        data = self.cleaned_data
        model_changes = [name for name in self.changed_data if name in self._meta.fields]
        self.changed_names = model_changes + integration.set_values(
            {field.name: data.get(field.name, "") for field in self.provider_obj.credential_fields},
            by_operator=self.by_operator,
        )
        new_secret = data.get("new_webhook_secret", "")
        if data.get("generate_webhook_secret"):
            new_secret = self.generated_token = TenantIntegration.generate_token()
        if new_secret:
            hours = data.get("webhook_secret_grace_hours")
            integration.set_webhook_secret(new_secret, grace=timedelta(hours=hours) if hours else None)
            self.changed_names.append("webhook_secret")
        if commit:
            integration.save()
        return integration


class CredentialChecks:
    """A form field that cleans its value with its ``CredentialField`` (``credential``)."""

    credential: CredentialField

    def clean(self, value):
        value = super().clean(value)
        try:
            return self.credential.clean(value)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


class CredentialCharField(CredentialChecks, forms.CharField):
    pass


class CredentialChoiceField(CredentialChecks, forms.ChoiceField):
    def valid_value(self, value):
        return True  # the credential's own check refuses it, with a sentence naming the choices


def _credential_formfield(field: CredentialField) -> forms.Field:
    # Not required by the form field itself: a blank secret means "keep the saved one". Whether
    # something is missing is decided for the whole form (``_require_what_a_connection_needs``).
    # The HTML length limit is a little above the check's, so a too-long paste gets the sentence.
    if field.choices:
        made = CredentialChoiceField(label=field.label, required=False, help_text=field.help_text, choices=field.choices)
    elif field.secret:
        made = CredentialCharField(label=field.label, required=False, widget=secret_input())
    else:
        made = CredentialCharField(label=field.label, required=False, help_text=field.help_text)
    if isinstance(made, forms.CharField):
        made.widget.attrs["maxlength"] = str(field.max_length + 1)
        if field.example:
            made.widget.attrs["placeholder"] = field.example + ("…" if field.secret else "")
    made.credential = field
    return made


@cache
def integration_form_for(provider: Provider) -> type[IntegrationForm]:
    """The form class for one provider: its credential fields under their registry names, and
    the write-only webhook secret fields when the platform sends webhooks."""
    fields = {}
    for field in provider.credential_fields:
        # A registry name equal to a model attribute (``webhook_secret``, ``settings``…) could be
        # mistaken for that attribute by the admin's read-only display; refuse it outright.
        if hasattr(TenantIntegration, field.name) or field.name in IntegrationForm.base_fields:
            raise ImproperlyConfigured(f"{provider.name}: credential field name {field.name!r} is reserved")
        fields[field.name] = _credential_formfield(field)
    if provider.receives_webhooks:
        fields["new_webhook_secret"] = forms.CharField(
            label=provider.webhook_secret_label, required=False, widget=secret_input(), strip=True,
        )
        fields["new_webhook_secret"].widget.attrs["maxlength"] = str(MAX_CREDENTIAL_LENGTH + 1)
        if provider.webhook_secret_example:
            fields["new_webhook_secret"].widget.attrs["placeholder"] = provider.webhook_secret_example + "…"
        if provider.generates_webhook_secret:
            fields["generate_webhook_secret"] = forms.BooleanField(
                label="Generate a new token", required=False,
                help_text="Shown once, after saving. Put it in the platform's webhook settings.",
            )
        fields["webhook_secret_grace_hours"] = forms.IntegerField(
            label="Keep the previous secret valid for (hours)", required=False, min_value=1,
            max_value=MAX_GRACE_HOURS,
            help_text="When replacing: deliveries signed with the old secret are still accepted meanwhile.",
        )
    name = f"{provider.name.title()}IntegrationForm"
    return type(name, (IntegrationForm,), {"provider_obj": provider, **fields})
