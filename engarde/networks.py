"""``OUTBOUND_PRIVATE_NETWORKS``: the networks where operators may point a platform URL.

Read once, at start-up, by ``engarde.settings``; a value that is not a network is a start-up error
naming it, never a network silently left out (or, worse, one read wider than meant). Imports no app.
"""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: list[str], name: str = "OUTBOUND_PRIVATE_NETWORKS") -> tuple[Network, ...]:
    """Each of ``values`` (``10.20.0.0/16``, ``fd00:1::/64``, or one address) as a network.

    Strict: ``10.20.3.4/16`` (host bits set) is refused rather than read as ``10.20.0.0/16``, since
    whoever wrote it meant something and we cannot tell what. A prefix of length 0 (every address,
    the public internet included) is refused: it would let plain http reach anywhere."""
    networks = []
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{name}: {text[:60]!r} is not a network ({exc}); give comma-separated CIDRs such as "
                "10.20.0.0/16,fd00:1::/64 (see README.md, Configuration)."
            ) from None
        if network.prefixlen == 0:
            raise ImproperlyConfigured(
                f"{name}: {text!r} is every address, the public internet included; name the private networks only."
            )
        networks.append(network)
    return tuple(networks)
