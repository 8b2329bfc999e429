from django.db import migrations

from tenants.rls import AddTenantForeignKey


class Migration(migrations.Migration):
    """A payment, a sign-up or a contact's delivery can only point at a contact of its own tenant
    (issue 7.13)."""

    dependencies = [("contacts", "0003_contactdelivery")]

    operations = [
        AddTenantForeignKey("Payment", "contact"),
        AddTenantForeignKey("PendingSignup", "contact"),
        AddTenantForeignKey("ContactDelivery", "contact"),
    ]
