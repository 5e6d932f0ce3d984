"""A load source for capacity tests: a raw-asyncio HTTP/1.1 server that streams the reference
simulator's exact OpenAI SSE chunks (same bytes, same chunked framing) for many streams at a
set per-stream token rate, cheaply enough to outrun the prober on one core.

The simulator (monitor/simulator) sleeps and writes once per token per stream, which costs it
about as much CPU as the prober spends parsing; it cannot feed 50,000 tokens/s from one core.
This source keeps one ticker for all streams, spread over phases so tokens flow evenly (as
from many networks; `--slots 1`: all streams at once, like one server's batch decode step):
each tick writes, per stream of its phase, the tokens that came due, in one socket write.
`--burst 1` gives one token per write; larger bursts put several tokens in one read.

Run by capacity.py/growth.py as `python benchmarks/firehose.py --port 0` (prints its URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
import sys
import time

from monitor.core.jobs import COUNTING
from monitor.simulator.network import _TOKEN
from monitor.simulator.openai import _Chunks

PIECES = _TOKEN.findall(COUNTING)
_MAX_TOKENS = re.compile(rb'"max_tokens":\s*(\d+)')


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Stream:
    __slots__ = ("due", "i", "interval", "pieces", "proto", "t0")

    def __init__(self, proto: FirehoseProtocol, n: int, rate: float) -> None:
        self.proto = proto
        self.pieces = [PIECES[i % len(PIECES)] for i in range(n)]
        self.i = 0
        self.interval = 1.0 / rate
        self.t0 = time.perf_counter()
        self.due = self.t0


class FirehoseProtocol(asyncio.Protocol):
    def __init__(self, server: Firehose) -> None:
        self.server = server
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.chunks = _Chunks("sim-llama-3.1-8b-instruct", True, True)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buf[:head_end].decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        length = int(m.group(1)) if m else 0
        if len(self.buf) < head_end + 4 + length:
            return
        body = self.buf[head_end + 4: head_end + 4 + length]
        self.buf = self.buf[head_end + 4 + length:]
        mt = _MAX_TOKENS.search(body)
        n = int(mt.group(1)) if mt else 256
        rid = "req-" + secrets.token_hex(8)
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Cache-Control: no-cache\r\nx-request-id: " + rid.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunk(self.chunks.role()))
        self.server.add(Stream(self, n, self.server.rate))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class Firehose:
    """One ticker for all streams. Streams are spread over `slots` phases of the write
    interval (burst / rate): each tick serves one phase, so tokens arrive as a smooth flow,
    as from many networks; `slots=1` writes every stream at once, like one server's decode
    step for a whole batch."""

    def __init__(self, rate: float, burst: int, slots: int | None = None) -> None:
        self.rate = rate
        self.interval = burst / rate
        self.slots = slots or max(1, round(self.interval / 0.002))  # a tick every ~2 ms
        self.tick = self.interval / self.slots
        self.phases: list[list[Stream]] = [[] for _ in range(self.slots)]
        self.added = 0
        self.tokens = 0

    def add(self, stream: Stream) -> None:
        self.phases[self.added % self.slots].append(stream)
        self.added += 1

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        i = 0
        while True:
            next_at += self.tick
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            now = time.perf_counter()
            phase = self.phases[i]
            i = (i + 1) % self.slots
            alive = []
            for s in phase:
                t = s.proto.transport
                if t is None:
                    continue
                out = []
                while s.i < len(s.pieces) and s.due <= now:
                    out.append(_chunk(s.proto.chunks.token(s.pieces[s.i])))
                    s.i += 1
                    s.due += s.interval
                self.tokens += len(out)
                if s.i >= len(s.pieces):
                    c = s.proto.chunks
                    out += [_chunk(c.finish("length")), _chunk(c.usage(10, len(s.pieces))),
                            _chunk(b"data: [DONE]\n\n"), b"0\r\n\r\n"]
                else:
                    alive.append(s)
                if out:
                    t.write(b"".join(out))
            phase[:] = alive


async def serve(port: int, rate: float, burst: int, slots: int | None) -> None:
    fh = Firehose(rate, burst, slots)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FirehoseProtocol(fh), "127.0.0.1", port,
                                      backlog=4096)
    print(f"firehose at http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    await fh.run()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--rate", type=float, default=50.0, help="tokens/s per stream")
    p.add_argument("--burst", type=int, default=1, help="tokens per write per stream")
    p.add_argument("--slots", type=int, default=None,
                   help="phases streams are spread over (default: a tick every ~2 ms); "
                        "1 = every stream written at once")
    args = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.rate, args.burst, args.slots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
