"""Stage overlays: ``Trace`` + per-stage settings -> layer data in original-image pixels.

One module per stage, each with ``layers(trace, settings) -> StageLayers``, named in the registry
below (core.overlays.registry): a new stage is one ``register(Stage(...))``. No Qt, no torch.
"""

from __future__ import annotations

from . import anchors, detections, features, objectness, proposals, rois
from . import input as input_
from .registry import REGISTRY, Stage, available, register
from .settings import defaults, merged

register(Stage("input", "Input (resized, padded)", input_, {"opacity": 1.0}, key=1))
register(Stage("features", "Backbone features", features,
               {"level": None, "reduction": "mean", "channel": 0, "colormap": "viridis", "opacity": 0.6}, key=2))
register(Stage("anchors", "Anchors", anchors, {"level": None, "cell": None, "opacity": 1.0}, key=3))
register(Stage("objectness", "RPN objectness", objectness,
               {"level": None, "anchor": None, "mode": "prob", "colormap": "inferno", "opacity": 0.6}, key=4))
register(Stage("proposals", "Proposals", proposals,
               {"top_n": 50, "pre_nms": False, "colormap": "turbo", "opacity": 1.0}, key=5))
register(Stage("rois", "RoIs (RoIAlign)", rois,
               {"roi": None, "show_all": True, "colormap": "viridis", "opacity": 0.7}, key=6))
register(Stage("detections", "Detections", detections, {"suppressed": False, "opacity": 1.0}, key=7, shown=True))


def stage_module(stage: str):
    if stage not in REGISTRY:
        from ..errors import LensError

        raise LensError(stage, f"unknown stage; use one of {', '.join(REGISTRY)}")
    return REGISTRY[stage].module


def layers_for(trace, stage: str, settings: dict | None = None):
    """The StageLayers of one stage; ``settings`` is that stage's dict (defaults filled in)."""
    full = merged({stage: settings or {}})
    return stage_module(stage).layers(trace, full[stage])


def all_layers(trace, stages=None, settings: dict | None = None) -> list:
    """The StageLayers of ``stages`` (default: all) that this trace has, in drawing order."""
    full = merged(settings)
    want = REGISTRY if stages is None else set(stages)
    return [REGISTRY[st].module.layers(trace, full[st]) for st in available(trace) if st in want]


__all__ = ["REGISTRY", "Stage", "register", "available", "layers_for", "all_layers", "stage_module", "defaults",
           "merged"]
