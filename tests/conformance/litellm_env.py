"""The LiteLLM proxy's own virtualenv, pinned to one version and cached between runs.

LiteLLM pulls in hundreds of packages (about 740 MB installed), so it never shares the project's
environment: it lives in `$DEPIN_MONITOR_CACHE/litellm-<version>` (default
`~/.cache/depin-monitor`). `.ci/run` makes it before the tests (its cost shows as its own step);
the test fixture makes it when missing and reuses it otherwise.

    python3 -m tests.conformance.litellm_env      # create (or find) it; prints where and how long
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

LITELLM_VERSION = "1.105.7"  # newer releases need companion packages pinned in lockstep


def venv_dir() -> Path:
    cache = os.environ.get("DEPIN_MONITOR_CACHE") or Path.home() / ".cache" / "depin-monitor"
    return Path(cache) / f"litellm-{LITELLM_VERSION}"


def litellm_bin() -> Path:
    return venv_dir() / "bin" / "litellm"


def _complete() -> Path:
    return venv_dir() / "installed-ok"  # written last: a broken install is never reused


def ensure() -> Path:
    """The `litellm` executable, installing `litellm[proxy]==LITELLM_VERSION` first if needed.
    Raises RuntimeError with pip's last lines when the install fails."""
    if _complete().exists():
        return litellm_bin()
    target = venv_dir()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(target)], check=True)
    pip = subprocess.run(
        [str(target / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", f"litellm[proxy]=={LITELLM_VERSION}"],
        capture_output=True, text=True)
    if pip.returncode != 0:
        tail = "\n".join((pip.stderr or pip.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"pip install litellm[proxy]=={LITELLM_VERSION} failed:\n{tail}")
    _complete().write_text(LITELLM_VERSION + "\n")
    return litellm_bin()


if __name__ == "__main__":
    start = time.perf_counter()
    found = _complete().exists()
    path = ensure()
    verb = "found" if found else f"installed in {time.perf_counter() - start:.0f} s"
    print(f"litellm {LITELLM_VERSION}: {verb} at {path.parent.parent}")
