"""The app's anchor what-if (core.analysis.anchor_whatif, core.engine.anchor_handlers, the anchors and
anchor targets stages): its labels are ``rpn.assign_targets_to_anchors``' on the hypothetical
anchors and its minibatch ``fg_bg_sampler``'s for the training view's seed; with the model's own
configuration it is the training view; its counts are ``rcnn-lens anchors``' for the same
configuration; through the engine it follows new images and other seeds, a bad configuration is
one ``anchors`` error, Reset drops it, and nothing else of the trace changes."""

import json

import numpy as np
import pytest
import torch

import core
from core.analysis.anchor_config import AnchorConfig
from core.analysis.anchor_match import anchors_for, generator
from core.analysis.anchor_whatif import geometry, what_if
from core.cli.main import main as cli
from core.overlays import layers_for
from core.paths import DEMO_IMAGES
from core.training.targets import attach
from core.truth.beside import find_for_image

SIZES, RATIOS = "20, 30 / 40, 60 / 80, 120 / 160, 240", "0.4, 1, 2.5"
CFG = AnchorConfig.parse(SIZES, RATIOS, 4)
IMAGES = sorted(str(p) for p in DEMO_IMAGES.glob("scene_*.png"))


@pytest.fixture(scope="module")
def demo():
    return core.load_model("demo")


def _traced(model, path, seed=0):
    tr = core.trace(model, path)
    return attach(tr, find_for_image(path, tr.image.shape[:2], model.class_names), seed)


def test_labels_and_minibatch_are_torchvisions(demo):
    tr = _traced(demo, IMAGES[0], seed=5)
    w = what_if(tr, CFG)
    rpn = demo.module.rpn
    anchors = anchors_for(generator(CFG), geometry(tr, tr.truth))
    gt = torch.from_numpy(tr.training.gt_boxes)  # every demo object is trained on
    labels, _ = rpn.assign_targets_to_anchors([anchors], [{"boxes": gt}])
    assert np.array_equal(w.targets.label, labels[0].numpy().astype(np.int8))
    # the training step's order: seed, the transform's size draw in train mode, then the sampler
    torch.manual_seed(5)
    demo.module.transform.train()
    try:
        demo.module.transform([torch.from_numpy(tr.image).permute(2, 0, 1).float() / 255])
    finally:
        demo.module.transform.eval()
    pos, neg = rpn.fg_bg_sampler(labels)
    assert np.array_equal(w.targets.sampled, (pos[0] | neg[0]).numpy())
    assert sum(lv.count for lv in w.levels) == len(w.targets.label) == anchors.shape[0]
    assert w.levels[1].sizes == (40.0, 60.0) and w.levels[1].grid == tr.anchors[1].grid


def test_the_models_own_configuration_is_the_training_view(demo):
    tr = _traced(demo, IMAGES[3], seed=2)
    own = AnchorConfig(tuple(a.sizes for a in tr.anchors), tuple(a.aspect_ratios for a in tr.anchors))
    w = what_if(tr, own)
    T = tr.training.rpn
    for name in ("label", "sampled", "matched", "promoted", "positive"):
        assert np.array_equal(getattr(w.targets, name), getattr(T, name)), name
    assert np.allclose(w.targets.iou, T.iou)
    assert np.array_equal(w.before, w.after)


def test_counts_are_the_command_lines(demo, tmp_path):
    out = tmp_path / "cli"
    assert cli(["anchors", *IMAGES, "-o", str(out), "--sizes", SIZES, "--ratios", RATIOS, "--trials", "1",
                "--free-trials", "0", "--quiet"]) == 0
    report = json.loads((out / "anchors.json").read_text())
    assert report["judged"]["what_if"] and report["judged"]["sizes"][0] == [20, 30]
    base = tmp_path / "base"
    assert cli(["anchors", *IMAGES, "-o", str(base), "--trials", "1", "--free-trials", "0", "--quiet"]) == 0
    before = json.loads((base / "anchors.json").read_text())["per_image"]
    for path in IMAGES:
        w = what_if(_traced(demo, path), CFG)
        assert w.counts("after") == report["per_image"][path]
        assert w.counts("before") == before[path]
    by_object = {(o["image"], o["truth"]): o["match"] for o in report["objects"]}
    w = what_if(_traced(demo, IMAGES[1]), CFG)
    assert [("strong", "rescued", "starved")[v] for v in w.after] == [by_object[(IMAGES[1], i)]
                                                                       for i in range(len(w.after))]
    # each object's best anchor IoU, before and after: the command line's best_iou
    after = {(o["image"], o["truth"]): o for o in report["objects"]}
    before = {(o["image"], o["truth"]): o for o in json.loads((base / "anchors.json").read_text())["objects"]}
    keys = [(IMAGES[1], i) for i in range(len(w.after))]
    assert np.allclose(w.best_after, [after[k]["best_iou"] for k in keys], atol=1e-4)
    assert np.allclose(w.best_before, [before[k]["best_iou"] for k in keys], atol=1e-4)
    assert not np.allclose(w.best_before, w.best_after)
    b, a = before[keys[0]], after[keys[0]]
    assert w.object_line(0, "circle") == (f"0 circle: {b['match']} (best anchor IoU {b['best_iou']:.2f}) -> "
                                          f"{a['match']} ({a['best_iou']:.2f})")

def test_stages_draw_the_hypothetical_anchors(demo):
    from dataclasses import replace

    tr = _traced(demo, IMAGES[0])
    t2 = replace(tr, anchor_whatif=what_if(tr, CFG))
    sl = layers_for(t2, "anchors", {"level": "1"})
    cell = sl.tensors["anchors_1_cell"]
    sy, sx = tr.meta.scale
    drawn = np.stack([(cell[:, 2] - cell[:, 0]) * sx, (cell[:, 3] - cell[:, 1]) * sy], 1)
    gen = generator(CFG).cell_anchors[1].numpy()
    assert np.allclose(drawn, gen[:, 2:] - gen[:, :2], atol=1e-3)  # torchvision's cell anchors of sizes 40, 60
    assert "what-if AnchorGenerator(sizes=((20, 30)" in sl.caption and "not recomputed" in sl.caption
    assert any(lay.name == "anchors.1.model_cell" for lay in sl.layers)
    at = layers_for(t2, "anchor_targets", {"show": "positive", "predicted": True})
    n_pos = int((t2.anchor_whatif.targets.label == 1).sum())
    assert len(at.tensors["anchor_targets_positive"]) == n_pos and "what-if" in at.caption
    # the trace's other stages keep the model's anchors
    assert layers_for(t2, "objectness", {}).caption == layers_for(tr, "objectness", {}).caption
    assert layers_for(t2, "anchor_targets", {}).caption != layers_for(tr, "anchor_targets", {}).caption


def test_through_the_engine(engine):
    engine.send("load", 1, {"name": "demo", "weights": None, "device": "cpu"})
    engine.until(("loaded",))
    engine.send("trace", 2, {"image": IMAGES[0], "name": IMAGES[0], "params": {}, "truth": {"seed": 1}})
    tr = engine.until(("trace",))[2]["trace"]
    assert tr.anchor_whatif is None
    engine.send("anchors", 3, {"sizes": SIZES, "aspect_ratios": RATIOS})
    t1 = engine.until(("trace", "error"))[2]["trace"]
    w = t1.anchor_whatif
    assert w is not None and w.sizes[0] == (20, 30) and type(w.targets.matched).__name__ == "Withheld"
    assert t1.features["0"].data.source == 2  # no backbone: the first trace's feature maps
    model = core.load_model("demo")
    want = what_if(_traced(model, IMAGES[0], seed=1), CFG)
    assert np.array_equal(w.targets.sampled, want.targets.sampled) and w.line() == want.line()
    assert t1.training.losses == tr.training.losses and t1.anchors[0].sizes == tr.anchors[0].sizes
    # another image and another seed keep the what-if; a retrace too
    engine.send("trace", 4, {"image": IMAGES[2], "name": IMAGES[2], "params": {}, "truth": {"seed": 1}})
    t2 = engine.until(("trace",))[2]["trace"]
    assert t2.anchor_whatif is not None and t2.anchor_whatif.line() == what_if(_traced(model, IMAGES[2], 1), CFG).line()
    engine.send("truth", 5, {"image": IMAGES[2], "seed": 7})
    t3 = engine.until(("trace",))[2]["trace"]
    assert t3.anchor_whatif.seed == 7
    engine.send("retrace", 6, {"params": {"box_score_thresh": 0.9}})
    assert engine.until(("trace",))[2]["trace"].anchor_whatif.seed == 7
    # bad configurations: one line each, the trace stays as it was
    for body, why in (({"sizes": "16, -1 / 32 / 64 / 128", "aspect_ratios": "1"}, "not a positive number"),
                      ({"sizes": "16 / 32", "aspect_ratios": "1"}, "the model has 4 feature maps"),
                      ({"sizes": "16 / 32 / 64 / 128", "aspect_ratios": "0"}, "not a positive number")):
        engine.send("anchors", 7, body)
        kind, _, reply = engine.until(("trace", "error"))
        assert kind == "error" and reply["kind"] == "anchors" and why in reply["message"]
    # Reset: the model's generator, and a new image has none either
    engine.send("anchors", 8, {"sizes": None, "aspect_ratios": None})
    assert engine.until(("trace",))[2]["trace"].anchor_whatif is None
    engine.send("trace", 9, {"image": IMAGES[1], "name": IMAGES[1], "params": {}})
    assert engine.until(("trace",))[2]["trace"].anchor_whatif is None
