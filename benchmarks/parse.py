"""Parse cost: CPU per streamed token of the `openai` probe's reader, with orjson (the `fast` extra)
and with the standard library's json, on the reference simulator's exact chunks.

How: a stream of --tokens tokens, one per chunk as the simulator writes it (role chunk, token
chunks, finish, usage, [DONE]), is fed to `probes.openai.ChatDecoder` one chunk per `feed()`
(one read per chunk, as when tokens arrive apart), --streams times, in this process; best of
--repeats. The same streams run twice: JSON decoded by orjson, then by the stdlib (orjson
switched off for the second pass). Reported: us of CPU per token for the whole reader (SSE
framing, JSON, shape checks, token stats) and for the JSON decoding alone.

    python benchmarks/parse.py            # 2,000 streams of 64 tokens (~10 s)
    python benchmarks/parse.py --quick    # smoke
"""

from __future__ import annotations

import argparse
import sys
import time

import common

from monitor.simulator.network import answer_for
from monitor.simulator.openai import _Chunks
from probes import shape
from probes.openai import ChatDecoder


def chunks(tokens: int) -> list[bytes]:
    """One stream, chunk by chunk, byte for byte as the simulator writes it."""
    pieces, reason = answer_for("Write about anything at all.", tokens, wrong=False)
    c = _Chunks("sim-llama-3.1-8b-instruct", chat=True, include_usage=True)
    return [c.role(), *(c.token(p) for p in pieces), c.finish(reason),
            c.usage(12, len(pieces)), b"data: [DONE]\n\n"]


def reader_us_per_token(stream: list[bytes], streams: int, repeats: int) -> float:
    tokens = (len(stream) - 4) * streams
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        for _ in range(streams):
            decoder = ChatDecoder(completion=False)
            now = 0.0
            for chunk in stream:
                now += 0.01
                decoder.feed(chunk, now)
            assert decoder.done
        best = min(best, time.process_time() - c0)
    return best / tokens * 1e6


def json_us_per_token(stream: list[bytes], streams: int, repeats: int) -> float:
    datas = [c[len(b"data: "):].strip() for c in stream[:-1]]
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        for _ in range(streams):
            for d in datas:
                shape.parse_json(d)
        best = min(best, time.process_time() - c0)
    return best / ((len(stream) - 4) * streams) * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=2000)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.streams, args.repeats = 50, 2
    common.pin([0])
    print(f"# parse: {common.machine()}")
    print(f"# {args.streams:,} streams of {args.tokens} tokens, one chunk per feed(), best of "
          f"{args.repeats}; command: {' '.join(['python', *sys.argv])}")
    stream = chunks(args.tokens)
    fast = shape._fast_loads
    rows = []
    passes = [("orjson", fast)] if fast is not None else []
    passes.append(("stdlib json", None))
    for name, loads in passes:
        shape._fast_loads = loads
        try:
            rows.append([name, f"{reader_us_per_token(stream, args.streams, args.repeats):.2f}",
                         f"{json_us_per_token(stream, args.streams, args.repeats):.2f}"])
        finally:
            shape._fast_loads = fast
    if fast is None:
        rows.append(["orjson", "not installed (pip install '.[fast]')", "-"])
    print(common.table(["JSON decoder", "reader us/token", "JSON alone us/token"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
