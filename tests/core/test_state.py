"""The app's state and hover/click probing, without Qt: the rules the window relies on."""

from dataclasses import replace

import numpy as np
import pytest

import core
from core.errors import LensError
from core.overlays import layers_for
from core.overlays.selection import Selection, anchor_of
from core.state import probe
from core.state.app_state import LensState, ModelChoice
from core.tracing.parts import Missing, lean
from core.tracing.types import SUPPRESSED

from .conftest import noise_image


@pytest.fixture(scope="module")
def model():
    return core.load_model("seed-alexnet", weights="random:1", box_score_thresh=0.0)


@pytest.fixture(scope="module")
def tr(model):
    t = core.trace(model, noise_image(150, 250, seed=2))
    return replace(t, meta=replace(t.meta, name="a.png"))


def thin(tr, source=1):
    return lean(replace(tr, _state=None), source)


def test_a_trace_of_another_image_is_refused(tr):
    s = LensState()
    seen = []
    s.events.trace.connect(seen.append)
    s.set_image("b.png", np.zeros((2, 2, 3), np.uint8))
    assert not s.accept_trace(tr) and s.trace is None and seen == []
    s.set_image("a.png", tr.image)
    assert s.accept_trace(tr) and seen == [tr]
    s.set_image("b.png", tr.image)
    assert s.trace is None  # a new image drops the old trace


def test_settings_are_bounded_by_the_trace(tr):
    s = LensState(settings={"features": {"reduction": "channel", "channel": 999}, "rois": {"roi": 5000},
                            "anchors": {"cell": [50, 70]}})
    assert s.settings["features"]["channel"] == 999  # no trace yet: nothing to bound by
    s.set_image("a.png", tr.image)
    s.accept_trace(tr)
    assert s.settings["features"]["channel"] == 255  # 256 channels
    assert s.settings["rois"]["roi"] is None  # past the RoIs pooled: back to the best detection's
    assert s.settings["anchors"]["cell"] == [8, 14]  # clamped to the 15x9 grid
    with pytest.raises(LensError, match="features.reduction"):
        s.set_setting("features", "reduction", "median")
    changed = []
    s.events.settings.connect(changed.append)
    s.set_setting("objectness", "anchor", 30)  # 12 anchors a cell
    assert s.settings["objectness"]["anchor"] is None and changed == []
    s.set_setting("anchors", "cell", [3, 4])
    assert changed == ["anchors"]


def test_a_stale_settings_file_falls_back_to_defaults():
    s = LensState(settings={"features": {"reduction": "median"}, "nonsense": {}}, visible={"rois": True, "zzz": 1})
    assert s.settings["features"]["reduction"] == "mean" and s.visible["rois"] and "zzz" not in s.visible


def test_thresholds_change_one_at_a_time_at_full_precision(tr):
    s = LensState()
    s.model_loaded({"name": "seed-alexnet", "weights": "random:1", "params": dict(tr.params)})
    keys = []
    s.events.params.connect(keys.append)
    s.set_param("box_nms_thresh", 0.123456789)
    assert s.params == {"box_nms_thresh": 0.123456789} and keys == ["box_nms_thresh"]
    eff = s.effective_params()
    assert eff["box_nms_thresh"] == 0.123456789 and eff["rpn_nms_thresh"] == tr.params["rpn_nms_thresh"]
    s.set_param("box_nms_thresh", tr.params["box_nms_thresh"])  # the model's own value: no override
    assert s.params == {}
    s.set_param("rpn_score_thresh", 0.25)
    s.reset_params()
    assert s.params == {} and s.effective_params() == tr.params and keys[-1] is None


def test_model_fall_back_policy():
    s = LensState("fasterrcnn_resnet50_fpn", "/gone.pt")
    assert s.model_failed() == ModelChoice("demo", None)  # nothing loaded yet: the demo
    assert s.model_failed() is None  # the demo itself failed: nothing to fall back to
    s.model_loaded({"name": "seed-alexnet", "weights": "random:1"})
    s.choose_model("demo", "/bad.pt")
    assert s.model_failed() is None and s.choice == ModelChoice("seed-alexnet", "random:1")


def test_selection_draws_a_path_and_the_controls_follow(tr):
    s = LensState()
    s.set_image("a.png", tr.image)
    s.accept_trace(tr)
    lin = tr.lineage(0)
    s.select(Selection("detection", 0))
    assert s.settings["rois"]["roi"] == lin["roi"]
    assert s.settings["anchors"]["level"] == lin["level"] and s.settings["anchors"]["cell"] == list(lin["cell"])
    sl = layers_for(tr, "detections")  # noqa: F841 - the stage itself is unchanged
    from core.overlays import selection

    lay = selection.layers(tr, s.selection)
    boxes = next(x for x in lay.layers if x.name == "selection.boxes")
    anc = anchor_of(tr, lin["proposal"])
    np.testing.assert_allclose(boxes.xyxy[0], anc["box"])  # its exact anchor (size and ratio)
    assert f"size {lin['anchor_size']:g} ratio {lin['aspect_ratio']:g}" in boxes.labels[0]
    np.testing.assert_allclose(boxes.xyxy[1], tr.proposals.boxes_image[lin["proposal"]])  # its proposal = RoI
    np.testing.assert_allclose(boxes.xyxy[1], tr.box_head.rois_image[lin["roi"]], rtol=1e-6)
    np.testing.assert_allclose(boxes.xyxy[2], tr.detections.final_boxes_image[0])  # its box
    s.select(None)
    assert s.selection is None
    # a suppressed box: the box that suppressed it and their IoU, on a line between them
    i = int(np.nonzero(tr.detections.status == SUPPRESSED)[0][0])
    s.select(Selection("candidate", i))
    lay = selection.layers(tr, s.selection)
    lines = next(x for x in lay.layers if x.name == "selection.path")
    k = int(tr.detections.suppressed_by[i])
    assert lines.labels[-1] == f"IoU {tr.detections.suppress_iou[i]:.2f}"
    boxes = next(x for x in lay.layers if x.name == "selection.boxes")
    np.testing.assert_allclose(boxes.xyxy[-1], tr.detections.boxes_image[k])
    assert "by detection" in selection.describe(tr, s.selection) or "by box" in selection.describe(tr, s.selection)


def test_fetched_parts_fill_the_trace(tr):
    t, kept = thin(tr, source=7)
    s = LensState()
    s.set_image("a.png", tr.image)
    s.accept_trace(t)
    got = []
    s.events.part.connect(got.append)
    with pytest.raises(Missing):
        layers_for(s.trace, "features")
    s.add_part(7, ("features", "0", "data"), kept[("features", "0", "data")])
    assert got == [("features", "0", "data")]
    np.testing.assert_array_equal(s.trace.features["0"].data, tr.features["0"].data)
    # a retrace whose features came from the same trace needs no new fetch
    t2, _ = thin(replace(tr, params={**tr.params, "box_nms_thresh": 0.2}), source=7)
    s.accept_trace(t2)
    np.testing.assert_array_equal(s.trace.features["0"].data, tr.features["0"].data)


def test_random_weights_are_known(tr):
    s = LensState()
    s.set_image("a.png", tr.image)
    s.accept_trace(tr)
    assert s.random_weights
    s.set_image("a.png", tr.image)
    s.accept_trace(replace(tr, weights="demo"))
    assert not s.random_weights


# ---------------------------------------------------------------- probing
def test_hit_picks_overlapping_boxes_by_their_edges_and_faded_ones_too(tr):
    d = tr.detections
    visible = [layers_for(tr, "detections", {"suppressed": True})]
    faded = visible[0].layers[0]
    others = np.concatenate([faded.xyxy, d.final_boxes_image]).astype(np.float64)
    for i in faded.ids:
        b = d.boxes_image[i]
        x, y = float(b[0]), float((b[1] + b[3]) / 2)  # on its left edge, halfway down
        dist = probe._edge_distance(others, x, y)
        if np.sort(dist)[1] > 1.0 and (d.final_boxes_image[:, 0] < x).any():  # alone on its edge
            break
    i = int(i)
    # the suppressed box, picked by its edge even where it lies inside a kept one
    assert probe.hit(visible, x, y, tol=0.5) == Selection("candidate", i)
    j = 0
    fb = d.final_boxes_image[j]
    assert probe.hit(visible, float(fb[2]), float((fb[1] + fb[3]) / 2), tol=0.5) == Selection("detection", j)
    assert probe.hit(visible, -50.0, -50.0) is None
    assert probe.hit([layers_for(tr, "detections")], x, y, tol=0.5) != Selection("candidate", i)  # hidden: no hit


def test_readout_explains_the_grid_edges(tr):
    a = tr.anchors[0]
    sy, sx = tr.meta.scale
    text = probe.readout(tr, {}, 3 * a.stride[1] / sx, 2 * a.stride[0] / sy)
    assert "feature 0 [2,3]" in text and "objectness 0 [2,3]" in text and "model" in text
    h, w = tr.meta.original_size
    edge = probe.readout(tr, {}, w - 0.5, h - 0.5)  # the strip the grid leaves bottom/right
    assert "no 0 cell here" in edge and "half a cell" in edge
    assert "outside the" in probe.readout(tr, {}, w + 5, 3)
    t, _ = thin(tr)
    assert "feature 0 [2,3]" in probe.readout(t, {}, 3 * a.stride[1] / sx, 2 * a.stride[0] / sy)  # no value, no error


def test_class_chart_is_readable_with_91_classes():
    probs = np.random.default_rng(0).dirichlet(np.ones(91))
    names = [f"c{i}" for i in range(91)]
    bars = probe.top_classes(probs, names, 5)
    assert len(bars) == 6 and bars[-1][0] == "86 others"
    assert [n for n, _ in bars[:5]] == [names[i] for i in np.argsort(-probs)[:5]]
    assert sum(p for _, p in bars) == pytest.approx(1.0)
