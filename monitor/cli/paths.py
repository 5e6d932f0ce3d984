"""Paths a command reads or writes, checked before any work starts: a store given with --db
(read or appended to) and an output file given with -o. Each mistake is one UserError naming
the option and the path, so nothing is sampled, spent or computed for a file that cannot be
written or a store that cannot be read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from monitor.core.errors import UserError
from monitor.storage.files import store_problem


def check_stores(paths: Sequence[str], option: str = "--db", *, writing: bool = False) -> None:
    """Every path can be read as a store (or, writing, made one)."""
    for path in paths:
        problem = store_problem(path, writing=writing)
        if problem == "no such file":
            raise UserError(f"{option} {path}: no such file; give the store written by "
                            "`depin-monitor run --db` or `demo --db`")
        if problem:
            raise UserError(f"{option} {path}: {problem}; give a depin-monitor store file")
        if writing:
            check_output(path, option, make_folders=True)


def check_output(path: str, option: str = "-o", *, make_folders: bool = False) -> None:
    """`path` names a file that can be written: not a directory, its folder an existing
    folder (not a file; with make_folders, folders still to make) we may write in, the file
    itself writable if it exists."""
    if not path or "\0" in path:
        raise UserError(f"{option} {path!r}: give a file name")
    target = Path(path)
    if target.is_dir() or path.endswith(os.sep):
        raise UserError(f"{option} {path}: is a directory; give a file name inside it, e.g. "
                        f"{target / 'out'}")
    folder = target.parent
    # the nearest part of the path that exists must be a folder
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{option} {path}: {existing} is a file, not a folder; give a path "
                        "in an existing folder")
    if existing != folder:
        if make_folders:
            folder = existing
        else:
            raise UserError(f"{option} {path}: no folder {folder}; create it first")
    if target.exists():
        if not os.access(target, os.W_OK):
            raise UserError(f"{option} {path}: not writable (permission denied); give "
                            "another file")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot create a file in {folder} (permission "
                        "denied); give another folder")
