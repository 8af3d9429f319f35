import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def _pg_config():
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


@pytest.fixture
def qsettings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def scenes(tmp_path):
    """Three generated scenes in one folder (names sort in this order)."""
    import cv2

    from core.demo.shapes import make_scene, scene_rng

    folder = tmp_path / "scenes"
    folder.mkdir()
    paths = []
    for i in range(3):
        s = make_scene(scene_rng(31, i), size=(300, 400), n_objects=4)
        p = folder / f"scene_{i + 1}.png"
        cv2.imwrite(str(p), s.image[..., ::-1])
        paths.append(str(p))
    return paths


def wait_trace(qtbot, win, name=None, timeout=90_000):
    """Wait until the window shows a trace (of ``name``) with every visible stage built."""
    qtbot.waitUntil(lambda: win.state.trace is not None and (name is None or win.state.trace.meta.name == name)
                    and win.settled, timeout=timeout)
    return win.state.trace


def wait_settled(qtbot, win, timeout=60_000):
    qtbot.waitUntil(lambda: win.settled, timeout=timeout)


@pytest.fixture
def make_window(qtbot, qsettings):
    from gui.main_window import MainWindow

    made = []

    def make(images=(), size=(1200, 800), **kw):
        w = MainWindow(list(images), settings=qsettings, **kw)
        qtbot.addWidget(w)
        w.resize(*size)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
        if w.engine is not None:
            assert not w.engine.is_alive(), "the engine process outlived its window"


def grab(widget) -> np.ndarray:
    img = widget.grab().toImage()
    img = img.convertToFormat(img.Format.Format_RGB888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), np.uint8, img.bytesPerLine() * h).reshape(h, img.bytesPerLine())
    return arr[:, : w * 3].reshape(h, w, 3).copy()


def view_pixels(win) -> np.ndarray:
    return grab(win.view)


def activate(qtbot, win):
    """Make the window the active one (shortcuts only reach an active window)."""
    from PySide6.QtWidgets import QApplication

    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)
    win.view.setFocus()
