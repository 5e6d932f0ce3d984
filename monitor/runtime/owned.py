"""Concurrency that owns what it starts, so that nothing a run started outlives it.

`gather` runs awaitables at once like `asyncio.gather`, but when one of them raises, or the
caller is cancelled, it cancels the others and waits until every one has ended before it
returns or raises. (`asyncio.gather` raises the first error at once and leaves the others
running: a request still under way on a session its run has since closed opens a new one,
which nobody closes.) `cancel_all` cancels tasks and waits for their end; `cancel` does it for
one task and raises the error it ended with.

Each task is cancelled once: a second cancellation would cut short the cleanup it is running
(closing its sessions). A cancellation of the caller while it waits is raised once every task
has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


async def gather(*aws: Awaitable[T]) -> list[T]:
    """Every result, in order; or the first exception, once every other awaitable ended."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        await cancel_all(tasks)


async def cancel_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel the tasks not done yet and wait until all have ended (their results and errors
    stay theirs: none is raised here)."""
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    for task in pending:
        task.cancel()
    interrupted = False
    while pending:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            interrupted = True
        pending = {t for t in pending if not t.done()}
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" at exit
    if interrupted:
        raise asyncio.CancelledError


async def cancel(task: asyncio.Future[Any] | None) -> None:
    """Cancel `task` and wait until it has ended; the error it ended with, if it was not
    cancelled, is raised here."""
    if task is None:
        return
    await cancel_all([task])
    if not task.cancelled():
        task.result()
