"""The training view: what torchvision's training step does with this image and its truth.

The backbone and transform stay as in eval mode (the trace's features); the RPN and the RoI heads
run as torchvision runs them in training mode, through the model's own modules: the training top-n,
``rpn.assign_targets_to_anchors`` (its ``Matcher`` with ``allow_low_quality_matches``),
``rpn.box_coder.encode``, ``rpn.fg_bg_sampler`` and ``rpn.compute_loss``; then the RoI heads'
``add_gt_proposals``, ``assign_targets_to_proposals``, ``subsample``, ``box_coder.encode``,
``box_roi_pool``/``box_head``/``box_predictor`` and ``fastrcnn_loss`` (the steps of
``select_training_samples`` and ``RoIHeads.forward``; a Mask/Keypoint R-CNN's extra heads are not
run). Sampling is random: ``torch.manual_seed(seed)`` right before the RPN step, so one seed gives
the minibatch and the losses torchvision's ``model.rpn(images, features, targets)`` then
``model.roi_heads(features, proposals, image_sizes, targets)`` give after the same seed
(tests/core/test_training.py). The caller's random state is restored afterwards; the model is back
in eval mode with its buffers (BatchNorm statistics) as they were.

The four losses are torchvision's own return values; each sampled anchor's and RoI's share is the
same reduction unrolled (its term / the sampled count), and the shares add up to the totals.

Training does not depend on the test-time thresholds, so ``retrace`` keeps it as it is.

    tr = core.training.targets.attach(tr, truth, seed=0)    # Trace with .truth and .training
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import boxes as box_ops

from core.errors import LensError
from core.training.types import IGNORED, LOSSES, NEGATIVE, POSITIVE, AnchorTargets, RoITargets, Training, anchor_boxes

__all__ = ["compute", "attach", "training_mode", "anchor_boxes", "Training", "AnchorTargets", "RoITargets",
           "LOSSES", "POSITIVE", "NEGATIVE", "IGNORED"]

def attach(tr, truth, seed: int = 0):
    """``tr`` with ``truth`` and its ``training`` view (``dataclasses.replace``)."""
    if truth is None:
        return replace(tr, truth=None, training=None)
    return replace(tr, truth=truth, training=compute(tr, truth, seed))


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


def _rng_get(device):
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _rng_set(state, device):
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def compute(tr, truth, seed: int = 0) -> Training:
    """Targets, minibatches and losses of torchvision's training step for ``tr``'s image and ``truth``."""
    st = _state(tr)
    m = st.model.module
    dev = st.model.device
    keep = np.asarray(truth.trainable, bool)
    gt_rows = np.nonzero(keep)[0]
    gt_image = torch.from_numpy(np.ascontiguousarray(truth.boxes[keep], np.float32)).reshape(-1, 4).to(dev)
    gt = resize_boxes(gt_image, list(tr.meta.original_size), list(st.image_sizes[0]))  # as transform.resize does
    labels = torch.from_numpy(truth.labels[keep].astype(np.int64)).to(dev)
    if len(labels) and int(labels.max()) >= len(tr.class_names):
        raise LensError("truth", f"label {int(labels.max())} is not a class of this {len(tr.class_names)}-class model")
    targets = [{"boxes": gt, "labels": labels}]
    images = ImageList(torch.from_numpy(tr.meta.input)[None].to(dev), list(st.image_sizes))
    features = st.features
    with training_mode(m.rpn, m.roi_heads), torch.inference_mode(), _seeded(seed, dev):
        rpn, proposals, rpn_losses = _rpn_step(m.rpn, images, features, targets, tr.meta)
        roi, roi_losses = _roi_step(m.roi_heads, features, proposals, images.image_sizes, targets, tr.meta)
        pre_n, post_n = int(m.rpn.pre_nms_top_n()), int(m.rpn.post_nms_top_n())
    losses = {k: float(v) for k, v in {**rpn_losses, **roi_losses}.items()}
    return Training(seed=int(seed), gt_boxes=_np(gt), gt_boxes_image=_np(gt_image), gt_labels=_np(labels),
                    gt_truth=gt_rows.astype(np.int64), pre_nms_top_n=pre_n, post_nms_top_n=post_n,
                    losses={k: losses[k] for k in LOSSES}, rpn=rpn, roi=roi)


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
