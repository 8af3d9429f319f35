"""The diagnosis overlay: an object's path drawn where torchvision computes it."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.detection.transform import resize_boxes

import core
from core.analysis.diagnose import anchor_evidence, attach
from core.engine.server import portable
from core.errors import LensError
from core.overlays import diagnosis
from core.overlays.render import render

from .test_diagnose import shipped


@pytest.fixture(scope="module")
def demo():
    return core.load_model("demo")


def by_name(st, name):
    found = [layer for layer in st.layers if layer.name == name]
    return found[0] if found else None


def test_path_of_each_object_lands_on_torchvisions_boxes(demo):
    path, truth = shipped()[3]
    tr0 = core.trace(demo, str(path), box_nms_thresh=0.0)
    tr = portable(attach(tr0, truth, anchor_evidence(tr0, truth)))  # numpy only, as the GUI holds it
    m = demo.module
    with torch.inference_mode():
        x = torch.from_numpy(tr.image).permute(2, 0, 1).float().div(255)
        images, _ = m.transform([x])
        anchors = m.rpn.anchor_generator(images, list(m.backbone(images.tensors).values()))[0]
    to_image = lambda b: resize_boxes(b, tr.meta.resized_size, tr.meta.original_size).numpy()  # noqa: E731
    verdicts = set()
    for o in tr.diagnosis.objects:
        st = diagnosis.layers(tr, {"object": o.index})
        verdicts.add(o.verdict)
        np.testing.assert_allclose(by_name(st, "diagnosis.object").xyxy[0], truth.boxes[o.index])
        np.testing.assert_allclose(by_name(st, "diagnosis.best_anchor").xyxy,
                                   to_image(anchors[[o.anchor]]), atol=1e-3)
        np.testing.assert_allclose(by_name(st, "diagnosis.positive_anchors").xyxy,
                                   to_image(anchors[list(o.positive_anchors)]), atol=1e-3)
        np.testing.assert_array_equal(by_name(st, "diagnosis.candidate").xyxy[0], tr.proposals.boxes_image[o.candidate])
        if o.rois:
            np.testing.assert_array_equal(by_name(st, "diagnosis.rois").xyxy, tr.box_head.rois_image[list(o.rois)])
        if o.verdict == "detected":
            np.testing.assert_array_equal(by_name(st, "diagnosis.detection").xyxy[0], tr.final()[o.detection]["box"])
        if o.verdict == "box_suppressed":
            np.testing.assert_array_equal(by_name(st, "diagnosis.box_suppressor").xyxy[0],
                                          tr.final()[o.det_suppressor_final]["box"])
        assert st.caption.endswith(tr.diagnosis.explain(o.index))
        canvas = render(tr.image, [st])
        assert canvas.shape == tr.image.shape and (canvas != tr.image).any()
    assert {"detected", "box_misclassified"} <= verdicts


def test_all_objects_in_verdict_colours_and_bad_settings(demo):
    path, truth = shipped()[0]
    tr = core.trace(demo, str(path), box_detections_per_img=2)
    tr = attach(tr, truth)
    st = diagnosis.layers(tr, {})
    boxes = by_name(st, "diagnosis.objects")
    assert len(boxes.xyxy) == len(truth) and boxes.labels[0].startswith("0: ")
    assert "2 detected" in st.caption and "box_cut" in st.caption
    with pytest.raises(LensError, match="no such object"):
        diagnosis.layers(tr, {"object": 99})
    with pytest.raises(LensError, match="unknown setting"):
        diagnosis.layers(tr, {"colour": 1})
    assert diagnosis.layers(core.trace(demo, str(path)), {}).layers == []


def test_live_diagnosis_reuses_the_anchor_evidence_across_retraces(demo, monkeypatch):
    from core.analysis import diagnose as mod

    path, truth = shipped()[0]
    calls = []
    real = mod.anchor_evidence
    monkeypatch.setattr(mod, "anchor_evidence", lambda *a, **k: calls.append(1) or real(*a, **k))
    live = mod.LiveDiagnosis()
    tr = core.trace(demo, str(path))
    first = live(tr, truth)
    cut = live(core.retrace(tr, box_detections_per_img=1), truth)
    assert len(calls) == 1
    assert cut.diagnosis.where(["box_cut"]) == [o.index for o in cut.diagnosis.objects if o.verdict == "box_cut"]
    assert len(cut.diagnosis.where(["lost"])) == len(truth) - 1 and first.diagnosis.where(["lost"]) == []
    assert cut.diagnosis.where(classes=[truth.names[0]]) == [i for i, n in enumerate(truth.names) if n == truth.names[0]]
    live(core.trace(demo, str(path)), truth)  # a new image (new tensors): evidence again
    assert len(calls) == 2


def test_diagnosis_and_its_layers_need_no_torch(demo, tmp_path):
    """The GUI process never imports torch: a portable trace with its diagnosis unpickles and draws."""
    import pickle
    import subprocess
    import sys

    path, truth = shipped()[1]
    tr = portable(mod_attach(core.trace(demo, str(path)), truth))
    (tmp_path / "tr.pkl").write_bytes(pickle.dumps(tr))
    code = ("import sys, pickle\n"
            "sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
            "from core.overlays import diagnosis\n"
            f"tr = pickle.loads(open({str(tmp_path / 'tr.pkl')!r}, 'rb').read())\n"
            "st = diagnosis.layers(tr, {'object': 0})\n"
            "assert st.layers and tr.diagnosis.explain(0)\n"
            "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None]\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(core.__file__).parents[1])


def mod_attach(tr, truth):
    return attach(tr, truth, anchor_evidence(tr, truth))


def test_the_sentence_and_the_picture_use_one_numbering_and_the_same_words(demo):
    """Every proposal, RoI and anchor the why-missed sentence names is labelled with that number on
    the object's path, and no internal status name (over_top_n, low_score) reaches either."""
    import re

    from core.overlays.layers import Boxes
    from core.overlays.paths import object_path

    path, truth = shipped()[0]
    tr0 = core.trace(demo, str(path))
    ev = anchor_evidence(tr0, truth)
    seen = set()
    for params in ({"rpn_pre_nms_top_n_test": 1}, {"rpn_post_nms_top_n_test": 1}, {"box_score_thresh": 1.0},
                   {"rpn_nms_thresh": 0.0}, {"box_nms_thresh": 0.0}):
        tr = attach(core.retrace(tr0, **params), truth, ev)
        for o in tr.diagnosis.objects:
            if o.verdict in (None, "detected"):
                continue
            sentence = tr.diagnosis.explain(o.index)
            labels = " | ".join(t for lay in object_path(tr, o.index).layers if isinstance(lay, Boxes)
                                for t in (lay.labels or []) if t)
            for what, number in re.findall(r"\b(proposal|RoI|anchor) (\d+)", sentence):
                assert f"{what} {number}" in labels, (o.verdict, sentence, labels)
                seen.add(what)
            internal = re.compile(r"\b(over_top_n|low_score|over top n)\b")  # statuses (verdict codes may stay)
            assert not internal.search(sentence) and not internal.search(labels), (sentence, labels)
    assert seen == {"proposal", "RoI", "anchor"}
