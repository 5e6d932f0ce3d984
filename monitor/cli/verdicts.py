"""What the commands that run a verdict family once (`equality`, `quality`, `contract`,
`fingerprint`) share: the store their verdicts go to, the network and tier `--save` names,
and the plain table they print."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Protocol, TypeVar

from monitor.cli.paths import check_stores
from monitor.config import Config
from monitor.core.errors import UserError
from monitor.core.tables import Column, plain
from monitor.core.target import Target
from monitor.storage.store import Store

W = TypeVar("W")


class _Failed(Protocol):
    @property
    def network(self) -> str: ...

    @property
    def error(self) -> str: ...


def store_writer(path: str | None, writer: Callable[[str], W]) -> W | None:
    """The writer of verdicts into the store `--db` names (checked, then made or an older file
    migrated now), or None without --db."""
    if path is None:
        return None
    check_stores([path], writing=True)
    Store(path).close()
    return writer(path)


def saved_target(config: Config, spec: str, speaks: str) -> Target:
    """The network and tier `--save NETWORK[/TIER]` names (tier: default its first); `speaks`
    says who speaks the OpenAI chat API only ("equality sampling speaks")."""
    name, _, tier = spec.partition("/")
    try:
        network = config.network(name)
    except KeyError:
        raise UserError(f"--save {spec}: no network {name!r} in {config.path}; networks: "
                        f"{', '.join(n.name for n in config.networks)}") from None
    if network.kind != "openai":
        raise UserError(f"--save {spec}: {name} is of kind {network.kind!r}; {speaks} the "
                        "OpenAI chat API only (kind openai)")
    targets = {t.name: t for t in network.targets()}
    target = targets.get(tier) if tier else next(iter(targets.values()))
    if target is None:
        raise UserError(f"--save {spec}: {name} has no tier {tier!r}; its tiers: "
                        f"{', '.join(targets)}")
    return target


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]],
                skip: Collection[str] = ()) -> None:
    """Verdicts as a plain table (a header line, one line a row, columns two spaces apart),
    without the columns named in `skip`."""
    keep = [i for i, h in enumerate(headers) if h not in skip]
    print(plain([Column(headers[i]) for i in keep], [[row[i] for i in keep] for row in rows]),
          end="")


def print_errors(results: Iterable[_Failed]) -> None:
    """Each result's error (why its samples, items or requests are missing), one a line."""
    for result in results:
        if result.error:
            print(f"{result.network}: {result.error}")


def check_networks(chosen: Sequence[str], known: Iterable[str], why: str) -> None:
    """Every `--network` is one the section asks; else the first that is not, with `why`
    ("not checked by monitor.yaml; checked") and the ones it asks."""
    names = set(known)
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise UserError(f"--network {unknown[0]}: {why}: {', '.join(sorted(names))}")
