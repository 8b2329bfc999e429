from django.db import migrations

from tenants.rls import DropOperatorSetting


class Migration(migrations.Migration):
    """The runtime role could set app.operator itself and see every tenant; operators are now a
    role of their own (setup_app_role --operator, OPERATOR_DATABASE_URL). Issue 7.16."""

    dependencies = [("tenants", "0004_invitation")]

    operations = [DropOperatorSetting()]
