"""The extra heads of Mask R-CNN and Keypoint R-CNN, run as ``RoIHeads.forward`` (eval) runs them
on the final detections, then ``transform.postprocess`` into original pixels; kept as
``core.tracing.types.MaskHead`` / ``KeypointHead``. torchvision's own modules and functions throughout:
``mask_roi_pool``/``mask_head``/``mask_predictor``/``maskrcnn_inference``,
``keypoint_roi_pool``/``keypoint_head``/``keypoint_predictor``/``keypointrcnn_inference``,
``GeneralizedRCNNTransform.postprocess`` (``paste_masks_in_image``, ``resize_keypoints``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models.detection.roi_heads import keypointrcnn_inference, maskrcnn_inference

from core.tracing.filters import to_np
from core.tracing.types import KeypointHead, MaskHead

# COCO person keypoints (torchvision's KeypointRCNN weights meta "keypoint_names") and the skeleton
# the COCO dataset's person category defines (1-based there, 0-based here)
COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                 (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
PASTE_ELEMENTS = 1 << 25  # pasted masks per postprocess call: at most this many pixels (128 MB float32)


@dataclass
class Outputs:
    """The heads' torch outputs for one set of final detections (model frame)."""

    mask_pooled: torch.Tensor | None = None
    mask_logits: torch.Tensor | None = None
    mask_probs: torch.Tensor | None = None  # [K, 1, 28, 28]
    kp_pooled: torch.Tensor | None = None
    kp_logits: torch.Tensor | None = None  # [K, N, 56, 56]
    kp_xy: torch.Tensor | None = None  # [K, N, 3] model frame
    kp_scores: torch.Tensor | None = None  # [K, N]


def pool_levels(pool, features, rois, image_sizes) -> tuple[np.ndarray, tuple[str, ...]]:
    """The level each RoI pooled from (MultiScaleRoIAlign's LevelMapper) and the pooled levels."""
    names = tuple(k for k in features if k in pool.featmap_names)
    mapper = getattr(pool, "map_levels", None)
    if mapper is None or len(names) == 1:
        return np.zeros(rois.shape[0], np.int64), names
    return to_np(mapper([rois])).astype(np.int64), names


def has_heads(module) -> bool:
    rh = module.roi_heads
    return bool(rh.has_mask() or rh.has_keypoint())


def run(module, features, image_sizes, boxes: torch.Tensor, labels: torch.Tensor, clock) -> Outputs:
    """The mask and keypoint branches of RoIHeads.forward (eval) for the final detections."""
    rh = module.roi_heads
    out = Outputs()
    if rh.has_mask():
        out.mask_pooled = rh.mask_roi_pool(features, [boxes], image_sizes)
        out.mask_logits = rh.mask_predictor(rh.mask_head(out.mask_pooled))
        out.mask_probs = maskrcnn_inference(out.mask_logits, [labels])[0]
        clock.lap("mask_head")
    if rh.keypoint_roi_pool is not None and rh.keypoint_head is not None and rh.keypoint_predictor is not None:
        out.kp_pooled = rh.keypoint_roi_pool(features, [boxes], image_sizes)
        out.kp_logits = rh.keypoint_predictor(rh.keypoint_head(out.kp_pooled))
        xy, scores = keypointrcnn_inference(out.kp_logits, [boxes])
        out.kp_xy, out.kp_scores = xy[0], scores[0]
        clock.lap("keypoint_head")
    return out


def _nonzero_window(m: torch.Tensor) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (exclusive) of the non-zero pixels of an [H, W] mask; empty -> zeros."""
    rows = torch.nonzero(m.any(1)).flatten()
    if rows.numel() == 0:
        return 0, 0, 0, 0
    cols = torch.nonzero(m.any(0)).flatten()
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def postprocess(module, det: dict, out: Outputs, image_sizes, original_size) -> tuple[torch.Tensor, dict]:
    """``transform.postprocess`` of the final detections with their masks and keypoints, in chunks
    of detections so the full-image pasted masks never all exist at once (postprocess treats each
    detection alone, so chunks change nothing). Returns (boxes in original pixels, numpy parts)."""
    k = int(det["boxes"].shape[0])
    h, w = original_size
    step = max(1, PASTE_ELEMENTS // max(h * w, 1)) if out.mask_probs is not None else max(k, 1)
    boxes, kps = [], []
    windows, crops, areas = [], [], []
    for a in range(0, max(k, 1), step):
        part = {key: v[a:a + step] for key, v in det.items()}
        if out.mask_probs is not None:
            part["masks"] = out.mask_probs[a:a + step]
        if out.kp_xy is not None:
            part["keypoints"] = out.kp_xy[a:a + step]
        res = module.transform.postprocess([part], image_sizes, [original_size])[0]
        boxes.append(res["boxes"])
        if "keypoints" in res:
            kps.append(res["keypoints"])
        for m in res.get("masks", ())[:]:
            x0, y0, x1, y1 = _nonzero_window(m[0])
            crop = m[0, y0:y1, x0:x1]
            windows.append((x0, y0, x1, y1))
            crops.append(to_np(crop).astype(np.float32, copy=False).ravel())
            areas.append(int((crop > 0.5).sum()))
        if k == 0:
            break
    parts = {}
    if out.mask_probs is not None:
        sizes = [c.size for c in crops]
        parts["pasted_boxes"] = np.asarray(windows, np.int64).reshape(-1, 4)
        parts["pasted"] = np.concatenate(crops) if crops else np.zeros(0, np.float32)
        parts["pasted_offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        parts["area"] = np.asarray(areas, np.int64)
    if out.kp_xy is not None:
        parts["keypoints_image"] = to_np(torch.cat(kps)) if kps else np.zeros((0, out.kp_xy.shape[1], 3), np.float32)
    return torch.cat(boxes) if boxes else det["boxes"], parts


def _pool_meta(pool, features, rois, image_sizes) -> dict:
    levels, names = pool_levels(pool, features, rois, image_sizes)
    size = pool.output_size
    size = (size, size) if isinstance(size, int) else tuple(int(v) for v in size)
    return {"roi_level": levels, "pooled_levels": names, "output_size": size, "sampling_ratio": int(pool.sampling_ratio),
            "scales": tuple(float(v) for v in (getattr(pool, "scales", None) or ()))}  # set by the pool's call


def stages(module, features, image_sizes, rois: torch.Tensor, rois_image: np.ndarray, labels: torch.Tensor,
           out: Outputs, parts: dict, original_size, keypoint_names) -> tuple[MaskHead | None, KeypointHead | None]:
    """The trace's MaskHead and KeypointHead from the heads' outputs and the postprocess parts."""
    rh = module.roi_heads
    masks = kps = None
    r = to_np(rois)
    if out.mask_probs is not None:
        masks = MaskHead(
            rois=r, rois_image=rois_image, **_pool_meta(rh.mask_roi_pool, features, rois, image_sizes),
            pooled=to_np(out.mask_pooled), logits=to_np(out.mask_logits), labels=to_np(labels).astype(np.int64),
            probs=to_np(out.mask_probs[:, 0]), pasted_boxes=parts["pasted_boxes"], pasted=parts["pasted"],
            pasted_offsets=parts["pasted_offsets"], area=parts["area"], image_size=tuple(original_size))
    if out.kp_xy is not None:
        n = int(out.kp_xy.shape[1])
        names = tuple(keypoint_names or ())[:n]
        names = names + tuple(f"keypoint {i}" for i in range(len(names), n))
        skeleton = COCO_SKELETON if names == COCO_KEYPOINTS else ()
        kps = KeypointHead(
            rois=r, rois_image=rois_image, **_pool_meta(rh.keypoint_roi_pool, features, rois, image_sizes),
            pooled=to_np(out.kp_pooled), heatmaps=to_np(out.kp_logits), keypoints=to_np(out.kp_xy),
            keypoints_image=parts["keypoints_image"], scores=to_np(out.kp_scores), names=names, skeleton=skeleton)
    return masks, kps
