"""The training view equals the model's own training step, ``torch.manual_seed(S); model.train();
model(images, targets)`` on a deep copy, for every preset, a backbone with FrozenBatchNorm, a model
trained at several sizes and the demo; and it leaves the model as it found it."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou

import core
from core.models.load import LoadedModel
from core.models.presets import PRESETS
from core.tracing.types import anchor_boxes
from core.training.targets import IGNORED, LOSSES, NEGATIVE, POSITIVE, attach, compute, refresh
from core.truth.types import Truth

from .conftest import noise_image

SMALL = {
    "fasterrcnn_resnet50_fpn": dict(min_size=256, max_size=320),
    "fasterrcnn_resnet50_fpn_v2": dict(min_size=256, max_size=320),
    "fasterrcnn_mobilenet_v3_large_fpn": dict(min_size=256, max_size=320),
}
BOXES = np.array([[10, 20, 80, 90], [100, 30, 200, 140], [50, 100, 70, 120], [150, 100, 205, 148]], np.float32)


def small(name: str) -> dict:
    if name in SMALL:
        return SMALL[name]
    if name.startswith(("maskrcnn", "keypointrcnn", "fasterrcnn_resnet")):  # presets added later
        return dict(min_size=256, max_size=320)
    return {}


def truth_for(num_classes: int, boxes=BOXES) -> Truth:
    labels = [1 + i % (num_classes - 1) for i in range(len(boxes))]
    return Truth(boxes, tuple(f"c{v}" for v in labels), labels)


class Recorder:
    """Wraps a model's BalancedPositiveNegativeSampler and keeps what it drew."""

    def __init__(self, sampler):
        self.sampler, self.drawn = sampler, []

    def __call__(self, labels):
        pos, neg = self.sampler(labels)
        self.drawn.append(torch.where((pos[0] | neg[0]).bool())[0].numpy())
        return pos, neg


def torchvision_step(model: LoadedModel, image: np.ndarray, truth: Truth, seed: int, **rpn) -> tuple[dict, dict]:
    """The model's own training step on a deep copy: ``torch.manual_seed(seed); m.train();
    m(images, targets)`` -> (losses, what it drew: the anchor and RoI minibatches, the RPN's
    proposals, the size the transform chose). ``rpn``: nms_thresh / score_thresh set on its RPN.
    Hooks only record; nothing of the view's code runs here."""
    m = copy.deepcopy(model.module)
    for k, v in rpn.items():
        setattr(m.rpn, k, v)
    x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
    target = {"boxes": torch.from_numpy(truth.boxes), "labels": torch.from_numpy(truth.labels)}
    rh = m.roi_heads
    if rh.has_mask():
        masks = torch.zeros((len(truth), *image.shape[:2]), dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(truth.boxes.astype(int)):
            masks[i, y1:y2, x1:x2] = 1
        target["masks"] = masks
    if rh.has_keypoint():
        k = rh.keypoint_predictor.kps_score_lowres.out_channels
        c = torch.from_numpy((truth.boxes[:, :2] + truth.boxes[:, 2:]) / 2)
        target["keypoints"] = torch.cat([c[:, None].expand(-1, k, 2), torch.ones(len(truth), k, 1)], 2)
    m.rpn.fg_bg_sampler, m.roi_heads.fg_bg_sampler = Recorder(m.rpn.fg_bg_sampler), Recorder(m.roi_heads.fg_bg_sampler)
    seen = {}

    def keep(name, value):  # a hook that returns None leaves the output alone
        seen.setdefault(name, value)

    m.rpn.register_forward_hook(lambda mod, args, out: keep("proposals", out[0][0].detach().numpy()))
    m.transform.register_forward_hook(lambda mod, args, out: keep("size", tuple(out[0].image_sizes[0])))
    torch.manual_seed(seed)
    m.train()
    losses = m([x], [target])
    drawn = {"anchors": m.rpn.fg_bg_sampler.drawn, "rois": m.roi_heads.fg_bg_sampler.drawn, **seen}
    return {k: float(v.detach()) for k, v in losses.items()}, drawn


def assert_same_step(t, model, image, truth, seed, **rpn) -> None:
    """Same losses and the very same minibatches, proposals and size as the model's training step."""
    ref, drawn = torchvision_step(model, image, truth, seed, **rpn)
    assert t.meta.resized_size == drawn["size"]
    assert_losses_equal(t.losses, ref)
    assert len(drawn["anchors"]) == 1 and len(drawn["rois"]) == 1
    np.testing.assert_array_equal(np.nonzero(t.rpn.sampled)[0], drawn["anchors"][0])
    np.testing.assert_array_equal(t.roi.sampled, drawn["rois"][0])
    np.testing.assert_array_equal(t.roi.boxes[:t.roi.num_proposals], drawn["proposals"])


def assert_losses_equal(ours: dict, ref: dict) -> None:
    for k in LOSSES:  # Mask/Keypoint R-CNN add their own losses; the box losses must agree
        assert ours[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-9), k


def assert_shares_add_up(t) -> None:
    a, r = t.rpn, t.roi
    assert float(a.loss_objectness.sum(dtype=np.float64)) == pytest.approx(t.losses["loss_objectness"], rel=1e-5)
    assert float(a.loss_box_reg.sum(dtype=np.float64)) == pytest.approx(t.losses["loss_rpn_box_reg"], rel=1e-5,
                                                                        abs=1e-9)
    assert float(r.loss_classifier.sum(dtype=np.float64)) == pytest.approx(t.losses["loss_classifier"], rel=1e-5)
    assert float(r.loss_box_reg.sum(dtype=np.float64)) == pytest.approx(t.losses["loss_box_reg"], rel=1e-5, abs=1e-9)
    assert (a.loss_objectness[~a.sampled] == 0).all()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_losses_equal_torchvision_training_step_for_every_preset(name):
    model = core.load_model(name, weights="random:7", **small(name))
    h, w = (300, 320) if name == "seed-walkthrough" else (150, 210)
    image = noise_image(h, w, seed=3)
    truth = truth_for(len(model.class_names))
    tr = core.trace(model, image)
    t = compute(tr, truth, seed=5)
    assert_same_step(t, model, image, truth, 5)
    assert_shares_add_up(t)
    assert t.rpn.counts()["sampled"] <= t.rpn.batch_size_per_image
    assert len(t.roi.sampled) <= t.roi.batch_size_per_image


@pytest.mark.slow
@pytest.mark.parametrize("builder", ["maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn"])
def test_mask_and_keypoint_models_box_losses_equal_and_do_not_crash(builder):
    from torchvision.models import detection

    torch.manual_seed(0)
    module = getattr(detection, builder)(weights=None, weights_backbone=None, num_classes=3, min_size=224,
                                         max_size=256).eval()
    model = LoadedModel(builder, "random", module, ["__background__", "a", "b"], torch.device("cpu"))
    image = noise_image(150, 210, seed=4)
    truth = truth_for(3)
    t = compute(core.trace(model, image), truth, seed=2)
    assert_same_step(t, model, image, truth, 2)
    assert_shares_add_up(t)


def bn_model() -> LoadedModel:
    """The demo detector with a box head of real BatchNorm2d (FastRCNNConvFCHead, norm_layer)."""
    from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead

    from core.demo.model import build_shapes_model

    torch.manual_seed(1)
    head = FastRCNNConvFCHead((64, 7, 7), [32, 32], [1024], norm_layer=nn.BatchNorm2d)
    module = build_shapes_model(box_head=head).eval()
    with torch.no_grad():  # running statistics away from their init, so a change would show
        for mod in module.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
    return LoadedModel("demo", "random", module, ["__background__", "circle", "rectangle", "triangle"],
                       torch.device("cpu"))


def test_model_back_in_eval_mode_with_batchnorm_statistics_untouched():
    model = bn_model()
    m = model.module
    assert sum(isinstance(x, nn.BatchNorm2d) for x in m.roi_heads.modules()) == 2
    image = noise_image(200, 240, seed=1)
    tr = core.trace(model, image)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    t = compute(tr, truth_for(4), seed=3)
    assert not any(x.training for x in m.modules())
    after = m.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    # the box head ran with BatchNorm in training mode (batch statistics), as torchvision trains
    assert_same_step(t, model, image, truth_for(4), 3)


def test_seed_fixes_the_minibatch_and_the_callers_random_state_is_kept():
    model = core.load_model("demo", weights="random:3")
    tr = core.trace(model, noise_image(180, 200, seed=2))
    truth = truth_for(4)
    torch.manual_seed(123)
    a = compute(tr, truth, seed=11)
    after = torch.rand(3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    assert torch.equal(after, expected)  # compute() forks the RNG: the caller's stream is untouched
    b = compute(tr, truth, seed=11)
    c = compute(tr, truth, seed=12)
    np.testing.assert_array_equal(a.rpn.sampled, b.rpn.sampled)
    np.testing.assert_array_equal(a.roi.sampled, b.roi.sampled)
    assert a.losses == b.losses
    assert not np.array_equal(a.rpn.sampled, c.rpn.sampled)
    assert not np.array_equal(a.roi.sampled, c.roi.sampled)


def test_anchor_labels_iou_and_low_quality_promotions_from_torchvision_matchers():
    model = core.load_model("demo", weights="random:5")
    m = model.module
    image = noise_image(180, 230, seed=6)
    tr = core.trace(model, image)
    truth = truth_for(4)
    t = compute(tr, truth, seed=0)
    with torch.no_grad():
        x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
        images, targets = m.transform([x], [{"boxes": torch.from_numpy(truth.boxes),
                                             "labels": torch.from_numpy(truth.labels)}])
        feats = list(m.backbone(images.tensors).values())
        anchors = m.rpn.anchor_generator(images, feats)[0]
    gt = targets[0]["boxes"]
    np.testing.assert_allclose(t.gt_boxes, gt.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(anchor_boxes(t.anchors, np.arange(len(anchors))), anchors.numpy())
    iou = box_iou(gt, anchors)
    np.testing.assert_allclose(t.rpn.iou, iou.max(0).values.numpy(), rtol=1e-6)
    hi, lo = m.rpn.proposal_matcher.high_threshold, m.rpn.proposal_matcher.low_threshold
    with_lq = det_utils.Matcher(hi, lo, allow_low_quality_matches=True)(iou)
    without = det_utils.Matcher(hi, lo, allow_low_quality_matches=False)(iou)
    np.testing.assert_array_equal(t.rpn.label == POSITIVE, (with_lq >= 0).numpy())
    np.testing.assert_array_equal(t.rpn.label == NEGATIVE, (with_lq == -1).numpy())
    np.testing.assert_array_equal(t.rpn.label == IGNORED, (with_lq == -2).numpy())
    np.testing.assert_array_equal(t.rpn.promoted, ((with_lq >= 0) & (without < 0)).numpy())
    assert t.rpn.promoted.any()
    pos = t.rpn.positive
    np.testing.assert_array_equal(t.rpn.matched[pos], with_lq[pos].numpy())
    np.testing.assert_array_equal(t.rpn.anchor_boxes, anchors[pos].numpy())
    # the decoded regression target of each positive is its matched GT box
    np.testing.assert_allclose(t.rpn.target_boxes, gt[with_lq[pos]].numpy(), atol=1e-3)
    assert t.rpn.sampled.sum() == min(t.rpn.batch_size_per_image, (t.rpn.label >= 0).sum())
    assert (t.rpn.label[t.rpn.sampled] >= 0).all()


def test_roi_targets_gt_appended_matched_and_sampled():
    model = core.load_model("demo", weights="random:5")
    m = model.module
    tr = core.trace(model, noise_image(180, 230, seed=6))
    truth = truth_for(4)
    t = compute(tr, truth, seed=0)
    r = t.roi
    assert r.num_proposals <= m.rpn._post_nms_top_n["training"] and t.post_nms_top_n == 500
    np.testing.assert_array_equal(r.boxes[r.num_proposals:], t.gt_boxes)
    assert r.from_gt.sum() == len(truth)
    iou = box_iou(torch.from_numpy(t.gt_boxes), torch.from_numpy(r.boxes))
    np.testing.assert_allclose(r.iou, iou.max(0).values.numpy(), rtol=1e-6)
    matcher = det_utils.Matcher(r.fg_iou_thresh, r.bg_iou_thresh, allow_low_quality_matches=False)
    idx = matcher(iou)
    expected = torch.from_numpy(t.gt_labels)[idx.clamp(min=0)]
    expected[idx == -1] = 0
    expected[idx == -2] = -1
    np.testing.assert_array_equal(r.label, expected.numpy())
    np.testing.assert_array_equal(r.label[r.num_proposals:], t.gt_labels)  # a GT box matches itself
    np.testing.assert_array_equal(r.sampled_label, r.label[r.sampled])
    assert (np.diff(r.sampled) > 0).all()
    pos = (r.sampled_label > 0).sum()
    assert 0 < pos <= int(r.batch_size_per_image * r.positive_fraction)
    assert (r.loss_box_reg[r.sampled_label == 0] == 0).all()


def test_each_object_gets_its_part_and_the_parts_add_up():
    model = core.load_model("demo", weights="random:5")
    tr = core.trace(model, noise_image(180, 230, seed=6))
    truth = Truth(np.vstack([BOXES, [[0, 0, 30, 30], [5, 5, 60, 60]]]), ("a", "b", "c", "d", "person", "crowd"),
                  [1, 2, 3, 1, -1, 2], crowd=[0, 0, 0, 0, 0, 1])
    t = compute(tr, truth, seed=4)
    np.testing.assert_array_equal(t.gt_truth, [0, 1, 2, 3])  # no label or a crowd region: not trained on
    parts = [t.for_gt(i) for i in range(len(truth))]
    assert parts[4]["gt"] == -1 and parts[5]["anchors"] == []
    for key in ("loss_rpn_box_reg", "loss_box_reg"):  # only positives pay these: every one has its GT
        assert sum(p["losses"][key] for p in parts) == pytest.approx(t.losses[key], rel=1e-5)
    assert sum(len(p["anchors"]) for p in parts) == (t.rpn.label == POSITIVE).sum()


def test_empty_truth_is_a_background_image_as_in_torchvision():
    model = core.load_model("demo", weights="random:5")
    image = noise_image(160, 200, seed=8)
    truth = Truth(np.zeros((0, 4)), (), [])
    t = compute(core.trace(model, image), truth, seed=1)
    assert (t.rpn.label == NEGATIVE).all() and t.losses["loss_rpn_box_reg"] == 0 and t.losses["loss_box_reg"] == 0
    assert_same_step(t, model, image, truth, 1)


def test_retrace_keeps_the_training_view():
    model = core.load_model("demo", weights="random:5")
    tr = attach(core.trace(model, noise_image(160, 200, seed=8)), truth_for(4), seed=2)
    again = core.retrace(tr, box_nms_thresh=0.2, rpn_nms_thresh=0.5)
    assert again.training is tr.training and again.truth is tr.truth
    assert attach(tr, None).training is None
    assert tr.training.counts()["seed"] == 2 and set(tr.training.counts()["losses"]) == set(LOSSES)


def test_demo_training_script_labels_the_same_anchors_positive():
    """core/demo/train.py trains with model(images, targets): the same RegionProposalNetwork
    assign_targets_to_anchors (Matcher 0.7/0.3, allow_low_quality_matches) this view calls."""
    from core.demo.model import build_shapes_model
    from core.demo.shapes import make_scene, scene_rng
    from core.demo.train import to_tensor

    model = core.load_model("demo")  # the shipped weights, built for inference
    trained = build_shapes_model(model.config, training=True)  # as train.py builds it
    trained.load_state_dict(model.module.state_dict())
    trained.transform.min_size = model.module.transform.min_size  # one scale instead of the random choice
    for a, b in ((trained.rpn.proposal_matcher, model.module.rpn.proposal_matcher),
                 (trained.rpn.fg_bg_sampler, model.module.rpn.fg_bg_sampler)):
        assert vars(a) == vars(b)
    scene = make_scene(scene_rng(0, 17))
    seen = []
    original = trained.rpn.assign_targets_to_anchors
    trained.rpn.assign_targets_to_anchors = lambda *a: seen.append(original(*a)) or seen[-1]
    trained.train()
    trained([to_tensor(scene.image)], [{"boxes": torch.from_numpy(scene.boxes), "labels": torch.from_numpy(scene.labels)}])
    labels = seen[0][0][0].numpy()
    from core.demo.shapes import CLASSES

    truth = Truth(scene.boxes, tuple(CLASSES[i - 1] for i in scene.labels), scene.labels)
    t = compute(core.trace(model, scene.image), truth)
    np.testing.assert_array_equal(t.rpn.label, labels.astype(np.int8))
    assert (t.rpn.label == POSITIVE).sum() >= len(truth)  # every object has its anchor (low-quality or not)


TINY = __import__("pathlib").Path(__file__).with_name("tiny_models.py")


@pytest.mark.parametrize("builder, note", [
    ("tiny_frozen_bn", ""),  # FrozenBatchNorm2d: training mode computes the eval features
    ("tiny_faster_rcnn", "BatchNorm layers use this image's own statistics"),
    ("tiny_multiscale", "the training size choice resized it to"),
])
def test_the_training_step_of_builders_with_frozen_trainable_batchnorm_and_several_sizes(builder, note):
    model = core.load_model(f"{TINY}:{builder}", weights="random:2")
    image = noise_image(150, 210, seed=5)
    truth = truth_for(3, BOXES * 0.7)
    tr = core.trace(model, image)
    seeds = range(6) if builder == "tiny_multiscale" else [4]
    sizes = set()
    for seed in seeds:
        t = compute(tr, truth, seed=seed)
        assert_same_step(t, model, image, truth, seed)
        assert_shares_add_up(t)
        sizes.add(t.meta.resized_size)
        want = note
        if builder == "tiny_multiscale" and t.meta.resized_size == tr.meta.resized_size:
            want = "BatchNorm layers use this image"  # the eval size drawn: only BatchNorm tells them apart
        assert (want in t.note) if want else t.note == ""
    if builder == "tiny_multiscale":  # the seed draws the size; the trace (eval) takes the last one
        assert len(sizes) > 1 and tr.meta.resized_size in sizes
        t = next(compute(tr, truth, seed=s) for s in seeds if compute(tr, truth, seed=s).meta.resized_size
                 != tr.meta.resized_size)
        assert sum(a.count for a in t.anchors) == len(t.rpn.label)
        assert [a.valid(t.meta) for a in t.anchors] != [a.valid(tr.meta) for a in tr.anchors]


def test_the_rpn_thresholds_of_the_trace_apply_and_a_retrace_follows_without_the_backbone():
    model = core.load_model("demo", weights="random:3")
    image = noise_image(180, 230, seed=9)
    truth = truth_for(4)
    tr = core.trace(model, image, rpn_nms_thresh=0.5, rpn_score_thresh=0.2)
    t = compute(tr, truth, seed=6)
    assert t.rpn_params == {"rpn_nms_thresh": 0.5, "rpn_score_thresh": 0.2}
    assert_same_step(t, model, image, truth, 6, nms_thresh=0.5, score_thresh=0.2)
    with_truth = attach(tr, truth, seed=6)
    calls = []
    hook = model.module.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        boxes_only = refresh(core.retrace(with_truth, box_nms_thresh=0.2))
        assert boxes_only.training is with_truth.training  # the box thresholds do not enter training
        again = refresh(core.retrace(with_truth, rpn_nms_thresh=0.6))
        resampled = attach(with_truth, truth, seed=7)
    finally:
        hook.remove()
    assert calls == []  # neither a threshold nor another seed reran the backbone
    assert again.training.rpn_params["rpn_nms_thresh"] == 0.6
    assert_same_step(again.training, model, image, truth, 6, nms_thresh=0.6, score_thresh=0.2)
    assert_same_step(resampled.training, model, image, truth, 7, nms_thresh=0.5, score_thresh=0.2)


def test_the_demo_backbone_trains_with_batch_statistics_and_every_buffer_comes_back():
    model = core.load_model("demo")
    m = model.module
    assert any(isinstance(x, nn.BatchNorm2d) for x in m.backbone.modules())
    from core.demo.shapes import CLASSES, make_scene, scene_rng

    scene = make_scene(scene_rng(0, 1))
    truth = Truth(scene.boxes, tuple(CLASSES[i - 1] for i in scene.labels), scene.labels)
    tr = core.trace(model, scene.image)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    t = compute(tr, truth, seed=7)
    assert not any(x.training for x in m.modules())
    for k, v in m.state_dict().items():  # running statistics and num_batches_tracked included
        assert torch.equal(v, before[k]), k
    assert_same_step(t, model, scene.image, truth, 7)
    assert "BatchNorm layers use this image's own statistics" in t.note and "train-mode features" in dict(t.table())


def test_a_box_that_collapses_when_resized_is_refused_naming_the_object():
    from torchvision.models.detection.transform import resize_boxes

    from core.errors import LensError

    model = core.load_model(f"{TINY}:tiny_faster_rcnn", weights="random:2")
    image = noise_image(300, 600, seed=1)
    tr = core.trace(model, image)
    found = None  # a box one float32 step wide that torchvision's own resize_boxes makes empty
    for x in np.linspace(20, 580, 4000).astype(np.float32):
        x2 = np.nextafter(x, np.float32(600))
        r = resize_boxes(torch.tensor([[x, 10, x2, 40]]), [300, 600], list(tr.meta.resized_size))
        if r[0, 2] <= r[0, 0]:
            found = x, x2
            break
    assert found is not None
    x, x2 = found
    truth = Truth(np.array([[10, 10, 50, 50], [x, 10, x2, 40]], np.float32), ("a", "b"), [1, 2], source="t.json")
    with pytest.raises(LensError, match=r"^t.json: object 1 \('b'\): box \[[\d.]+, 10, [\d.]+, 40\] has no width or height "
                                        r"once resized to \d+x\d+ for the training step"):
        compute(tr, truth, seed=0)
