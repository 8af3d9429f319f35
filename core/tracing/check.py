"""The check of a flagged model's trace against ``model(images)`` (core.models.support flags a model
that overrides what the runner re-enacts; its first trace is checked here, exactly)."""

from __future__ import annotations

from core.models.params import model_params, set_params
from core.tracing.types import ModelCheck


def compare(model, tensor, tr):
    """Run ``model(images)`` with the trace's thresholds and compare its boxes, labels, scores,
    masks and keypoints with the trace's, exactly. -> core.tracing.types.ModelCheck (checked=True)."""
    import numpy as np
    import torch

    m = model.module
    saved = model_params(m)
    overrides = model.support.overrides
    try:
        set_params(m, tr.params)
        with torch.inference_mode():
            out = m([tensor])
    except Exception as err:  # noqa: BLE001 - the user's forward: report, do not crash the trace
        return ModelCheck(True, False, overrides, f"model(images) failed ({type(err).__name__}: {err})")
    finally:
        set_params(m, saved)
    if not (isinstance(out, list | tuple) and out and isinstance(out[0], dict) and "boxes" in out[0]):
        return ModelCheck(True, False, overrides, f"model(images) returned {type(out).__name__}, not torchvision's "
                                                  "list of detection dicts")
    ref = {k: v.detach().cpu().numpy() for k, v in out[0].items() if isinstance(v, torch.Tensor)}
    d = tr.detections
    keep = d.keep
    mine = {"boxes": d.final_boxes_image.reshape(-1, 4), "labels": d.label[keep], "scores": d.scores[keep]}
    if tr.masks is not None:
        mine["masks"] = np.stack([tr.masks.full(j) for j in range(len(tr.masks))])[:, None] if len(tr.masks) \
            else np.zeros((0, 1, *tr.meta.original_size), np.float32)
    if tr.keypoints is not None:
        mine["keypoints"] = tr.keypoints.keypoints_image
        mine["keypoints_scores"] = tr.keypoints.scores
    if len(ref["boxes"]) != len(mine["boxes"]):
        return ModelCheck(True, False, overrides, f"model(images) gave {len(ref['boxes'])} detections, the trace "
                                                  f"{len(mine['boxes'])}")
    differ = [k for k in sorted(set(ref) | set(mine))
              if k not in ref or k not in mine or ref[k].shape != mine[k].shape or not np.array_equal(ref[k], mine[k])]
    if differ:
        return ModelCheck(True, False, overrides, f"the trace differs from model(images) in {', '.join(differ)}")
    return ModelCheck(True, True, overrides, f"equal to model(images) ({len(mine['boxes'])} detections)")
