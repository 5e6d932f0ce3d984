"""Files generated from code and committed: write them, or check that they are current (CI).

Used by `python -m dashboards.build` and `python -m deploy.kubernetes.build`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def main(generate: Callable[[], dict[str, str]], out_dir: Path, doc: str, command: str,
         argv: Sequence[str] | None = None) -> int:
    """`generate()` maps file names in `out_dir` to their text; --check compares instead."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a committed file differs from what would be generated")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generate().items():
        path = out_dir / name
        if not args.check:
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(name)
    if stale:
        print(f"out of date: {', '.join(stale)}; regenerate with: {command}", file=sys.stderr)
        return 1
    return 0
