"""``rcnn-lens anchors``' figures against torchvision's own: the per-anchor labels are those of
``rpn.assign_targets_to_anchors`` on the same anchors (the model's generator and hypothetical ones),
the anchors are the trace's, the feature-map sizes the backbone's, the expected minibatch share
what ``fg_bg_sampler`` draws; strong / rescued / starved follow the Matcher (a neighbour takes an
object's only best anchor: starved); the held-out figures are reproducible for a seed; the peer
metrics (YOLOv5's BPR, MMDetection's centred mean IoU) on hand-computed boxes."""

import numpy as np
import pytest
import torch

import core
from core.analysis import anchor_fit
from core.analysis.anchor_config import AnchorConfig
from core.analysis.anchor_coverage import Judge, centred_best_iou, yolov5_bpr
from core.analysis.anchor_match import anchors_for, config_of, expected_sampled, generator, generator_of, match
from core.analysis.anchor_search import split
from core.errors import LensError
from core.paths import DEMO_IMAGES
from core.tracing.images import load
from core.truth.beside import find_for_image

HYPOTHETICAL = AnchorConfig.parse("20, 30 / 40, 60 / 80, 120 / 160, 240", "0.4, 1, 2.5", 4)


@pytest.fixture(scope="module")
def demo():
    return core.load_model("demo")


@pytest.fixture(scope="module")
def scenes(demo):
    paths = sorted(str(p) for p in DEMO_IMAGES.glob("scene_*.png"))
    geoms, bad = anchor_fit.read(demo, paths)
    assert not bad and len(geoms) == 4
    return paths, geoms


def _torchvision_labels(rpn, gen, g):
    anchors = anchors_for(gen, g)
    labels, matched_boxes = rpn.assign_targets_to_anchors([anchors], [{"boxes": torch.from_numpy(g.boxes)}])
    return anchors, labels[0].numpy(), matched_boxes[0].numpy()


@pytest.mark.parametrize("which", ["model", "hypothetical"])
def test_labels_are_assign_targets_to_anchors(demo, scenes, which):
    rpn = demo.module.rpn
    gen = rpn.anchor_generator if which == "model" else generator(HYPOTHETICAL)
    for g in scenes[1]:
        anchors, want, want_boxes = _torchvision_labels(rpn, gen, g)
        m = match(rpn, g.boxes, anchors)
        assert np.array_equal(m.labels, want)
        pos = m.matched >= 0
        assert np.array_equal(g.boxes[m.matched[pos]], want_boxes[pos])  # the object each positive regresses to
        assert m.positives.sum() == (want == 1).sum()


def test_anchors_and_feature_sizes_are_the_traces(demo, scenes):
    for path, g in zip(*scenes):
        tr = core.trace(demo, path)
        assert g.grids == tuple(a.grid for a in tr.anchors)
        assert g.grids == tuple(tuple(f.data.shape[-2:]) for f in tr.features.values() if f.kind == "fpn")
        assert g.image_size == tr.meta.resized_size and g.batch_size == tr.meta.batch_size
        st = tr._state[0]
        assert torch.equal(anchors_for(demo.module.rpn.anchor_generator, g), st.anchors)


def test_feature_sizes_of_another_backbone():
    m = core.load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights="random:0")
    rgb = load(DEMO_IMAGES / "scene_2.png")
    truth = find_for_image(str(DEMO_IMAGES / "scene_2.png"), rgb.shape[:2], m.class_names)
    g = anchor_fit.geometry(m.module, anchor_fit.Shapes(m.module), rgb, truth, "scene_2")
    tr = core.trace(m, rgb)
    assert g.grids == tuple(a.grid for a in tr.anchors) and g.batch_size == tr.meta.batch_size
    assert torch.equal(anchors_for(m.module.rpn.anchor_generator, g), tr._state[0].anchors)
    anchors, want, _ = _torchvision_labels(m.module.rpn, generator(config_of(generator_of(m.module))), g)
    assert np.array_equal(match(m.module.rpn, g.boxes, anchors).labels, want)


def test_strong_rescued_starved(demo):
    rpn = demo.module.rpn
    anchors = torch.tensor([[0, 0, 100, 100], [200, 200, 300, 300], [195, 195, 305, 305]], dtype=torch.float32)
    boxes = np.array([[0, 0, 90, 100],  # IoU 0.9 with anchor 0: strong
                      [200, 200, 310, 300],  # best anchor 2 (IoU 0.83 < its best for object 2): starved? no - see below
                      [196, 196, 304, 304]], np.float32)  # anchor 2 at IoU 0.96: its own
    m = match(rpn, boxes, anchors)
    labels, _ = rpn.assign_targets_to_anchors([anchors], [{"boxes": torch.from_numpy(boxes)}])
    assert np.array_equal(m.labels, labels[0].numpy())
    assert m.outcome()[0] == 0 and m.outcome()[2] == 0
    # object 1 has anchor 1 at IoU 0.909: strong on its own anchor
    assert m.positives[1] == 1 and m.strong[1] == 1
    # two objects whose one best anchor is the same: the anchor goes to the one it overlaps more
    one = torch.tensor([[0, 0, 100, 100], [500, 500, 510, 510]], dtype=torch.float32)
    pair = np.array([[0, 0, 60, 100], [0, 0, 50, 100]], np.float32)  # IoU 0.6 and 0.5 with anchor 0
    m = match(rpn, pair, one)
    assert [int(v) for v in m.outcome()] == [1, 2]  # rescued, starved: its best anchor went to its neighbour
    assert m.counts() == {"strong": 0, "rescued": 1, "starved": 1}
    labels, _ = rpn.assign_targets_to_anchors([one], [{"boxes": torch.from_numpy(pair)}])
    assert np.array_equal(m.labels, labels[0].numpy())


def test_expected_sampled_is_what_the_sampler_draws(demo):
    rpn = demo.module.rpn
    cap = 128
    per_object = np.array([200, 60, 40, 0])
    owner = np.repeat(np.arange(4), per_object)
    labels = torch.zeros(5000)
    labels[: len(owner)] = 1
    draws = np.zeros(4)
    n = 400
    gen_state = torch.get_rng_state()
    for s in range(n):
        torch.manual_seed(s)
        pos, _ = rpn.fg_bg_sampler([labels])
        idx = torch.nonzero(pos[0]).flatten().numpy()
        draws += np.bincount(owner[idx[idx < len(owner)]], minlength=4)
    torch.set_rng_state(gen_state)
    want = expected_sampled(per_object, cap)
    assert want == pytest.approx([200 * 128 / 300, 60 * 128 / 300, 40 * 128 / 300, 0])
    assert draws / n == pytest.approx(want, rel=0.03, abs=0.01)
    assert expected_sampled(np.array([3, 2]), cap).tolist() == [3, 2]  # all of them under the cap


def test_held_out_figures_are_reproducible_for_a_seed(demo, scenes):
    geoms = scenes[1]
    a = anchor_fit.fit(demo, geoms, seed=3, trials=12, free_trials=4).report
    b = anchor_fit.fit(demo, geoms, seed=3, trials=12, free_trials=4).report
    assert a == b
    assert a["fit_images"] == [geoms[i].image for i in split(4, 3)[0]] and len(a["fit_images"]) == 2
    held = set(g.image for g in geoms) - set(a["fit_images"])
    # the held-out figures are the Judge's on exactly the other half
    j = Judge(demo.module.rpn, [g for g in geoms if g.image in held])
    sug = AnchorConfig.of(a["suggested"]["sizes"], a["suggested"]["aspect_ratios"], 4)
    assert a["suggested"]["held_out"]["strong_share"] == j(sug).summary()["strong_share"]
    assert a["current"]["held_out"]["starved"] == j(config_of(demo.module.rpn.anchor_generator)).summary()["starved"]
    # the suggestion keeps the anchors per location; the fit never gets worse than the model's
    assert a["suggested"]["per_location"] == a["current"]["per_location"] == [6, 6, 6, 6]
    fit_j = Judge(demo.module.rpn, [g for g in geoms if g.image not in held])
    assert tuple(a["suggested"]["fit"].values()) >= tuple(round(v, 6) for v in fit_j(config_of(
        demo.module.rpn.anchor_generator)).key())
    assert a["free"]["per_location"] != a["current"]["per_location"]
    other = [anchor_fit.fit(demo, geoms, seed=s, trials=2, free_trials=0).report["fit_images"] for s in range(6)]
    assert len({tuple(x) for x in other}) > 1  # the seed picks the halves


def test_objects_and_totals(demo, scenes):
    res = anchor_fit.fit(demo, scenes[1], seed=0, trials=4, free_trials=0).report
    objs = res["objects"]
    assert len(objs) == res["object_count"] == 24
    o = objs[1]
    assert set(o) == {"image", "truth", "name", "match", "positives", "best_iou", "best_level", "best_size",
                      "best_ratio", "expected_sampled"}
    tot = res["totals"]["all"]
    assert tot["strong"] + tot["rescued"] + tot["starved"] == 24
    assert sum(r["objects"] for r in res["totals"]["by_size"]) == 24 == sum(r["objects"] for r in res["totals"]["by_ratio"])
    assert tot["strong"] == sum(o["match"] == "strong" for o in objs)
    for o in objs:  # the best anchor's size and ratio are the model's
        assert o["best_size"] in (16, 24, 32, 48, 64, 96, 128, 192) and o["best_ratio"] in (0.5, 1.0, 2.0)
        assert (o["match"] == "strong") == (o["best_iou"] >= 0.7)  # demo scenes: no neighbour takes a strong anchor


def test_peer_metrics_by_hand():
    anchors = np.array([[40.0, 40.0], [10.0, 40.0]])
    wh = np.array([[10.0, 10.0],  # 40/10 = 4: not strictly within anchor_t = 4 of any anchor
                   [10.5, 10.5],  # within 4 of 40x40 on both sides
                   [10.0, 20.0]])  # 10x40: w 1, h 2 -> covered
    assert yolov5_bpr(wh, anchors).tolist() == [False, True, True]
    # centred at zero: 10x20 against 20x10 shares 10x10 of 300 px^2
    assert centred_best_iou(np.array([[10.0, 20.0]]), np.array([[20.0, 10.0]]))[0] == pytest.approx(1 / 3)


def test_bad_configurations():
    for sizes, ratios, why in (("16, -24 / 32", "1", "not a positive number"), ("16 / 32", "0, 1", "not a positive"),
                               ("16 / 32 / 64", "1", "the model has 4 feature maps"), ("a, b", "1", "cannot read"),
                               ("16 / 32 / 64 / 128", "1 / 2", "levels of sizes but 2")):
        with pytest.raises(LensError, match=why):
            AnchorConfig.parse(sizes, ratios, 4)
    c = AnchorConfig.parse("((16, 24), (32, 48))", "0.5, 1, 2", 2)
    assert c.paste() == "AnchorGenerator(sizes=((16, 24), (32, 48)), aspect_ratios=((0.5, 1.0, 2.0), (0.5, 1.0, 2.0)))"
    assert AnchorConfig.parse(*c.text(), 2) == c
    assert AnchorConfig.parse("128, 256, 512", "0.5, 1, 2", 1).sizes == ((128, 256, 512),)


def test_an_unknown_anchor_generator_is_refused(demo):
    import copy

    from torchvision.models.detection.anchor_utils import AnchorGenerator

    class Shifted(AnchorGenerator):
        def grid_anchors(self, grid_sizes, strides):
            return [a + 1 for a in super().grid_anchors(grid_sizes, strides)]

    m = copy.deepcopy(demo.module)
    m.rpn.anchor_generator = Shifted(((16,),) * 4, ((1.0,),) * 4)
    with pytest.raises(LensError, match="overrides AnchorGenerator.grid_anchors"):
        generator_of(m, "mine")
    m.rpn.anchor_generator = torch.nn.Identity()
    with pytest.raises(LensError, match="not torchvision's AnchorGenerator"):
        generator_of(m, "mine")
