"""The staged runner: ``GeneralizedRCNN.forward`` (eval) called submodule by submodule, keeping
every stage. RPN filtering and box post-processing are split at NMS with torchvision's own ops so
that "before NMS" and "suppressed by" exist. tests/core/test_faithful.py holds the result equal to
``model(images)`` for every preset.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import boxes as box_ops

from core.errors import ModelError
from core.models.load import LoadedModel
from core.models.params import PARAMS, RPN_PARAMS, check_params, model_params
from core.tracing import heads as heads_mod
from core.tracing.filters import dropped_mask, filter_proposals, nms_then_top_n, to_np
from core.tracing.images import as_image
from core.tracing.types import (
    KEPT,
    SMALL,
    AnchorLevel,
    BoxHead,
    Detections,
    FeatureLevel,
    ImageMeta,
    ModelCheck,
    RPNLevel,
    Trace,
)


@dataclass
class _State:
    """Torch tensors kept for retrace (never shown to the GUI)."""

    model: LoadedModel
    image_sizes: list
    original_size: tuple
    features: OrderedDict
    objectness: torch.Tensor  # [N_anchors] logits, torchvision's concatenated order
    proposals: torch.Tensor  # [N_anchors, 4] decoded, model frame
    num_anchors_per_level: list
    anchors: torch.Tensor | None = None  # [N_anchors, 4] the anchor generator's output, batch frame
    image: torch.Tensor | None = None  # [3, H, W] float in [0, 1]: what the transform was given
    cache: dict = field(default_factory=dict)  # what layers above keep per image (the training step's features)


@dataclass(frozen=True)
class _Post:
    """A trace's own box-head outputs, for retracing its box thresholds."""

    pred_boxes: torch.Tensor  # [K, classes, 4] decoded, clipped
    probs: torch.Tensor  # [K, classes]
    heads: dict = field(default_factory=dict)  # the mask/keypoint stages of the last final set (retrace reuses)


class Cancelled(Exception):
    """A trace stopped between two stages because ``cancel()`` said so (a newer request came)."""


class _Clock:
    """Times the stages; between two stages, stops the trace if ``cancel()`` is true."""

    def __init__(self, device: torch.device, cancel=None):
        self.sync = device.type == "cuda"
        self.t = time.perf_counter()
        self.ms: dict[str, float] = {}
        self.cancel = cancel

    def lap(self, name: str) -> None:
        if self.sync:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.ms[name] = self.ms.get(name, 0.0) + (now - self.t) * 1000.0
        self.t = now
        if self.cancel is not None and self.cancel():
            raise Cancelled(f"after {name}")


def _run_backbone(backbone, x: torch.Tensor):
    """The backbone's forward; for torchvision's BackboneWithFPN, body and FPN apart."""
    if isinstance(backbone, BackboneWithFPN) and type(backbone).forward is BackboneWithFPN.forward:
        body = backbone.body(x)
        return backbone.fpn(body), body, "fpn"
    out = backbone(x)
    if isinstance(out, torch.Tensor):
        out = OrderedDict([("0", out)])
    return out, None, "backbone"


def trace(model: LoadedModel, image, cancel=None, **params) -> Trace:
    """Run ``model`` on ``image`` (HxWx3 uint8 RGB array or a path), keeping every stage.

    ``params``: torchvision FasterRCNN keywords (see PARAMS) that override the model's own.
    ``cancel``: called between stages; when it returns true the trace raises ``Cancelled``."""
    check_params(params)
    rgb, name = as_image(image)
    m = model.module
    dev = model.device
    clock = _Clock(dev, cancel)
    with torch.inference_mode():
        tensor = torch.from_numpy(rgb).to(dev).permute(2, 0, 1).float().div_(255.0)
        original_size = (int(rgb.shape[0]), int(rgb.shape[1]))
        images, _ = m.transform([tensor])
        clock.lap("transform")
        features, body, kind = _run_backbone(m.backbone, images.tensors)
        clock.lap("backbone")
        feats = list(features.values())
        objectness, deltas = m.rpn.head(feats)
        clock.lap("rpn_head")
        anchors = m.rpn.anchor_generator(images, feats)
        clock.lap("anchors")
        shapes = [o[0].shape for o in objectness]
        per_level = [int(s[0] * s[1] * s[2]) for s in shapes]
        obj_flat, deltas_flat = concat_box_prediction_layers(objectness, deltas)
        decoded = m.rpn.box_coder.decode(deltas_flat.detach(), anchors).view(-1, 4)
        clock.lap("rpn_decode")
        state = _State(model, list(images.image_sizes), original_size, features,
                       obj_flat.reshape(-1), decoded, per_level, anchors[0], image=tensor)
        meta = ImageMeta(
            name=name, original_size=original_size, resized_size=tuple(int(v) for v in images.image_sizes[0]),
            batch_size=(int(images.tensors.shape[-2]), int(images.tensors.shape[-1])),
            image_mean=tuple(float(v) for v in m.transform.image_mean),
            image_std=tuple(float(v) for v in m.transform.image_std),
            input=to_np(images.tensors[0]),
        )
        feature_levels = _feature_levels(features, body, kind, meta)
        levels, rpn_levels = _anchor_levels(m.rpn.anchor_generator, features, objectness, deltas, meta)
        clock.lap("collect")
        base = Trace(model=model.name, weights=model.weights, class_names=tuple(model.class_names),
                     meta=meta, image=rgb, features=feature_levels, anchors=levels, rpn=rpn_levels,
                     proposals=None, box_head=None, detections=None,
                     params={**model_params(m), **params}, timings_ms=clock.ms, _state=state)
        out = _after_rpn(base, state, clock)
    if model.support.needs_check:
        out = replace(out, check=_check(model, tensor, out))
    return out


def _check(model: LoadedModel, tensor: torch.Tensor, tr: Trace) -> ModelCheck:
    """A model core.models.support flagged: its first trace is checked against model(images)."""
    from core.tracing.check import compare

    if model.first_check is None:
        model.first_check = compare(model, tensor, tr)
        return model.first_check
    first = model.first_check
    return ModelCheck(False, None, first.overrides, f"not checked; the first trace was: {first.detail}")


def retrace(tr: Trace, cancel=None, **params) -> Trace:
    """Rerun only the stages after the changed parameters (the backbone never reruns)."""
    check_params(params)
    if tr._state is None:
        raise ModelError("retrace", "this trace holds no tensors to rerun from")
    state, post = tr._state
    new = {**tr.params, **params}
    changed = {k for k in PARAMS if new[k] != tr.params[k]}
    clock = _Clock(state.model.device, cancel)
    with torch.inference_mode():
        if changed & set(RPN_PARAMS):
            out = _after_rpn(replace(tr, params=new, timings_ms=dict(tr.timings_ms)), state, clock)
        else:
            out = _detections(replace(tr, params=new), state, post, clock)
    if tr.check is not None and changed:
        out = replace(out, check=ModelCheck(False, None, tr.check.overrides,
                                            f"retraced, not checked; the first trace was: {tr.check.detail}"
                                            if tr.check.checked else tr.check.detail))
    return out


def _after_rpn(tr: Trace, state: _State, clock: _Clock) -> Trace:
    m = state.model.module
    p = tr.params
    proposals, kept = filter_proposals(state, tr.meta, p, m.rpn.min_size)
    clock.lap("rpn_filter")
    rois = kept.to(state.proposals.device)
    pool = m.roi_heads.box_roi_pool
    pooled = pool(state.features, [rois], state.image_sizes)
    clock.lap("roi_pool")
    box_feats = m.roi_heads.box_head(pooled)
    clock.lap("box_head")
    class_logits, box_regression = m.roi_heads.box_predictor(box_feats)
    clock.lap("box_predictor")
    pred_boxes = m.roi_heads.box_coder.decode(box_regression, [rois])
    pred_boxes = box_ops.clip_boxes_to_image(pred_boxes, state.image_sizes[0])
    probs = F.softmax(class_logits, -1)
    levels, names = heads_mod.pool_levels(pool, state.features, rois, state.image_sizes)
    out_size = pool.output_size
    out_size = (out_size, out_size) if isinstance(out_size, int) else tuple(int(v) for v in out_size)
    head = BoxHead(
        rois=to_np(rois), rois_image=tr.meta.to_image(to_np(rois)), roi_level=levels, pooled_levels=names,
        output_size=out_size, sampling_ratio=int(pool.sampling_ratio), pooled=to_np(pooled),
        features=to_np(box_feats), class_logits=to_np(class_logits), probs=to_np(probs),
        box_regression=to_np(box_regression), refined=to_np(pred_boxes),
        scales=tuple(float(v) for v in (getattr(pool, "scales", None) or ())))
    clock.lap("collect")
    post = _Post(pred_boxes, probs)
    return _detections(replace(tr, proposals=proposals, box_head=head), state, post, clock)


def _detections(tr: Trace, state: _State, post: _Post, clock: _Clock) -> Trace:
    """torchvision RoIHeads.postprocess_detections for one image, split at NMS, then
    GeneralizedRCNNTransform.postprocess."""
    m = state.model.module
    p = tr.params
    pred_boxes, probs = post.pred_boxes, post.probs
    num_classes = probs.shape[-1]
    dev = probs.device
    labels = torch.arange(num_classes, device=dev).view(1, -1).expand_as(probs)
    roi_index = torch.arange(probs.shape[0], device=dev).view(-1, 1).expand_as(probs)
    boxes = pred_boxes[:, 1:].reshape(-1, 4)
    scores = probs[:, 1:].reshape(-1)
    labels = labels[:, 1:].reshape(-1)
    roi_index = roi_index[:, 1:].reshape(-1)
    inds = torch.where(scores > float(p["box_score_thresh"]))[0]
    boxes, scores, labels, roi_index = boxes[inds], scores[inds], labels[inds], roi_index[inds]
    n = boxes.shape[0]
    status = torch.full((n,), KEPT, dtype=torch.int8)
    small_keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
    status[dropped_mask(n, small_keep).cpu()] = SMALL
    final, sup = nms_then_top_n(boxes, scores, labels, small_keep, float(p["box_nms_thresh"]),
                                int(p["box_detections_per_img"]), status)
    final_det = {"boxes": boxes[final], "scores": scores[final], "labels": labels[final]}
    masks = keypoints = None
    if heads_mod.has_heads(m):
        final_boxes, masks, keypoints = _heads(state, post, final_det, roi_index[final], clock)
    else:
        final_boxes = to_np(m.transform.postprocess([final_det], state.image_sizes, [state.original_size])[0]["boxes"])
    b = to_np(boxes)
    det = Detections(
        boxes=b, boxes_image=to_np(resize_boxes(boxes, state.image_sizes[0], state.original_size)),
        scores=to_np(scores), status=status.numpy(), keep=to_np(final).astype(np.int64), _suppression=sup, label=to_np(labels), proposal=to_np(roi_index),
        final_boxes_image=final_boxes)
    clock.lap("postprocess")
    timings = dict(tr.timings_ms)
    timings.update(clock.ms)
    return replace(tr, detections=det, masks=masks, keypoints=keypoints, timings_ms=timings, _state=(state, post))


def _heads(state: _State, post: _Post, det: dict, rois_index: torch.Tensor, clock: _Clock):
    """Mask/keypoint heads on the final detections, then postprocess; reused by a retrace whose
    final detections are the same candidates in the same order (same batch, same result)."""
    key = (tuple(to_np(rois_index).tolist()), tuple(to_np(det["labels"]).tolist()))
    if key in post.heads:
        return post.heads[key]
    m = state.model.module
    out = heads_mod.run(m, state.features, state.image_sizes, det["boxes"], det["labels"], clock)
    final_boxes, parts = heads_mod.postprocess(m, det, out, state.image_sizes, state.original_size)
    final_np = to_np(final_boxes)
    masks, keypoints = heads_mod.stages(m, state.features, state.image_sizes, det["boxes"], final_np, det["labels"],
                                        out, parts, state.original_size, state.model.keypoint_names)
    post.heads.clear()
    post.heads[key] = (final_np, masks, keypoints)
    return post.heads[key]


def _feature_levels(features, body, kind, meta: ImageMeta) -> dict:
    out = {}
    bh, bw = meta.batch_size
    rh, rw = meta.resized_size

    def add(name, t, k):
        h, w = int(t.shape[-2]), int(t.shape[-1])
        sy, sx = bh // h, bw // w  # the anchor generator's stride: cell (r, c) is centred on (c*sx, r*sy)
        valid = (min(h, -(-rh // sy)), min(w, -(-rw // sx)))  # cells whose centre lies on the image
        out[name] = FeatureLevel(name, k, to_np(t[0]), (sy, sx), valid)

    for name, t in features.items():
        add(str(name), t, kind)
    if body is not None:
        for name, t in body.items():
            add(f"body.{name}", t, "body")
    return out


def anchor_levels(gen, names, shapes, batch_size) -> tuple[AnchorLevel, ...]:
    """The anchor grid of each level as ``gen`` (an AnchorGenerator) lays it on feature maps of
    ``shapes`` [(H, W)] over a padded batch of ``batch_size`` (H, W): stride, cell anchors, offsets."""
    bh, bw = batch_size
    levels, offset = [], 0
    for i, (name, (h, w)) in enumerate(zip(names, shapes)):
        cell = to_np(gen.cell_anchors[i]).astype(np.float32) if gen.cell_anchors else None
        levels.append(AnchorLevel(
            name=str(name), grid=(int(h), int(w)), stride=(bh // int(h), bw // int(w)),  # as AnchorGenerator.forward
            sizes=tuple(float(v) for v in gen.sizes[i]), aspect_ratios=tuple(float(r) for r in gen.aspect_ratios[i]),
            cell_anchors=cell, offset=offset))
        offset += int(h) * int(w) * (0 if cell is None else cell.shape[0])
    return tuple(levels)


def _anchor_levels(gen, features, objectness, deltas, meta: ImageMeta):
    names = [str(k) for k in features]
    levels = anchor_levels(gen, names, [o.shape[-2:] for o in objectness], meta.batch_size)
    return levels, tuple(RPNLevel(name, to_np(o[0]), to_np(d[0])) for name, o, d in zip(names, objectness, deltas))
