"""The core never imports Qt, pyqtgraph or the gui package."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
FORBIDDEN = ("PySide6", "pyqtgraph", "gui", "shiboken6", "PyQt5", "PyQt6")


def test_no_forbidden_import_statements():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_core_runs_without_loading_qt():
    code = (
        "import sys\n"
        "sys.modules.update({m: None for m in %r})  # as if Qt were not installed\n"
        "import numpy as np, core\n"
        "from core.cli import main\n"
        "from core.overlays import export, render\n"
        "from core.overlays import layers_for\n"
        "m = core.load_model('seed-alexnet', weights='random:1')\n"
        "tr = core.trace(m, np.zeros((64, 80, 3), np.uint8))\n"
        "core.retrace(tr, box_nms_thresh=0.2)\n"
        "bad = [m for m, v in sys.modules.items() if v is not None and m.split('.')[0] in %r]\n"
        "assert not bad, bad\n" % (FORBIDDEN, FORBIDDEN)
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CORE.parent)
