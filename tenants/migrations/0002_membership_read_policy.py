"""Memberships: a user's own rows become readable through a SELECT-only policy, instead of an OR
in the policy that also governs DELETE (a connection with ``app.user_id`` set could delete that
user's memberships of other tenants)."""

from django.db import migrations

from tenants.rls import MEMBERSHIP_OWN_ROWS, EnableRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [EnableRowLevelSecurity("Membership", extra_read_condition=MEMBERSHIP_OWN_ROWS)]
