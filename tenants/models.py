import hashlib
import secrets
import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from tenants.context import TenantNotSet, current_tenant_id, presented_token, tenant_context, user_context
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


ROLE_RANK = {"member": 0, "admin": 1, "owner": 2}


class ApiToken(TenantOwned):
    """An API token of one tenant. Only its SHA-256 is stored; the token is shown once when made.

    It answers for its tenant and no other, whoever made it. It acts with ``role``, which is never
    above its creator's role there when it is made, and with the creator's role at most when it is
    used: a creator demoted to member makes an admin token act as a member. It stops working (401)
    when its creator leaves the tenant, is deactivated or deleted (``created_by`` then reads
    ``None``: the row stays, for the list), when the tenant is deactivated, and when it is revoked
    (the row is deleted). The lookup by the presented hash happens before the tenant is known: the
    table's extra read policy admits the one row whose ``key_hash`` is the transaction's
    ``app.token_hash`` (``tenants.context.presented_token``), nothing else.
    """

    PREFIX = "eg_"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_tokens")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER,
                            help_text="What the token may do; never more than its creator may.")
    name = models.CharField(max_length=100, blank=True)
    # Indexed for the lookup by hash; unique per tenant like every constraint of a tenant table (a
    # 256-bit random token's hash never repeats anyway, and ``authenticate`` refuses if it did).
    key_hash = models.CharField(max_length=64, db_index=True)
    key_tail = models.CharField(max_length=4, editable=False, help_text="Last characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwned.Meta):
        db_table = "tenants_apitoken"
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key_hash"], name="apitoken_unique_tenant_hash")]

    def __str__(self):
        return f"{self.PREFIX}…{self.key_tail} ({self.get_role_display().lower()})"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, tenant, created_by, role: str = "", name: str = "") -> tuple["ApiToken", str]:
        """A new token of ``tenant`` made by ``created_by``, who must be a member of it; ``role``
        (default: the creator's own) no higher than the creator's. Returns the row and the token,
        which is not stored anywhere: show it once."""
        with tenant_context(tenant):
            membership = Membership.objects.filter(user_id=created_by.pk).first()
            if membership is None:
                raise ValidationError(f"{created_by} is not a member of {tenant}: only members make its tokens.")
            role = role or membership.role
            if role not in ROLE_RANK:
                raise ValidationError(f"Unknown role {role!r}.")
            if ROLE_RANK[role] > ROLE_RANK[membership.role]:
                raise ValidationError(f"A token cannot do more than its creator: {created_by} is "
                                      f"{membership.get_role_display().lower()} of {tenant}.")
            key = cls.PREFIX + secrets.token_urlsafe(32)
            token = cls.objects.create(created_by=created_by, role=role, name=name[:100], key_hash=cls.hash(key),
                                       key_tail=key[-4:])
        return token, key

    @classmethod
    def authenticate(cls, key: str) -> "ApiToken | None":
        """The live token for ``key``, with ``membership``: its creator's membership of the token's
        tenant, acting with the lower of the two roles (not saved). ``None`` for an unknown,
        revoked or dead token (see the class)."""
        digest = cls.hash(key)
        with presented_token(digest):
            # A plain QuerySet: no tenant is known yet; the hash (and the read policy) is the scope.
            found = list(models.QuerySet(cls).select_related("tenant", "created_by").filter(key_hash=digest)[:2])
        token = found[0] if len(found) == 1 else None
        if token is None or not token.tenant.is_active or token.created_by is None or not token.created_by.is_active:
            return None
        with tenant_context(token.tenant_id):
            membership = Membership.objects.filter(user_id=token.created_by_id).first()
            if membership is None:
                return None
            now = timezone.now()
            if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
                cls.objects.filter(pk=token.pk).update(last_used_at=now)
        acting = min(token.role, membership.role, key=ROLE_RANK.__getitem__)
        # The request's membership: the creator's, with the token's role when that is lower.
        token.membership = Membership(pk=membership.pk, tenant=token.tenant, user=token.created_by, role=acting,
                                      created_at=membership.created_at)
        token.membership._state.adding = False
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
