"""The peers of benchmarks/peer.py, each as its users run it, in a process of its own: the official
`openai` SDK (AsyncOpenAI, stream=True) and GuideLLM's OpenAI HTTP backend. Not a benchmark by
itself: peer.py starts it (with GuideLLM's own Python when GuideLLM lives in a virtualenv of
its own) and reads one JSON line per request from its stdout.

Self-contained on purpose (standard library plus the client): it runs under GuideLLM's
virtualenv, which does not have this project installed.

Per request it reports, in seconds:
- `ttft_native`: time to first content token as the client's users get it: for the SDK, what a
  careful script measures (clock started just before `create()`, stopped at the first chunk
  with non-empty `delta.content`); for GuideLLM, its own `time_to_first_token_ms` (from its
  first request-header write, httpcore's trace, to its first token iteration);
- `ttft_sent`: the same first token, timed from the moment the request's body was written
  (httpcore's `send_request_body.complete` trace event), which is where our probe's clock
  starts (aiohttp's request-sent trace): one start point for every client;
- `decode`: tokens/s after the first token as the client computes it: the SDK script
  (usage tokens - 1) / (last - first content chunk); GuideLLM 1000 / inter_token_latency_ms;
- `rid`: the reference network's x-request-id, for its ground truth.
A last line gives the process CPU seconds spent while the requests ran.

    python benchmarks/peer_clients.py --client openai --base-url http://127.0.0.1:8081/v1 \\
        --streams 100 --runs-each 4 --tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import random
import sys
import time
from typing import Any

# per request: the stamps the trace hooks take and the request id the response carries
_CURRENT: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("current")


async def _trace(event: str, info: dict[str, Any]) -> None:
    """httpcore's trace hook: stamp when the request body has been written."""
    if event.endswith(".send_request_body.complete"):
        stamps = _CURRENT.get(None)
        if stamps is not None and "sent" not in stamps:
            stamps["sent"] = time.perf_counter()
            stamps["sent_wall"] = time.time()


def _user_text(i: int) -> str:
    return f"[run {i:08x}{random.getrandbits(32):08x}] Write about anything at all."


# -- the openai SDK ----------------------------------------------------------------------


async def openai_client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import httpx
    from openai import AsyncOpenAI

    class Traced(httpx.AsyncClient):
        async def send(self, request: httpx.Request, **kw: Any) -> httpx.Response:
            request.extensions["trace"] = _trace
            return await super().send(request, **kw)

    http = Traced(timeout=httpx.Timeout(120.0),
                  limits=httpx.Limits(max_connections=args.streams + 4,
                                      max_keepalive_connections=args.streams + 4))
    client = AsyncOpenAI(base_url=args.base_url, api_key="bench", max_retries=0,
                         http_client=http)

    async def one(i: int) -> dict[str, Any]:
        stamps: dict[str, Any] = {}
        _CURRENT.set(stamps)
        t0 = time.perf_counter()
        stream = await client.chat.completions.create(
            model=args.model, messages=[{"role": "user", "content": _user_text(i)}],
            max_tokens=args.tokens, temperature=0, seed=1234, stream=True,
            stream_options={"include_usage": True})
        rid = stream.response.headers.get("x-request-id")
        first = last = None
        n, usage = 0, None
        async for chunk in stream:
            now = time.perf_counter()
            if chunk.choices and chunk.choices[0].delta.content:
                if first is None:
                    first = now
                last = now
                n += 1
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
        tokens = usage or n
        out = {"rid": rid, "ok": first is not None, "tokens": tokens}
        if first is not None:
            out["ttft_native"] = first - t0
            out["ttft_sent"] = first - stamps["sent"] if "sent" in stamps else None
            if last is not None and last > first and tokens > 1:
                out["decode"] = (tokens - 1) / (last - first)
        return out

    async def close() -> None:
        await client.close()

    return one, close


# -- GuideLLM ----------------------------------------------------------------------------


async def guidellm_client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from guidellm.backends.openai import OpenAIHTTPBackend
    from guidellm.schemas import GenerationRequest, RequestInfo
    from guidellm.schemas.backends import OpenAIHTTPBackendArgs

    backend = OpenAIHTTPBackend(OpenAIHTTPBackendArgs(
        target=args.base_url.removesuffix("/v1"), model=args.model,
        max_tokens=args.tokens, validate_backend=False))
    await backend.process_startup()
    httpx_client = backend._async_client
    assert httpx_client is not None

    async def on_response(response: Any) -> None:  # httpx event hook: the truth's id
        stamps = _CURRENT.get(None)
        if stamps is not None:
            stamps["rid"] = response.headers.get("x-request-id")

    async def on_request(request: Any) -> None:  # add our stamp beside GuideLLM's own trace
        own = request.extensions.get("trace")

        async def both(event: str, info: dict[str, Any]) -> None:
            await _trace(event, info)
            if own is not None:
                await own(event, info)

        request.extensions["trace"] = both

    httpx_client.event_hooks["request"].append(on_request)
    httpx_client.event_hooks["response"].append(on_response)

    async def one(i: int) -> dict[str, Any]:
        stamps: dict[str, Any] = {}
        _CURRENT.set(stamps)
        request = GenerationRequest(columns={"text_column": [_user_text(i)]})
        info = RequestInfo(request_id=request.request_id)
        final = None
        async for response, updated in backend.resolve(request, info):
            info = updated
            if response is not None:
                final = response
        out: dict[str, Any] = {"rid": stamps.get("rid"), "ok": False, "tokens": 0}
        if final is None:
            return out
        stats = final.compile_stats(request, info)
        out["tokens"] = stats.output_tokens or 0
        ttft_ms = stats.time_to_first_token_ms
        if ttft_ms is not None:
            out["ok"] = True
            out["ttft_native"] = ttft_ms / 1000
            first = stats.first_token_iteration
            if first is not None and "sent_wall" in stamps:
                out["ttft_sent"] = first - stamps["sent_wall"]
        itl = stats.inter_token_latency_ms
        if itl:
            out["decode"] = 1000 / itl
        return out

    async def close() -> None:
        await backend.process_shutdown()

    return one, close


async def main_async(args: argparse.Namespace) -> None:
    make = openai_client if args.client == "openai" else guidellm_client
    one, close = await make(args)
    run_s = args.ttft + args.tokens / args.tokens_per_s
    rng = random.Random(args.streams)
    lines: list[str] = []

    async def worker(w: int) -> None:
        await asyncio.sleep(0 if args.streams == 1 else rng.random() * run_s)
        for k in range(args.runs_each):
            try:
                out = await one(w * 1_000_000 + k)
            except Exception as exc:  # a client that raises on a failed stream
                out = {"rid": None, "ok": False, "tokens": 0,
                       "error": f"{type(exc).__name__}: {exc}"[:200]}
            lines.append(json.dumps(out))

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(args.streams)))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    await close()
    print("\n".join(lines))
    print(json.dumps({"cpu_s": cpu, "wall_s": wall}), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--client", choices=("openai", "guidellm"), required=True)
    p.add_argument("--base-url", required=True, help="the network's base URL, with /v1")
    p.add_argument("--model", default="sim-llama-3.1-8b-instruct")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--runs-each", type=int, default=10)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--ttft", type=float, default=0.05, help="to spread the starts (s)")
    p.add_argument("--tokens-per-s", type=float, default=100.0, help="to spread the starts")
    p.add_argument("--version", action="store_true", help="print the client's version")
    args = p.parse_args()
    if args.version:
        from importlib.metadata import version

        print(version(args.client))
        return 0
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
