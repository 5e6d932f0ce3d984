"""The one-shot kinds (http, openai embeddings, livepeer text-to-image) share one timed request:
a body that arrives in pieces is read whole, and a body cut short is a disconnect for all."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import PROBES
from probes.session import SessionPool
from tests.conftest import quick_job
from tests.probes.capture import capture_server

ANSWERS = {
    "embed-v1": ("openai", "/v1", ("POST", "/v1/embeddings"), {
        "object": "list", "model": "m", "usage": {"prompt_tokens": 7, "total_tokens": 7},
        "data": [{"object": "embedding", "index": 0,
                  "embedding": [round(i / 997, 6) for i in range(1024)]}]}),
    "image-small-v1": ("livepeer", "", ("POST", "/text-to-image"), {
        "images": [{"url": "https://cdn.example/" + "x" * 20000 + ".png", "seed": 1234,
                    "nsfw": False}]}),
    "health-v1": ("http", "/health", ("GET", "/health"), {
        "status": "ok", "checks": ["db"] * 4000}),
}


async def probe(url: str, kind: str, job_name: str):
    target = Target(network="n", name="small", kind=kind, base_url=url, model="m")
    pool = SessionPool()
    try:
        return await PROBES[kind].run(target, quick_job(job_name, deadline_s=3.0),
                                      pool.for_target(target))
    finally:
        await pool.close()


def pieces_handler(body: bytes, cut: bool):
    """Send `body` in three pieces 50 ms apart with its Content-Length; with `cut`, close
    the connection after the second piece."""
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(request)
        third = len(body) // 3
        for i, piece in enumerate((body[:third], body[third:2 * third], body[2 * third:])):
            if cut and i == 2:
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(piece)
            await asyncio.sleep(0.05)
        await resp.write_eof()
        return resp
    return handler


@pytest.mark.parametrize("job_name", sorted(ANSWERS))
@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut"])
async def test_a_body_in_pieces_is_read_whole_and_a_cut_one_is_a_disconnect(
        job_name: str, cut: bool) -> None:
    kind, path, route, answer = ANSWERS[job_name]
    body = json.dumps(answer).encode()
    async with capture_server({route: pieces_handler(body, cut=cut)}) as cap:
        r = await probe(cap.url + path, kind, job_name)
    if cut:  # before its Content-Length: embeddings had no such check before
        assert r.outcome is Outcome.DISCONNECT and "mid-body" in r.error, r.error
    else:
        assert r.outcome is Outcome.OK, r.error
        assert r.bytes == len(body)
        assert r.duration_s >= 0.1  # timed to the last piece, not the first
