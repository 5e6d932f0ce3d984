"""The architecture of monitor/ and probes/ (docs/architecture.md): no import cycle anywhere,
module level or inside functions, and every layer imports only the layers below it (the
import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import ast
import graphlib
import re
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def import_cycle(*packages: str) -> list[str] | None:
    """One import cycle among the packages' modules (every import statement counts, also those
    inside functions), or None."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    try:
        tuple(graphlib.TopologicalSorter(imports).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_module_imports_itself_back() -> None:
    cycle = import_cycle("monitor", "probes")
    assert cycle is None, "import cycle: " + " -> ".join(reversed(cycle or []))


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path: Path,
                                                                monkeypatch) -> None:
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "store.py").write_text("def report():\n    from cyclic import sla\n")
    (package / "sla.py").write_text("from cyclic.store import report\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert sorted(set(import_cycle("cyclic") or [])) == ["cyclic.sla", "cyclic.store"]


def test_layers_import_only_downward() -> None:
    lint = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, "
            "no_logo=True))")
    out = subprocess.run([sys.executable, "-c", lint], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_the_config_imports_no_probe() -> None:
    """The config layer knows every kind from monitor/core/kinds.py; loading it imports no
    module of probes/ (and so none of aiohttp's client machinery)."""
    code = ("import sys, monitor.config; "
            "print(sorted(m for m in sys.modules if m == 'probes' or m.startswith('probes.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_each_kind_the_config_knows_is_a_probe_with_the_same_spec() -> None:
    from monitor.core.kinds import KINDS
    from probes import PROBES

    assert set(KINDS) == set(PROBES)
    for name, spec in KINDS.items():
        kind = PROBES[name]
        assert (kind.name, kind.requests, kind.url_hint, kind.params, kind.query_params) == (
            spec.name, spec.requests, spec.url_hint, spec.params, spec.query_params)


SQL = re.compile(r"\bselect\b[\s\S]+\bfrom\b|\binsert\s+(or\s+\w+\s+)?into\b|\bupdate\s+\w+\s+set\b"
                 r"|\bdelete\s+from\b|\b(create|drop|alter)\s+(table|index|view|trigger)\b"
                 r"|\bpragma\s+\w+|\bwith\s+recursive\b", re.IGNORECASE)


def sql_outside_storage(root: Path) -> list[str]:
    """Where code outside monitor/storage/ holds SQL: a string (docstrings aside) that reads
    as SQL, or a call of a DB-API cursor's execute."""
    found = []
    for path in sorted([*root.glob("monitor/**/*.py"), *root.glob("probes/**/*.py")]):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("monitor/storage/"):
            continue
        tree = ast.parse(path.read_text(), rel)
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                    | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docstrings and SQL.search(node.value):
                found.append(f"{rel}:{node.lineno}: {node.value[:60]!r}")
            elif isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{}"
                               for v in node.values)
                if SQL.search(text):
                    found.append(f"{rel}:{node.lineno}: {text[:60]!r}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("execute", "executemany", "executescript"):
                found.append(f"{rel}:{node.lineno}: .{node.func.attr}(...)")
    return sorted(set(found))


def test_all_sql_lives_in_storage() -> None:
    """Every SQL statement is in monitor/storage/, behind named queries (docs/architecture.md)."""
    assert sql_outside_storage(ROOT) == []


def test_sql_outside_storage_is_found(tmp_path: Path) -> None:
    (tmp_path / "monitor" / "analysis").mkdir(parents=True)
    (tmp_path / "monitor" / "storage").mkdir()
    (tmp_path / "monitor" / "analysis" / "x.py").write_text(
        '"""Select the runs from the store (a docstring, not SQL)."""\n'
        'def f(conn, t):\n    return conn.execute(f"select a from {t} where b = ?", (1,))\n')
    (tmp_path / "monitor" / "storage" / "y.py").write_text('Q = "select a from t"\n')
    found = sql_outside_storage(tmp_path)
    assert {line.split(":")[:2][0] for line in found} == {"monitor/analysis/x.py"}
    assert {line.split(":")[1] for line in found} == {"3"}


def reads_imported_around_the_interface(root: Path) -> list[str]:
    """Where code outside monitor/storage/ imports one of the store's named queries (a name of
    monitor.storage.reads) from another module than monitor.storage.reads."""
    from monitor.storage import reads

    found = []
    for path in sorted([*root.glob("monitor/**/*.py"), *root.glob("probes/**/*.py")]):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("monitor/storage/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "monitor.storage.") and node.module != "monitor.storage.reads":
                found += [f"{rel}:{node.lineno}: {alias.name} from {node.module}"
                          for alias in node.names if alias.name in reads.__all__
                          or alias.name.startswith("read_")]
    return found


def test_every_read_goes_through_the_one_read_interface() -> None:
    """The layers above ask the store only through monitor.storage.reads (docs/architecture.md),
    as Gatus's callers ask only its Store interface."""
    assert reads_imported_around_the_interface(ROOT) == []


def test_a_read_around_the_interface_is_found(tmp_path: Path) -> None:
    (tmp_path / "monitor" / "web").mkdir(parents=True)
    (tmp_path / "monitor" / "storage").mkdir()
    (tmp_path / "monitor" / "web" / "x.py").write_text(
        "from monitor.storage.equality import VerdictWriter, read_verdicts\n"
        "from monitor.storage.reads import read_audits\n")
    (tmp_path / "monitor" / "storage" / "y.py").write_text(
        "from monitor.storage.equality import read_verdicts\n")
    assert reads_imported_around_the_interface(tmp_path) == [
        "monitor/web/x.py:1: read_verdicts from monitor.storage.equality"]
