"""What `run` and `rules` do when a network's API key is not in the environment."""

from __future__ import annotations

import sys

from monitor.config import Config
from monitor.core.errors import UserError


def apply_key_policy(config: Config, *, skip: bool) -> Config:
    """Refuse a config whose keys are missing, or drop those networks with a warning."""
    missing = config.missing_keys()
    if not missing:
        return config
    if not skip:
        lines = [f"{config.path}: networks: {net}: environment variable {var} is not set; "
                 f"export {var}=<key>, or pass --skip-missing-keys to skip this network"
                 for net, var in missing]
        raise UserError("\n".join(lines))
    for net, var in missing:
        print(f"depin-monitor: warning: skipping network {net}: environment variable {var} "
              "is not set", file=sys.stderr)
    config = config.without(net for net, _ in missing)
    if not config.networks:
        raise UserError(f"{config.path}: every network was skipped (missing API keys); "
                        "nothing to monitor")
    return config
