"""Contacts that arrive within a tenant's notice window wait for one digest at its end
(``contacts.tasks``, ``NEW_CONTACT_NOTICE_SECONDS``): ``notice_due`` marks them, and a partial index
holds only those still untold, so the digest's read costs nothing on a tenant's other contacts."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0006_tenant_indexes_covered_by_composites'),
    ]

    operations = [
        migrations.AddField(
            model_name='contact',
            name='notice_due',
            field=models.BooleanField(db_default=False, default=False, help_text="Arrived within the tenant's notice window: told in the digest at its end (contacts.tasks)."),
        ),
        migrations.AddIndex(
            model_name='contact',
            index=models.Index(condition=models.Q(('notice_due', True), ('notified_at__isnull', True)), fields=['tenant'], name='contact_notice_due_idx'),
        ),
    ]
