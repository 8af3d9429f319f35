"""Per-stage settings: plain dicts (JSON, QSettings and CLI friendly) with defaults and checks."""

from __future__ import annotations

import copy

from ..colormaps import available
from ..errors import LensError

DEFAULTS: dict[str, dict] = {
    "input": {"opacity": 1.0},
    "features": {"level": None, "reduction": "mean", "channel": 0, "colormap": "viridis", "opacity": 0.6},
    "anchors": {"level": None, "cell": None, "opacity": 1.0},
    "objectness": {"level": None, "anchor": None, "mode": "prob", "colormap": "inferno", "opacity": 0.6},
    "proposals": {"top_n": 50, "pre_nms": False, "colormap": "turbo", "opacity": 1.0},
    "rois": {"roi": None, "show_all": True, "colormap": "viridis", "opacity": 0.7},
    "detections": {"suppressed": False, "opacity": 1.0},
    # EXTRA_STAGES: only for models with those heads
    "masks": {"threshold": 0.5, "detection": None, "probability": False, "colormap": "viridis", "opacity": 0.5},
    "keypoints": {"detection": None, "min_score": None, "skeleton": True, "heatmap": None, "names": False,
                  "colormap": "inferno", "opacity": 1.0},
    # with ground truth (TRAINING_STAGES); level None = all levels, gt None = every object
    "truth": {"labels": True, "opacity": 1.0},
    "anchor_targets": {"level": None, "gt": None, "show": "sampled", "lines": True, "predicted": False,
                       "opacity": 1.0},
    "roi_targets": {"gt": None, "show": "sampled", "predicted": False, "opacity": 1.0},
    "loss": {"level": None, "mode": "share", "rois": 30, "colormap": "inferno", "opacity": 0.7},
}
REDUCTIONS = ("mean", "max", "l2", "channel")
MODES = ("prob", "logit")
ANCHOR_SHOW = ("sampled", "positive", "all")
ROI_SHOW = ("sampled", "positive")
LOSS_MODES = ("share", "bce")


def defaults() -> dict[str, dict]:
    return copy.deepcopy(DEFAULTS)


def merged(settings: dict | None) -> dict[str, dict]:
    out = defaults()
    for stage, values in (settings or {}).items():
        if stage not in out:
            raise LensError(stage, f"unknown stage; use one of {', '.join(DEFAULTS)}")
        for k, v in (values or {}).items():
            if k not in out[stage]:
                raise LensError(f"{stage}.{k}", f"unknown setting; use one of {', '.join(out[stage])}")
            out[stage][k] = v
    check(out)
    return out


def check(s: dict[str, dict]) -> None:
    def need(cond, key, msg):
        if not cond:
            raise LensError(key, msg)

    need(s["features"]["reduction"] in REDUCTIONS, "features.reduction", f"use one of {', '.join(REDUCTIONS)}")
    need(s["objectness"]["mode"] in MODES, "objectness.mode", "use prob or logit")
    need(s["anchor_targets"]["show"] in ANCHOR_SHOW, "anchor_targets.show", f"use one of {', '.join(ANCHOR_SHOW)}")
    need(s["roi_targets"]["show"] in ROI_SHOW, "roi_targets.show", f"use one of {', '.join(ROI_SHOW)}")
    need(int(s["loss"]["rois"]) >= 0, "loss.rois", "must be >= 0")
    need(s["loss"]["mode"] in LOSS_MODES, "loss.mode", f"use one of {', '.join(LOSS_MODES)}")
    for stage in ("features", "objectness", "proposals", "rois", "masks", "keypoints", "loss"):
        need(s[stage]["colormap"] in available(), f"{stage}.colormap", f"use one of {', '.join(available())}")
    for stage, values in s.items():
        op = values.get("opacity", 1.0)
        need(isinstance(op, (int, float)) and 0.0 <= op <= 1.0, f"{stage}.opacity", "must be between 0 and 1")
    need(int(s["proposals"]["top_n"]) >= 0, "proposals.top_n", "must be >= 0")
    need(int(s["features"]["channel"]) >= 0, "features.channel", "must be >= 0")
    need(0.0 <= float(s["masks"]["threshold"]) <= 1.0, "masks.threshold", "must be between 0 and 1")
    for stage in ("masks", "keypoints"):
        det = s[stage]["detection"]
        need(det is None or int(det) >= 0, f"{stage}.detection", "must be >= 0 (a final detection)")
