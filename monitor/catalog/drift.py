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

from monitor.catalog.listing import (
    DEFAULT_TIMEOUT_S,
    Listing,
    ListingError,
    client_for,
    fetch,
    listing_url,
)
from monitor.catalog.tiers import TIERS, tier_of
from monitor.config import Network
from monitor.core.transport import TransportSettings


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


LISTINGS_AT_ONCE = 16  # listing reads in flight at a time


async def check_networks(networks: Iterable[Network], timeout_s: float = DEFAULT_TIMEOUT_S
                         ) -> list[NetworkDrift]:
    """Every network's check, LISTINGS_AT_ONCE at a time, in the given order; one HTTP client
    for the networks that connect alike (monitor.catalog.listing.client_for).

    Why bounded: httpx's pool matches every waiting request against every connection on
    each change (quadratic); 1,000 listings at once held `run`'s event loop for seconds at
    start-up, stalling every probe and scrape."""
    clients: dict[TransportSettings, httpx.AsyncClient] = {}
    at_once = asyncio.Semaphore(LISTINGS_AT_ONCE)

    async def check(network: Network) -> NetworkDrift:
        url = listing_url(network)
        if url is None:
            return NetworkDrift(network.name, None)
        async with at_once:
            return await read(network, url)

    async def read(network: Network, url: str) -> NetworkDrift:
        try:
            client = clients.get(network.transport)
            if client is None:
                client = clients[network.transport] = client_for(network.transport, timeout_s)
            return compare(network, await fetch(client, network))
        except ListingError as exc:
            return NetworkDrift(network.name, url, error=str(exc))

    try:
        return list(await asyncio.gather(*(check(n) for n in networks)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients.values()))
