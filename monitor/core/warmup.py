"""Warm-up: how far each network's page window (1h) has filled since the monitor started.

After a start the alert windows hold fewer runs than the config sends in them; the burn-rate
alerts then need their full window's minimum failures out of fewer runs, so no page fires on
the first failures (docs/sla.md, "Warm-up"). This counts each network's runs since the start
against the runs its page window holds at the configured rate, for /readyz and the status
page; once the monitor has run a whole window, nothing is warming up any more.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from monitor.core.result import ProbeResult

PAGE_WINDOW_S = 3600.0


@dataclass(frozen=True, slots=True)
class Warming:
    runs: int  # runs since the start
    needed: int  # runs the page window holds at the configured rate

    def describe(self) -> str:
        return f"warming up: {self.runs} of {self.needed} runs"


class WarmUp:
    """A result sink: runs per network since the monitor started."""

    def __init__(self, expected: Mapping[str, int], window_s: float = PAGE_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.expected = dict(expected)
        self.window_s = window_s
        self.clock = clock
        self.started = clock()
        self.runs: Counter[str] = Counter()

    def on_result(self, result: ProbeResult) -> None:
        if result.network in self.expected:
            self.runs[result.network] += 1

    def warming(self) -> dict[str, Warming]:
        """Networks whose page window holds fewer runs than at the configured rate."""
        if self.clock() - self.started >= self.window_s:
            return {}
        return {net: Warming(self.runs[net], needed) for net, needed in self.expected.items()
                if self.runs[net] < needed}
