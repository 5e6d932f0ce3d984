"""examples/networks.yaml against the reference networks: each shipped entry's URL path, query
and kind (Nosana's market address and route, Theta's API, the Livepeer gateway, Chutes' and
AkashML's gateways) succeeds against a protocol-faithful server, and each shipped listing
(`catalog_url` included) is read."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from monitor.catalog.drift import check_networks
from monitor.config import load_config
from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import PROBES
from probes.session import SessionPool

CATALOG_PATH = Path(__file__).resolve().parent.parent / "examples" / "networks.yaml"
CATALOG = load_config(CATALOG_PATH)
# Where each network sits on the reference server (monitor/simulator/app.py); io.net's
# `/api/v1` and the Chutes utilization page have no reference route.
PREFIX = {"akashml": "/akashml", "hyperbolic": "", "chutes": "/chutes-llm", "nosana": "",
          "livepeer": "/gateway", "livepeer-image": "", "theta": "", "theta-openai": "",
          "inference-net": "", "atoma": "", "together": ""}


def on_reference(net_url: str, url: str, prefix: str = "") -> str:
    """The shipped URL with its scheme and host replaced by the reference network's."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="http", netloc=urlsplit(net_url).netloc,
                                     path=prefix + parts.path))


@pytest.mark.parametrize("name", sorted(PREFIX))
async def test_shipped_entry_works_against_its_reference_network(start_sim, name) -> None:
    net = await start_sim()
    entry = CATALOG.network(name)
    tier, model = entry.models[0]
    net.sim.model = model  # the reference network serves the catalog's models
    net.sim.served = [m for _, m in entry.models]
    job = CATALOG.job(entry.jobs[0])
    job = dataclasses.replace(job, deadline_s=3.0, stall_s=3.0, params={**job.params,
                                                                        "poll": 0.02})
    target = Target(network=name, name=tier, kind=entry.kind, model=model,
                    base_url=on_reference(net.url, entry.base_url, PREFIX[name]))
    pool = SessionPool()
    try:
        result = await PROBES[entry.kind].run(target, job, pool.for_target(target))
    finally:
        await pool.close()
    assert result.outcome is Outcome.OK, (target.base_url, result.error)


async def test_shipped_listings_are_read(start_sim) -> None:
    net = await start_sim()
    listable = [n for n in CATALOG.networks if n.name in PREFIX]
    net.sim.served = sorted({model for n in listable for _, model in n.models})
    moved = [dataclasses.replace(
        n, base_url=on_reference(net.url, n.base_url, PREFIX[n.name]),
        catalog_url=n.catalog_url and on_reference(net.url, n.catalog_url)) for n in listable]
    drifts = {d.network: d for d in await check_networks(moved)}
    no_listing = {n.name for n in listable if n.kind in ("livepeer", "jobapi")}
    assert {name for name, d in drifts.items() if d.url is None} == no_listing
    for name, d in drifts.items():
        if d.url is not None:
            assert d.error is None and not d.gone, (name, d.error, d.gone)
    assert drifts["chutes"].url.endswith("/chutes/")  # its catalog_url, not the gateway's


async def test_disabled_entries_list_their_models_once_enabled(start_sim, tmp_path) -> None:
    """The entries shipped disabled (a Gaia node to fill in, Lilypad's testnet) are read the
    same way once a user enables them: their `/v1/models` answers the drift check."""
    raw = yaml.safe_load(CATALOG_PATH.read_text())
    disabled = [n for n in raw["networks"] if n.get("enabled") is False]
    assert {n["name"] for n in disabled} == set(CATALOG.disabled) == {"gaia", "lilypad-testnet"}
    for n in disabled:
        n["enabled"] = True
    path = tmp_path / "enabled.yaml"
    path.write_text(yaml.safe_dump(raw))
    enabled = load_config(path)
    net = await start_sim()
    entries = [enabled.network(n["name"]) for n in disabled]
    net.sim.served = sorted({model for n in entries for _, model in n.models})
    # The reference network serves the OpenAI protocol at /v1 (Lilypad's is at /api/v1)
    moved = [dataclasses.replace(n, base_url=net.url + "/v1") for n in entries]
    for d in await check_networks(moved):
        assert d.url is not None and d.url.endswith("/models"), d
        assert d.error is None and not d.gone, (d.network, d.error, d.gone)


def test_no_shipped_network_is_left_without_a_reference_check() -> None:
    covered = set(PREFIX) | {"io-net", "chutes-status"}
    assert {n.name for n in CATALOG.networks} == covered, "add the new entry to PREFIX"
