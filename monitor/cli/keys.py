"""What `run` and `rules` do when a network's API key is not in the environment, and the
environment file (systemd's `EnvironmentFile=` format) that `check` and `rules` can read it
from, as the service would."""

from __future__ import annotations

import argparse
import os
import sys

from monitor.config import Config
from monitor.core.envfile import read_env_file
from monitor.core.errors import UserError


def add_env_file_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env-file", metavar="FILE",
                   help="read API keys (KEY=value lines) from FILE as the systemd unit's "
                        "EnvironmentFile= does, e.g. /etc/depin-monitor/env")


def load_env_file(args: argparse.Namespace) -> None:
    """Put the --env-file's variables into this process's environment (values are never
    printed); lines systemd would skip are named on stderr."""
    if not getattr(args, "env_file", None):
        return
    env = read_env_file(args.env_file)
    for problem in env.problems:
        print(f"depin-monitor: warning: --env-file {args.env_file}: {problem}; systemd "
              "skips it too", file=sys.stderr)
    os.environ.update(env.values)


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
