"""The "contact created" hook: how the layers above hear about new contacts.

contacts/ sits below integrations and never imports a provider or a task. Whoever wants to act on a
new contact connects a receiver: contacts' own e-mail notice (``ContactsConfig.ready``) and every
provider's ``Provider.contact_created`` (``IntegrationsConfig.ready``; Brevo adds the contact to the
tenant's list).
"""

import logging

from django.dispatch import Signal

log = logging.getLogger(__name__)

#: Sent once the transaction that created a contact has committed (never for a rolled-back one),
#: with ``tenant_id`` (str) and ``contact_id`` (int). Receivers run in the request or task that made
#: the contact: they queue work, they do not do it.
contact_created = Signal()


def announce_contact_created(tenant_id, contact_id: int) -> None:
    """Tell every receiver. One receiver's bug is logged and does not keep the others from running."""
    for receiver, result in contact_created.send_robust(sender=None, tenant_id=str(tenant_id), contact_id=contact_id):
        if isinstance(result, Exception):
            log.error("contact_created receiver %s failed", getattr(receiver, "__qualname__", receiver), exc_info=result)
