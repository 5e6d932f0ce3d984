"""Compare what a config names with what each network lists: configured models that are gone,
and listed models the config does not name, by size tier.

A configured model that is no longer listed is the catalog's mistake, not the network's
failure: its probes fail with 404s or "model not found" until the config is fixed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from monitor.catalog.listing import DEFAULT_TIMEOUT_S, Listing, ListingError, fetch, listing_url
from monitor.catalog.tiers import TIERS, tier_of
from monitor.config import Network


@dataclass(frozen=True, slots=True)
class ConfiguredModel:
    tier: str  # the config's tier label (small, medium, ...)
    model: str
    listed: bool


@dataclass(frozen=True, slots=True)
class NetworkDrift:
    """One network's catalog check. `url` None: it has no listing; `error`: it failed."""

    network: str
    url: str | None
    error: str | None = None
    configured: tuple[ConfiguredModel, ...] = ()
    new: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # size tier -> ids
    listed_total: int = 0

    @property
    def checked(self) -> bool:
        return self.url is not None and self.error is None

    @property
    def gone(self) -> tuple[ConfiguredModel, ...]:
        return tuple(m for m in self.configured if not m.listed)


def compare(network: Network, listing: Listing) -> NetworkDrift:
    names = listing.names()
    configured = tuple(ConfiguredModel(tier, model, model in names)
                       for tier, model in network.models)
    named = {model for _, model in network.models}
    new: dict[str, list[str]] = {tier: [] for tier in TIERS}
    for m in listing.models:
        if m.offered and m.id not in named and m.id.removesuffix(":latest") not in named:
            new[tier_of(m.billions)].append(m.id)
    return NetworkDrift(network.name, listing.url, configured=configured,
                        new={t: tuple(sorted(set(ids))) for t, ids in new.items() if ids},
                        listed_total=len(names))


async def check_network(client: httpx.AsyncClient, network: Network) -> NetworkDrift:
    url = listing_url(network)
    if url is None:
        return NetworkDrift(network.name, None)
    try:
        return compare(network, await fetch(client, network))
    except ListingError as exc:
        return NetworkDrift(network.name, url, error=str(exc))


async def check_networks(networks: Iterable[Network], timeout_s: float = DEFAULT_TIMEOUT_S,
                         client: httpx.AsyncClient | None = None) -> list[NetworkDrift]:
    """Every network's check, concurrently, in the given order."""
    own = client is None
    client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=True)
    try:
        return list(await asyncio.gather(*(check_network(client, n) for n in networks)))
    finally:
        if own:
            await client.aclose()
