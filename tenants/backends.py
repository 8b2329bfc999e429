from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q


class EmailOrUsernameBackend(ModelBackend):
    """Sign in with a username or an e-mail address, case-insensitively for every account (also
    one made in the admin with ``Ada@Example.com`` as its username). What matches two accounts signs
    in neither, rather than guessing which one was meant."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        typed = (username or kwargs.get(get_user_model().USERNAME_FIELD) or "").strip()
        if not typed:
            return None
        User = get_user_model()
        exact = list(User._default_manager.filter(username=typed)[:1])
        matches = exact or list(User._default_manager.filter(Q(username__iexact=typed) | Q(email__iexact=typed))[:2])
        if len(matches) != 1:
            User().set_password(password)  # the same work as a real check: no timing tell
            return None
        return super().authenticate(request, username=matches[0].get_username(), password=password, **kwargs)
