"""Every provider, one line each. Adding a platform is a package plus one line here."""

from integrations.providers.base import Provider
from integrations.providers.brevo.provider import BrevoProvider
from integrations.providers.denefits.provider import DenefitsProvider
from integrations.providers.easyappointments.provider import EasyAppointmentsProvider
from integrations.providers.eventbrite.provider import EventbriteProvider
from integrations.providers.ghl.provider import GoHighLevelProvider
from integrations.providers.manychat.provider import ManyChatProvider
from integrations.providers.meta.provider import MetaAdsProvider
from integrations.providers.perspective.provider import PerspectiveProvider
from integrations.providers.poshvip.provider import PoshVipProvider
from integrations.providers.stripe.provider import StripeProvider
from integrations.providers.zoom.provider import ZoomProvider
from webhooks.sources import UnknownSource

PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        StripeProvider(),
        ZoomProvider(),
        GoHighLevelProvider(),
        ManyChatProvider(),
        DenefitsProvider(),
        PerspectiveProvider(),
        PoshVipProvider(),
        EventbriteProvider(),
        EasyAppointmentsProvider(),
        MetaAdsProvider(),
        BrevoProvider(),
    )
}

PROVIDER_CHOICES = [(name, provider.label) for name, provider in PROVIDERS.items()]


class UnknownProvider(UnknownSource):
    """No provider has this name (an ``UnknownSource`` to processing, which looks it up there)."""


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(name) from None


def label_of(name: str) -> str:
    """What a person reads for a provider name: "Posh.VIP", not "poshvip" (the name itself for a
    provider removed since)."""
    provider = PROVIDERS.get(name or "")
    return provider.label if provider else (name or "")
