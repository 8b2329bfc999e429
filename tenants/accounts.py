"""Finding or making the account for an e-mail address: one place for the command and the page."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q


class AmbiguousAccount(ValidationError):
    pass


def find_or_create_user(email: str):
    """The account of ``email`` (matched on username or e-mail, case-insensitively), or a new one
    with an unusable password. Returns (user, created). Two accounts sharing it: refused."""
    User = get_user_model()
    email = email.strip().lower()
    matches = list(User.objects.filter(Q(username__iexact=email) | Q(email__iexact=email))[:2])
    if len(matches) > 1:
        raise AmbiguousAccount(f"two accounts use {email}; merge them in the admin first")
    if matches:
        return matches[0], False
    user = User(username=email, email=email)
    user.set_unusable_password()
    user.save()
    return user, True
