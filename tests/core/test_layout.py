"""The shape of the code: core/ and gui/ are packages layered top to bottom (pyproject's
[tool.importlinter] contracts, checked by import-linter), no two modules import each other in a
circle (imports inside functions count), and no module is over 400 lines."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")
MAX_LINES = 400


def cycles(*packages: str) -> list[list[str]]:
    """Groups of modules that import each other in a circle (Tarjan's strongly connected components
    of grimp's graph, which holds imports inside functions too)."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(root: str) -> None:  # iterative: no recursion limit on a deep chain
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return found


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_layering_contracts_hold():
    r = lint(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_no_import_cycles_between_modules():
    assert cycles("core", "gui") == []


def test_no_module_over_400_lines():
    long = [f"{p.relative_to(ROOT)} ({n} lines)" for p in sorted([*ROOT.glob("core/**/*.py"), *ROOT.glob("gui/**/*.py")])
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert long == []


def test_the_cycle_check_sees_a_circle_through_a_function(tmp_path, monkeypatch):
    pkg = tmp_path / "circle"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from circle import b\n")
    (pkg / "b.py").write_text("def f():\n    from circle import c\n")
    (pkg / "c.py").write_text("import circle.a\n")
    (pkg / "d.py").write_text("import circle.a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycles("circle") == [["circle.a", "circle.b", "circle.c"]]


@pytest.mark.parametrize("planted", [
    ("core/overlays/render.py", "from core.engine import server  # an overlay importing the engine\n"),
    ("core/tracing/types.py", "def _f():\n    from core.analysis import verdicts  # the trace importing the analysis\n"),
    ("core/colormaps.py", "import PySide6  # Qt in the core\n"),
    ("gui/persist.py", "import torch  # torch in the window's process\n"),
])
def test_the_contracts_catch_a_forbidden_import(tmp_path, planted):
    for name in ("core", "gui"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    rel, line = planted
    with open(tmp_path / rel, "a", encoding="utf-8") as f:
        f.write("\n" + line)
    r = lint(tmp_path)
    assert r.returncode != 0 and "BROKEN" in r.stdout, r.stdout[-2000:]
