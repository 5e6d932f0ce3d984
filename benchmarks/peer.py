"""Peers, side by side in one run: our `openai` probe vs the official `openai` SDK's AsyncOpenAI
client (what a user would script), and our `http` probe vs Debian's prometheus-blackbox-exporter.

Streaming (one reference network as `depin-monitor simulate` in its own process, pinned to the
other core; this process pinned to one core). The same workload, chat-long-v1 with
max_tokens tokens, runs in alternating phases (ours, sdk, ours, sdk) at each concurrency:
- ours: `probes.openai.run` through a SessionPool (TTFT from the request-sent trace stamp to
  the first content delta);
- sdk: `client.chat.completions.create(stream=True, stream_options={"include_usage": True})`,
  the clock started just before create() and TTFT stamped at the first chunk whose
  delta.content is non-empty (a user's script; a naive one stamping the role chunk is worse);
  decode rate (usage tokens - 1) / (last - first content delta), like ours.
For each: TTFT error vs the simulator's truth (GET /sim/truth/{x-request-id}, after the runs),
decode-rate error, and CPU per token (this process's CPU time in its phases / tokens).
The ratios sdk/ours are printed: > 1 means ours is more accurate or cheaper.

HTTP checks: GET of the simulator's /health, sequentially, by our `http` probe kind and by
prometheus-blackbox-exporter (started on a free loopback port with a generated http_2xx
config, asked via /probe?target=...&module=http_2xx; its probe_duration_seconds is read).
/health keeps no per-request truth, so the reference is a raw-socket stopwatch over the same
phases (a new connection each time for blackbox, which never reuses one; a kept-alive one for
ours, which pools): error = measured - reference median. CPU per probe: ours from this
process's CPU time, blackbox from /proc/<pid>/stat of the exporter (it also serves /probe).

    python benchmarks/peer.py               # 1 and 100 streams, 200 HTTP checks (~1 min)
    python benchmarks/peer.py --quick       # smoke: seconds
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import common

from monitor.core.jobs import Job, get_job
from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import http as http_probe
from probes import openai as openai_probe
from probes.session import SessionPool

MODEL = "sim-llama-3.1-8b-instruct"


@dataclasses.dataclass
class Side:
    name: str
    ttft_err: list[float] = dataclasses.field(default_factory=list)
    decode_err: list[float] = dataclasses.field(default_factory=list)
    tokens: int = 0
    cpu_s: float = 0.0
    runs: int = 0
    failed: int = 0

    @property
    def cpu_per_token_us(self) -> float:
        return self.cpu_s / self.tokens * 1e6 if self.tokens else float("nan")


# -- streaming ---------------------------------------------------------------------------


async def ours_once(target: Target, job: Job, pool: SessionPool, streams: int
                    ) -> list[tuple[str | None, float | None, float | None, int]]:
    session = pool.for_target(target, concurrency=streams)
    r = await openai_probe.run(target, job, session)
    if r.outcome is not Outcome.OK:
        return [(None, None, None, 0)]
    return [(r.details.get("request_id"), r.ttft_s, r.tokens_per_s, r.output_tokens or 0)]


async def sdk_once(client: object, job: Job, streams: int
                   ) -> list[tuple[str | None, float | None, float | None, int]]:
    rendered = job.render()
    messages = [{"role": r, "content": c} for r, c in rendered.messages]
    t0 = time.perf_counter()
    stream = await client.chat.completions.create(  # type: ignore[attr-defined]
        model=MODEL, messages=messages, max_tokens=job.max_tokens, temperature=0,
        seed=job.seed, stream=True, stream_options={"include_usage": True})
    rid = stream.response.headers.get("x-request-id")
    first = last = None
    n = 0
    usage = None
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
    if first is None or last is None or tokens < 2 or last <= first:
        return [(rid, None, None, tokens)]
    return [(rid, first - t0, (tokens - 1) / (last - first), tokens)]


async def phase(side: Side, one, streams: int, runs_each: int, sim: common.SimProcess) -> None:
    got: list = []

    async def worker() -> None:
        for _ in range(runs_each):
            try:
                got.extend(await one())
            except Exception as exc:  # the SDK raises on a failed stream
                got.append((None, None, None, 0))
                print(f"  {side.name}: {type(exc).__name__}: {exc}", file=sys.stderr)

    c0 = common.proc_cpu_s()
    await asyncio.gather(*(worker() for _ in range(streams)))
    side.cpu_s += common.proc_cpu_s() - c0
    truths = await common.fetch_truths(sim.url, [g[0] for g in got if g[0]])
    for rid, ttft, tps, tokens in got:
        side.runs += 1
        t = truths.get(rid) if rid else None
        if ttft is None or t is None or t["ttft_s"] is None:
            side.failed += 1
            continue
        side.tokens += tokens
        side.ttft_err.append(ttft - t["ttft_s"])
        if tps and t["tokens_per_s"]:
            side.decode_err.append(abs(tps - t["tokens_per_s"]) / t["tokens_per_s"])


async def streaming(streams: int, args: argparse.Namespace) -> tuple[Side, Side]:
    from openai import AsyncOpenAI

    tps = min(100.0, args.budget / streams)
    sim = common.start_sim("datacenter", seed=streams, cores=[1],
                           **common.steady_profile(ttft_s=0.05, tokens_per_s=tps))
    job = dataclasses.replace(get_job("chat-long-v1"), max_tokens=args.tokens)
    target = Target(network="sim", name="peer", kind="openai", base_url=sim.base_url,
                    model=MODEL, concurrency=streams)
    ours, sdk = Side("ours"), Side("openai SDK")
    runs_each = args.runs_1 if streams == 1 else max(1, args.runs // streams)
    try:
        pool = SessionPool()
        client = AsyncOpenAI(base_url=sim.base_url, api_key="bench", max_retries=0)
        for _ in range(args.rounds):
            await phase(ours, lambda: ours_once(target, job, pool, streams), streams,
                        runs_each, sim)
            await phase(sdk, lambda: sdk_once(client, job, streams), streams, runs_each, sim)
        await pool.close()
        await client.close()
    finally:
        sim.stop()
    return ours, sdk


def ratio(a: float, b: float) -> str:
    return "n/a" if not b or a != a or b != b else f"{a / b:.1f}x"


def stream_rows(streams: int, ours: Side, sdk: Side) -> list[list[object]]:
    q = common.quantile
    rows = []
    for s in (ours, sdk):
        rows.append([streams, s.name, f"{s.runs - s.failed}/{s.runs}",
                     common.ms(q(s.ttft_err, 0.5)), common.ms(q(s.ttft_err, 0.99)),
                     f"{q(s.decode_err, 0.5) * 100:.2f}", f"{s.cpu_per_token_us:.1f}"])
    abs_o = [abs(x) for x in ours.ttft_err]
    abs_s = [abs(x) for x in sdk.ttft_err]
    rows.append([streams, "ratio sdk/ours", "",
                 ratio(q(abs_s, 0.5), q(abs_o, 0.5)), ratio(q(abs_s, 0.99), q(abs_o, 0.99)),
                 ratio(q(sdk.decode_err, 0.5), q(ours.decode_err, 0.5)),
                 ratio(sdk.cpu_per_token_us, ours.cpu_per_token_us)])
    return rows


# -- plain HTTP checks -------------------------------------------------------------------


def start_blackbox(tmp: str) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("prometheus-blackbox-exporter")
    if exe is None:
        raise FileNotFoundError("prometheus-blackbox-exporter is not installed "
                                "(apt-get install -y prometheus-blackbox-exporter)")
    cfg = os.path.join(tmp, "blackbox.yml")
    with open(cfg, "w") as f:
        f.write("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
                "    http:\n      preferred_ip_protocol: ip4\n")
    port = common.free_port()
    proc = subprocess.Popen(
        ["taskset", "-c", "1", exe, f"--config.file={cfg}",
         f"--web.listen-address={common.HOST}:{port}", "--log.level=error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://{common.HOST}:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/metrics", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("blackbox exporter did not start")


def raw_get(host: str, port: int, sock: socket.socket | None = None) -> float:
    """A minimal stopwatch: (connect +) send GET /health, read the whole response."""
    t0 = time.perf_counter()
    own = sock is None
    if own:
        sock = socket.create_connection((host, port))
    assert sock is not None
    sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    need = int(m.group(1)) if m else 0
    while len(body) < need:
        body += sock.recv(65536)
    dt = time.perf_counter() - t0
    if own:
        sock.close()
    return dt


async def http_checks(n: int) -> list[list[object]]:
    sim = common.start_sim("datacenter", cores=[1], p_http_5xx=0.0)
    host, port = common.HOST, int(sim.url.rsplit(":", 1)[1])
    health = sim.url + "/health"
    rows: list[list[object]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bb, bb_url = start_blackbox(tmp)
            try:
                # references first (a raw socket, no framework)
                ref_new = [raw_get(host, port) for _ in range(n)]
                keep = socket.create_connection((host, port))
                ref_keep = [raw_get(host, port, keep) for _ in range(n)]
                keep.close()

                # ours: the http probe kind on a pooled session, sequential
                job = dataclasses.replace(get_job("health-v1"), deadline_s=5.0)
                target = Target(network="sim", name="health", kind="http", base_url=health,
                                model="-", check_output=False, concurrency=1)
                pool = SessionPool()
                session = pool.for_target(target)
                await http_probe.run(target, job, session)  # open the pooled connection
                c0 = common.proc_cpu_s()
                ours = [await http_probe.run(target, job, session) for _ in range(n)]
                ours_cpu = common.proc_cpu_s() - c0
                await pool.close()
                ours_d = [r.duration_s for r in ours if r.outcome is Outcome.OK]

                # blackbox: /probe, sequential, its own probe_duration_seconds
                probe_url = f"{bb_url}/probe?target={health}&module=http_2xx"
                b0 = common.proc_cpu_s(bb.pid)
                bb_d, bb_ok = [], 0
                for _ in range(n):
                    text = urllib.request.urlopen(probe_url, timeout=10).read().decode()
                    m = re.search(r"^probe_duration_seconds ([\d.e+-]+)$", text, re.M)
                    ok = re.search(r"^probe_success 1$", text, re.M)
                    if m and ok:
                        bb_ok += 1
                        bb_d.append(float(m.group(1)))
                time.sleep(0.2)  # let the exporter's last CPU ticks land in /proc
                bb_cpu = common.proc_cpu_s(bb.pid) - b0
            finally:
                bb.terminate()
                bb.wait(10)
    finally:
        sim.stop()
    q = common.quantile
    rk, rn = q(ref_keep, 0.5), q(ref_new, 0.5)
    rows.append(["ours (http kind, pooled)", f"{len(ours_d)}/{n}", common.ms(q(ours_d, 0.5)),
                 common.ms(rk), common.ms(q(ours_d, 0.5) - rk),
                 common.ms(q(ours_d, 0.99) - rk), f"{ours_cpu / n * 1e6:.0f}"])
    rows.append(["blackbox 0.23 (new conn)", f"{bb_ok}/{n}", common.ms(q(bb_d, 0.5)),
                 common.ms(rn), common.ms(q(bb_d, 0.5) - rn), common.ms(q(bb_d, 0.99) - rn),
                 f"{bb_cpu / n * 1e6:.0f}"])
    return rows


async def main_async(args: argparse.Namespace) -> None:
    rows = []
    for streams in args.levels:
        ours, sdk = await streaming(streams, args)
        rows += stream_rows(streams, ours, sdk)
        print(f"  streaming at {streams} done", file=sys.stderr, flush=True)
    print("## LLM streaming: ours vs openai SDK (AsyncOpenAI)")
    print(common.table(["streams", "client", "ok/runs", "TTFT err p50 ms", "TTFT err p99 ms",
                       "decode err p50 %", "CPU us/token"], rows))
    print()
    print("## HTTP checks of /health: ours vs prometheus-blackbox-exporter")
    print(common.table(["prober", "ok/probes", "measured p50 ms", "reference p50 ms",
                        "error p50 ms", "error p99 ms", "CPU us/probe"],
                       await http_checks(args.http_probes)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="1,100", help="concurrent streams, comma-separated")
    p.add_argument("--runs", type=int, default=200, help="runs per side per round (about)")
    p.add_argument("--runs-1", type=int, default=30,
                   help="runs per side per round at 1 stream (sequential)")
    p.add_argument("--rounds", type=int, default=2, help="alternations ours/sdk")
    p.add_argument("--tokens", type=int, default=64, help="output tokens per run")
    p.add_argument("--budget", type=float, default=10000.0, help="total tokens/s asked")
    p.add_argument("--http-probes", type=int, default=200, help="HTTP checks per prober")
    p.add_argument("--quick", action="store_true", help="smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.levels, args.runs, args.rounds, args.tokens, args.http_probes = "2", 4, 1, 12, 5
        args.runs_1 = 2
    args.levels = [int(x) for x in str(args.levels).split(",")]
    common.pin([0])
    print(f"# peer: {common.machine()}")
    print(f"# chat-long-v1 max_tokens={args.tokens}; command: "
          f"{' '.join(['python', *sys.argv])}")
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
