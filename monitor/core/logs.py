"""Logging that no outside party can turn into a flood: a filter that lets one record through
per period (the server's malformed requests, the scrape-time SLA evaluation of a broken store).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class OncePer(logging.Filter):
    """Lets one record through per `seconds`, without its traceback, saying how many it held
    back since the last."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.seconds, self.clock = seconds, clock
        self.last = -float("inf")
        self.held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        if now - self.last < self.seconds:
            self.held += 1
            return False
        self.last = now
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"[:300]
            record.args = ()
        record.exc_info = record.exc_text = None
        if self.held:
            record.msg = f"{record.getMessage()} ({self.held} more since the last line)"
            record.args = ()
            self.held = 0
        return True
