"""Peers on equal terms, in one run: the monitor as shipped against the official `openai` SDK and
GuideLLM for streaming, and against prometheus-blackbox-exporter for plain HTTP checks, each
in its own process pinned to core 0, against the same reference network on core 1, judged
against the same per-request ground truth.

Streaming (chat, --tokens tokens, 100 tok/s per stream capped by --budget): at each level (1
and 100 concurrent streams) and each connection policy, the clients take turns (ours, SDK,
GuideLLM; --rounds times) against one simulator:
- kept-alive: the simulator keeps connections open, so every client reuses its pool;
- fresh: the simulator closes each connection after its answer (`keep_alive=false`), so every
  request of every client opens a new one (no client can be given a different policy).
Ours is `depin-monitor run` (benchmarks/shipped.py: scheduler, store, /metrics, its GC) with
enough schedules to keep the level's streams in flight; the peers are benchmarks/peer_clients.py
(the SDK as a careful user scripts it; GuideLLM's OpenAIHTTPBackend with its own timings and
metric definitions, run by N tasks in one process: its multi-process scheduler is not used, so
every client has one core). Every request's truth comes from GET /sim/truth/{x-request-id}
after its phase. TTFT error = client's TTFT - truth (received -> first token written):
- "from request sent" is the same start point for every client: the request's body written
  (our aiohttp trace; httpcore's `send_request_body.complete` trace for both peers);
- "as reported" is each client's own: ours is the same; the SDK script's clock starts before
  `create()`; GuideLLM's at its first request-header write (httpcore trace).
Decode error = |client's tokens/s after the first token - truth| / truth. CPU per token: each
process's CPU while its requests ran / tokens (ours: the whole monitor, store and exporter
included).

HTTP checks (GET the simulator's /health, --http-probes probes one after another): ours is `run`
with one `http` network probed every 0.1 s; blackbox is Debian's prometheus-blackbox-exporter
asked via /probe 0.1 s apart too (start to start: both pay for waking from the same idle),
which opens a new connection every time. The simulator logs each /health
answer's (received, written) stamps in arrival order (GET /sim/health-log), so each probe is
paired with its own truth: error = measured - (written - received), where measured is the
whole check as blackbox times it (connection set-up included: ours connect_s + duration_s).
Ours runs fresh (simulator closing connections) and kept-alive; blackbox fresh only. CPU per
check is the whole process's over the window / checks; "above idle" subtracts what the same
process spends over as long with nothing due (ours: `run` with the network's interval an hour;
blackbox: nothing, it does no work between probes).

    python benchmarks/peer.py               # 1 and 100 streams, both policies, 200 checks (~3 min)
    python benchmarks/peer.py --quick       # smoke: seconds
    GuideLLM: see benchmarks/README.md (its own virtualenv; --guidellm-python PATH)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import accuracy
import common
import shipped

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = "sim-llama-3.1-8b-instruct"
POLICIES = (("kept-alive", True), ("fresh", False))


@dataclasses.dataclass
class Side:
    name: str
    ttft_sent: list[float] = dataclasses.field(default_factory=list)
    ttft_native: list[float] = dataclasses.field(default_factory=list)
    decode_err: list[float] = dataclasses.field(default_factory=list)
    tokens: int = 0
    cpu_s: float = 0.0
    runs: int = 0
    ok: int = 0
    errors: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def cpu_per_token_us(self) -> float:
        return self.cpu_s / self.tokens * 1e6 if self.tokens else math.nan

    def add(self, got: list[dict], truths: dict[str, dict]) -> None:
        for g in got:
            self.runs += 1
            t = truths.get(g.get("rid") or "")
            if not g.get("ok") or t is None or t["ttft_s"] is None:
                key = g.get("error") or ("no truth" if g.get("ok") else "failed")
                self.errors[key[:80]] = self.errors.get(key[:80], 0) + 1
                continue
            self.ok += 1
            self.tokens += g.get("tokens") or 0
            if g.get("ttft_sent") is not None:
                self.ttft_sent.append(g["ttft_sent"] - t["ttft_s"])
            if g.get("ttft_native") is not None:
                self.ttft_native.append(g["ttft_native"] - t["ttft_s"])
            if g.get("decode") and t["tokens_per_s"]:
                self.decode_err.append(abs(g["decode"] - t["tokens_per_s"]) / t["tokens_per_s"])


# -- the clients -------------------------------------------------------------------------


def ours_phase(sim: common.SimProcess, streams: int, runs: int, tps: float,
               args: argparse.Namespace) -> tuple[list[dict], float]:
    """`depin-monitor run` keeping `streams` in flight until about `runs` runs are stored."""
    run_s = args.ttft + args.tokens / tps
    if streams == 1:
        interval, schedules = run_s + 0.1, 1
    else:
        interval = 1.25 * run_s
        schedules = math.ceil(streams * interval / run_s)
    nets = [shipped.Net(f"sim-{i:04d}", sim.base_url, jobs=[accuracy.JOB], interval_s=interval)
            for i in range(schedules)]
    config = shipped.config_yaml(nets, port=common.free_port(), concurrency=schedules + 10,
                                 jobs=[accuracy.bench_job(args.tokens)])
    mon = shipped.Monitor.start(config, cores=[0])
    try:
        mon.wait_ready()
        shipped.wait_for(interval + 0.5)
        since, cpu0 = time.time(), mon.cpu_s()
        shipped.wait_for(max(runs * interval / schedules, 3.0))
        until, cpu = time.time(), mon.cpu_s() - cpu0
        mon.stop()
        rows = mon.rows(since, until)
    finally:
        mon.cleanup()
    got = [{"rid": r["details"].get("request_id"), "ok": r["outcome"] == "ok",
            "tokens": r["output_tokens"] or 0, "ttft_sent": r["ttft_s"],
            "ttft_native": r["ttft_s"], "decode": r["tokens_per_s"],
            "error": None if r["outcome"] == "ok" else f"{r['outcome']}: {r['error']}"}
           for r in rows]
    return got, cpu


def peer_phase(python: str, client: str, sim: common.SimProcess, streams: int, runs: int,
               tps: float, args: argparse.Namespace) -> tuple[list[dict], float]:
    cmd = [python, os.path.join(HERE, "peer_clients.py"), "--client", client,
           "--base-url", sim.base_url, "--model", MODEL, "--streams", str(streams),
           "--runs-each", str(max(1, runs // streams)), "--tokens", str(args.tokens),
           "--ttft", str(args.ttft), "--tokens-per-s", str(tps)]
    if (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "0", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{client} client failed: {out.stderr[-1500:]}")
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return lines[:-1], lines[-1]["cpu_s"]


def guidellm_python(args: argparse.Namespace) -> str | None:
    """GuideLLM's interpreter: --guidellm-python, $GUIDELLM_PYTHON, ./.venv-guidellm, or this
    one if it has GuideLLM; None when there is none."""
    for candidate in (args.guidellm_python, os.environ.get("GUIDELLM_PYTHON"),
                      os.path.join(ROOT, ".venv-guidellm", "bin", "python")):
        if candidate and os.path.exists(candidate):
            return candidate
    import importlib.util

    return sys.executable if importlib.util.find_spec("guidellm") else None


def client_version(python: str, client: str) -> str:
    out = subprocess.run([python, os.path.join(HERE, "peer_clients.py"), "--client", client,
                          "--base-url", "-", "--version"], capture_output=True, text=True,
                         check=False)
    return out.stdout.strip() or "?"


def streaming(streams: int, keep_alive: bool, args: argparse.Namespace,
              clients: list[tuple[str, str | None]]) -> list[Side]:
    tps = min(100.0, args.budget / streams)
    sides = {name: Side(name) for name, _ in clients}
    runs = args.runs_1 if streams == 1 else args.runs
    sim = common.start_sim("datacenter", seed=streams, cores=[1], gc_mode="tuned",
                           keep_alive=str(keep_alive).lower(),
                           **common.steady_profile(ttft_s=args.ttft, tokens_per_s=tps))
    try:
        for _ in range(args.rounds):
            for name, python in clients:
                if python is None:
                    got, cpu = ours_phase(sim, streams, runs, tps, args)
                else:
                    got, cpu = peer_phase(python, name.split()[0].lower(), sim, streams, runs,
                                          tps, args)
                truths = asyncio.run(common.fetch_truths(
                    sim.url, [g["rid"] for g in got if g.get("rid")]))
                sides[name].add(got, truths)
                sides[name].cpu_s += cpu
    finally:
        sim.stop()
    return list(sides.values())


def stream_rows(streams: int, policy: str, sides: list[Side]) -> list[list[object]]:
    q = common.quantile
    rows = []
    for s in sides:
        rows.append([streams, policy, s.name, f"{s.ok}/{s.runs}",
                     common.ms(q(s.ttft_sent, 0.5)), common.ms(q(s.ttft_sent, 0.99)),
                     common.ms(q(s.ttft_native, 0.5)), common.ms(q(s.ttft_native, 0.99)),
                     f"{q(s.decode_err, 0.5) * 100:.2f}", f"{q(s.decode_err, 0.99) * 100:.2f}",
                     f"{s.cpu_per_token_us:.1f}"])
    ours = sides[0]
    for s in sides[1:]:
        rows.append([streams, policy, f"ratio {s.name}/ours", "",
                     ratio(abs_q(s.ttft_sent, 0.5), abs_q(ours.ttft_sent, 0.5)),
                     ratio(abs_q(s.ttft_sent, 0.99), abs_q(ours.ttft_sent, 0.99)),
                     ratio(abs_q(s.ttft_native, 0.5), abs_q(ours.ttft_native, 0.5)),
                     ratio(abs_q(s.ttft_native, 0.99), abs_q(ours.ttft_native, 0.99)),
                     ratio(q(s.decode_err, 0.5), q(ours.decode_err, 0.5)),
                     ratio(q(s.decode_err, 0.99), q(ours.decode_err, 0.99)),
                     ratio(s.cpu_per_token_us, ours.cpu_per_token_us)])
    return rows


def abs_q(values: list[float], q: float) -> float:
    return common.quantile([abs(v) for v in values], q)


def ratio(a: float, b: float) -> str:
    return "n/a" if not b or a != a or b != b else f"{a / b:.1f}x"


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
        ["taskset", "-c", "0", exe, f"--config.file={cfg}",
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


def blackbox_version() -> str:
    exe = shutil.which("prometheus-blackbox-exporter")
    if exe is None:
        return "?"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"version (\S+)", out.stdout + out.stderr)
    return m.group(1) if m else "?"


def health_log(sim: common.SimProcess) -> list[list[float]]:
    with urllib.request.urlopen(sim.url + "/sim/health-log", timeout=30) as r:
        return json.loads(r.read())


@dataclasses.dataclass
class Checks:
    name: str
    measured: list[float]
    truth: list[float]
    cpu_s: float
    failed: int = 0
    idle_cpu_s: float = 0.0  # what the same process spent meanwhile with no check to run

    @property
    def checks(self) -> int:
        return len(self.measured) + self.failed

    @property
    def errors(self) -> list[float]:
        return [m - t for m, t in zip(self.measured, self.truth, strict=True)]


INTERVAL_S = 0.1  # between two HTTP checks, ours and blackbox's alike


def health_monitor(sim: common.SimProcess, interval_s: float) -> shipped.Monitor:
    """`run` checking the simulator's /health every `interval_s`, pinned to core 0."""
    net = shipped.Net("health", sim.url + "/health", kind="http", jobs=["health-v1"],
                      interval_s=interval_s, models={"small": "-"})
    config = shipped.config_yaml([net], port=common.free_port(), concurrency=4)
    return shipped.Monitor.start(config, cores=[0])


def idle_cpu_s(sim: common.SimProcess, seconds: float) -> float:
    """CPU `run` spends over `seconds` with the same network and nothing due (its interval an
    hour): its scheduler, store, loop watch and collector clock, the fixed cost."""
    mon = health_monitor(sim, 3600.0)
    try:
        mon.wait_ready()
        time.sleep(1.0)  # its one check at start done
        cpu0 = mon.cpu_s()
        shipped.wait_for(seconds)
        return mon.cpu_s() - cpu0
    finally:
        mon.cleanup()


def ours_checks(sim: common.SimProcess, n: int, name: str) -> Checks:
    idle = idle_cpu_s(sim, n * INTERVAL_S)
    before = len(health_log(sim))
    mon = health_monitor(sim, INTERVAL_S)
    try:
        mon.wait_ready()
        cpu0 = mon.cpu_s()
        since = time.time()
        shipped.wait_for(n * INTERVAL_S)
        until, cpu = time.time(), mon.cpu_s() - cpu0
        mon.stop()
        rows = mon.rows()
    finally:
        mon.cleanup()
    log = health_log(sim)[before:]
    if len(log) != len(rows):  # every /health answer is one of its runs, in order
        raise RuntimeError(f"{len(rows)} stored checks but {len(log)} /health answers")
    pairs = [(r, w - rcv) for r, (rcv, w) in zip(rows, log, strict=True)
             if since <= r["started_at"] < until]
    ok = [(r, t) for r, t in pairs if r["outcome"] == "ok"]
    return Checks(name, [(r["connect_s"] or 0.0) + r["duration_s"] for r, _ in ok],
                  [t for _, t in ok], cpu, failed=len(pairs) - len(ok), idle_cpu_s=idle)


def blackbox_checks(sim: common.SimProcess, n: int, name: str) -> Checks:
    with tempfile.TemporaryDirectory() as tmp:
        bb, bb_url = start_blackbox(tmp)
        try:
            probe_url = f"{bb_url}/probe?target={sim.url}/health&module=http_2xx"
            urllib.request.urlopen(probe_url, timeout=10).read()  # warm up its first probe
            before = len(health_log(sim))
            b0 = common.proc_cpu_s(bb.pid)
            measured, good = [], []
            start = time.perf_counter()
            for i in range(n):  # 0.1 s apart, start to start, as `run` checks
                time.sleep(max(0.0, start + i * INTERVAL_S - time.perf_counter()))
                text = urllib.request.urlopen(probe_url, timeout=10).read().decode()
                m = re.search(r"^probe_duration_seconds ([\d.e+-]+)$", text, re.M)
                good.append(bool(m and re.search(r"^probe_success 1$", text, re.M)))
                measured.append(float(m.group(1)) if m else math.nan)
            time.sleep(0.2)  # let the exporter's last CPU ticks land in /proc
            cpu = common.proc_cpu_s(bb.pid) - b0
        finally:
            bb.terminate()
            bb.wait(10)
    log = health_log(sim)[before:]
    if len(log) != n:
        raise RuntimeError(f"{n} blackbox probes but {len(log)} /health answers")
    kept = [(m, w - r) for m, g, (r, w) in zip(measured, good, log, strict=True) if g]
    return Checks(name, [m for m, _ in kept], [t for _, t in kept], cpu,
                  failed=n - len(kept))


def http_checks(n: int) -> list[list[object]]:
    results = []
    for policy, keep_alive in POLICIES:
        sim = common.start_sim("datacenter", cores=[1], gc_mode="tuned", p_http_5xx=0.0,
                               keep_alive=str(keep_alive).lower())
        try:
            results.append((policy, ours_checks(sim, n, "ours (`run`, http kind)")))
            if not keep_alive:
                results.append((policy, blackbox_checks(
                    sim, n, f"blackbox_exporter {blackbox_version()}")))
        finally:
            sim.stop()
    q = common.quantile
    rows: list[list[object]] = []
    for policy, c in results:
        errors = c.errors
        rows.append([policy, c.name, f"{len(c.measured)}/{len(c.measured) + c.failed}",
                     common.ms(q(c.measured, 0.5)), common.ms(q(c.truth, 0.5)),
                     common.ms(q(errors, 0.5)), common.ms(q(errors, 0.99)),
                     f"{c.cpu_s / max(c.checks, 1) * 1e6:.0f}",
                     f"{(c.cpu_s - c.idle_cpu_s) / max(c.checks, 1) * 1e6:.0f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="1,100", help="concurrent streams, comma-separated")
    p.add_argument("--runs", type=int, default=200, help="runs per client per round (about)")
    p.add_argument("--runs-1", type=int, default=30,
                   help="runs per client per round at 1 stream (sequential)")
    p.add_argument("--rounds", type=int, default=2, help="turns of every client")
    p.add_argument("--tokens", type=int, default=64, help="output tokens per run")
    p.add_argument("--ttft", type=float, default=0.05, help="median simulated TTFT (s)")
    p.add_argument("--budget", type=float, default=10000.0, help="total tokens/s asked")
    p.add_argument("--http-probes", type=int, default=200, help="HTTP checks per prober")
    p.add_argument("--guidellm-python", help="the Python of GuideLLM's virtualenv")
    p.add_argument("--quick", action="store_true", help="smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.levels, args.runs, args.rounds, args.tokens, args.http_probes = "2", 4, 1, 12, 5
        args.runs_1 = 2
    args.levels = [int(x) for x in str(args.levels).split(",")]
    common.pin([1])
    clients: list[tuple[str, str | None]] = [("ours", None), ("openai SDK", sys.executable)]
    gl = guidellm_python(args)
    if gl is not None:
        clients.append(("GuideLLM", gl))
    versions = [f"openai {client_version(sys.executable, 'openai')}",
                f"GuideLLM {client_version(gl, 'guidellm')}" if gl else
                "GuideLLM not installed (benchmarks/README.md): left out"]
    print(f"# peer: {common.machine()}")
    print(f"# every client pinned to core 0, simulator to core 1; chat, max_tokens={args.tokens}; "
          f"{', '.join(versions)}; command: {' '.join(['python', *sys.argv])}")
    rows: list[list[object]] = []
    policies = POLICIES[1:] if args.quick else POLICIES  # smoke: fresh connections only
    for streams in args.levels:
        for policy, keep_alive in policies:
            rows += stream_rows(streams, policy, streaming(streams, keep_alive, args, clients))
            print(f"  streaming at {streams}, {policy}: done", file=sys.stderr, flush=True)
    print("## LLM streaming: ours vs the openai SDK and GuideLLM")
    print(common.table(["streams", "connections", "client", "ok/runs",
                        "TTFT err from sent p50 ms", "p99 ms", "TTFT err as reported p50 ms",
                        "p99 ms", "decode err p50 %", "p99 %", "CPU us/token"], rows))
    print()
    print("## HTTP checks of /health: ours vs prometheus-blackbox-exporter (same truth)")
    print(common.table(["connections", "prober", "ok/probes", "measured p50 ms",
                        "truth p50 ms", "error p50 ms", "error p99 ms", "CPU us/probe",
                        "CPU us/probe above idle"],
                       http_checks(args.http_probes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
