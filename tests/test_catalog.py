"""Catalog drift: `depin-monitor catalog` against reference networks whose listings change, each
listing shape (OpenAI, Ollama, Chutes' paged chutes, Theta's services), where the key goes,
and the size tiers new models are reported under."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from monitor.catalog.drift import LISTINGS_AT_ONCE, check_networks
from monitor.catalog.listing import ListingError, parse
from monitor.catalog.tiers import parameter_size_b, parameters_b, tier_of
from monitor.catalog.watch import CatalogGauges, CatalogWatch
from monitor.config import Network
from monitor.core.transport import TransportSettings
from monitor.simulator.app import start_network
from monitor.simulator.tls import server_context
from tests.conftest import STEADY, free_port
from tests.pki import make_pki
from tests.probes.capture import capture_server

SIM_MODEL = "sim-llama-3.1-8b-instruct"


def network(name: str, kind: str, base_url: str, models: dict[str, str], **kw: object
            ) -> Network:
    return Network(name=name, kind=kind, base_url=base_url, models=tuple(models.items()),
                   jobs=("chat-short-v1",), interval_s=60.0, **kw)  # type: ignore[arg-type]


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def write_config(tmp_path: Path, networks: list[dict[str, object]]) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"networks": networks}, sort_keys=False))
    return path


async def test_catalog_reports_a_removed_and_an_added_model(start_sim, tmp_path) -> None:
    net = await start_sim()
    config = write_config(tmp_path, [
        {"name": "drifty", "kind": "openai", "base_url": net.base_url,
         "models": {"small": SIM_MODEL, "medium": "meta-llama/Llama-3.3-70B-Instruct"}},
        {"name": "gateway", "kind": "livepeer", "base_url": net.url + "/gateway",
         "models": {"small": SIM_MODEL}},
    ])
    net.sim.served = [SIM_MODEL, "meta-llama/Llama-3.3-70B-Instruct"]
    code, out, err = await run_cli("catalog", "-c", str(config))
    assert code == 0, out + err
    assert "every configured model is listed (1 network(s) checked)" in out
    assert "gateway: no model listing for its kind" in out

    # The network drops the 70B and starts serving a 405B and an unsized model.
    net.sim.served = [SIM_MODEL, "meta-llama/Llama-3.1-405B-Instruct", "deepseek-ai/DeepSeek-V3"]
    code, out, err = await run_cli("catalog", "-c", str(config))
    assert code == 1, out + err
    assert "medium   meta-llama/Llama-3.3-70B-Instruct  GONE: no longer listed" in out
    assert "new large    1: meta-llama/Llama-3.1-405B-Instruct" in out
    assert "new unsized  1: deepseek-ai/DeepSeek-V3" in out
    assert ("1 configured model(s) no longer listed: drifty/medium "
            "meta-llama/Llama-3.3-70B-Instruct") in out

    code, out, _ = await run_cli("catalog", "-c", str(config), "--json", "--network", "drifty")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and row["gone"] == ["meta-llama/Llama-3.3-70B-Instruct"]
    assert row["new"] == {"large": ["meta-llama/Llama-3.1-405B-Instruct"],
                          "unsized": ["deepseek-ai/DeepSeek-V3"]}
    assert row["configured"][0] == {"tier": "small", "model": SIM_MODEL, "listed": True}


async def test_each_listing_shape_from_its_reference_network(start_sim) -> None:
    net = await start_sim()
    served = [SIM_MODEL, "qwen3:32b", *[f"org/model-{i}-7B" for i in range(30)]]
    net.sim.served = served
    drifts = await check_networks([
        network("oai", "openai", net.base_url, {"small": SIM_MODEL}),
        network("oll", "ollama", net.url, {"small": SIM_MODEL, "medium": "qwen3:32b"}),
        network("chutes", "openai", net.url + "/chutes-llm/v1",
                {"small": SIM_MODEL, "large": "deepseek-ai/DeepSeek-V3-0324-TEE"},
                catalog_url=net.url + "/chutes/"),
        network("theta", "theta", net.url, {"small": SIM_MODEL}),
    ])
    oai, oll, chutes, theta = drifts
    assert all(d.error is None for d in drifts), [d.error for d in drifts]
    assert oai.listed_total == len(served) and not oai.gone
    assert oll.new["small"][0] == "org/model-0-7B" and "qwen3:32b" not in oll.new.get(
        "medium", ())
    # Chutes pages 25 at a time; its image chute is listed but is not an LLM to offer
    assert chutes.listed_total == len(served) + 1
    assert [m.model for m in chutes.gone] == ["deepseek-ai/DeepSeek-V3-0324-TEE"]
    assert "chutes/FLUX.1-schnell" not in {m for ids in chutes.new.values() for m in ids}
    assert len(chutes.new["small"]) == 30 and chutes.new["medium"] == ("qwen3:32b",)
    assert theta.checked and theta.listed_total == len(served)


async def test_hundreds_of_networks_are_read_a_few_at_a_time() -> None:
    """A monitor of 200 networks reads every listing, never more than LISTINGS_AT_ONCE at
    once (1,000 at once stalled `run`'s loop for seconds in httpx's pool)."""
    in_flight = most = 0

    async def models(_r: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return web.json_response({"object": "list", "data": [{"id": "m"}]})

    async with capture_server({("GET", "/v1/models"): models}) as server:
        drifts = await check_networks([network(f"n{i}", "openai", server.url + "/v1",
                                               {"small": "m"}) for i in range(200)])
    assert [d.network for d in drifts] == [f"n{i}" for i in range(200)]
    assert all(d.error is None and d.listed_total == 1 for d in drifts)
    assert 1 < most <= LISTINGS_AT_ONCE


async def test_the_key_goes_only_to_the_networks_own_host(monkeypatch) -> None:
    monkeypatch.setenv("LISTING_TEST_KEY", "sk-listing-secret")

    async def models(_r: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m"}]})

    async def chutes(_r: web.Request) -> web.Response:
        return web.json_response({"total": 1, "page": 0, "limit": 25, "items": [
            {"name": "m", "standard_template": "vllm"}]})

    routes = {("GET", "/v1/models"): models, ("GET", "/chutes/"): chutes}
    async with capture_server(routes) as own, capture_server(routes) as other:
        await check_networks([
            network("a", "openai", own.url + "/v1", {"small": "m"},
                    api_key_env="LISTING_TEST_KEY"),
            network("b", "openai", own.url + "/v1", {"small": "m"},
                    api_key_env="LISTING_TEST_KEY", catalog_url=other.url + "/chutes/"),
        ])
    assert own.seen[0].headers["Authorization"] == "Bearer sk-listing-secret"
    assert "Authorization" not in other.seen[0].headers  # another host: no key


async def test_listings_that_cannot_be_read_say_why(tmp_path) -> None:
    async def denied(_r: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "invalid api key"}}, status=401)

    async def html(_r: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    async def odd(_r: web.Request) -> web.Response:
        return web.json_response({"result": ["m"]})

    routes = {("GET", "/a/v1/models"): denied, ("GET", "/b/v1/models"): html,
              ("GET", "/c/v1/models"): odd}
    async with capture_server(routes) as cap:
        config = write_config(tmp_path, [
            {"name": n, "kind": "openai", "base_url": f"{cap.url}/{n}/v1",
             "models": {"small": "m"}, "api_key_env": "CATALOG_UNSET_KEY"}
            for n in ("a", "b", "c")])
        code, out, err = await run_cli("catalog", "-c", str(config),
                                       env={"CATALOG_UNSET_KEY": ""})
    assert code == 1, out + err
    assert "a: cannot read the listing: GET" in out
    assert "HTTP 401 (CATALOG_UNSET_KEY is not set): " in out
    assert "b: cannot read the listing:" in out and "the answer is not JSON" in out
    assert "c: cannot read the listing: not a model listing this monitor reads" in out
    assert "3 listing(s) could not be read: a, b, c" in out


async def test_usage_errors_exit_2(tmp_path) -> None:
    config = write_config(tmp_path, [{"name": "n", "kind": "openai",
                                      "base_url": "http://127.0.0.1:9/v1",
                                      "models": {"small": "m"}}])
    code, _, err = await run_cli("catalog", "-c", str(config), "--network", "nope")
    assert code == 2 and "--network 'nope' is not in" in err
    code, _, err = await run_cli("catalog", "-c", str(tmp_path / "missing.yaml"))
    assert code == 2 and "no such file" in err


@pytest.mark.parametrize(("model_id", "billions", "tier"), [
    ("meta-llama/Llama-3.3-70B-Instruct", 70, "medium"),
    ("llama3.1:8b", 8, "small"),
    ("llama-3-1-8b", 8, "small"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", 56, "medium"),
    ("Qwen/Qwen3-235B-A22B", 235, "large"),  # total, not the 22B active
    ("Qwen/Qwen3-32B-TEE", 32, "medium"),
    ("meta-llama/llama-3.1-8b-instruct/fp-8", 8, "small"),
    ("deepseek-ai/DeepSeek-V3.2-TEE", None, "unsized"),
    ("unsloth/Mistral-Nemo-Instruct-2407-TEE", None, "unsized"),  # 12B, but not in its id
])
def test_size_tiers_from_model_ids(model_id: str, billions: float | None, tier: str) -> None:
    assert parameters_b(model_id) == billions
    assert tier_of(parameters_b(model_id)) == tier


def test_ollama_parameter_size() -> None:
    assert parameter_size_b("8.0B") == 8.0 and parameter_size_b("137M") == 0.137
    assert parameter_size_b("") is None and parameter_size_b("big") is None


@given(st.integers(1, 2000), st.sampled_from(["B", "b"]), st.sampled_from(["-", "/", ":", "_"]))
def test_a_size_in_an_id_is_read_back(n: int, unit: str, sep: str) -> None:
    assert parameters_b(f"org{sep}Model-v2{sep}{n}{unit}-Instruct") == n


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["data", "models", "items", "total", "page",
                                                       "limit", "body", "services", "id",
                                                       "name", "alias", "details",
                                                       "parameter_size", "state",
                                                       "standard_template"]), inner,
                                      max_size=5),
                    max_leaves=20)


@given(JSON)
def test_any_json_is_a_listing_or_a_listing_error(value: object) -> None:
    try:
        models, more = parse(value)
    except ListingError:
        return
    assert all(isinstance(m.id, str) and m.id for m in models)
    assert more is None or set(more) == {"page", "limit"}



async def test_run_exports_which_configured_models_are_listed(start_sim, tmp_path) -> None:
    net = await start_sim()
    config = write_config(tmp_path, [
        {"name": "drifty", "kind": "openai", "base_url": net.base_url, "interval": "1h",
         "models": {"small": SIM_MODEL, "large": "meta-llama/Llama-3.1-405B-Instruct"}}])
    net.sim.served = [SIM_MODEL, "Qwen/Qwen3-32B"]
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", "run", "-c", str(config), "--db",
        str(tmp_path / "r.db"), "--listen", f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    text = ""
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                if "depin_catalog_listing_success{" in text:
                    break
                await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    series = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line.startswith("depin_catalog_")}
    listed = 'depin_catalog_model_listed{model="%s",network="drifty",target="%s"}'
    assert series[listed % (SIM_MODEL, "small")] == 1
    assert series[listed % ("meta-llama/Llama-3.1-405B-Instruct", "large")] == 0
    assert series['depin_catalog_listing_success{network="drifty"}'] == 1
    assert series['depin_catalog_unconfigured_models{network="drifty",tier="medium"}'] == 1
    assert "drifty no longer lists meta-llama/Llama-3.1-405B-Instruct (tier large)" in \
        err.decode()


async def test_a_listing_that_fails_keeps_what_was_last_known(start_sim, caplog) -> None:
    net = await start_sim()
    registry = CollectorRegistry()
    watch = CatalogWatch([network("n", "openai", net.base_url, {"small": SIM_MODEL})],
                         CatalogGauges(registry))
    listed = {"network": "n", "target": "small", "model": SIM_MODEL}
    await watch.check()
    assert registry.get_sample_value("depin_catalog_model_listed", listed) == 1
    await net.go_down()
    with caplog.at_level(logging.WARNING, logger="monitor.catalog"):
        await watch.check()
        await watch.check()
    assert registry.get_sample_value("depin_catalog_listing_success", {"network": "n"}) == 0
    assert registry.get_sample_value("depin_catalog_model_listed", listed) == 1
    assert len([r for r in caplog.records if "cannot read n's" in r.message]) == 1  # once
    await net.come_up()
    net.sim.served = ["other-model"]
    await watch.check()
    assert registry.get_sample_value("depin_catalog_listing_success", {"network": "n"}) == 1
    assert registry.get_sample_value("depin_catalog_model_listed", listed) == 0


async def test_a_listing_is_read_as_the_networks_probes_connect(tmp_path) -> None:
    pki = make_pki(tmp_path)
    net = await start_network(STEADY, ssl_context=server_context(pki.valid, client_ca=pki.ca))
    try:
        base = net.base_url  # https://127.0.0.1:<port>/v1, a private CA, client certificates
        trusted = TransportSettings(ca_file=str(pki.ca), cert_file=str(pki.client))
        plain, no_client_cert, both = await check_networks([
            network("plain", "openai", base, {"small": SIM_MODEL}),
            network("no-cert", "openai", base, {"small": SIM_MODEL},
                    transport=TransportSettings(ca_file=str(pki.ca))),
            network("mtls", "openai", base, {"small": SIM_MODEL}, transport=trusted),
        ])
    finally:
        await net.stop()
    assert plain.error and "certificate verify failed" in plain.error
    assert no_client_cert.error is not None  # the server wants a client certificate
    assert both.error is None and both.listed_total == 1 and not both.gone
