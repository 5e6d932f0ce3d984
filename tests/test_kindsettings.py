"""Each probe kind's typed settings (monitor/core/kindsettings.py): built by the config from a
job's params and a job API's URL query, handed to the probe on the job, read as the check
judged them; a job nobody bound is read the same way."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import parse_config
from monitor.core.kinds import KINDS, bind, settings_of
from monitor.core.kindsettings import (
    HttpSettings,
    JobApiSettings,
    KindSettings,
    LivepeerSettings,
    ThetaSettings,
)
from monitor.core.params import query_problems
from monitor.core.result import Outcome
from probes import http
from tests.conftest import quick_job

MODELS = sorted({spec.settings for spec in KINDS.values() if spec.settings is not None},
                key=lambda model: model.__name__)
# what a query string can hold: the texts each reader takes or refuses at its edges, and more
TEXTS = st.sampled_from(["5", "2m", "90.7", "0", "-3", "1e309", "nan", "soon", "yes", "no",
                         "true", "2", "200,204", "99", "(", "ok|up", "https://g.example/ipfs",
                         "ftp://g", "", " ", "Qm1"]) | st.text("0123456789.,-smhx ", max_size=6)
# what YAML can hold
RAW = (TEXTS | st.none() | st.booleans() | st.integers(-10, 1000) | st.floats()
       | st.lists(st.integers(0, 700) | TEXTS, max_size=3) | st.just({"a": 1}))


def names(model: type[KindSettings]) -> list[str]:
    return [name for param in model.PARAMS for name in param.names]


def check_problems(model: type[KindSettings], url: str, params: dict[str, Any]) -> list[str]:
    """What `depin-monitor check` says of these settings (monitor.config: each param's value,
    None too, by its reader; a job API's URL query by query_problems)."""
    problems = query_problems(model.PARAMS, url) if model.QUERY else []
    for key, value in params.items():
        param = next((p for p in model.PARAMS if key in p.names), None)
        if param is not None:
            try:
                param.read(value)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
    return problems


def typed(value: object, annotation: Any) -> bool:
    """Whether `value` is of the field's annotated type (the types these models use)."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        return any(typed(value, arm) for arm in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, float | int) and not isinstance(value, bool)
    if origin is frozenset:
        return isinstance(value, frozenset) and all(isinstance(v, int) for v in value)
    if origin is re.Pattern:
        return isinstance(value, re.Pattern)
    return isinstance(value, origin or annotation)


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
@settings(max_examples=60)  # four models: 240 cases a run
@given(data=st.data())
def test_what_the_check_accepts_is_read_typed_and_what_it_refuses_is_refused_alike(
        model: type[KindSettings], data: st.DataObject) -> None:
    keys = st.sampled_from([*names(model), "other"])
    params = data.draw(st.dictionaries(keys, RAW, max_size=4))
    query = data.draw(st.dictionaries(keys, TEXTS, max_size=3)) if model.QUERY else {}
    url = "https://api.example.com/api" + (f"?{urlencode(query)}" if query else "")
    problems = check_problems(model, url, params)
    try:
        built = model.read(url, params)
    except ValueError as exc:
        assert problems, f"the check accepts what the probe refuses: {exc}"
        assert any(str(exc).startswith(p.split(":")[0] + ":") for p in problems)
        assert "write" in str(exc)  # the fix, as the check says it
        return
    hints = typing.get_type_hints(model)
    for item in dataclasses.fields(built):
        assert typed(getattr(built, item.name), hints[item.name]), item.name


@given(poll=st.floats(0.01, 3600), query_poll=st.floats(0.01, 3600))
def test_the_jobs_params_win_over_the_urls_query(poll: float, query_poll: float) -> None:
    url = f"https://x/api?market=a&poll={query_poll}&ipfs=Qm1#frag"
    for model in (JobApiSettings, ThetaSettings):
        assert model.read(url, {}).poll_s == query_poll
        read = model.read(url, {"poll": poll})
        assert read.poll_s == poll and read.base == "https://x/api"
    assert JobApiSettings.read(url, {"market": "b"}).market == "b"


def test_aliases_and_defaults_are_the_probes() -> None:
    jobapi = JobApiSettings.read("https://x/api/", {"poll_interval_s": "2m"})
    assert (jobapi.base, jobapi.poll_s, jobapi.market, jobapi.serve) == ("https://x/api", 120.0,
                                                                         "", False)
    assert jobapi.deployments and jobapi.ipfs_gateway == "https://nosana.mypinata.cloud/ipfs/"
    assert (jobapi.lease(30.0), jobapi.lease(300.0)) == (60, 301)  # a little over the deadline
    assert JobApiSettings.read("https://x/api?timeout=90.7", {}).lease(300.0) == 90
    gateway = JobApiSettings.read("https://x/api", {"ipfs_gateway": "https://g.example/ipfs"})
    assert gateway.ipfs_gateway == "https://g.example/ipfs/"
    theta = ThetaSettings.read("https://t/?wait=0", {})
    assert (theta.wait(2.0), theta.poll_s) == (0.0, 1.0)
    assert [ThetaSettings.read("https://t", {}).wait(d) for d in (2.0, 600.0)] == [2.0, 30.0]
    assert LivepeerSettings.read("", {"width": "768", "safety_check": "no"}) == LivepeerSettings(
        width=768, height=512, num_inference_steps=4, guidance_scale=2.0, safety_check=False)
    assert HttpSettings.read("", {"expect_status": "200,204"}).expect_status == {200, 204}


def test_a_setting_in_the_url_of_a_kind_that_does_not_read_its_query_is_the_urls() -> None:
    """An http URL is probed as given: its query is not settings."""
    assert HttpSettings.read("https://s/health?expect_status=nope", {}) == HttpSettings()


CONFIG = """
jobs:
  - {name: nosana-chat-v1, user: 'What is 17 + 25?', check: {contains: '42'},
     params: {poll: 2s, timeout: 90}}
networks:
  - {name: nosana, kind: jobapi, base_url: 'https://nos.example/api?market=M1&poll=9',
     model: m, jobs: [nosana-chat-v1]}
  - {name: theta, kind: theta, base_url: 'https://theta.example?wait=0', model: m,
     jobs: [nosana-chat-v1]}
  - {name: alpha, kind: openai, base_url: 'https://a.example/v1', model: m}
  - {name: status, kind: http, base_url: 'https://s.example/health', model: page,
     jobs: [health-v1]}
"""


def test_the_config_hands_each_network_its_jobs_settings_typed() -> None:
    config = parse_config(CONFIG, "c.yaml")
    bound = {target.network: job.kind_settings for target, job, _ in config.schedules()}
    assert bound == {
        "nosana": JobApiSettings(base="https://nos.example/api", market="M1", poll_s=2.0,
                                 lease_s=90),
        "theta": ThetaSettings(base="https://theta.example", wait_s=0.0, poll_s=2.0),
        "alpha": None,
        "status": HttpSettings(),
    }
    job = config.job("nosana-chat-v1")
    assert job.kind_settings is None  # the job itself is the file's, kind-free


def test_the_probe_reads_the_settings_the_job_carries() -> None:
    """http's judge reads the typed settings the config bound, not the raw params."""

    health = quick_job("health-v1")
    assert http.judge(503, b"maintenance", health)[0] is Outcome.HTTP_ERROR
    bound = dataclasses.replace(health, kind_settings=HttpSettings(expect_status=frozenset({503})))
    assert http.judge(503, b"maintenance", bound)[0] is Outcome.OK
    # settings bound for another kind are not this kind's: read from the params instead
    other = bind(quick_job("health-v1", params={"expect_status": 503}), "theta", "https://t")
    assert other.kind_settings == ThetaSettings(base="https://t")
    assert http.judge(503, b"maintenance", other)[0] is Outcome.OK
    assert settings_of(HttpSettings, other).expect_status == {503}
