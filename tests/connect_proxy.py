"""A forward proxy for tests: HTTP CONNECT tunnels (RFC 9110 section 9.3.6) on 127.0.0.1.

The wire format is the RFC's: the client sends `CONNECT host:port HTTP/1.1`, header lines and
an empty line; a 2xx answer (no body) turns the connection into a byte tunnel to host:port,
any other status refuses it (407 with `Proxy-Authenticate` when credentials are wanted).
Only loopback destinations are tunnelled. Every request is recorded for the tests to check.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass
class ConnectProxy:
    port: int = 0
    credentials: tuple[str, str] | None = None  # demand Basic proxy auth
    refuse: int | None = None  # answer every CONNECT with this status
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    _server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tunnels(self) -> list[str]:
        """host:port of every CONNECT request received."""
        return [target for method, target, _ in self.requests if method == "CONNECT"]

    async def start(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target = [*lines[0].split(" "), "", ""][:2]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        self.requests.append((method, target, headers))
        status = self._verdict(method, target, headers)
        if status != 200:
            extra = 'Proxy-Authenticate: Basic realm="test"\r\n' if status == 407 else ""
            writer.write(f"HTTP/1.1 {status} Refused\r\n{extra}Content-Length: 0\r\n"
                         "Connection: close\r\n\r\n".encode())
            await writer.drain()
            writer.close()
            return
        host, _, port = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def _verdict(self, method: str, target: str, headers: dict[str, str]) -> int:
        if method != "CONNECT":
            return 405
        if self.refuse is not None:
            return self.refuse
        if target.rpartition(":")[0].strip("[]") not in LOOPBACK:
            return 403
        if self.credentials is not None:
            user, password = self.credentials
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            if headers.get("proxy-authorization") != f"Basic {token}":
                return 407
        return 200


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def running_proxy(**options: object) -> AsyncIterator[ConnectProxy]:
    proxy = await ConnectProxy(**options).start()  # type: ignore[arg-type]
    try:
        yield proxy
    finally:
        await proxy.stop()
