"""torchvision's two filters split at each step, so that every candidate keeps why it was dropped:
``RegionProposalNetwork.filter_proposals`` (top-n per level, clip, small, score, NMS per level,
post-NMS top-n) for one image, and the pieces ``postprocess_detections`` shares with it (the
filter's dropped mask, NMS's suppressed marks, and which kept box suppressed each dropped one).
Only torchvision's own ops: ``_topk_min``, ``clip_boxes_to_image``, ``remove_small_boxes``,
``batched_nms``, ``box_iou``."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import boxes as box_ops

from core.tracing.types import KEPT, LOW_SCORE, OVER_TOP_N, SMALL, SUPPRESSED, ImageMeta, Lazy, Proposals


def to_np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def filter_proposals(state, meta: ImageMeta, p: dict, min_size: float):
    """torchvision RegionProposalNetwork.filter_proposals for one image, split at each filter."""
    obj = state.objectness.reshape(1, -1)
    dev = obj.device
    levels = torch.cat([torch.full((n,), i, dtype=torch.int64, device=dev)
                        for i, n in enumerate(state.num_anchors_per_level)])
    top, offset = [], 0
    pre_n = int(p["rpn_pre_nms_top_n_test"])
    for ob in obj.split(state.num_anchors_per_level, 1):
        k = det_utils._topk_min(ob, pre_n, 1)
        _, idx = ob.topk(k, dim=1)
        top.append(idx + offset)
        offset += ob.shape[1]
    top_idx = torch.cat(top, dim=1)[0]
    logits = state.objectness[top_idx]
    lvl = levels[top_idx]
    boxes = box_ops.clip_boxes_to_image(state.proposals[top_idx], state.image_sizes[0])
    scores = torch.sigmoid(logits)
    n = boxes.shape[0]
    status = torch.full((n,), KEPT, dtype=torch.int8)
    idx = box_ops.remove_small_boxes(boxes, min_size)
    status[dropped_mask(n, idx).cpu()] = SMALL
    ok = torch.where(scores[idx] >= float(p["rpn_score_thresh"]))[0]
    status[idx[dropped_mask(idx.shape[0], ok)].cpu()] = LOW_SCORE
    idx = idx[ok]
    final, sup = nms_then_top_n(boxes, scores, lvl, idx, float(p["rpn_nms_thresh"]),
                                int(p["rpn_post_nms_top_n_test"]), status)
    b = to_np(boxes)
    prop = Proposals(
        boxes=b, boxes_image=meta.to_image(b), scores=to_np(scores), status=status.numpy(),
        keep=to_np(final).astype(np.int64), _suppression=sup, level=to_np(lvl), anchor=to_np(top_idx), logits=to_np(logits))
    return prop, boxes[final]


def dropped_mask(n: int, keep: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the n positions a filter's ``keep`` indices left out."""
    mask = torch.ones(n, dtype=torch.bool, device=keep.device)
    mask[keep] = False
    return mask


def nms_then_top_n(boxes, scores, groups, candidates, nms_thresh: float, top_n: int, status):
    """``batched_nms`` over ``candidates`` (per group), then its first ``top_n``, as both of
    torchvision's filters end: marks the suppressed and those past the top-n in ``status``; returns
    the final indices and the (lazy) record of which kept box suppressed each dropped one."""
    keep = box_ops.batched_nms(boxes[candidates], scores[candidates], groups[candidates], nms_thresh)
    kept_all = candidates[keep]
    status[candidates[dropped_mask(boxes.shape[0], kept_all)[candidates]].cpu()] = SUPPRESSED
    status[kept_all[top_n:].cpu()] = OVER_TOP_N
    return kept_all[:top_n], Lazy(lambda: suppression(boxes, groups, candidates, kept_all, nms_thresh))


@torch.inference_mode()
def suppression(boxes, groups, candidates, kept, thresh):
    """For each candidate NMS dropped: the first kept box (descending score) of its group whose
    IoU exceeds ``thresh`` - the one greedy NMS suppressed it with - and that IoU."""
    n = boxes.shape[0]
    sup_by = np.full(n, -1, np.int64)
    sup_iou = np.zeros(n, np.float32)
    is_kept = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    is_kept[kept] = True
    dropped = candidates[~is_kept[candidates]]
    if dropped.numel() == 0 or kept.numel() == 0:
        return sup_by, sup_iou
    g_drop, g_kept = groups[dropped], groups[kept]
    for g in torch.unique(g_drop):
        d = dropped[g_drop == g]
        k = kept[g_kept == g]
        if k.numel() == 0:
            continue
        iou = box_ops.box_iou(boxes[d], boxes[k])
        over = iou > thresh
        first = over.to(torch.uint8).argmax(1)
        has = over.any(1)
        d_np, first_np, has_np = to_np(d), to_np(first), to_np(has)
        k_np = to_np(k)
        sup_by[d_np[has_np]] = k_np[first_np[has_np]]
        sup_iou[d_np[has_np]] = to_np(iou[torch.arange(d.numel(), device=iou.device), first])[has_np]
    return sup_by, sup_iou
