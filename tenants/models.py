import hashlib
import secrets
import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from tenants.context import TenantNotSet, current_tenant_id, user_context
from tenants.managers import TenantManager

slug_validator = RegexValidator(
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    "Use lowercase letters, digits and single hyphens (not at the start or end).",
)


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Paris.")


class Tenant(models.Model):
    """A business that connects its own platform accounts. Not tenant-owned itself: webhooks look
    a tenant up by slug or id before any tenant context exists."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    slug = models.SlugField(max_length=63, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    owner_name = models.CharField(max_length=200, blank=True)
    report_email = models.EmailField(blank=True, help_text="Where the weekly report goes.")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    config = models.JSONField(default=dict, blank=True, help_text="Non-secret tenant options.")
    is_active = models.BooleanField(default=True, help_text="Inactive tenants get 404 on every webhook.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        db_table = "tenants_tenant"
        # Operator powers beyond changing rows (``tenants.staff``): given to staff explicitly.
        permissions = [
            ("act_as_owner", "Act as an owner of any tenant: make, demote and remove owners"),
            ("rotate_secrets", "Replace or generate any tenant's webhook secrets and tokens"),
        ]

    def __str__(self):
        return self.name

    @classmethod
    def resolve(cls, key: str, active_only: bool = True):
        """The tenant for a URL segment: a UUID or a slug. ``None`` when there is none."""
        queryset = cls.objects.filter(is_active=True) if active_only else cls.objects.all()
        try:
            return queryset.get(pk=uuid.UUID(str(key)))
        except (ValueError, cls.DoesNotExist):
            pass
        return queryset.filter(slug=str(key).lower()).first()


class TenantOwned(models.Model):
    """Base of every model that belongs to one tenant.

    The default (and base) manager fails closed; saving stamps the active tenant and refuses to
    write a row of another tenant. PostgreSQL row-level security stands behind it (see
    ``tenants.rls``): every concrete subclass needs ``EnableRowLevelSecurity`` in a migration,
    which ``tests/test_rls.py`` checks in the catalogue.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects = TenantManager()
    _tenant_owned = True  # read by tenants.scoping, which scopes the joins into tenant tables

    class Meta:
        abstract = True
        base_manager_name = "objects"

    def stamp_tenant(self):
        active = current_tenant_id()
        if self.tenant_id is None:
            if active is None:
                raise TenantNotSet(f"Cannot create {type(self).__name__} without an active tenant")
            self.tenant_id = uuid.UUID(active)
        elif active is not None and str(self.tenant_id) != active:
            raise TenantNotSet(f"{type(self).__name__} of another tenant cannot be written here")
        # A relation to another tenant-owned row must stay inside the tenant: a loaded row is
        # compared, an id alone is looked up in this tenant (PostgreSQL's composite foreign keys
        # refuse it too; on SQLite this is the only wall).
        for field in tenant_relations(type(self)):
            if field.is_cached(self):
                related = field.get_cached_value(self)
                if related is not None and related.tenant_id != self.tenant_id:
                    raise TenantNotSet(f"{type(self).__name__}.{field.name} points at another tenant")
            elif (value := getattr(self, field.attname)) is not None:
                if not field.related_model._base_manager.filter(pk=value, tenant_id=self.tenant_id).exists():
                    raise TenantNotSet(f"{type(self).__name__}.{field.name} points at no row of this tenant")

    def save(self, *args, **kwargs):
        self.stamp_tenant()
        super().save(*args, **kwargs)


def tenant_relations(model) -> list:
    """The foreign keys of a tenant-owned model to other tenant-owned models: each needs a
    composite key ``(tenant_id, …_id)`` (``tenants.rls.AddTenantForeignKey``)."""
    return [
        field for field in model._meta.concrete_fields
        if field.is_relation and field.name != "tenant" and issubclass(field.related_model, TenantOwned)
    ]


class Membership(TenantOwned):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        db_table = "tenants_membership"
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_tenant_user")]
        ordering = ["created_at"]

    def __str__(self):
        return f"{self.user} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.ADMIN)

    @classmethod
    def of_user(cls, user) -> list["Membership"]:
        """The user's own memberships, before any tenant is known (RLS: ``app.user_id``)."""
        with user_context(user.pk):
            # A plain QuerySet on purpose: no tenant is active yet; the user filter (and RLS)
            # is the scope here.
            return list(
                models.QuerySet(cls).filter(user_id=user.pk).select_related("tenant").filter(tenant__is_active=True)
            )

    @classmethod
    def deactivated_tenants_of(cls, user) -> list[Tenant]:
        """The deactivated tenants the user belongs to: their pages say so instead of "no tenant"."""
        with user_context(user.pk):
            rows = models.QuerySet(cls).filter(user_id=user.pk, tenant__is_active=False).select_related("tenant")
            return [membership.tenant for membership in rows]


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once when made."""

    PREFIX = "eg_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    key_tail = models.CharField(max_length=4, editable=False, help_text="Last characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tenants_apitoken"

    def __str__(self):
        return f"{self.PREFIX}…{self.key_tail} ({self.user})"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str = "") -> tuple["ApiToken", str]:
        key = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=cls.hash(key), key_tail=key[-4:])
        return token, key

    @classmethod
    def authenticate(cls, key: str):
        token = cls.objects.select_related("user").filter(key_hash=cls.hash(key)).first()
        if token is None or not token.user.is_active:
            return None
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token


class Invitation(TenantOwned):
    """An invitation to join a tenant, sent from its members page: nobody joins a tenant without
    accepting (issue 7.7). Only the SHA-256 of the link's token is stored; the link dies at
    ``expires_at``, when it is resent (a new token) or cancelled (the row is deleted), and once
    used (the row is deleted too: the audit log keeps the acceptance)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta(TenantOwned.Meta):
        db_table = "tenants_invitation"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "email"], name="invitation_unique_tenant_email"),
            models.UniqueConstraint(fields=["tenant", "token_hash"], name="invitation_unique_tenant_token"),
        ]
        ordering = ["-sent_at"]

    def __str__(self):
        return f"{self.email} ({self.role}) invited to {self.tenant_id}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    def new_token(self) -> str:
        """A fresh link token (the previous link stops working), valid ``INVITATION_VALID_DAYS``."""
        token = secrets.token_urlsafe(32)
        self.token_hash = ApiToken.hash(token)
        self.sent_at = timezone.now()
        self.expires_at = self.sent_at + timezone.timedelta(days=settings.INVITATION_VALID_DAYS)
        return token

    @classmethod
    def find(cls, token: str) -> "Invitation | None":
        """The active tenant's live invitation for a link token, or ``None``."""
        return cls.objects.select_related("invited_by").filter(
            token_hash=ApiToken.hash(token), expires_at__gt=timezone.now()
        ).first()
