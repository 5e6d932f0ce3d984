"""Sharding a big catalog over several agents in one location: `--shard i/n`.

Agent i of n probes the targets (network, model tier) whose hashmod is i, computed exactly as
Prometheus' `hashmod` relabel action computes it (prometheus/prometheus, model/relabel/
relabel.go, `relabel()`, case HashMod: the last 8 bytes of the MD5 of the source label values
joined by ";", as a big-endian uint64, modulo n). So the n agents split the targets with
nothing probed twice and nothing missed, a target's jobs stay on one agent (its concurrency
bound holds), and `hashmod` over our `network` and `target` labels tells which agent probes a
series.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SEPARATOR = ";"  # Prometheus' default relabel separator


def hashmod(value: str, modulus: int) -> int:
    """Prometheus' hashmod of a source-label value (the values joined by SEPARATOR)."""
    digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % modulus


@dataclass(frozen=True, slots=True)
class Shard:
    """Agent `index` of `count` (0-based); Shard(0, 1) is the whole catalog."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= i < n")

    def owns(self, network: str, tier: str) -> bool:
        return self.count == 1 or hashmod(f"{network}{SEPARATOR}{tier}", self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`i/n` with 0 <= i < n, e.g. `0/3`; ValueError with the fix otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not i/n; write e.g. 0/3 for the first of three agents")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise ValueError(f"{text!r}: the index counts from 0 and must be below n "
                         f"(for {max(count, 1)} agents: 0/{max(count, 1)} .. "
                         f"{max(count, 1) - 1}/{max(count, 1)})")
    return Shard(index, count)
