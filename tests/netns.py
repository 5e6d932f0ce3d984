"""Network namespaces for tests that need several places on one machine (`ip netns`, root).

A `Lab` makes namespaces named `dmloc-<pid>-<n>-<name>`, links them with veth pairs on private
/30 networks that exist only inside those namespaces, and deletes them all on `close()`, also
those a killed run left behind (their pid is gone). Nothing gets an address or a route in the
machine's own namespace. `Lab.caller(ns)` runs Python callables inside a namespace (a thread
that `setns()`ed into it), so a test can talk to a server that only exists there.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
PREFIX = "dmloc"
CLONE_NEWNET = 0x40000000  # <sched.h>
NETNS_DIR = "/var/run/netns"  # where `ip netns add` mounts them
_counter = itertools.count()


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "needs root to make network namespaces (CI runs as root)"
    return None


def ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_leftovers() -> None:
    """Delete namespaces of earlier runs whose process is gone (a SIGKILLed test run)."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           timeout=30).stdout
    for name in re.findall(rf"^({PREFIX}-(\d+)-\S+)", names, re.M):
        if not _pid_alive(int(name[1])):
            subprocess.run(["ip", "netns", "del", name[0]], capture_output=True, timeout=30)


class Lab:
    def __init__(self) -> None:
        self.run_id = f"{PREFIX}-{os.getpid()}-{next(_counter)}"
        self.namespaces: list[str] = []
        self._links = 0
        self._callers: list[ThreadPoolExecutor] = []

    def namespace(self, name: str) -> str:
        ns = f"{self.run_id}-{name}"
        ip("netns", "add", ns)
        self.namespaces.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def link(self, a: str, a_addr: str, b: str, b_addr: str, prefix: int = 30) -> None:
        """A veth pair between namespaces a and b, with these addresses on it."""
        self._links += 1
        tag = f"{os.getpid() % 100000}{self._links}"  # interface names: 15 characters at most
        end_a, end_b = f"dma{tag}", f"dmb{tag}"
        ip("link", "add", end_a, "netns", a, "type", "veth", "peer", "name", end_b, "netns", b)
        for ns, end, addr in ((a, end_a, a_addr), (b, end_b, b_addr)):
            ip("-n", ns, "addr", "add", f"{addr}/{prefix}", "dev", end)
            ip("-n", ns, "link", "set", end, "up")

    @staticmethod
    def exec_argv(ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def caller(self, ns: str) -> Callable[[Callable[[], T]], T]:
        """`call(fn)` runs fn() on a thread inside `ns`: its sockets are the namespace's."""

        def enter() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"{NETNS_DIR}/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {ns}")
            finally:
                os.close(fd)

        pool = ThreadPoolExecutor(max_workers=1, initializer=enter)
        self._callers.append(pool)

        def call(fn: Callable[[], T]) -> T:
            return pool.submit(fn).result()

        return call

    def close(self) -> None:
        for pool in self._callers:
            pool.shutdown(wait=True)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.namespaces.clear()
