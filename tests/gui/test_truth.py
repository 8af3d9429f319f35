"""Ground truth in the app, offscreen: the demo scenes open with their truth drawn; the training
table is torchvision's (core.training.targets on the same image and seed, computed here); Resample draws
a new minibatch without the backbone; a click on a truth box selects the object and filters the
anchor and RoI targets to it; the Truth panel's verdicts are core.analysis.diagnose's, its filters are
Diagnosis.where's, the selected object's path is drawn and verdicts follow a threshold without the
backbone; an analysis folder opens sorted and a click opens its image; a bad annotation file is
one line in the message bar. Waits are on the window's own state, never sleeps."""

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

import core
from core.overlays._truth_common import TRUTH_COLOUR
from core.paths import DEMO_IMAGES

from .conftest import view_pixels, wait_settled, wait_trace

SCENE_1, SCENE_4 = str(DEMO_IMAGES / "scene_1.png"), str(DEMO_IMAGES / "scene_4.png")


@pytest.fixture(scope="module")
def demo():
    return core.load_model("demo")


def local(model, path, **params):
    """The trace, truth, training view (seed 0) and verdicts of ``path``, computed in this process."""
    from core.analysis.diagnose import anchor_evidence, diagnose
    from core.tracing.images import load
    from core.training.targets import attach
    from core.truth.beside import find_for_image

    img = load(path)
    tr = core.trace(model, img, **params)
    truth = find_for_image(path, img.shape[:2], model.class_names)
    tr = attach(tr, truth, 0)
    ev = anchor_evidence(tr, truth)
    return tr, truth, ev, diagnose(tr, truth, ev)


def _edge_colour_near(win, x, y, colour, r=3, tol=40) -> bool:
    px = view_pixels(win).astype(int)
    p = win.view.to_widget(x, y)
    cx, cy = int(round(p.x())), int(round(p.y()))
    patch = px[cy - r:cy + r + 1, cx - r:cx + r + 1]
    return bool((np.abs(patch - np.array(colour)).sum(-1) < tol).any())


def _click_image(qtbot, win, x, y):
    qtbot.mouseClick(win.view.viewport(), Qt.MouseButton.LeftButton, pos=win.view.to_widget(x, y).toPoint())


def test_demo_scene_truth_training_table_resample_and_a_click_on_a_truth_box(make_window, qtbot, demo):
    win = make_window([SCENE_1])
    tr = wait_trace(qtbot, win, SCENE_1)
    ref, truth, _, _ = local(demo, SCENE_1)
    # truth found beside the image (assets/demo/annotations.json), drawn in its own colour
    assert tr.truth is not None and tr.truth.names == truth.names and np.array_equal(tr.truth.boxes, truth.boxes)
    assert win.state.visible["truth"] and "truth: 6 annotated objects from annotations.json" in " ".join(
        win.legend.captions())
    win.state.set_visible("detections", False)  # detection boxes lie on the truth's edges
    wait_settled(qtbot, win)
    b = truth.boxes[0]
    top = ((b[0] + b[2]) / 2, b[1])
    assert _edge_colour_near(win, *top, TRUTH_COLOUR)
    win.state.set_visible("truth", False)
    assert not _edge_colour_near(win, *top, TRUTH_COLOUR)  # it was the truth stage that drew it
    win.state.set_visible("truth", True)
    # the training table: torchvision's losses and minibatches for seed 0 (core.training.targets, here)
    T = tr.training
    assert T.seed == 0 and win.inspector.training.rows == ref.training.table()
    for k, v in ref.training.losses.items():
        assert T.losses[k] == pytest.approx(v, rel=1e-5), k
    assert np.array_equal(T.rpn.sampled, ref.training.rpn.sampled)
    # Resample: a new seed, a new minibatch; only the training view is computed again
    with qtbot.waitSignal(win.session.engine.traced, timeout=60_000):
        qtbot.mouseClick(win.inspector.training.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.state.trace.training.seed == 1 and win.settled, timeout=60_000)
    t1 = win.state.trace
    assert win.inspector.training.seed.value() == 1 and win.state.gt.seed == 1
    assert not np.array_equal(t1.training.rpn.sampled, T.rpn.sampled)  # another minibatch
    from core.training.targets import compute

    again = compute(ref, truth, 1)
    assert np.array_equal(t1.training.rpn.sampled, again.rpn.sampled)
    assert np.array_equal(t1.training.roi.sampled, again.roi.sampled)
    assert t1.training.losses["loss_classifier"] == pytest.approx(again.losses["loss_classifier"], rel=1e-5)
    assert t1.timings_ms == tr.timings_ms and t1.diagnosis is not None  # no backbone, nothing else rerun
    # a click on a truth box selects its object: its anchors, its RoIs and their loss shares
    for st in ("anchor_targets", "roi_targets"):
        win.state.set_visible(st, True)
    wait_settled(qtbot, win)
    i = int(np.argmax([len(again.for_gt(k)["anchors"]) for k in range(len(truth))]))
    b = truth.boxes[i]
    _click_image(qtbot, win, float(b[0]), float((b[1] + b[3]) / 2))  # on its left edge
    qtbot.waitUntil(lambda: win.state.gt.object == i)
    assert win.state.selection is None
    assert win.state.settings["anchor_targets"]["gt"] == i and win.state.settings["roi_targets"]["gt"] == i
    wait_settled(qtbot, win)
    qtbot.waitUntil(lambda: win.inspector.training.waiting is None)  # its per-anchor arrays fetched
    part = again.for_gt(i)  # (the app holds the per-anchor arrays only once a view asks for them)
    pos = win.view.layers["anchor_targets"].layers[-1]
    assert pos.name == "anchor_targets.positive" and set(pos.ids.tolist()) <= set(part["anchors"])
    shown_rois = set().union(*(set(lay.ids.tolist()) for lay in win.view.layers["roi_targets"].layers
                               if lay.ids is not None))
    assert shown_rois == set(part["rois"])
    rows = win.inspector.training.object_rows
    L = part["losses"]
    assert dict(rows)["its losses"].startswith(f"objectness {L['loss_objectness']:.4g}, "
                                               f"rpn box {L['loss_rpn_box_reg']:.4g}")
    assert sum(name.startswith("#") for name, _ in rows) == len(part["anchors"]) + len(part["rois"])
    assert "object" in win.view.layers  # its path
    # the loss's cross-entropy view reads per-anchor arrays the engine withholds: fetched, drawn as here
    from core.overlays import layers_for

    win.state.set_visible("loss", True)
    win.set_setting("loss", "mode", "bce")
    wait_settled(qtbot, win)
    heat = win.view.layers["loss"].layers[0]
    want = layers_for(replace(ref, training=again), "loss", {"mode": "bce"}).layers[0]
    assert heat.name == want.name and np.allclose(heat.data, want.data) and heat.data.max() > 0
    # a threshold change keeps the training view (training ignores test-time thresholds)
    win.thresholds.widgets["box_nms_thresh"].setValue(0.3)
    qtbot.waitUntil(lambda: win.state.trace.params["box_nms_thresh"] == 0.3 and win.settled, timeout=60_000)
    assert win.state.trace.training.seed == 1 and win.state.trace.training.losses == t1.training.losses
    assert win.state.gt.object == i  # still selected
    # empty space deselects
    _click_image(qtbot, win, -40.0, -40.0)
    qtbot.waitUntil(lambda: win.state.gt.object is None)
    assert win.state.settings["anchor_targets"]["gt"] is None and "object" not in win.view.layers


def test_truth_panel_verdicts_filters_path_and_a_threshold(make_window, qtbot, demo):
    from core.analysis.diagnose import diagnose

    win = make_window([SCENE_4])
    tr = wait_trace(qtbot, win, SCENE_4)
    ref, truth, ev, dg = local(demo, SCENE_4)
    panel = win.truth_side.panel

    def verdicts_shown():
        return {panel.shown[k]: panel.table.topLevelItem(k).text(1) for k in range(len(panel.shown))}

    assert [o.verdict for o in tr.diagnosis.objects] == [o.verdict for o in dg.objects]
    assert verdicts_shown() == {o.index: o.verdict.replace("_", " ") for o in dg.objects}
    lost = dg.where(["lost"])
    assert lost and "box_misclassified" in [dg.objects[i].verdict for i in lost]
    panel.set_filters(verdict="lost")
    assert panel.shown == lost
    panel.set_filters(verdict=None, cls="circle")
    assert panel.shown == dg.where(None, ["circle"]) and len(panel.shown) < len(truth)
    panel.set_filters()
    assert panel.shown == list(range(len(truth)))
    # selecting a row draws the object's path and explains it
    i = lost[0]
    b = truth.boxes[i]
    win.state.set_visible("truth", False)  # the truth stage is white too: only the path may draw white here
    wait_settled(qtbot, win)
    assert not _edge_colour_near(win, (b[0] + b[2]) / 2, b[1], (255, 255, 255), r=1, tol=30)
    panel.table.setCurrentItem(panel.table.topLevelItem(panel.shown.index(i)))
    qtbot.waitUntil(lambda: win.state.gt.object == i)
    path = win.view.layers["object"]
    names = [lay.name for lay in path.layers]
    assert names[-1] == "diagnosis.object" and np.allclose(path.layers[-1].xyxy[0], truth.boxes[i])
    assert "diagnosis.best_anchor" in names and "diagnosis.rois" in names
    # its training part needs per-anchor arrays the engine kept: fetched one by one, then shown
    page = win.inspector.training
    qtbot.waitUntil(lambda: page.waiting is None and bool(page.object_rows), timeout=30_000)
    L = ref.training.for_gt(i)["losses"]
    assert dict(page.object_rows)["its losses"] == (f"objectness {L['loss_objectness']:.4g}, rpn box "
                                                    f"{L['loss_rpn_box_reg']:.4g}, classifier "
                                                    f"{L['loss_classifier']:.4g}, box {L['loss_box_reg']:.4g}")
    sentence = dg.explain(i)
    assert sentence in win.inspector.selection.text() and sentence in panel.why.text()
    assert any(sentence in c for c in win.legend.captions())
    assert _edge_colour_near(win, (b[0] + b[2]) / 2, b[1], (255, 255, 255), r=1, tol=30)  # its white outline
    # the verdicts follow the score slider: a retrace, no backbone
    with qtbot.waitSignal(win.session.engine.traced, timeout=60_000):
        panel.slider.setValue(999)
    qtbot.waitUntil(lambda: win.state.trace.params["box_score_thresh"] == pytest.approx(0.999) and win.settled,
                    timeout=60_000)
    t2 = win.state.trace
    assert t2.timings_ms["backbone"] == tr.timings_ms["backbone"]
    want = diagnose(core.retrace(ref, box_score_thresh=0.999), truth, ev)
    assert [o.verdict for o in t2.diagnosis.objects] == [o.verdict for o in want.objects]
    assert verdicts_shown() == {o.index: o.verdict.replace("_", " ") for o in want.objects}
    assert [o.verdict for o in want.objects] != [o.verdict for o in dg.objects]  # the slider did change them
    assert win.state.gt.object == i and t2.training.losses == tr.training.losses


def test_an_analysis_folder_opens_sorted_and_a_click_opens_its_image(make_window, qtbot, tmp_path, monkeypatch):
    from core.analysis.analyze import analyze
    from core.analysis.files import read_analysis

    (tmp_path / "imgs").mkdir()
    (tmp_path / "ann").mkdir()
    for k in (1, 4):
        shutil.copy(DEMO_IMAGES / f"scene_{k}.png", tmp_path / "imgs")
    shutil.copy(DEMO_IMAGES / "annotations.json", tmp_path / "ann" / "instances.json")  # nothing beside the images
    monkeypatch.chdir(tmp_path)  # analyze records the paths as given: relative here
    res = analyze(["imgs"], "out", annotations="ann/instances.json", params={"box_score_thresh": 0.995},
                  workers=0, progress=False)
    assert res.exit_code == 0
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    rows = read_analysis(tmp_path / "out")
    assert [r["missed"] for r in rows] == sorted((r["missed"] for r in rows), reverse=True) and rows[0]["missed"] > 0
    win = make_window([str(tmp_path / "out")])  # rcnn-lens OUT
    first = str((tmp_path / rows[0]["image"]).resolve())
    tr = wait_trace(qtbot, win, first)
    b = win.truth_side.browser
    assert b.paths == [str((tmp_path / r["image"]).resolve()) for r in rows]
    assert [b.table.topLevelItem(k).text(1) for k in range(len(rows))] == [f"{r['missed']} of {r['objects']}"
                                                                          for r in rows]
    assert win.docks["analysis"].isVisible()
    # "lost at" reads whole in the dock: a line per stage, each line within the column, the row tall enough
    fm = b.table.fontMetrics()
    for k in range(len(rows)):
        item = b.table.topLevelItem(k)
        lines = item.text(2).split("\n")
        assert all(fm.horizontalAdvance(t) <= b.table.columnWidth(2) - 8 for t in lines), lines
        assert b.table.visualItemRect(item).height() >= len(lines) * fm.height() - 2
    # the image with its truth (from the annotations the analysis recorded) and the same verdicts
    assert tr.truth is not None and Path(tr.truth.source).name == "instances.json"
    assert tr.params["box_score_thresh"] == 0.995
    assert {k: v for k, v in tr.diagnosis.counts().items() if v} == rows[0]["verdicts"]
    item = b.table.topLevelItem(1)
    qtbot.mouseClick(b.table.viewport(), Qt.MouseButton.LeftButton, pos=b.table.visualItemRect(item).center())
    second = b.paths[1]
    tr2 = wait_trace(qtbot, win, second)
    assert tr2.truth is not None and {k: v for k, v in tr2.diagnosis.counts().items() if v} == rows[1]["verdicts"]
    # a folder that is not an analysis: one line, the image stays
    win.truth_side.open_analysis(str(tmp_path / "imgs"))
    qtbot.waitUntil(lambda: win.messages.isVisible() and "not an analysis folder" in win.messages.text.text())
    assert win.state.trace is tr2 or win.state.trace.meta.name == second


def test_bad_annotations_are_one_line_and_the_app_goes_on(make_window, qtbot, tmp_path):
    shutil.copy(SCENE_1, tmp_path / "scene_1.png")
    (tmp_path / "annotations.json").write_text('{"images": [oops')
    path = str(tmp_path / "scene_1.png")
    win = make_window([path])
    tr = wait_trace(qtbot, win, path)
    qtbot.waitUntil(lambda: win.messages.isVisible())
    msg = win.messages.text.text()
    assert msg.startswith(str(tmp_path / "annotations.json") + ": ") and "\n" not in msg
    assert tr.truth is None and len(tr.detections.keep) > 0 and "detections" in win.view.layers  # traced, shown
    assert "No ground truth" in win.truth_side.panel.source.text()
    # good annotations chosen (File > Open annotations…): the same trace gets its truth, no backbone rerun
    good = tmp_path / "good.json"
    shutil.copy(DEMO_IMAGES / "annotations.json", good)
    win.truth_side.set_annotations(str(good))
    qtbot.waitUntil(lambda: win.state.trace.truth is not None and win.settled, timeout=60_000)
    t2 = win.state.trace
    assert t2.timings_ms == tr.timings_ms and t2.training is not None and t2.diagnosis is not None
    assert len(win.truth_side.panel.shown) == len(t2.truth) == 6
    assert win.persist.q.value("annotations") == str(good)  # remembered
    # an XML entity bomb: refused in one line, the truth goes, the image stays
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                    "<annotation><filename>scene_1.png</filename><object><name>&b;</name></object></annotation>")
    win.truth_side.set_annotations(str(bomb))
    qtbot.waitUntil(lambda: win.state.trace.truth is None and win.messages.isVisible()
                    and str(bomb) in win.messages.text.text(), timeout=60_000)
    assert "\n" not in win.messages.text.text() and win.state.trace.detections is not None


def test_resample_with_an_object_selected_brings_its_training_layers_back(make_window, qtbot):
    """Resample (Ctrl+R) while an object is selected: the anchor targets and the training loss come
    back with the new sample (they were left on 'fetching training.rpn.iou… from the engine')."""
    win = make_window([SCENE_1])
    tr = wait_trace(qtbot, win, SCENE_1)
    for st in ("anchor_targets", "loss"):
        win.state.set_visible(st, True)
    wait_settled(qtbot, win)
    win.state.gt.select(2)
    wait_settled(qtbot, win)
    qtbot.waitUntil(lambda: win.inspector.training.waiting is None, timeout=60_000)
    for seed in (1, 2):
        with qtbot.waitSignal(win.session.engine.traced, timeout=60_000):
            win.state.gt.resample()
        qtbot.waitUntil(lambda s=seed: win.state.trace.training.seed == s and win.settled, timeout=60_000)
        assert win.state.gt.object == 2
        for st in ("anchor_targets", "loss"):
            assert win.view.layers.get(st) is not None and win.view.layers[st].layers, st
        assert not [c for c in win.legend.captions() if "fetching" in c]
        qtbot.waitUntil(lambda: win.inspector.training.waiting is None, timeout=60_000)
    assert tr.truth is not None


def test_export_shows_the_lost_objects_path_the_window_draws(make_window, qtbot, tmp_path):
    """With a lost object selected the window draws its path; Ctrl+E writes it too (and the sidecar
    keeps it, so `rcnn-lens export --settings SIDECAR` draws the same PNG)."""
    import json
    import subprocess
    import sys

    import cv2

    win = make_window([SCENE_4])
    tr = wait_trace(qtbot, win, SCENE_4)
    lost = [o.index for o in tr.diagnosis.objects if o.verdict not in (None, "detected")]
    i = lost[0] if lost else 0
    win.state.gt.select(i)
    wait_settled(qtbot, win)
    assert win.view.layers.get("object") is not None  # the window draws the path
    out = tmp_path / "gui.png"
    assert win.actions_.export_to(str(out))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["paths"] == {"selection": None, "object": i}
    cli = tmp_path / "cli.png"
    r = subprocess.run([sys.executable, "-m", "core.cli", "export", SCENE_4, "--model", "demo", "--overlays",
                        ",".join(meta["overlays"]), "--settings", str(out.with_suffix(".json")), "-o", str(cli)],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert r.returncode == 0, r.stderr
    a, b = cv2.imread(str(out)), cv2.imread(str(cli))
    assert a.shape == b.shape and np.array_equal(a, b)
    win.state.gt.select(None)
    wait_settled(qtbot, win)
    plain = tmp_path / "plain.png"
    assert win.actions_.export_to(str(plain))
    h = tr.meta.original_size[0]  # the photo's rows (the legend below differs anyway)
    assert not np.array_equal(cv2.imread(str(plain))[:h], a[:h])  # the path was drawn on the photo


def test_a_clicked_false_positive_shows_its_tide_type_in_the_inspector(make_window, qtbot):
    from core.analysis.verdicts import ERROR_RULES
    from core.overlays.selection import Selection

    win = make_window([SCENE_1])
    wait_trace(qtbot, win, SCENE_1)
    win.state.set_param("box_score_thresh", 0.02)  # low-scoring boxes: false positives among them
    qtbot.waitUntil(lambda: win.state.trace.params["box_score_thresh"] == 0.02 and win.settled, timeout=60_000)
    dg = win.state.trace.diagnosis
    fp = next(d for d in dg.detections if d.error != "tp")
    tp = next(d for d in dg.detections if d.error == "tp")
    win.state.select(Selection("detection", fp.index))
    qtbot.waitUntil(lambda: "TIDE type" in win.inspector.selection.text())
    assert f"a false positive, TIDE type {fp.error}: {ERROR_RULES[fp.error]}" in win.inspector.selection.text()
    win.state.select(Selection("detection", tp.index))
    qtbot.waitUntil(lambda: "a true positive" in win.inspector.selection.text())
