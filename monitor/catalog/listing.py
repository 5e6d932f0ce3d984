"""Ask a network which models it serves, and read its answer whatever the listing's shape.

Where each kind lists (`catalog_url` in the config overrides it, e.g. Chutes' public
`https://api.chutes.ai/chutes/` for its OpenAI gateway):

    openai   GET {base}/models          {"data": [{"id"}]}                      (OpenAI)
    ollama   GET {root}/api/tags        {"models": [{"name", "details": {"parameter_size"}}]}
    theta    GET {root}/service/list    {"body": {"services": [{"alias", "state"}]}}
    livepeer, jobapi, http: no listing (a Livepeer gateway, Nosana) unless `catalog_url` is set

The shape is recognised from the answer, so `catalog_url` may point at any of them; Chutes'
`{"total", "page", "limit", "items": [{"name", "standard_template"}]}` is paged and read to
the end (chutesai/chutes-api api/chute/router.py `list_chutes`). The network's key is sent
only to the network's own host (Chutes' listing is public; sending a key there would even
narrow it to the key owner's chutes). A listing is read as the network's probes connect: its
`tls` (CA, client certificate, insecure) and `proxy`; `server_name` and `ip_preference` are the
probes' only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.catalog.tiers import parameter_size_b, parameters_b
from monitor.config import Network
from monitor.core.result import ERROR_MAX_CHARS
from monitor.core.secrets import cut, scrub
from monitor.core.transport import PROXY_DIRECT, TransportSettings
from probes.tls import TLSSettingsError, client_context

LISTING_PATHS = {"openai": "/models", "ollama": "/api/tags", "theta": "/service/list"}
MAX_PAGES = 40  # a paged listing is read up to this many pages (1,000 chutes at 25 a page)
DEFAULT_TIMEOUT_S = 15.0


class ListingError(Exception):
    """The listing could not be read: one line, secrets removed."""


@dataclass(frozen=True, slots=True)
class ListedModel:
    id: str
    billions: float | None  # parameters, from the listing or the id; None if unknown
    offered: bool = True  # an LLM a buyer could configure (Chutes: a vllm chute; Theta: public)


@dataclass(frozen=True, slots=True)
class Listing:
    url: str
    models: tuple[ListedModel, ...]
    pages: int = 1

    def names(self) -> frozenset[str]:
        return frozenset(m.id for m in self.models)


def client_for(transport: TransportSettings, timeout_s: float = DEFAULT_TIMEOUT_S
               ) -> httpx.AsyncClient:
    """An HTTP client that trusts, identifies itself and goes through a proxy as the
    network's probes do; ListingError naming the setting when it cannot be built."""
    try:
        verify = client_context(transport)
    except TLSSettingsError as exc:
        raise ListingError(f"tls.{exc.field}: {exc}") from None
    if transport.proxy == PROXY_DIRECT:
        return httpx.AsyncClient(verify=verify, timeout=timeout_s, follow_redirects=True,
                                 trust_env=False)
    return httpx.AsyncClient(verify=verify, timeout=timeout_s, follow_redirects=True,
                             proxy=transport.proxy)  # None: HTTPS_PROXY/NO_PROXY as usual


def listing_url(network: Network) -> str | None:
    """Where the network lists its models; None for kinds without a listing."""
    if network.catalog_url:
        return network.catalog_url
    path = LISTING_PATHS.get(network.kind)
    return None if path is None else network.base_url.split("?", 1)[0].rstrip("/") + path


def request_headers(network: Network, url: str) -> dict[str, str]:
    """The network's headers and key, but only for the network's own host."""
    headers = {"User-Agent": "depin-monitor/0.1", "Accept": "application/json"}
    if _origin(url) != _origin(network.base_url):
        return headers
    headers.update(dict(network.headers))
    key = _key(network)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _key(network: Network) -> str | None:
    return os.environ.get(network.api_key_env) or None if network.api_key_env else None


def _secrets(network: Network) -> tuple[str | None, ...]:
    return _key(network), network.transport.key_password()


async def fetch(client: httpx.AsyncClient, network: Network) -> Listing:
    """Read the network's whole listing; ListingError with a one-line reason otherwise. What
    the network wrote (its reasons, its model ids) is scrubbed of its key."""
    url = listing_url(network)
    if url is None:
        raise ListingError(f"kind {network.kind} has no model listing; set catalog_url")
    try:
        first = await _get(client, network, url, None)
        models, more = parse(first)
        pages = 1
        while more is not None and pages < MAX_PAGES:
            page = await _get(client, network, url, more)
            found, more = parse(page)
            models += found
            pages += 1
    except ListingError as exc:
        raise ListingError(cut(str(exc), ERROR_MAX_CHARS, _secrets(network), one_line=True)
                           ) from None
    secrets = _secrets(network)
    return Listing(url=url, models=tuple(replace(m, id=scrub(m.id, secrets)) for m in models),
                   pages=pages)


async def _get(client: httpx.AsyncClient, network: Network, url: str,
               params: dict[str, Any] | None) -> Any:
    try:
        resp = await client.get(url, params=params, headers=request_headers(network, url))
    except httpx.TimeoutException:
        raise ListingError(f"GET {url}: no answer within {client.timeout.read:g}s") from None
    except (httpx.HTTPError, OSError) as exc:  # TLS 1.3 refuses a missing client cert late
        raise ListingError(f"GET {url}: {type(exc).__name__}: {exc}") from None
    if resp.status_code >= 300:
        hint = ""
        if resp.status_code in (401, 403) and network.api_key_env and not _key(network):
            hint = f" ({network.api_key_env} is not set)"
        raise ListingError(f"GET {url}: HTTP {resp.status_code}{hint}: "
                           f"{cut(resp.text, 120, _secrets(network), one_line=True)}")
    try:
        return resp.json()
    except ValueError:
        raise ListingError(f"GET {url}: the answer is not JSON") from None


def parse(value: Any) -> tuple[list[ListedModel], dict[str, Any] | None]:
    """The models in one listing answer, and the query of its next page (None: no more)."""
    if isinstance(value, dict):
        if isinstance(value.get("data"), list):  # OpenAI /v1/models
            return [ListedModel(str(m["id"]), parameters_b(str(m["id"])))
                    for m in _objects(value["data"], "id")], None
        if isinstance(value.get("models"), list):  # Ollama /api/tags
            return list(_ollama(value["models"])), None
        if isinstance(value.get("items"), list) and "total" in value:  # Chutes /chutes/
            return _chutes(value)
        body = value.get("body")
        if isinstance(body, dict) and isinstance(body.get("services"), list):  # Theta
            return [ListedModel(str(s["alias"]), parameters_b(str(s["alias"])),
                                offered=s.get("state", "public") == "public")
                    for s in _objects(body["services"], "alias")], None
    raise ListingError("not a model listing this monitor reads (OpenAI data[], Ollama "
                       "models[], Chutes items[] or Theta body.services[])")


def _objects(items: list[Any], key: str) -> Iterable[dict[str, Any]]:
    return (m for m in items if isinstance(m, dict) and isinstance(m.get(key), str) and m[key])


def _ollama(models: list[Any]) -> Iterable[ListedModel]:
    for m in _objects(models, "name"):
        details = m.get("details")
        size = parameter_size_b(details.get("parameter_size", "")) if isinstance(
            details, dict) else None
        name = m["name"]
        yield ListedModel(name, size if size is not None else parameters_b(name))
        if name.endswith(":latest"):  # `llama3.1` in a config means `llama3.1:latest`
            yield ListedModel(name.removesuffix(":latest"), None, offered=False)


def _chutes(value: dict[str, Any]) -> tuple[list[ListedModel], dict[str, Any] | None]:
    models = [ListedModel(str(c["name"]), parameters_b(str(c["name"])),
                          offered=c.get("standard_template") == "vllm")
              for c in _objects(value["items"], "name")]
    try:
        page, limit, total = (int(value[k]) for k in ("page", "limit", "total"))
    except (KeyError, TypeError, ValueError):
        return models, None
    more = bool(models) and limit > 0 and (page + 1) * limit < total
    return models, {"page": page + 1, "limit": limit} if more else None
