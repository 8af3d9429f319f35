"""The training view: what ``torch.manual_seed(S); model.train(); model(images, targets)`` computes
for this image and its truth, draw for draw, through the model's own modules.

In the order of ``GeneralizedRCNN.forward`` in training mode: the transform (its random size choice
is the first draw from the generator), the backbone as it runs in training (BatchNorm with this
image's own statistics where the model has trainable BatchNorm; FrozenBatchNorm2d as in eval), the
RPN with its training top-n and the trace's RPN NMS and score thresholds (torchvision applies both
in training too): ``rpn.assign_targets_to_anchors`` (its ``Matcher``, ``allow_low_quality_matches``),
``rpn.box_coder.encode``, ``rpn.fg_bg_sampler``, ``rpn.compute_loss``; then the RoI heads'
``add_gt_proposals``, ``assign_targets_to_proposals``, ``subsample``, ``box_coder.encode``,
``box_roi_pool``/``box_head``/``box_predictor`` and ``fastrcnn_loss`` (a Mask/Keypoint R-CNN's extra
heads draw nothing from the generator and are not run). tests/core/test_training.py holds the
losses, the minibatches and the proposals equal to ``model(images, targets)`` on a deep copy after
the same seed. Afterwards the model is in its modes with every buffer (running statistics,
``num_batches_tracked``) as it was, and the caller's random state is untouched.

The training step has a frame of its own (``Training.meta``, ``Training.anchors``): the size the
transform chose in training (a model trained at several sizes draws one) and the anchors on the
feature maps of that size. Where its train-mode features differ from the eval trace's (BatchNorm,
another size), ``Training.note`` says so. The train-mode features are kept with the trace's tensors,
so another seed (Resample) or another RPN threshold reruns the RPN and RoI heads, not the backbone
(unless the seed's size choice picks a size not seen yet for this image).

The four losses are torchvision's own return values; each sampled anchor's and RoI's share is the
same reduction unrolled (its term / the sampled count), and the shares add up to the totals.

    tr = core.training.targets.attach(tr, truth, seed=0)    # Trace with .truth and .training
    tr = core.training.targets.refresh(core.retrace(tr, rpn_nms_thresh=0.5))   # follows the RPN thresholds
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops import boxes as box_ops

from core.errors import LensError
from core.models.params import model_params, set_params
from core.tracing.runner import anchor_levels
from core.tracing.types import ImageMeta
from core.training.types import (
    IGNORED,
    LOSSES,
    NEGATIVE,
    POSITIVE,
    TRAIN_PARAMS,
    AnchorTargets,
    RoITargets,
    Training,
)

__all__ = ["compute", "attach", "refresh", "training_mode", "Training", "AnchorTargets",
           "RoITargets", "LOSSES", "POSITIVE", "NEGATIVE", "IGNORED", "TRAIN_PARAMS"]
_FEATURES = "training.features"  # the key of the train-mode features in the trace's tensor cache

def attach(tr, truth, seed: int = 0):
    """``tr`` with ``truth`` and its ``training`` view (``dataclasses.replace``)."""
    if truth is None:
        return replace(tr, truth=None, training=None)
    return replace(tr, truth=truth, training=compute(tr, truth, seed))


def refresh(tr):
    """``tr`` with its training view for the trace's own RPN NMS and score thresholds: the same view
    when they did not change (the box thresholds do not enter training), else computed again from
    the kept train-mode features."""
    t = tr.training
    if t is None or tr.truth is None or t.rpn_params == _rpn_params(tr):
        return tr
    return attach(tr, tr.truth, t.seed)


def _rpn_params(tr) -> dict:
    return {k: tr.params[k] for k in TRAIN_PARAMS}


def _state(tr):
    st = tr._state[0] if isinstance(tr._state, tuple) else tr._state
    if st is None:
        raise LensError("training view", "this trace holds no tensors to compute targets from")
    return st


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


@contextmanager
def training_mode(*modules):
    """``modules`` in train mode for the block; afterwards every submodule's mode and every buffer
    (BatchNorm running statistics, num_batches_tracked) exactly as before."""
    subs = [m for mod in modules for m in mod.modules()]
    modes = [m.training for m in subs]
    buffers = [b for mod in modules for b in mod.buffers()]
    saved = [b.detach().clone() for b in buffers]
    try:
        for mod in modules:
            mod.train()
        yield
    finally:
        with torch.no_grad():
            for b, s in zip(buffers, saved):
                b.copy_(s)
        for m, flag in zip(subs, modes):
            m.training = flag


@contextmanager
def _seeded(seed: int, device: torch.device):
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


@contextmanager
def at_rpn_sampler(tr, seed: int):
    """The random state the training step's RPN sampler draws from for ``seed``: seeded, then the
    model's transform in training mode on the image (its size draw), as ``compute`` runs them (the
    heads draw nothing before the sampler). The block runs there, on the model's device; the
    caller's random state is kept. (The anchor what-if draws its minibatch in here.)"""
    st = _state(tr)
    m = st.model.module
    dev = st.model.device
    image = st.image if st.image is not None else torch.from_numpy(tr.image).to(dev).permute(2, 0, 1).float() / 255
    with _seeded(seed, dev):
        with training_mode(m.transform), torch.inference_mode():
            m.transform([image])
        yield dev


def _rng_get(device):
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _rng_set(state, device):
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def compute(tr, truth, seed: int = 0) -> Training:
    """Targets, minibatches and losses of the model's training step for ``tr``'s image and ``truth``."""
    st = _state(tr)
    m = st.model.module
    dev = st.model.device
    keep = np.asarray(truth.trainable, bool)
    gt_rows = np.nonzero(keep)[0]
    gt_image = torch.from_numpy(np.ascontiguousarray(truth.boxes[keep], np.float32)).reshape(-1, 4).to(dev)
    labels = torch.from_numpy(truth.labels[keep].astype(np.int64)).to(dev)
    if len(labels) and int(labels.max()) >= len(tr.class_names):
        raise LensError("truth", f"label {int(labels.max())} is not a class of this {len(tr.class_names)}-class model")
    image = st.image if st.image is not None else torch.from_numpy(tr.image).to(dev).permute(2, 0, 1).float() / 255
    rpn_params = _rpn_params(tr)
    with _seeded(seed, dev), training_mode(m), _thresholds(m, rpn_params), torch.inference_mode():
        images, targets = m.transform([image], [{"boxes": gt_image, "labels": labels}])  # the size draw
        _refuse_degenerate(targets[0]["boxes"], gt_rows, truth, images.image_sizes[0])
        features = _train_features(st, m, images)
        frame = _frame(tr.meta, images)
        rpn, proposals, rpn_losses = _rpn_step(m.rpn, images, features, targets, frame)
        roi, roi_losses = _roi_step(m.roi_heads, features, proposals, images.image_sizes, targets, frame)
        pre_n, post_n = int(m.rpn.pre_nms_top_n()), int(m.rpn.post_nms_top_n())
    losses = {k: float(v) for k, v in {**rpn_losses, **roi_losses}.items()}
    levels = anchor_levels(m.rpn.anchor_generator, list(features), [f.shape[-2:] for f in features.values()],
                           frame.batch_size)
    return Training(seed=int(seed), gt_boxes=_np(targets[0]["boxes"]), gt_boxes_image=_np(gt_image),
                    gt_labels=_np(labels), gt_truth=gt_rows.astype(np.int64), pre_nms_top_n=pre_n,
                    post_nms_top_n=post_n, losses={k: losses[k] for k in LOSSES}, rpn=rpn, roi=roi,
                    meta=frame, anchors=levels, rpn_params=rpn_params, note=_note(st, m, images, features))


@contextmanager
def _thresholds(m, params: dict):
    """The model's RPN thresholds set to ``params`` for the block (torchvision applies them in
    training too), then back."""
    saved = model_params(m)
    set_params(m, params)
    try:
        yield
    finally:
        set_params(m, saved)


def _refuse_degenerate(boxes: torch.Tensor, rows, truth, size) -> None:
    """As ``GeneralizedRCNN.forward`` refuses a target, but in one line naming the object."""
    bad = torch.where((boxes[:, 2:] <= boxes[:, :2]).any(1))[0]
    if len(bad):
        i = int(rows[int(bad[0])])
        x1, y1, x2, y2 = (float(v) for v in truth.boxes[i])
        raise LensError(truth.source or "truth", f"object {i} ('{truth.names[i]}'): box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] "
                                                 f"has no width or height once resized to {size[1]}x{size[0]} for "
                                                 "the training step (torchvision refuses such a box)")


def _train_features(st, m, images):
    """The backbone in training mode on the training step's input; kept per input size with the
    trace's tensors, unless the backbone draws from the generator (dropout): then it always runs."""
    key = (_FEATURES, tuple(images.image_sizes[0]), tuple(images.tensors.shape))  # the size chosen, padded
    hit = st.cache.get(key)
    if hit is not None:
        return hit
    dev = images.tensors.device
    before = _rng_get(dev)
    out = m.backbone(images.tensors)
    if isinstance(out, torch.Tensor):
        out = OrderedDict([("0", out)])
    after = _rng_get(dev)
    if all(a is None or torch.equal(a, b) for a, b in zip(before, after)):
        st.cache = {k: v for k, v in st.cache.items() if k[0] != _FEATURES}  # the newest size only
        st.cache[key] = out
    return out


def _frame(meta: ImageMeta, images) -> ImageMeta:
    """The training step's frame: the original size, the size the transform chose, the padded batch."""
    return ImageMeta(name=meta.name, original_size=meta.original_size,
                     resized_size=tuple(int(v) for v in images.image_sizes[0]),
                     batch_size=(int(images.tensors.shape[-2]), int(images.tensors.shape[-1])),
                     image_mean=meta.image_mean, image_std=meta.image_std, input=np.zeros(0, np.float32))


def _note(st, m, images, features) -> str:
    """Why the training step's features differ from the eval trace's, measured; "" where they do not."""
    why = []
    size, eval_size = tuple(int(v) for v in images.image_sizes[0]), tuple(int(v) for v in st.image_sizes[0])
    if size != eval_size:
        why.append(f"the training size choice resized it to {size[1]}x{size[0]} "
                   f"(the trace: {eval_size[1]}x{eval_size[0]}, W x H)")
    elif any(not torch.equal(a, b) for a, b in zip(features.values(), st.features.values())):
        bn = sum(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in m.backbone.modules())
        diff = max(float((a - b).abs().max()) for a, b in zip(features.values(), st.features.values()))
        why.append(f"{bn} BatchNorm layers use this image's own statistics (up to {diff:.3g} apart)" if bn
                   else f"the backbone computes others in training mode (up to {diff:.3g} apart)")
    return "train-mode features differ from the trace's: " + "; ".join(why) if why else ""  # captions and table


def _best_gt(gt: torch.Tensor, boxes: torch.Tensor):
    """(matched [N] int64, iou [N]) : the GT of highest IoU for each box (box_iou, max over GT)."""
    if gt.numel() == 0:
        return torch.full((boxes.shape[0],), -1, dtype=torch.int64), torch.zeros(boxes.shape[0])
    iou, matched = box_ops.box_iou(gt, boxes).max(dim=0)
    return matched, iou


def _rpn_step(rpn, images, features, targets, meta):
    """RegionProposalNetwork.forward in training mode, its sampled minibatch kept."""
    feats = list(features.values())
    objectness, pred_bbox_deltas = rpn.head(feats)
    anchors = rpn.anchor_generator(images, feats)
    per_level = [int(o[0].shape[0] * o[0].shape[1] * o[0].shape[2]) for o in objectness]
    objectness, pred_bbox_deltas = concat_box_prediction_layers(objectness, pred_bbox_deltas)
    decoded = rpn.box_coder.decode(pred_bbox_deltas.detach(), anchors).view(1, -1, 4)
    proposals, _ = rpn.filter_proposals(decoded, objectness, images.image_sizes, per_level)
    labels, matched_gt_boxes = rpn.assign_targets_to_anchors(anchors, targets)
    regression_targets = rpn.box_coder.encode(matched_gt_boxes, anchors)
    # compute_loss samples first: keep its masks, then let torchvision's own compute_loss draw the
    # same minibatch from the same random state for the totals
    before = _rng_get(images.tensors.device)
    pos_mask, neg_mask = rpn.fg_bg_sampler(labels)
    after = _rng_get(images.tensors.device)
    _rng_set(before, images.tensors.device)
    loss_objectness, loss_rpn_box_reg = rpn.compute_loss(objectness, pred_bbox_deltas, labels, regression_targets)
    _rng_set(after, images.tensors.device)

    label = labels[0]
    obj = objectness.flatten()
    pos_s = torch.where(pos_mask[0])[0]
    neg_s = torch.where(neg_mask[0])[0]
    n = pos_s.numel() + neg_s.numel()
    bce = F.binary_cross_entropy_with_logits(obj, label.clamp(min=0), reduction="none")
    bce = torch.where(label >= 0, bce, torch.zeros_like(bce))
    sampled = torch.zeros_like(label, dtype=torch.bool)
    sampled[pos_s] = True
    sampled[neg_s] = True
    share = torch.where(sampled, bce / max(n, 1), torch.zeros_like(bce))
    positive = torch.where(label == POSITIVE)[0]
    a = anchors[0]
    reg_t = regression_targets[0][positive]
    reg_p = pred_bbox_deltas[positive]
    box_share = F.smooth_l1_loss(reg_p, reg_t, beta=1 / 9, reduction="none").sum(1) / max(n, 1)
    box_share = torch.where(sampled[positive], box_share, torch.zeros_like(box_share))
    matched, iou = _best_gt(targets[0]["boxes"], a)
    high = rpn.proposal_matcher.high_threshold
    pred_boxes = rpn.box_coder.decode_single(reg_p, a[positive])
    out = AnchorTargets(
        fg_iou_thresh=float(high), bg_iou_thresh=float(rpn.proposal_matcher.low_threshold),
        batch_size_per_image=int(rpn.fg_bg_sampler.batch_size_per_image),
        positive_fraction=float(rpn.fg_bg_sampler.positive_fraction),
        label=_np(label).astype(np.int8), matched=_np(matched).astype(np.int64), iou=_np(iou).astype(np.float32),
        promoted=_np((label == POSITIVE) & (iou.to(label.device) < high)),
        sampled=_np(sampled), objectness=_np(obj).astype(np.float32), bce=_np(bce).astype(np.float32),
        loss_objectness=_np(share).astype(np.float32), positive=_np(positive).astype(np.int64),
        anchor_boxes=_np(a[positive]), target_deltas=_np(reg_t), pred_deltas=_np(reg_p),
        target_boxes=_np(rpn.box_coder.decode_single(reg_t, a[positive])), pred_boxes=_np(pred_boxes),
        pred_boxes_image=meta.to_image(_np(pred_boxes)), loss_box_reg=_np(box_share).astype(np.float32))
    return out, proposals, {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}


def _roi_step(rh, features, proposals, image_sizes, targets, meta):
    """RoIHeads.select_training_samples and the box branch of RoIHeads.forward in training mode."""
    dtype, device = proposals[0].dtype, proposals[0].device
    num_proposals = int(proposals[0].shape[0])
    gt_boxes = [t["boxes"].to(dtype) for t in targets]
    gt_labels = [t["labels"] for t in targets]
    proposals = rh.add_gt_proposals(proposals, gt_boxes)
    matched_idxs, labels = rh.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
    sampled_inds = rh.subsample(labels)
    s = sampled_inds[0]
    boxes_all = proposals[0]
    props = boxes_all[s]
    labels_s = labels[0][s]
    matched_s = matched_idxs[0][s]
    gt_in_image = gt_boxes[0] if gt_boxes[0].numel() else torch.zeros((1, 4), dtype=dtype, device=device)
    regression_targets = rh.box_coder.encode([gt_in_image[matched_s]], [props])
    box_features = rh.box_head(rh.box_roi_pool(features, [props], image_sizes))
    class_logits, box_regression = rh.box_predictor(box_features)
    loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, [labels_s], regression_targets)

    n = max(int(labels_s.numel()), 1)
    ce = F.cross_entropy(class_logits, labels_s, reduction="none") / n
    per_class = box_regression.reshape(box_regression.shape[0], -1, 4)
    rows = torch.arange(per_class.shape[0], device=per_class.device)
    pred_d = per_class[rows, labels_s]
    reg_t = regression_targets[0]
    box_share = F.smooth_l1_loss(pred_d, reg_t, beta=1 / 9, reduction="none").sum(1) / n
    pos = labels_s > 0
    box_share = torch.where(pos, box_share, torch.zeros_like(box_share))
    decoded = rh.box_coder.decode_single(pred_d, props)
    pred_boxes = torch.where(pos[:, None], decoded, props)
    matched, iou = _best_gt(gt_boxes[0], boxes_all)
    b = _np(boxes_all)
    probs = F.softmax(class_logits, -1)
    out = RoITargets(
        fg_iou_thresh=float(rh.proposal_matcher.high_threshold), bg_iou_thresh=float(rh.proposal_matcher.low_threshold),
        batch_size_per_image=int(rh.fg_bg_sampler.batch_size_per_image),
        positive_fraction=float(rh.fg_bg_sampler.positive_fraction),
        bbox_reg_weights=tuple(float(w) for w in rh.box_coder.weights), num_proposals=num_proposals,
        boxes=b, boxes_image=meta.to_image(b), matched=_np(matched).astype(np.int64), iou=_np(iou).astype(np.float32),
        label=_np(labels[0]).astype(np.int64), sampled=_np(s).astype(np.int64), sampled_label=_np(labels_s),
        target_deltas=_np(reg_t), pred_deltas=_np(pred_d), pred_boxes=_np(pred_boxes),
        pred_boxes_image=meta.to_image(_np(pred_boxes)), class_logits=_np(class_logits),
        target_prob=_np(probs[rows, labels_s]), loss_classifier=_np(ce).astype(np.float32),
        loss_box_reg=_np(box_share).astype(np.float32))
    return out, {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
