"""API tokens belong to one tenant (issue 12).

A token used to be personal (``user``) and answered for every tenant of its user. Now it has a
``tenant``, keeps who made it (``created_by``, set to NULL when that user is deleted) and a
``role``. Existing tokens are moved like this:

- a token whose user is a member of exactly one tenant becomes a token of that tenant, made by
  that user, with the user's role there (what it could do before, for the only tenant it reached);
- every other token is DELETED: its user belongs to several tenants (we cannot tell which one the
  scripts using it meant, and giving it all of them is what this change ends) or to none (it
  answered for nothing). Their owners make new tokens on the tenant's ``/tokens/`` page.

Memberships are read per tenant (the migration role is subject to FORCE ROW LEVEL SECURITY too),
by setting ``app.tenant_id`` for each tenant in turn. Then the token table gets row-level security
like every tenant table, plus one read policy: the row whose ``key_hash`` is ``app.token_hash``,
the lookup the authenticator makes before it knows the tenant.
"""

from collections import defaultdict

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from tenants.rls import TOKEN_OWN_HASH, EnableRowLevelSecurity


def _set_tenant(connection, tenant_id: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [tenant_id])


def move_tokens_to_their_tenant(apps, schema_editor):
    alias = schema_editor.connection.alias
    Tenant = apps.get_model("tenants", "Tenant")
    Membership = apps.get_model("tenants", "Membership")
    ApiToken = apps.get_model("tenants", "ApiToken")
    tenants_of = defaultdict(list)
    for tenant_id in Tenant.objects.using(alias).values_list("pk", flat=True):
        _set_tenant(schema_editor.connection, str(tenant_id))
        for user_id, role in Membership.objects.using(alias).filter(tenant_id=tenant_id).values_list("user_id", "role"):
            tenants_of[user_id].append((tenant_id, role))
    _set_tenant(schema_editor.connection, "")
    for token in ApiToken.objects.using(alias).all():
        found = tenants_of.get(token.created_by_id, [])
        if len(found) == 1:
            ApiToken.objects.using(alias).filter(pk=token.pk).update(tenant_id=found[0][0], role=found[0][1])
        else:
            ApiToken.objects.using(alias).filter(pk=token.pk).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0005_policies_without_operator_setting"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameField(model_name="apitoken", old_name="user", new_name="created_by"),
        migrations.AlterField(
            model_name="apitoken", name="created_by",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name="apitoken", name="tenant",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="api_tokens", to="tenants.tenant"),
        ),
        migrations.AddField(
            model_name="apitoken", name="role",
            field=models.CharField(choices=[("owner", "Owner"), ("admin", "Admin"), ("member", "Member")],
                                   default="member", help_text="What the token may do; never more than its creator may.",
                                   max_length=16),
        ),
        migrations.RunPython(move_tokens_to_their_tenant, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken", name="tenant",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="api_tokens",
                                    to="tenants.tenant"),
        ),
        migrations.AlterModelOptions(name="apitoken", options={"base_manager_name": "objects",
                                                                "ordering": ["-created_at", "-pk"]}),
        migrations.AlterField(model_name="apitoken", name="key_hash",
                              field=models.CharField(db_index=True, max_length=64)),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.UniqueConstraint(fields=("tenant", "key_hash"), name="apitoken_unique_tenant_hash"),
        ),
        EnableRowLevelSecurity("ApiToken", extra_read_condition=TOKEN_OWN_HASH),
    ]
