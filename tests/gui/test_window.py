"""The desktop app, offscreen: toggles, live thresholds, export, bad input, stale traces, settings."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from core.stages import STAGES

from .conftest import view_pixels, wait_trace


def _screen_rect(win, x0, y0, x1, y1):
    vb = win.view.vb
    p0 = win.view.mapFromScene(vb.mapViewToScene(QPointF(x0, y0)))
    p1 = win.view.mapFromScene(vb.mapViewToScene(QPointF(x1, y1)))
    return p0.x(), p0.y(), p1.x(), p1.y()


def test_keys_toggle_each_stage_where_it_draws(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    assert win.windowTitle() == "R-CNN Lens - scene_1.png"
    assert win.stages.visible == {s: s == "detections" for s in STAGES}
    assert len(tr.detections.keep) > 0
    win.activateWindow()
    ix0, iy0, ix1, iy1 = _screen_rect(win, 0, 0, tr.meta.original_size[1], tr.meta.original_size[0])
    for key, stage in enumerate(STAGES, start=1):
        before = view_pixels(win)
        qtbot.keyClick(win, str(key))
        assert win.stages.visible[stage] == (stage != "detections"), stage
        after = view_pixels(win)
        ys, xs = np.nonzero(np.abs(after.astype(int) - before).sum(2) > 30)
        assert len(xs) > 50, f"key {key} did not change the view for {stage}"
        if stage != "input":  # the input stage also draws the padded batch beyond the photo
            inside = (xs >= ix0 - 60) & (xs <= ix1 + 60) & (ys >= iy0 - 30) & (ys <= iy1 + 30)
            assert inside.mean() > 0.95, stage
        if stage == "detections":  # turned off: changes lie on the detection boxes and labels
            boxes = tr.detections.final_boxes_image
            near = np.zeros(len(xs), bool)
            for b in boxes:
                x0, y0, x1, y1 = _screen_rect(win, *b)
                near |= (xs >= x0 - 4) & (xs <= x1 + 80) & (ys >= y0 - 24) & (ys <= y1 + 4)
            assert near.all()
    qtbot.keyClick(win, "7")
    assert win.stages.visible["detections"]


def test_threshold_change_reruns_only_later_stages(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    n = len(tr.detections.keep)
    win.thresholds.widgets["box_score_thresh"].setValue(0.999)
    qtbot.waitUntil(lambda: win.trace is not tr and win.settled, timeout=30_000)
    new = win.trace
    assert new.params["box_score_thresh"] == pytest.approx(0.999)
    assert len(new.detections.keep) < n
    assert new.timings_ms["backbone"] == tr.timings_ms["backbone"]  # carried over, not rerun
    assert new.features["0"].data is not None
    # the view follows: detection boxes shown = the new count
    kept = [it for it in win.view.items["detections"] if getattr(it, "layer", None) is not None
            and it.layer.name == "detections.kept"]
    assert len(kept[0].layer.xyxy) == len(new.detections.keep)


def test_export_png_and_sidecar(make_window, scenes, qtbot, tmp_path):
    win = make_window([scenes[1]])
    tr = wait_trace(qtbot, win, scenes[1])
    qtbot.keyClick(win, "5")
    out = tmp_path / "shot.png"
    assert win.export_to(str(out))
    img = cv2.imread(str(out))
    assert img.shape[1] == tr.meta.original_size[1] and img.shape[0] > tr.meta.original_size[0]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["overlays"] == ["proposals", "detections"] and meta["model"] == "demo"
    assert meta["image"] == scenes[1]
    assert win.grab_to(str(tmp_path / "window.png"))
    assert cv2.imread(str(tmp_path / "window.png")).shape[0] > 100
    assert not win.export_to(str(tmp_path / "no" / "such" / "dir" / "x.png"))
    assert "cannot write" in win.last_error


def test_bad_image_and_checkpoint_keep_the_app_alive(make_window, scenes, qtbot, tmp_path):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"definitely not a png")
    assert not win.open_image(str(bad))
    assert win.last_error == f"{bad}: not an image OpenCV can read"
    assert win.image_path == scenes[0] and win.trace is tr
    assert win._msg is not None and win._msg.isVisible()
    ck = tmp_path / "weights.pt"
    ck.write_bytes(b"garbage")
    win.set_model("demo", str(ck))
    qtbot.waitUntil(lambda: win.last_error and "weights.pt" in win.last_error and not win.engine.busy,
                    timeout=60_000)
    assert "not a PyTorch checkpoint" in win.last_error
    assert win.engine.is_alive() and win.trace is not None
    assert win.open_image(scenes[2])
    wait_trace(qtbot, win, scenes[2])


def test_newer_image_wins_over_a_stale_trace(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    win.open_image(scenes[1])
    win.open_image(scenes[2])
    wait_trace(qtbot, win, scenes[2])
    qtbot.wait(300)
    assert win.trace.meta.name == scenes[2] and win.image_path == scenes[2]


def test_folder_navigation_and_recent(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    qtbot.keyClick(win, Qt.Key.Key_PageDown)
    assert win.image_path == scenes[1]
    qtbot.keyClick(win, Qt.Key.Key_PageUp)
    assert win.image_path == scenes[0]
    qtbot.keyClick(win, Qt.Key.Key_PageUp)
    assert win.image_path == scenes[0]
    assert win._recent()[:2] == [scenes[0], scenes[1]]


def test_click_selects_a_detection_and_shows_its_lineage(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    b = tr.detections.final_boxes_image[0]
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    text = win.readout_text(cx, cy)
    name = tr.class_name(int(tr.detections.label[tr.detections.keep[0]]))
    assert f"box: {name}" in text and "model" in text and "feature 0" in text and "objectness" in text
    win._click(cx, cy)
    lin = tr.lineage(win.selected)
    assert win.stages.settings["rois"]["roi"] == lin["roi"]
    assert win.stages.settings["anchors"]["cell"] == list(lin["cell"])
    assert win.stages.controls[("anchors", "level")].currentData() == lin["level"]
    assert name in win.inspector.selection.text()
    assert len(win.inspector.bars.opts["height"]) == len(tr.class_names)
    assert "backbone 0" in win.inspector.table.toPlainText()
    # with the anchors shown, a click off the boxes picks the anchor cell under it
    qtbot.keyClick(win, "3")
    qtbot.keyClick(win, "7")  # detections off: the click lands on no box
    win.stages.settings["anchors"]["level"] = tr.levels[0]
    stride = tr.anchors[0].stride
    sy, sx = tr.meta.scale
    win._click(3 * stride[1] / sx, 2 * stride[0] / sy)
    assert win.stages.settings["anchors"]["cell"] == [2, 3]
    cell = [it for it in win.view.items["anchors"] if it.layer.name.endswith(".cell")][0]
    np.testing.assert_allclose(cell.layer.xy, [[3 * stride[1] / sx, 2 * stride[0] / sy]], rtol=1e-5)


def test_settings_are_remembered(make_window, scenes, qtbot, qsettings):
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    qtbot.keyClick(win, "2")
    win.stages.controls[("features", "reduction")].setCurrentIndex(1)  # max
    win.close()
    again = make_window([scenes[0]])
    assert again.stages.visible["features"] and again.stages.settings["features"]["reduction"] == "max"
    assert Path(qsettings.value("last_dir")) == Path(scenes[0]).parent
    wait_trace(qtbot, again, scenes[0])


def test_model_chooser_switches_model(make_window, scenes, qtbot):
    from gui.dialogs import ModelDialog

    dlg = ModelDialog("demo", None)
    assert dlg.choice() == ("demo", None)
    dlg.preset.setCurrentIndex(dlg.preset.findData("seed-alexnet"))
    dlg.weights.setCurrentText("random:3")
    assert dlg.choice() == ("seed-alexnet", "random:3")
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    win.set_model(*dlg.choice())
    qtbot.waitUntil(lambda: win.trace is not None and win.trace.model == "seed-alexnet" and win.settled,
                    timeout=60_000)
    assert win.trace.weights == "random:3" and win.stages.controls[("features", "level")].count() == 1
