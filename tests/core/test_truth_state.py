"""The app's ground-truth side without Qt (core.state.truth, core.analysis.browse): the selected object's
rules, the seed, the Truth panel's rows and filters, the per-object training detail, and an
analysis folder as the app browses it."""

import json
from dataclasses import replace

import numpy as np
import pytest

import core
from core.errors import LensError
from core.overlays.selection import Selection
from core.state.app_state import LensState
from core.state.truth import filtered, object_detail, object_rows
from core.truth.types import Truth

from .conftest import noise_image


@pytest.fixture(scope="module")
def tr():
    from core.analysis.diagnose import attach as diagnose
    from core.training.targets import attach

    model = core.load_model("demo", weights="random:1", box_score_thresh=0.0)
    t = core.trace(model, noise_image(160, 200, seed=3))
    truth = Truth(np.array([[20, 20, 90, 80], [100, 40, 180, 150], [5, 100, 60, 155]], np.float32),
                  ("circle", "triangle", "person"), np.array([1, 3, -1]))
    t = diagnose(attach(t, truth, 0), truth)
    return replace(t, meta=replace(t.meta, name="a.png"))


def test_the_selected_object_and_its_rules(tr):
    s = LensState()
    seen = []
    s.gt.events.object.connect(seen.append)
    s.set_image("a.png", tr.image)
    s.accept_trace(tr)
    s.gt.select(1)
    assert s.gt.object == 1 and seen == [1]
    assert s.settings["anchor_targets"]["gt"] == 1 and s.settings["roi_targets"]["gt"] == 1  # the targets follow
    s.gt.select(7)  # past the truth: nothing
    assert s.gt.object is None and s.settings["anchor_targets"]["gt"] is None
    s.gt.select(0)
    s.select(Selection("detection", 0))  # a detection: the object goes
    assert s.gt.object is None and s.selection is not None
    s.gt.select(2)  # an object: the detection goes
    assert s.selection is None and s.gt.object == 2
    s.accept_trace(tr)  # a retrace of the same image keeps it
    assert s.gt.object == 2 and s.settings["roi_targets"]["gt"] == 2
    s.accept_trace(replace(tr, truth=replace(tr.truth, boxes=tr.truth.boxes[:1], names=("circle",),
                                             labels=tr.truth.labels[:1]), diagnosis=None))
    assert s.gt.object is None  # its object is gone
    s.gt.select(0)
    s.set_image("b.png", tr.image)  # a new image: nothing selected, no filter left behind
    assert s.gt.object is None and s.settings["anchor_targets"]["gt"] is None and seen[-1] is None


def test_seed_and_annotations_are_options_the_engine_is_asked_for():
    s = LensState()
    asked = []
    s.gt.events.options.connect(asked.append)
    assert s.gt.options() == {"annotations": None, "seed": 0, "enabled": True}
    s.gt.resample()
    s.gt.set_seed(1)  # unchanged: not asked again
    s.gt.set_annotations("x.json")
    s.gt.set_annotations("x.json")
    s.gt.set_annotations("y.json", now=False)
    assert asked == ["seed", "annotations"] and s.gt.options()["annotations"] == "y.json" and s.gt.seed == 1
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(LensError, match="seed"):
            s.gt.set_seed(bad)


def test_rows_filters_and_the_training_detail(tr):
    rows = object_rows(tr)
    dg = tr.diagnosis
    assert [r["verdict"] for r in rows] == [o.verdict for o in dg.objects] and rows[2]["verdict"] is None
    assert [r["best_anchor_iou"] for r in rows] == [o.best_anchor_iou for o in dg.objects]
    assert filtered(tr) == [0, 1, 2]
    assert filtered(tr, "none") == [2] and filtered(tr, cls="triangle") == [1]
    assert filtered(tr, "lost") == dg.where(["lost"])
    assert filtered(tr, rows[0]["verdict"], "circle") == [0]
    for i in (0, 1):
        d, part = object_detail(tr, i), tr.training.for_gt(i)
        assert [a["anchor"] for a in d["anchors"]] == part["anchors"] and [r["roi"] for r in d["rois"]] == part["rois"]
        assert sum(a["loss_objectness"] for a in d["anchors"]) == pytest.approx(part["losses"]["loss_objectness"])
        assert sum(a["loss_rpn_box_reg"] for a in d["anchors"]) == pytest.approx(part["losses"]["loss_rpn_box_reg"])
        assert sum(r["loss_classifier"] for r in d["rois"]) == pytest.approx(part["losses"]["loss_classifier"])
    assert object_detail(tr, 2)["trained"] is False  # 'person': not a class of this model
    s = LensState()
    s.set_image("a.png", tr.image)
    s.accept_trace(tr)
    assert s.gt.explain(0) == f"object 0 (circle): {dg.objects[0].verdict}: {dg.explain(0)}"
    from core.state.probe import readout

    assert "truth 1: triangle" in readout(tr, s.settings, 120, 60, Selection("truth", 1))


def test_an_analysis_folder_as_the_app_browses_it(tmp_path, monkeypatch):
    from core.analysis import browse

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "imgs").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "imgs" / name).write_bytes(b"")
    (tmp_path / "ann.json").write_text("{}")

    def line(image, verdicts):
        return json.dumps({"image": image, "truth": [{"verdict": v} for v in verdicts], "detections": []})

    (out / "analysis.jsonl").write_text(line("imgs/a.png", ["detected"]) + "\n"
                                        + line("imgs/b.png", ["rpn_cut", "detected", "box_low_score"]) + "\n"
                                        + line("gone/c.png", ["rpn_missed"]) + "\n")
    (out / "settings.json").write_text(json.dumps({"model": "demo", "weights": "demo", "annotations": "ann.json"}))
    monkeypatch.chdir(tmp_path.parent)  # not where analyze ran: paths are found from the folder
    assert browse.is_analysis(out) and not browse.is_analysis(tmp_path)
    a = browse.open_folder(out)
    assert [r["image"] for r in a.rows] == ["imgs/b.png", "gone/c.png", "imgs/a.png"]  # most missed first
    assert a.rows[0]["path"] == str((tmp_path / "imgs" / "b.png").resolve()) and a.rows[1]["path"] is None
    assert a.annotations == str((tmp_path / "ann.json").resolve()) and not a.annotations_missing
    assert a.headline().startswith("3 images, 5 objects, 3 missed (")
    with pytest.raises(LensError, match="not an analysis folder"):
        browse.open_folder(tmp_path)
    (out / "analysis.jsonl").write_text('{"image": "x"}\n')
    with pytest.raises(LensError, match="not a result of rcnn-lens analyze"):
        browse.open_folder(out)
