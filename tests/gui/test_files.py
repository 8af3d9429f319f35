"""Files: several IMAGE arguments, a folder, paging past broken files and the app's own exports,
a bad image that leaves the app running, and paging while a heavy trace runs."""

import shutil

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from gui.files import resolve

from .conftest import activate, wait_settled, wait_trace


def test_several_image_arguments_page_through_those(make_window, scenes, qtbot):
    win = make_window([scenes[2], scenes[0]])  # not the folder's order, and scene_2 left out
    wait_trace(qtbot, win, scenes[2])
    activate(qtbot, win)
    qtbot.keyClick(win.view, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: win.state.image_path == scenes[0])
    qtbot.keyClick(win.view, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: "last image of the list" in win.status.message.text())
    assert win.state.image_path == scenes[0]
    qtbot.keyClick(win.view, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: win.state.image_path == scenes[2])
    wait_trace(qtbot, win, scenes[2])


def test_a_folder_argument_opens_its_first_image(make_window, scenes, qtbot, tmp_path):
    assert resolve([str(tmp_path / "scenes")]) == (scenes[0], None, None)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert resolve([str(empty)])[2] == f"{empty}: no images in this folder"
    win = make_window([str(tmp_path / "scenes")])
    wait_trace(qtbot, win, scenes[0])
    assert win.windowTitle().endswith("scene_1.png")


def test_paging_skips_broken_files_and_exports_and_says_so_once(make_window, scenes, qtbot, tmp_path):
    folder = tmp_path / "scenes"
    (folder / "scene_1b.png").write_bytes(b"not a png")  # sorts between scene_1 and scene_2
    shutil.copy(scenes[1], folder / "scene_1c.lens.png")  # the app's own export: never paged to
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    activate(qtbot, win)
    qtbot.keyClick(win.view, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: win.state.image_path == scenes[1])
    msg = win.messages.text.text()
    assert win.messages.isVisible() and msg == "skipped 1 unreadable file: scene_1b.png (not an image OpenCV can read)"
    win.messages.dismiss()
    qtbot.keyClick(win.view, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: win.state.image_path == scenes[0])
    assert not win.messages.isVisible()  # said once
    wait_trace(qtbot, win, scenes[0])


def test_a_bad_image_or_checkpoint_says_so_and_the_app_goes_on(make_window, scenes, qtbot, tmp_path):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"definitely not a png")
    win.open_image(str(bad))
    qtbot.waitUntil(lambda: win.last_error is not None)
    assert win.last_error == f"{bad}: not an image OpenCV can read"
    assert win.messages.isVisible() and win.messages.text.text() == win.last_error
    assert win.state.image_path == scenes[0] and win.state.trace is tr
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, (QDialog, QMessageBox)) and w.isVisible()]
    ck = tmp_path / "weights.pt"
    ck.write_bytes(b"garbage")
    win.state.choose_model("demo", str(ck))
    qtbot.waitUntil(lambda: "weights.pt" in (win.last_error or "") and win.settled, timeout=60_000)
    assert "not a PyTorch checkpoint" in win.last_error
    assert win.engine.is_alive() and win.state.trace is not None and win.state.choice.weights in (None, "demo")
    win.open_image(scenes[2])
    wait_trace(qtbot, win, scenes[2])


def test_page_down_during_a_running_trace(make_window, scenes, qtbot, tmp_path):
    """With a heavy model tracing, PageDown shows the next photo at once and the engine stops the
    trace nobody will look at (cancelled between stages) instead of finishing it first."""
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i in range(3):
        p = folder / f"photo_{i}.png"
        cv2.imwrite(str(p), cv2.resize(cv2.imread(scenes[i]), (640, 480)))
        paths.append(str(p))
    win = make_window([paths[0]], model="fasterrcnn_mobilenet_v3_large_fpn", weights="random:0")
    replies = []
    qtbot.waitUntil(lambda: win.engine is not None)
    win.engine.replied.connect(lambda kind, seq, body: replies.append((kind, seq, body.get("kind"))))
    activate(qtbot, win)
    # the first trace starts (after the model loads)
    qtbot.waitUntil(lambda: any(k == "started" and what == "trace" for k, _, what in replies), timeout=120_000)
    assert win.session.busy
    qtbot.keyClick(win.view, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: win.state.image_path == paths[1], timeout=5000)  # the photo changes at once
    assert win.windowTitle().endswith("photo_1.png") and win.state.trace is None
    shown = view_photo = win.view.photo.image
    assert shown is not None and view_photo.shape[:2] == (480, 640)
    qtbot.keyClick(win.view, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: win.state.image_path == paths[2], timeout=5000)
    tr = wait_trace(qtbot, win, paths[2], timeout=180_000)
    assert tr.meta.name == paths[2]
    traced = [seq for kind, seq, _ in replies if kind == "trace"]
    stopped = [seq for kind, seq, what in replies if kind in ("cancelled", "dropped") and what == "trace"]
    assert len(stopped) >= 1 and len(traced) == 1, replies  # only the last photo's trace ran to the end
    wait_settled(qtbot, win)
    assert np.asarray(win.view.photo.image).shape[:2] == (480, 640)
