"""A tiny OpenAI-compatible SSE server for end-to-end tests of `run`: it answers every chat
completion with "42" (what chat-short-v1 expects), optionally after a delay, and counts what it
received and completed (perf_counter stamps) so tests can check the store lost nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class FakeOpenAI:
    delay_s: float = 0.0
    received: int = 0
    completed: list[float] = field(default_factory=list)  # perf_counter at [DONE]
    url: str = ""

    def base_url(self, network: str = "n") -> str:
        return f"{self.url}/{network}/v1"

    def completed_before(self, t: float) -> int:
        return sum(1 for c in self.completed if c < t)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.received += 1
        body = await request.json()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def event(obj: object) -> None:
            await resp.write(f"data: {json.dumps(obj)}\n\n".encode())

        base = {"id": "c1", "object": "chat.completion.chunk", "model": body["model"]}
        await event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        await asyncio.sleep(self.delay_s)
        for piece in ("4", "2"):
            await event({**base, "choices": [{"index": 0, "delta": {"content": piece}}]})
        await event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        await event({**base, "choices": [],
                     "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}})
        await resp.write(b"data: [DONE]\n\n")
        self.completed.append(time.perf_counter())
        await resp.write_eof()
        return resp


@asynccontextmanager
async def fake_openai(delay_s: float = 0.0) -> AsyncIterator[FakeOpenAI]:
    """Serve on a free 127.0.0.1 port at /{network}/v1/chat/completions; always stopped."""
    fake = FakeOpenAI(delay_s=delay_s)
    app = web.Application()
    app.router.add_post("/{network}/v1/chat/completions", fake.chat)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
