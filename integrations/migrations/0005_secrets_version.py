"""``TenantIntegration.secrets_version``, kept by the database: a BEFORE UPDATE trigger adds one
whenever a column that verifying a delivery reads changes (see the field's comment). The receiver's
fast path (``webhooks.fastpath``) caches an integration with the version it was read at, and the
store function (``webhooks`` 0007) stores nothing when the version moved since."""

from django.db import migrations, models

from tenants.rls import PostgreSQLOnly

COLUMNS = ("webhook_secret", "previous_webhook_secret", "previous_webhook_secret_expires_at", "is_active",
           "settings", "credentials", "tenant_id", "provider")

BUMP = """
CREATE FUNCTION integrations_bump_secrets_version() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    -- Whatever the UPDATE wrote, the version is the old one, plus one when what it guards changed.
    NEW.secrets_version := OLD.secrets_version
        + CASE WHEN ({new}) IS DISTINCT FROM ({old}) THEN 1 ELSE 0 END;
    RETURN NEW;
END
$$;
CREATE TRIGGER integrations_secrets_version BEFORE UPDATE ON integrations_tenantintegration
    FOR EACH ROW EXECUTE FUNCTION integrations_bump_secrets_version();
""".format(new=", ".join(f"NEW.{c}" for c in COLUMNS), old=", ".join(f"OLD.{c}" for c in COLUMNS))

DROP = """
DROP TRIGGER IF EXISTS integrations_secrets_version ON integrations_tenantintegration;
DROP FUNCTION IF EXISTS integrations_bump_secrets_version();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0004_notified_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='tenantintegration',
            name='secrets_version',
            field=models.BigIntegerField(default=0, editable=False, help_text='Moves whenever a secret, the settings or the active state change (a database trigger): the receiver\'s cache of this connection is then out of date.'),
        ),
        PostgreSQLOnly(BUMP, DROP),
    ]
