"""The sources processing can run and the connections it reads, registered at start-up.

``webhooks`` sits below ``integrations``, so it cannot import the providers: ``integrations``
fills this registry in its ``AppConfig.ready`` (``integrations.apps``) with its provider mapping
(the very dict, so a provider added to it later is seen here too) and its ``Connections``.
"""

from __future__ import annotations

from typing import Mapping

from webhooks.contract import Connections, Source


class UnknownSource(KeyError):
    """No registered source has this name (a row of a provider removed since)."""


class NotRegistered(RuntimeError):
    """Nothing filled the registry: ``integrations`` is not installed or not ready."""


_sources: Mapping[str, Source] = {}
_connections: Connections | None = None


def register(sources: Mapping[str, Source], connections: Connections) -> None:
    """Called once at start-up by ``integrations.apps.IntegrationsConfig.ready``."""
    global _sources, _connections
    _sources, _connections = sources, connections


def get_source(name: str) -> Source:
    try:
        return _sources[name]
    except KeyError:
        raise UnknownSource(name) from None


def find_source(name: str) -> Source | None:
    return _sources.get(name)


def connections() -> Connections:
    if _connections is None:
        raise NotRegistered("no connections are registered (integrations.apps does it at start-up)")
    return _connections
