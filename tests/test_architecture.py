"""The architecture of monitor/ and probes/ (docs/architecture.md): no import cycle anywhere,
module level or inside functions, and every layer imports only the layers below it (the
import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import graphlib
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
