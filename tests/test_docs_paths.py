"""What the docs, the README and the code's comments cite exists: every repository path they
name (monitor/..., docs/..., tests/..., ...) is a file or folder of this repository, and no
doc cites notes kept outside it."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"(?<![\w./<>-])((?:monitor|probes|tests|docs|benchmarks|deploy|examples"
                  r"|dashboards|\.ci)/[\w./-]*\w)(?![\w/<{*])")
# Paths of other repositories that a comment or doc cites beside the repository's name, and
# files the user makes: they are not this repository's.
ELSEWHERE = {
    "benchmarks/backend_request_func.py",  # vllm-project/vllm
    "examples/jobs/api-jobs.ts",  # nosana-ci/nosana-sdk
    "docs/web-configuration.md",  # prometheus/exporter-toolkit
    "docs/api-reference/errors",  # openrouter.ai's documentation site
    "deploy/.env",  # the operator's copy of deploy/.env.example (ignored by git)
}
NOT_PRIMARY = ("NETWORKS.md", "../shared", "shared/DESIGN.md", "shared/STYLE.md")


def cited_texts(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of what a file says in prose: a Markdown or YAML file's lines, a Python
    module's comments and docstrings."""
    source = path.read_text()
    if path.suffix != ".py":
        yield from enumerate(source.splitlines(), 1)
        return
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            yield tok.start[0], tok.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                yield node.body[0].lineno, doc


def prose_files(root: Path) -> list[Path]:
    return sorted({root / "README.md", *root.glob("docs/**/*.md"), *root.glob("benchmarks/*.md"),
                   *root.glob("examples/*.yaml"), *root.glob("deploy/**/*.y*ml"),
                   *(p for top in ("monitor", "probes", "tests", "benchmarks", "deploy",
                                   "dashboards", ".ci") for p in root.glob(f"{top}/**/*.py"))})


def broken_citations(root: Path) -> list[str]:
    found = []
    for path in prose_files(root):
        for line, text in cited_texts(path):
            where = f"{path.relative_to(root)}:{line}"
            for match in PATH.finditer(text):
                cited = match.group(1).rstrip(".")
                if cited not in ELSEWHERE and not (root / cited).exists():
                    found.append(f"{where}: {cited} does not exist")
            found += [f"{where}: cites {n}, not a primary source" for n in NOT_PRIMARY
                      if n in text]
    return sorted(found)


def test_every_cited_repository_path_exists() -> None:
    assert broken_citations(ROOT) == []


def test_a_path_that_does_not_exist_is_found(tmp_path: Path) -> None:
    (tmp_path / "monitor").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("See monitor/real.py and monitor/gone.py.\n"
                                            "Details in NETWORKS.md.\n")
    (tmp_path / "monitor" / "real.py").write_text(
        '"""Reads docs/a.md and docs/missing.md."""\n'
        'X = "monitor/only-a-string.py"  # the rules of monitor/rules.py\n')
    (tmp_path / "README.md").write_text("`probes/<kind>.py`: one module per kind\n")
    assert broken_citations(tmp_path) == [
        "docs/a.md:1: monitor/gone.py does not exist",
        "docs/a.md:2: cites NETWORKS.md, not a primary source",
        "monitor/real.py:1: docs/missing.md does not exist",
        "monitor/real.py:2: monitor/rules.py does not exist",
    ]
