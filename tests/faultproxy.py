"""A TCP proxy on 127.0.0.1 that injects transport faults between a probe and a network.

Bytes pass through unchanged unless a fault says otherwise; `proxy.faults` can be replaced at
any time (new connections take the new faults; a flap or a change of `down` cuts live ones):

    proxy = await FaultProxy.start("127.0.0.1", upstream_port)
    proxy.faults = Faults(latency_s=0.2)          # each chunk delivered 200 ms late, both ways
    proxy.faults = Faults(bandwidth_bps=2048)     # the answer trickles at 2 KiB/s
    proxy.faults = Faults(reset_after_bytes=300)  # RST once 300 bytes of the answer went through
    proxy.faults = Faults(blackhole=True)         # accept, read, never answer
    proxy.faults = Faults(slow_close_s=3)         # the answer arrives whole; the FIN 3 s later
    proxy.faults = Faults(flap=(2.0, 1.0))        # 2 s up, 1 s down (refused, live ones reset)
    proxy.set_down(True)                          # down until set_down(False)
    await proxy.stop()

Down means what a node that left the network looks like: the listening socket is closed
(connections refused, as the simulator's node churn does) and live connections are reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import dataclass, field

CHUNK = 64 << 10


@dataclass(frozen=True)
class Faults:
    latency_s: float = 0.0  # one-way delay added to every chunk, both directions (pipelined)
    bandwidth_bps: float | None = None  # bytes/s from the network to the probe
    reset_after_bytes: int | None = None  # RST after this many bytes of the answer
    blackhole: bool = False  # accept and read the request; never connect upstream, never answer
    slow_close_s: float = 0.0  # after the network closed, keep the probe's side open this long
    flap: tuple[float, float] | None = None  # (up_s, down_s), repeating from the change


@dataclass
class Stats:
    accepted: int = 0
    to_network: int = 0  # bytes
    to_probe: int = 0
    resets: int = 0
    open: int = 0  # connections open now
    max_open: int = 0


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed or firewalled peer does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    host: str = "127.0.0.1"
    port: int = 0
    stats: Stats = field(default_factory=Stats)
    _faults: Faults = field(default_factory=Faults)
    _server: asyncio.Server | None = None
    _down: bool = False
    _flapper: asyncio.Task[None] | None = None
    _live: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    async def start(cls, upstream_host: str, upstream_port: int,
                    faults: Faults | None = None) -> FaultProxy:
        proxy = cls((upstream_host, upstream_port))
        await proxy._listen()
        proxy.faults = faults or Faults()
        return proxy

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        if self._flapper is not None:
            self._flapper.cancel()
            self._flapper = None
        if faults.flap is not None:
            self._flapper = asyncio.get_running_loop().create_task(self._flap(*faults.flap))
        else:
            self.set_down(False)

    @property
    def down(self) -> bool:
        return self._down

    def set_down(self, down: bool) -> None:
        """Down: refuse new connections and reset the live ones; up: listen again."""
        if down == self._down:
            return
        self._down = down
        if down:
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._live):
                reset(writer)
                self.stats.resets += 1
        else:
            self._spawn(self._listen())

    async def stop(self) -> None:
        if self._flapper is not None:
            self._flapper.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._live):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- internals -----------------------------------------------------------------------

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._handle, self.host, self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _flap(self, up_s: float, down_s: float) -> None:
        while True:
            self.set_down(False)
            await asyncio.sleep(up_s)
            self.set_down(True)
            await asyncio.sleep(down_s)

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        self.stats.open += 1
        self.stats.max_open = max(self.stats.max_open, self.stats.open)
        self._live.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        faults = self._faults
        try:
            if faults.blackhole:
                while await reader.read(CHUNK):
                    pass
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                reset(writer)
                return
            try:
                async with asyncio.TaskGroup() as pumps:  # one fails: both stop
                    pumps.create_task(self._pump(reader, up_writer, faults, to_probe=False))
                    pumps.create_task(self._pump(up_reader, writer, faults, to_probe=True))
            except* (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                up_writer.transport.abort()
        finally:
            self._live.discard(writer)
            self.stats.open -= 1
            if task is not None:
                self._tasks.discard(task)
            if self._down:
                writer.transport.abort()
            else:
                writer.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, faults: Faults,
                    *, to_probe: bool) -> None:
        """Copy src to dst with the faults of the direction; chunks keep their order and each
        is delivered `latency_s` after it was read (pipelined, as on a long link)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        delivered = asyncio.get_running_loop().create_task(
            self._deliver(queue, dst, faults, to_probe=to_probe))
        try:
            while True:
                chunk = await src.read(CHUNK)
                queue.put_nowait((time.perf_counter() + faults.latency_s, chunk))
                if not chunk:
                    break
            await delivered
        finally:
            delivered.cancel()

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes]],
                       dst: asyncio.StreamWriter, faults: Faults, *, to_probe: bool) -> None:
        sent = 0
        while True:
            due, chunk = await queue.get()
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:  # the sender closed its side
                if to_probe and faults.slow_close_s:
                    await asyncio.sleep(faults.slow_close_s)
                if dst.can_write_eof():
                    dst.write_eof()
                return
            if to_probe and faults.reset_after_bytes is not None:
                room = faults.reset_after_bytes - sent
                if len(chunk) >= room:
                    dst.write(chunk[:room])
                    await dst.drain()
                    self.stats.to_probe += room
                    self.stats.resets += 1
                    reset(dst)
                    raise ConnectionResetError("fault: reset after bytes")
            step = len(chunk)
            if to_probe and faults.bandwidth_bps:
                step = max(1, int(faults.bandwidth_bps / 20))  # 20 slices a second
            for i in range(0, len(chunk), step):
                piece = chunk[i:i + step]
                dst.write(piece)
                await dst.drain()
                sent += len(piece)
                if to_probe:
                    self.stats.to_probe += len(piece)
                else:
                    self.stats.to_network += len(piece)
                if to_probe and faults.bandwidth_bps:
                    await asyncio.sleep(len(piece) / faults.bandwidth_bps)
