"""Stage overlays: ``Trace`` + per-stage settings -> layer data in original-image pixels.

One module per stage, each with ``layers(trace, settings) -> StageLayers``, named in the registry
below (core.overlays.registry): a new stage is one ``register(Stage(...))``. The seven inference
stages have keys 1-7; ``masks`` and ``keypoints`` exist for models with those heads; ``truth``,
``anchor_targets``, ``roi_targets`` and ``loss`` for a trace with ground truth (drawn empty, with a
caption saying why, when asked for without it). No Qt, no torch.
"""

from __future__ import annotations

from core.overlays import (
    anchor_targets,
    anchors,
    detections,
    features,
    keypoints,
    loss,
    masks,
    objectness,
    proposals,
    roi_targets,
    rois,
    truth,
)
from core.overlays import input as input_
from core.overlays.registry import REGISTRY, Stage, available, group, register
from core.overlays.settings import ANCHOR_SHOW, LOSS_MODES, MODES, REDUCTIONS, ROI_SHOW, defaults, merged

register(Stage("input", "Input (resized, padded)", input_, {"opacity": 1.0}, key=1))
register(Stage("features", "Backbone features", features,
               {"level": None, "reduction": "mean", "channel": 0, "colormap": "viridis", "opacity": 0.6}, key=2,
               choices={"reduction": REDUCTIONS}))
register(Stage("anchors", "Anchors", anchors, {"level": None, "cell": None, "opacity": 1.0}, key=3))
register(Stage("objectness", "RPN objectness", objectness,
               {"level": None, "anchor": None, "mode": "prob", "colormap": "inferno", "opacity": 0.6}, key=4,
               choices={"mode": MODES}))
register(Stage("proposals", "Proposals", proposals,
               {"top_n": 50, "pre_nms": False, "colormap": "turbo", "opacity": 1.0}, key=5))
register(Stage("rois", "RoIs (RoIAlign)", rois,
               {"roi": None, "show_all": True, "colormap": "viridis", "opacity": 0.7}, key=6))
register(Stage("detections", "Detections", detections, {"suppressed": False, "opacity": 1.0}, key=7, shown=True))
# the extra heads of Mask / Keypoint R-CNN: only for models that have them
register(Stage("masks", "Masks (Mask R-CNN)", masks,
               {"threshold": 0.5, "detection": None, "probability": False, "roialign": False, "colormap": "viridis",
                "opacity": 0.5},
               available=lambda tr: tr.masks is not None, group="heads"))
register(Stage("keypoints", "Keypoints (Keypoint R-CNN)", keypoints,
               {"detection": None, "min_score": None, "skeleton": True, "heatmap": None, "names": False,
                "roialign": False, "colormap": "inferno", "opacity": 1.0},
               available=lambda tr: tr.keypoints is not None, group="heads"))
# with ground truth; level None = all levels, gt None = every object
register(Stage("truth", "Ground truth", truth, {"labels": True, "opacity": 1.0},
               available=lambda tr: tr.truth is not None, group="training", say_absent=True, shown=True))
register(Stage("anchor_targets", "Anchor targets", anchor_targets,
               {"level": None, "gt": None, "show": "sampled", "lines": True, "predicted": False, "opacity": 1.0},
               available=lambda tr: tr.training is not None, group="training", say_absent=True,
               choices={"show": ANCHOR_SHOW}))
register(Stage("roi_targets", "RoI targets", roi_targets,
               {"gt": None, "show": "sampled", "predicted": False, "opacity": 1.0},
               available=lambda tr: tr.training is not None, group="training", say_absent=True,
               choices={"show": ROI_SHOW}))
register(Stage("loss", "Training loss", loss,
               {"level": None, "mode": "share", "rois": 10, "colormap": "inferno", "opacity": 0.7},
               available=lambda tr: tr.training is not None, group="training", say_absent=True,
               choices={"mode": LOSS_MODES}))

# the groups by name (as core.tracing.types has them)
STAGES, EXTRA_STAGES, TRAINING_STAGES = tuple(group("inference")), tuple(group("heads")), tuple(group("training"))
ALL_STAGES = tuple(REGISTRY)


def stage_module(stage: str):
    if stage not in REGISTRY:
        from core.errors import LensError

        raise LensError(stage, f"unknown stage; use one of {', '.join(REGISTRY)}")
    return REGISTRY[stage].module


def layers_for(trace, stage: str, settings: dict | None = None):
    """The StageLayers of one stage; ``settings`` is that stage's dict (defaults filled in)."""
    full = merged({stage: settings or {}})
    return stage_module(stage).layers(trace, full[stage])


def all_layers(trace, stages=None, settings: dict | None = None) -> list:
    """The StageLayers of ``stages`` (default: every stage but the training ones) in drawing order:
    those this trace has, and those that say why they are empty (training stages without truth)."""
    full = merged(settings)
    want = [n for n in REGISTRY if REGISTRY[n].group != "training"] if stages is None else list(stages)
    return [REGISTRY[st].module.layers(trace, full[st]) for st in REGISTRY
            if st in want and (REGISTRY[st].available(trace) or REGISTRY[st].say_absent)]


__all__ = ["REGISTRY", "Stage", "register", "available", "layers_for", "all_layers", "stage_module",
           "defaults", "merged", "STAGES", "EXTRA_STAGES", "TRAINING_STAGES", "ALL_STAGES"]
