"""A real window under Xvfb: start with no arguments, press 1 to 7 (each answered by the app before
the next), Ctrl+Q, exit 0. Plus: the GUI process never imports torch (the model runs in the
engine process)."""

import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_gui_sources_never_import_torch():
    bad = []
    for path in (ROOT / "gui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("torch", "torchvision")
                    or n in ("core.tracing.runner", "core.models.load", "core.models.weights", "core.trace")]
    assert bad == []


def _free_display() -> int:
    for n in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


@pytest.fixture
def xvfb():
    if not shutil.which("Xvfb") or not shutil.which("xdotool"):
        pytest.skip("Xvfb/xdotool missing: `make test` installs them (apt-get) where it can")
    n = _free_display()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip("Xvfb did not start")
        time.sleep(0.1)
    yield f":{n}"
    proc.terminate()
    proc.wait(10)


def _xdo(display, *args):
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, capture_output=True,
                          text=True, timeout=30)


def test_real_window_keys_and_quit(xvfb, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(DISPLAY=xvfb, XDG_CONFIG_HOME=str(tmp_path / "config"), HOME=str(tmp_path),
               RCNN_LENS_REPORT_SHOWN="1")
    app = subprocess.Popen([sys.executable, "-m", "gui.app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        lines = []

        def read_until(prefix: str, deadline: float) -> str:
            while time.time() < deadline:
                line = app.stdout.readline()
                if not line:
                    break
                lines.append(line.strip())
                if line.startswith(prefix):
                    return line.strip()
            raise AssertionError((prefix, lines, app.stderr.read() if app.poll() is not None else ""))

        read_until("shown", time.time() + 60)
        read_until("traced", time.time() + 180)
        win = _xdo(xvfb, "search", "--name", "^R-CNN Lens - scene_1.png$").stdout.split()
        assert win, "no window titled 'R-CNN Lens - scene_1.png'"
        _xdo(xvfb, "windowfocus", "--sync", win[0])
        for key, stage in zip("1234567", ("input", "features", "anchors", "objectness", "proposals", "rois",
                                         "detections")):
            _xdo(xvfb, "key", key)
            # the app answers each key: no sleeping, no racing the next key
            assert read_until(f"stage {stage}", time.time() + 30) == \
                f"stage {stage} {'off' if stage == 'detections' else 'on'}"
        if shutil.which("import"):
            subprocess.run(["import", "-window", "root", str(tmp_path / "window.png")],
                           env={**os.environ, "DISPLAY": xvfb}, timeout=30)
        _xdo(xvfb, "key", "ctrl+q")
        assert app.wait(30) == 0
        ini = list((tmp_path / "config").rglob("*.conf"))
        text = ini[0].read_text().replace('\\"', '"') if ini else ""
        # the keys reached the window: 1-6 turned their stages on, 7 turned detections off
        assert '"input": true' in text and '"rois": true' in text and '"detections": false' in text, text
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
