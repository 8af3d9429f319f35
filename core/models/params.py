"""The seven test-time thresholds, under torchvision's FasterRCNN keyword names: read from a model,
set on a model, checked. Shared by the loader (a builder's options), the trace (its params) and the
check against ``model(images)``."""

from __future__ import annotations

import numbers

from core.errors import ModelError

RPN_PARAMS = ("rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test", "rpn_nms_thresh", "rpn_score_thresh")
BOX_PARAMS = ("box_score_thresh", "box_nms_thresh", "box_detections_per_img")
PARAMS = RPN_PARAMS + BOX_PARAMS
FRACTION_PARAMS = ("rpn_nms_thresh", "box_nms_thresh", "rpn_score_thresh", "box_score_thresh")
COUNT_PARAMS = ("rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test", "box_detections_per_img")

# the keywords a model made by a builder or a pickle takes after it was built (the seven + the resize)
SETTERS = {
    "rpn_pre_nms_top_n_test": lambda m, v: m.rpn._pre_nms_top_n.__setitem__("testing", int(v)),
    "rpn_post_nms_top_n_test": lambda m, v: m.rpn._post_nms_top_n.__setitem__("testing", int(v)),
    "rpn_nms_thresh": lambda m, v: setattr(m.rpn, "nms_thresh", float(v)),
    "rpn_score_thresh": lambda m, v: setattr(m.rpn, "score_thresh", float(v)),
    "box_score_thresh": lambda m, v: setattr(m.roi_heads, "score_thresh", float(v)),
    "box_nms_thresh": lambda m, v: setattr(m.roi_heads, "nms_thresh", float(v)),
    "box_detections_per_img": lambda m, v: setattr(m.roi_heads, "detections_per_img", int(v)),
    "min_size": lambda m, v: setattr(m.transform, "min_size", (int(v),) if isinstance(v, int) else tuple(v)),
    "max_size": lambda m, v: setattr(m.transform, "max_size", int(v)),
}


def model_params(module) -> dict:
    """The model's own test-time thresholds, under torchvision's FasterRCNN keyword names."""
    rpn, rh = module.rpn, module.roi_heads
    return {
        "rpn_pre_nms_top_n_test": int(rpn._pre_nms_top_n["testing"]),
        "rpn_post_nms_top_n_test": int(rpn._post_nms_top_n["testing"]),
        "rpn_nms_thresh": float(rpn.nms_thresh),
        "rpn_score_thresh": float(rpn.score_thresh),
        "box_score_thresh": float(rh.score_thresh),
        "box_nms_thresh": float(rh.nms_thresh),
        "box_detections_per_img": int(rh.detections_per_img),
    }


def set_params(module, params: dict) -> None:
    """Set the keywords of ``params`` that a built model takes (SETTERS) on ``module``."""
    for k, v in params.items():
        if k in SETTERS:
            SETTERS[k](module, v)


def check_params(params: dict) -> None:
    """Raise ModelError (one line) for an unknown name or a value out of range."""
    bad = [k for k in params if k not in PARAMS]
    if bad:
        raise ModelError(str(bad[0]), f"unknown parameter; use one of {', '.join(PARAMS)}")
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ModelError(k, f"must be a number, got {v!r}")
    for k in FRACTION_PARAMS:
        if k in params and not 0.0 <= float(params[k]) <= 1.0:
            raise ModelError(k, f"must be between 0 and 1, got {params[k]}")
    for k in COUNT_PARAMS:
        if k in params and int(params[k]) < 0:
            raise ModelError(k, f"must be >= 0, got {params[k]}")
