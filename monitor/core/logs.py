"""Logging that no outside party can turn into a flood or a leak: a filter that lets one record
through per period (the server's malformed requests, the scrape-time SLA evaluation of a broken
store), and one that scrubs every line of the process's secrets (`scrub_logs`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from monitor.core.secrets import scrub


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


class Scrubbing(logging.Filter):
    """Scrubs a record's message, traceback and stack of `secrets` (monitor.core.secrets),
    whatever logger wrote it and at whatever level."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()

    def add(self, secrets: Iterable[str | None]) -> None:
        self.secrets = tuple(dict.fromkeys((*self.secrets, *(s for s in secrets if s))))

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format: logging reports it (message and arguments) itself
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.msg = scrub(str(record.msg), self.secrets)
            record.args = tuple(scrub(str(a), self.secrets) for a in args)
            return True
        record.msg, record.args = scrub(message, self.secrets), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.secrets)
        return True


SCRUBBING = Scrubbing()


def scrub_logs(secrets: Iterable[str | None]) -> None:
    """From now on, scrub every line the process logs of `secrets` (and of those given
    before): the filter sits on every handler of the root logger, where every logger's
    records end."""
    SCRUBBING.add(secrets)
    for handler in logging.getLogger().handlers:
        if SCRUBBING not in handler.filters:
            handler.addFilter(SCRUBBING)

