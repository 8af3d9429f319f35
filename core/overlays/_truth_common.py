"""Helpers of the stages drawn with ground truth (truth, anchor_targets, roi_targets, loss)."""

from __future__ import annotations

import numpy as np

from core.colormaps import CLASS_COLOURS
from core.errors import LensError
from core.overlays.layers import StageLayers

TRUTH_COLOUR = (255, 255, 255)  # the truth's own colour (white, a dark halo around it): no class uses it
NO_CLASS_COLOUR = (255, 64, 255)  # annotated objects of a class the model does not have


def object_colour(truth_index: int) -> tuple[int, int, int]:
    """A colour per truth object, so an anchor or a line shows which object it belongs to."""
    return CLASS_COLOURS[int(truth_index) % len(CLASS_COLOURS)]


def empty(tr, stage: str) -> StageLayers | None:
    """The StageLayers to show when ``tr`` has no truth (or no training view); None if it has."""
    if tr.truth is None:
        return StageLayers(stage, [], f"{stage.replace('_', ' ')}: no ground truth for this image "
                                      f"(annotations beside it or --annotations)")
    if stage != "truth" and tr.training is None:
        return StageLayers(stage, [], f"{stage.replace('_', ' ')}: no training view computed for this image")
    return None


def gt_row(tr, gt) -> int | None:
    """Truth index (the ``gt`` setting) -> row of Training.gt_*; None for every object."""
    if gt is None or gt == "":
        return None
    g = int(gt)
    if not 0 <= g < len(tr.truth):
        raise LensError(f"gt {g}", f"no such object; this image has {len(tr.truth)} (0..{len(tr.truth) - 1})")
    rows = np.nonzero(tr.training.gt_truth == g)[0]
    return int(rows[0]) if len(rows) else -1


def rgba(cols, alpha: float) -> np.ndarray:
    out = np.zeros((len(cols), 4), np.uint8)
    if len(cols):
        out[:, :3] = np.asarray(cols, np.uint8).reshape(-1, 3)
    out[:, 3] = int(round(255 * alpha))
    return out


def centres(xyxy: np.ndarray) -> np.ndarray:
    b = np.asarray(xyxy, np.float32).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)
