"""Per-stage settings: plain dicts (JSON, QSettings and CLI friendly). Defaults come from the stage
registry; ``check`` validates them by key; ``fit`` bounds them by a trace (the app's controls)."""

from __future__ import annotations

import copy

from core.colormaps import available
from core.errors import LensError
from core.overlays.registry import REGISTRY

REDUCTIONS = ("mean", "max", "l2", "channel")
MODES = ("prob", "logit")
ANCHOR_SHOW = ("sampled", "positive", "all")
ROI_SHOW = ("sampled", "positive")
LOSS_MODES = ("share", "bce")


def defaults() -> dict[str, dict]:
    return {name: copy.deepcopy(st.defaults) for name, st in REGISTRY.items()}


def merged(settings: dict | None) -> dict[str, dict]:
    out = defaults()
    for stage, values in (settings or {}).items():
        if stage not in out:
            raise LensError(stage, f"unknown stage; use one of {', '.join(out)}")
        for k, v in (values or {}).items():
            if k not in out[stage]:
                raise LensError(f"{stage}.{k}", f"unknown setting; use one of {', '.join(out[stage])}")
            out[stage][k] = v
    check(out)
    return out


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check(s: dict[str, dict]) -> None:
    """Validate by key (and each stage's ``choices``), so a new stage's settings are checked as the
    old ones are."""
    def need(cond, key, msg):
        if not cond:
            raise LensError(key, msg)

    for stage, values in s.items():
        choices = REGISTRY[stage].choices if stage in REGISTRY else {}
        for key, v in values.items():
            name = f"{stage}.{key}"
            if key in choices:
                need(v in choices[key], name, f"use one of {', '.join(choices[key])}")
            elif key == "opacity":
                need(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0, name,
                     "must be between 0 and 1")
            elif key == "colormap":
                need(v in available(), name, f"use one of {', '.join(available())}")
            elif key in ("top_n", "channel", "rois"):
                need(_int(v) and v >= 0, name, "must be an integer >= 0")
            elif key in ("roi", "anchor", "gt", "heatmap"):
                need(v is None or (_int(v) and v >= 0), name, "must be empty or an integer >= 0")
            elif key == "detection":
                need(v is None or (_int(v) and v >= 0), name, "must be >= 0 (a final detection)")
            elif key == "threshold":
                need(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0, name,
                     "must be between 0 and 1")
            elif key == "min_score":
                need(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)), name,
                     "must be empty or a number")
            elif key == "cell":
                need(v is None or (isinstance(v, (list, tuple)) and len(v) == 2
                                   and all(isinstance(x, int) and x >= 0 for x in v)), name, "must be ROW,COL")


def bounds(trace) -> dict:
    """What the controls may choose from for this trace: levels, channels per feature level,
    anchors per cell and grid per anchor level, RoI count."""
    return {
        "feature_levels": list(trace.features),
        "channels": {k: int(f.data.shape[0]) for k, f in trace.features.items()},
        "anchor_levels": list(trace.levels),
        "per_cell": {a.name: a.per_cell for a in trace.anchors},
        "grid": {a.name: tuple(a.grid) for a in trace.anchors},
        "anchor_names": {a.name: [f"size {a.describe_anchor(k)[0]:g}, ratio {a.describe_anchor(k)[1]:g}"
                                  for k in range(a.per_cell)] for a in trace.anchors},
        "rois": int(len(trace.box_head.rois)),
    }


def fit(settings: dict[str, dict], trace) -> dict[str, dict]:
    """A copy of ``settings`` every value of which this trace can draw: a level it lacks becomes
    its first, a channel or anchor cell past the end is clamped to the last, an anchor or RoI
    past the end goes back to its default."""
    s = copy.deepcopy(settings)
    b = bounds(trace)
    for stage, levels in (("features", b["feature_levels"]), ("anchors", b["anchor_levels"]),
                          ("objectness", b["anchor_levels"])):
        if stage in s and s[stage].get("level") not in levels:
            s[stage]["level"] = levels[0] if levels else None  # the anchor cell is clamped below
    if "features" in s and s["features"]["level"] is not None:
        n = b["channels"].get(s["features"]["level"], 1)
        s["features"]["channel"] = min(max(int(s["features"]["channel"]), 0), max(n - 1, 0))
    if "anchors" in s and s["anchors"]["cell"] is not None:
        rows, cols = b["grid"].get(s["anchors"]["level"], (0, 0))
        r, c = s["anchors"]["cell"]
        s["anchors"]["cell"] = [min(max(int(r), 0), rows - 1), min(max(int(c), 0), cols - 1)] if rows and cols else None
    if "objectness" in s and s["objectness"]["anchor"] is not None:
        if s["objectness"]["anchor"] >= b["per_cell"].get(s["objectness"]["level"], 0):
            s["objectness"]["anchor"] = None
    if "rois" in s and s["rois"]["roi"] is not None and s["rois"]["roi"] >= b["rois"]:
        s["rois"]["roi"] = None
    kp = getattr(trace, "keypoints", None)  # a keypoint this model does not have: no heatmap
    if "keypoints" in s and s["keypoints"]["heatmap"] is not None and (kp is None or
                                                                     s["keypoints"]["heatmap"] >= len(kp.names)):
        s["keypoints"]["heatmap"] = None
    for stage in ("anchor_targets", "loss"):  # None: every level (the level that pays most)
        if stage in s and s[stage].get("level") not in (None, "", *b["anchor_levels"]):
            s[stage]["level"] = None
    n_det = len(trace.detections.keep)
    n_gt = len(trace.truth) if getattr(trace, "truth", None) is not None else 0
    for values in s.values():  # a detection or truth object that this trace does not have: all of them
        if values.get("detection") is not None and values["detection"] >= n_det:
            values["detection"] = None
        if values.get("gt") is not None and values["gt"] >= n_gt:
            values["gt"] = None
    return s
