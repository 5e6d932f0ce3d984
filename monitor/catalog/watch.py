"""The low-rate catalog check inside `run`: each listable network's listing is read at start and
then every CHECK_EVERY_S, exported as gauges and logged when it changes, so that a model the
network stopped serving shows as a config problem (`DepinCatalogModelNotListed`), not only as
the network failing every probe of it.

    depin_catalog_model_listed{network,target,model}     1 listed, 0 no longer listed
    depin_catalog_listing_success{network}               1 the last read worked, else 0
    depin_catalog_unconfigured_models{network,tier}      listed models the config does not name

A failed read keeps the last known `model_listed` values: the listing being down says nothing
about the models.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Gauge

from monitor.catalog import CHECK_EVERY_S
from monitor.catalog.drift import NetworkDrift, check_networks
from monitor.catalog.listing import listing_url
from monitor.catalog.tiers import TIERS
from monitor.config import Network

log = logging.getLogger("monitor.catalog")


class CatalogGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.listed = Gauge("depin_catalog_model_listed",
                            "1 if the network lists the configured model, 0 if it no longer "
                            "does (absent until its listing was read once).",
                            ("network", "target", "model"), registry=registry)
        self.success = Gauge("depin_catalog_listing_success",
                             "1 if the network's model listing was read at the last check.",
                             ("network",), registry=registry)
        self.unconfigured = Gauge("depin_catalog_unconfigured_models",
                                  "Models the network lists that the config does not name, by "
                                  "size tier (small, medium, large, unsized).",
                                  ("network", "tier"), registry=registry)

    def update(self, drift: NetworkDrift) -> None:
        self.success.labels(drift.network).set(0 if drift.error else 1)
        if drift.error:
            return
        for m in drift.configured:
            self.listed.labels(drift.network, m.tier, m.model).set(1 if m.listed else 0)
        for tier in TIERS:
            self.unconfigured.labels(drift.network, tier).set(len(drift.new.get(tier, ())))


class CatalogWatch:
    """Checks `networks` now and every `every_s`; logs what changed since the last check."""

    def __init__(self, networks: Sequence[Network], gauges: CatalogGauges,
                 every_s: float = CHECK_EVERY_S) -> None:
        self.networks = [n for n in networks if listing_url(n) is not None]
        self.gauges = gauges
        self.every_s = every_s
        self.last: dict[str, NetworkDrift] = {}  # the last successful check per network
        self.failing: set[str] = set()

    async def check(self) -> list[NetworkDrift]:
        drifts = await check_networks(self.networks)
        for drift in drifts:
            self.gauges.update(drift)
            if drift.error:
                if drift.network not in self.failing:
                    log.warning("catalog: cannot read %s's model listing: %s", drift.network,
                                drift.error)
                self.failing.add(drift.network)
                continue
            self.failing.discard(drift.network)
            self._log_changes(drift, self.last.get(drift.network))
            self.last[drift.network] = drift
        return drifts

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.every_s)

    @staticmethod
    def _log_changes(drift: NetworkDrift, before: NetworkDrift | None) -> None:
        was_gone = {m.model for m in before.gone} if before else set()
        for m in drift.gone:
            if m.model not in was_gone:
                log.warning("catalog: %s no longer lists %s (tier %s): its runs fail because "
                            "of the config; replace the model (depin-monitor catalog -c ...)",
                            drift.network, m.model, m.tier)
        now_new = {i for ids in drift.new.values() for i in ids}
        was_new = {i for ids in before.new.values() for i in ids} if before else set()
        if now_new - was_new:
            counts = ", ".join(f"{t} {len(ids)}" for t, ids in drift.new.items())
            log.info("catalog: %s lists %d model(s) the config does not name (%s)",
                     drift.network, len(now_new), counts)


def start(networks: Sequence[Network], registry: CollectorRegistry,
          every_s: float = CHECK_EVERY_S) -> asyncio.Task[None] | None:
    """The watch as a background task (None when no network has a listing)."""
    watch = CatalogWatch(networks, CatalogGauges(registry), every_s)
    if not watch.networks:
        return None
    return asyncio.create_task(watch.run(), name="catalog-watch")
