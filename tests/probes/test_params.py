"""A probe kind's settings (monitor/core/params.py): whatever a config or a URL holds, a reader
either returns the value the probe uses or says what to write instead; a value the check
accepts is the value the probe runs with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.cli import main
from monitor.core import params
from monitor.core.jobs import STANDARD_JOBS
from monitor.core.target import Target
from probes import PROBES, jobapi, livepeer
from tests.conftest import quick_job

# anything YAML or a query string can hold
RAW = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                   lambda inner: st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
EVERY_PARAM = sorted({(kind.name, p) for kind in PROBES.values() for p in kind.params},
                     key=lambda kp: (kp[0], kp[1].name))


@pytest.mark.parametrize(("kind", "param"), EVERY_PARAM,
                         ids=[f"{k}.{p.name}" for k, p in EVERY_PARAM])
@given(value=RAW)
def test_a_setting_is_read_or_refused_in_words(kind: str, param: params.Param,
                                               value: object) -> None:
    try:
        param.read(value)
    except ValueError as exc:
        assert "write" in str(exc) or "remove" in str(exc)  # the fix, not a traceback


@given(st.lists(st.integers(100, 599), min_size=1, max_size=4))
def test_statuses_read_alike_from_yaml_and_a_query(codes: list[int]) -> None:
    assert params.statuses(codes) == params.statuses(",".join(map(str, codes))) == set(codes)


@given(st.floats(0.01, 86_400))
def test_seconds_read_alike_as_a_number_text_or_duration(seconds: float) -> None:
    read = params.seconds(example="5")
    assert read(seconds) == read(str(seconds)) == seconds
    assert read(f"{int(seconds) + 1}s") == int(seconds) + 1


def test_the_standard_jobs_params_are_settings_of_the_kinds_that_run_them() -> None:
    for job in STANDARD_JOBS:
        for kind in (k for k in PROBES.values() if job.request in k.requests):
            for key, value in job.params.items():
                param = kind.param(key)
                assert param is not None, (job.name, kind.name, key)
                param.read(value)


def test_what_the_check_accepts_is_what_the_probe_runs_with() -> None:
    target = Target(network="n", name="t", kind="jobapi", model="m",
                    base_url="https://x/api?market=a&poll=2m&serve=yes&timeout=90")
    st_ = jobapi.settings(target, quick_job(params={"poll_interval_s": "5s", "serve": False}))
    assert (st_.poll_s, st_.serve, st_.lease_s, st_.market) == (5.0, False, 90, "a")
    image = quick_job("image-small-v1", params={"width": "768", "safety_check": "no"})
    body = livepeer.image_body(image, image.render(), "m")
    assert (body["width"], body["height"], body["safety_check"]) == (768, 512, False)


def test_an_ad_hoc_probe_refuses_a_bad_setting_in_its_url(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`probe --url` checks the URL's settings as `check` does a config's, before any run."""
    assert main(["probe", "--kind", "theta", "--url", "http://127.0.0.1:9/?poll=often",
                 "--model", "m"]) == 2
    assert capsys.readouterr().err.strip() == (
        "depin-monitor: error: --url: query poll: 'often' is not a number of seconds or a "
        "duration; write e.g. 1 or 1s")
