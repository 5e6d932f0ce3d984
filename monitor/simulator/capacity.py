"""A reference network's serving capacity: `nodes` machines with `slots_per_node` streams
each. A request beyond them waits in one first-come-first-served queue (its time to first token
grows by the wait); beyond `nodes x queue_per_node` waiting requests the gateway refuses it at
once, as a busy gateway does. So a capacity ladder sees TTFT rise at the knee, then errors.

Busy answers, as real gateways send them:
- 503 (default): the OpenAI-shaped "No instances available" the simulator's 5xx faults send.
- 429: Chutes' answer when every miner is at capacity: `invoke` in chutesai/chutes-api
  api/chute/util.py yields `{"error": "infra_overload", "detail": "Infrastructure is at maximum
  capacity, try again later"}`, which `_invoke` in api/invocation/router.py raises as FastAPI's
  HTTPException(429, detail): the body `{"detail": "..."}`, with no Retry-After header.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator

from aiohttp import web

from monitor.simulator.profiles import FaultProfile

INFRA_OVERLOAD = "Infrastructure is at maximum capacity, try again later"
NO_INSTANCES = "No instances available"


class Slots:
    """`capacity` streams at once; up to `queue_limit` more wait in arrival order."""

    def __init__(self, capacity: int, queue_limit: int) -> None:
        self.capacity = capacity
        self.queue_limit = queue_limit
        self.busy = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.refused = 0
        self.most_busy = 0

    async def acquire(self) -> bool:
        """Take a slot, waiting in line for one if need be; False when the line is full."""
        if self.busy < self.capacity and not self.waiting:
            self._take()
            return True
        if len(self.waiting) >= self.queue_limit:
            self.refused += 1
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed a slot just as the client went away: pass it on
            elif turn in self.waiting:  # a release may have dropped it from the line already
                self.waiting.remove(turn)
            raise
        return True

    def _take(self) -> None:
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)

    def release(self) -> None:
        """Free a slot: the longest-waiting request takes it over."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot changes hands: `busy` stays
                return
        self.busy -= 1


def slots_for(profile: FaultProfile) -> Slots | None:
    """The slots a profile models, or None when it sets no capacity limit."""
    if profile.slots_per_node <= 0:
        return None
    nodes = max(profile.nodes, 1)
    return Slots(nodes * profile.slots_per_node, nodes * profile.queue_per_node)


@contextlib.asynccontextmanager
async def admitted(slots: Slots | None, received: float) -> AsyncIterator[float | None]:
    """Hold a slot while the answer is produced; yields when generation could start
    (perf_counter; `received` when there is no limit), or None when the line was full
    (answer with `busy()`)."""
    if slots is None:
        yield received
        return
    if not await slots.acquire():
        yield None
        return
    try:
        yield time.perf_counter()
    finally:
        slots.release()


def busy(profile: FaultProfile, request_id: str) -> web.Response:
    """The gateway's answer when no slot is free and the line is full."""
    headers = {"x-request-id": request_id}
    if profile.busy_status == 429:
        return web.json_response({"detail": INFRA_OVERLOAD}, status=429, headers=headers)
    body = {"error": {"message": NO_INSTANCES, "type": "service_unavailable", "param": None,
                      "code": None}}
    return web.json_response(body, status=503, headers=headers)
