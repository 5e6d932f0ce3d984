"""The reference networks' capacity slots: a request that leaves the line just as a slot
frees neither fails the server nor loses the slot."""

from __future__ import annotations

import asyncio

import pytest

from monitor.simulator.capacity import Slots


async def test_a_request_leaving_the_line_as_a_slot_frees_is_passed_over() -> None:
    slots = Slots(capacity=1, queue_limit=4)
    assert await slots.acquire()
    leaving = asyncio.create_task(slots.acquire())
    staying = asyncio.create_task(slots.acquire())
    while len(slots.waiting) < 2:
        await asyncio.sleep(0)
    leaving.cancel()  # the client went away...
    slots.release()  # ...and the slot freed before its handler saw it
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert await staying  # the slot went to the next in line
    assert slots.busy == 1 and not slots.waiting
    slots.release()
    assert slots.busy == 0
