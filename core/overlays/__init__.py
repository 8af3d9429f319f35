"""Stage overlays: ``Trace`` + per-stage settings -> layer data in original-image pixels.

One module per stage (``input``, ``features``, ``anchors``, ``objectness``, ``proposals``,
``rois``, ``detections``; ``masks``, ``keypoints`` for models with those heads (EXTRA_STAGES);
with ground truth ``truth``, ``anchor_targets``, ``roi_targets``, ``loss``), each with
``layers(trace, settings) -> StageLayers``. No Qt, no torch.
"""

from __future__ import annotations

from importlib import import_module

from ..stages import EXTRA_STAGES, STAGES, TRAINING_STAGES
from .settings import defaults, merged

ALL_STAGES = STAGES + EXTRA_STAGES + TRAINING_STAGES


def stage_module(stage: str):
    if stage not in ALL_STAGES:
        from ..errors import LensError

        raise LensError(stage, f"unknown stage; use one of {', '.join(ALL_STAGES)}")
    return import_module(f".{stage}", __name__)


def has_stage(trace, stage: str) -> bool:
    """Whether the trace has this stage: masks/keypoints (EXTRA_STAGES) only for models with those heads."""
    return stage not in EXTRA_STAGES or getattr(trace, stage, None) is not None


def layers_for(trace, stage: str, settings: dict | None = None):
    """The StageLayers of one stage; ``settings`` is that stage's dict (defaults filled in)."""
    full = merged({stage: settings or {}})
    return stage_module(stage).layers(trace, full[stage])


def all_layers(trace, stages=STAGES + EXTRA_STAGES, settings: dict | None = None) -> list:
    """The StageLayers of the chosen stages (those the trace has), in the pipeline's order."""
    full = merged(settings)
    return [stage_module(st).layers(trace, full[st]) for st in ALL_STAGES if st in stages and has_stage(trace, st)]


__all__ = ["layers_for", "all_layers", "has_stage", "defaults", "merged", "STAGES", "EXTRA_STAGES", "TRAINING_STAGES",
           "ALL_STAGES"]
