"""The desktop app, offscreen: keys, thresholds, selection by a real click, export equal to the
command line's, settings, the model chooser. Waits are on the window's own state, never sleeps."""

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from core.overlays.selection import Selection
from core.tracing.types import STAGES, SUPPRESSED

from .conftest import activate, view_pixels, wait_settled, wait_trace

ROOT = Path(__file__).resolve().parents[2]


def _screen_rect(win, x0, y0, x1, y1):
    p0, p1 = win.view.to_widget(x0, y0), win.view.to_widget(x1, y1)
    return p0.x(), p0.y(), p1.x(), p1.y()


def test_keys_toggle_each_stage_where_it_draws(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    assert win.windowTitle() == "R-CNN Lens - scene_1.png"
    assert {s: v for s, v in win.state.visible.items() if v} == {"detections": True, "truth": True}
    assert [s for s in win.state.available_stages()] == list(STAGES)  # no mask, keypoint or truth rows here
    assert [s for s, row in win.stages.rows.items() if not row.isHidden()] == list(STAGES)
    assert len(tr.detections.keep) > 0
    activate(qtbot, win)
    ix0, iy0, ix1, iy1 = _screen_rect(win, 0, 0, tr.meta.original_size[1], tr.meta.original_size[0])
    for key, stage in enumerate(STAGES, start=1):
        before = view_pixels(win)
        qtbot.keyClick(win.view, str(key))
        assert win.state.visible[stage] == (stage != "detections"), stage
        wait_settled(qtbot, win)  # a stage whose feature maps the engine kept fetches them first
        after = view_pixels(win)
        ys, xs = np.nonzero(np.abs(after.astype(int) - before).sum(2) > 30)
        assert len(xs) > 50, f"key {key} did not change the view for {stage}"
        if stage != "input":  # the input stage also draws the padded batch beyond the photo
            inside = (xs >= ix0 - 60) & (xs <= ix1 + 60) & (ys >= iy0 - 30) & (ys <= iy1 + 30)
            assert inside.mean() > 0.95, stage
    qtbot.keyClick(win.view, "7")
    assert win.state.visible["detections"]


def test_digits_typed_in_a_field_stay_there_and_escape_returns_to_the_view(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    activate(qtbot, win)
    spin = win.stages.controls[("proposals", "top_n")]
    spin.setFocus()
    spin.lineEdit().selectAll()
    before = dict(win.state.visible)
    qtbot.keyClicks(spin, "3")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert win.state.visible == before  # the digit went to the field, no stage toggled
    assert win.state.settings["proposals"]["top_n"] == 3
    qtbot.keyClick(spin, Qt.Key.Key_Escape)
    assert win.view.hasFocus()
    qtbot.keyClick(win.view, "5")
    assert win.state.visible["proposals"]


def test_thresholds_all_seven_one_value_at_a_time_and_reset(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    th = win.thresholds
    assert set(th.widgets) == set(tr.params)  # all seven of torchvision's keywords
    sent = []
    win.engine.replied.connect(lambda kind, seq, body: None)
    orig = win.engine.retrace
    win.engine.retrace = lambda params: (sent.append(dict(params)), orig(params))[1]
    n = len(tr.detections.keep)
    th.widgets["box_score_thresh"].setValue(0.9995)
    qtbot.waitUntil(lambda: win.state.trace is not tr and win.settled, timeout=30_000)
    new = win.state.trace
    assert win.state.params == {"box_score_thresh": 0.9995}  # only the value edited, as typed
    assert sent[-1] == {**tr.params, "box_score_thresh": 0.9995}  # the others exactly the model's
    assert new.params["box_score_thresh"] == pytest.approx(0.9995) and len(new.detections.keep) < n
    assert new.timings_ms["backbone"] == tr.timings_ms["backbone"]  # carried over, not rerun
    kept = win.view.layers["detections"].layers[-1]
    assert len(kept.xyxy) == len(new.detections.keep)  # the view follows
    qtbot.mouseClick(th.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.state.trace.params == tr.params and win.settled, timeout=30_000)
    assert win.state.params == {} and len(win.state.trace.detections.keep) == n


def test_a_real_click_selects_a_box_and_draws_its_path(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    d = tr.detections
    j = 0
    b = d.final_boxes_image[j]
    cx, cy = float((b[0] + b[2]) / 2), float((b[1] + b[3]) / 2)
    # the screen-to-image mapping of a real click: the widget point that shows (cx, cy)
    p = win.view.to_widget(cx, cy).toPoint()
    for q in (p + QPoint(40, 30), p):  # from elsewhere: the cursor may be at p already
        with qtbot.waitSignal(win.view.hovered, timeout=5000):
            qtbot.mouseMove(win.view.viewport(), q)

    def at_box():
        m = re.match(r"x (-?\d+), y (-?\d+)", win.status.readout.text())
        return m is not None and abs(int(m[1]) - cx) <= 1 and abs(int(m[2]) - cy) <= 1

    qtbot.waitUntil(at_box)  # the readout names the image point under the cursor...
    assert f"detection {j}:" in win.status.readout.text()  # ...and the box there
    qtbot.mouseClick(win.view.viewport(), Qt.MouseButton.LeftButton, pos=p)
    qtbot.waitUntil(lambda: win.state.selection is not None)
    assert win.state.selection == Selection("detection", j)
    lin = tr.lineage(j)
    assert win.state.settings["rois"]["roi"] == lin["roi"]  # the RoI control follows
    assert win.stages.controls[("rois", "roi")].value() == lin["roi"]
    assert win.state.settings["anchors"]["cell"] == list(lin["cell"])
    path = win.view.layers["selection"]
    names = [lay.name for lay in path.layers]
    assert names == ["selection.path", "selection.boxes"] and len(path.layers[1].xyxy) == 3  # anchor, proposal, box
    assert win.inspector.selection.text().startswith(f"detection {j}: {tr.class_name(int(d.label[d.keep[j]]))}")
    assert win.inspector.names[0] == tr.class_name(int(d.label[d.keep[j]]))  # chart: most likely first
    # a click on empty space deselects
    empty = win.view.to_widget(-30, -30).toPoint()
    qtbot.mouseClick(win.view.viewport(), Qt.MouseButton.LeftButton, pos=empty)
    qtbot.waitUntil(lambda: win.state.selection is None)
    assert "selection" not in win.view.layers
    # suppressed boxes can be clicked: the box that suppressed them, and the IoU on a line
    win.set_setting("detections", "suppressed", True)
    wait_settled(qtbot, win)
    faded = win.view.layers["detections"].layers[0]
    i = int(faded.ids[0])
    fb = d.boxes_image[i]
    win.click(float(fb[0]), float((fb[1] + fb[3]) / 2))  # on its edge
    sel = win.state.selection
    if sel is not None and sel.kind == "candidate":
        lines = win.view.layers["selection"].layers[0]
        assert lines.labels[-1].startswith("IoU ") and int(d.status[sel.index]) == SUPPRESSED
    else:  # its edge is shared with another box here: select it directly
        win.state.select(Selection("candidate", i))
        assert win.view.layers["selection"].layers[0].labels[-1].startswith("IoU ")


def test_gui_export_equals_cli_export_pixel_for_pixel(make_window, scenes, qtbot, tmp_path):
    win = make_window([scenes[1]])
    wait_trace(qtbot, win, scenes[1])
    activate(qtbot, win)
    for key in ("2", "5"):
        qtbot.keyClick(win.view, key)
    win.set_setting("features", "reduction", "max")
    wait_settled(qtbot, win)
    out = tmp_path / "gui.png"
    assert win.actions_.export_to(str(out))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["overlays"] == ["features", "proposals", "detections"] and meta["model"] == "demo"
    assert meta["image"] == scenes[1] and oct(out.stat().st_mode & 0o777) != "0o600"
    cli = tmp_path / "cli.png"
    r = subprocess.run([sys.executable, "-m", "core.cli", "export", scenes[1], "--model", "demo", "--overlays",
                        ",".join(meta["overlays"]), "--settings", str(out.with_suffix(".json")), "-o", str(cli)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    a, b = cv2.imread(str(out)), cv2.imread(str(cli))
    assert a.shape == b.shape and np.array_equal(a, b)
    assert win.actions_.grab_to(str(tmp_path / "window.png"))
    assert not win.actions_.export_to(str(tmp_path / "no" / "such" / "dir" / "x.png"))
    assert "cannot write" in win.last_error


def test_export_proposes_the_last_folder_never_the_install(make_window, qtbot, tmp_path, monkeypatch):
    from core.paths import DEMO_IMAGES

    monkeypatch.setenv("HOME", str(tmp_path))
    win = make_window([str(DEMO_IMAGES / "scene_1.png")])
    wait_trace(qtbot, win)
    start = win.actions_.start_dir("export")
    assert not str(start.resolve()).startswith(str(ROOT)) and start == tmp_path
    win.persist.set_last_dir("export", str(tmp_path))
    assert win.actions_.start_dir("export") == tmp_path and win.actions_.start_dir("grab") == tmp_path


def test_settings_are_remembered(make_window, scenes, qtbot, qsettings):
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    activate(qtbot, win)
    qtbot.keyClick(win.view, "2")
    win.stages.controls[("features", "reduction")].setCurrentIndex(1)  # max
    assert win.state.settings["features"]["reduction"] == "max"
    win.close()
    again = make_window([scenes[0]])
    assert again.state.visible["features"] and again.state.settings["features"]["reduction"] == "max"
    assert Path(qsettings.value("open_dir")) == Path(scenes[0]).parent
    wait_trace(qtbot, again, scenes[0])


def test_model_chooser_class_chart_and_random_banner_follow_the_model(make_window, scenes, qtbot):
    from core.models.choice import Request
    from core.state.app_state import ModelChoice
    from gui.model_dialog import ModelDialog

    dlg = ModelDialog(ModelChoice("demo", None))
    qtbot.addWidget(dlg)
    assert dlg.request() == Request("demo", "demo")
    dlg = ModelDialog(ModelChoice("seed-alexnet", "random:3"))
    qtbot.addWidget(dlg)
    req = dlg.request()
    assert req == Request("seed-alexnet", "random:3")
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    assert not win.view.banner.isVisibleTo(win)  # the demo's trained weights
    win.state.select(Selection("detection", 0))
    assert set(win.inspector.names) <= set(tr.class_names)
    win.state.choose_model(req.name, req.weights)
    qtbot.waitUntil(lambda: win.state.trace is not None and win.state.trace.model == "seed-alexnet"
                    and win.settled, timeout=60_000)
    t2 = win.state.trace
    assert t2.weights == "random:3" and win.stages.controls[("features", "level")].count() == 1
    assert win.view.banner.isVisibleTo(win) and "random weights" in win.view.banner.text()
    if len(t2.detections.keep):
        win.state.select(Selection("detection", 0))
        assert all(n in t2.class_names or n.endswith("others") for n in win.inspector.names)
        assert not set(win.inspector.names) & {"circle", "rectangle", "triangle"}


def test_controls_are_bounded_by_the_trace(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    level = win.state.settings["features"]["level"] or next(iter(tr.features))
    assert win.stages.controls[("features", "channel")].maximum() == tr.features[level].data.shape[0] - 1
    assert win.stages.controls[("rois", "roi")].maximum() == len(tr.box_head.rois) - 1
    # the anchor cell is clamped when the level changes to a coarser grid
    win.set_setting("anchors", "cell", [40, 50])
    last = tr.levels[-1]
    win.set_setting("anchors", "level", last)
    a = tr.anchors[tr.levels.index(last)]
    assert win.state.settings["anchors"]["cell"] == [min(40, a.grid[0] - 1), min(50, a.grid[1] - 1)]
    # an invalid value says so on the status line, no dialog
    win.set_setting("features", "channel", -3)
    assert "features.channel" in win.status.message.text()
    from PySide6.QtWidgets import QApplication, QDialog

    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]


def test_newer_image_wins_over_a_stale_trace(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    shown = []
    win.state.events.trace.connect(lambda tr: shown.append(tr.meta.name))
    win.open_image(scenes[1])
    win.open_image(scenes[2])
    wait_trace(qtbot, win, scenes[2])
    assert win.state.image_path == scenes[2] and shown[-1] == scenes[2] and scenes[1] not in shown


def test_the_threshold_panel_sends_only_the_edited_value_at_full_precision(qtbot):
    from gui.panels.thresholds import FIELDS, ThresholdPanel

    panel = ThresholdPanel(debounce_ms=1)
    qtbot.addWidget(panel)
    params = {"rpn_pre_nms_top_n_test": 1000, "rpn_post_nms_top_n_test": 1000, "rpn_nms_thresh": 0.7,
              "rpn_score_thresh": 0.0, "box_score_thresh": 0.0123456789, "box_nms_thresh": 0.5,
              "box_detections_per_img": 100}
    assert [k for k, *_ in FIELDS] and set(params) == {k for k, *_ in FIELDS}
    panel.set_values(params)
    with qtbot.waitSignal(panel.changed) as sig:
        panel.widgets["box_nms_thresh"].setValue(0.3)
    assert sig.args == ["box_nms_thresh", 0.3]
    assert not panel._timer.isActive() and panel._dirty == {}  # and nothing else will follow (box_score_thresh
    # shows 0.0123: sending what it shows would change the model's 0.0123456789)
    with qtbot.waitSignal(panel.reset):
        panel.reset_button.click()
