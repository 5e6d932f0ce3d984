"""A small disk of a test's own: a tmpfs (root only) that a test fills, frees, or remounts
read-only, to give the store the faults a real disk gives. Before it is unmounted, every
SQLite file on it must pass `PRAGMA integrity_check`."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.storage.files import integrity_ok

FILLER = "filler.bin"


class Disk:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self) -> None:
        """Take every free byte (writes fail with ENOSPC from now on)."""
        with open(self.path / FILLER, "ab", buffering=0) as f:
            block = b"\0" * 4096
            try:
                while True:
                    f.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise

    def free(self) -> None:
        (self.path / FILLER).unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        mode = "ro" if on else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)

    def stores(self) -> list[Path]:
        return sorted(p for p in self.path.glob("*.db") if p.is_file())


def disk_fixture(tmp_path: Path, size: str = "2m") -> Iterator[Disk]:
    path = tmp_path / "disk"
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    disk = Disk(path)
    try:
        yield disk
        disk.read_only(False)
        disk.free()  # reading a WAL store needs room for its -shm file
        unsound = [p.name for p in disk.stores() if not integrity_ok(p)]
        assert not unsound, f"PRAGMA integrity_check failed for {unsound}"
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
