from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from contacts.signals import contacts_created
        from contacts.tasks import queue_new_contact_notice

        contacts_created.connect(queue_new_contact_notice, dispatch_uid="contacts.new_contact_notice")
