"""The stage registry: every stage the app and the export can draw, in drawing order.

A stage is one entry: its name, its title, the key that toggles it in the app (the seven
inference stages have 1-7), its overlay module (``layers(trace, settings) -> StageLayers``), its
default settings, and the trace it applies to (``available``: Mask R-CNN's masks only where the
trace has them, ground truth only where there is some). The stage panel shows a row per stage the
current trace has; ``rcnn-lens export --overlays all`` draws those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType


def always(trace) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    module: ModuleType  # layers(trace, settings) -> StageLayers
    defaults: dict = field(default_factory=dict)  # settings, JSON-friendly; "opacity" is 0..1
    key: int | None = None  # the digit that toggles it in the app
    available: Callable[[object], bool] = always  # does this trace have the stage?
    shown: bool = False  # visible when the app first starts
    group: str = "inference"  # "inference" (the seven), "heads" (masks, keypoints), "training" (with truth)
    choices: dict = field(default_factory=dict)  # setting -> its allowed values (checked by settings.check)
    say_absent: bool = False  # drawn (an empty stage whose caption says why) where the trace lacks it


REGISTRY: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Add (or replace) a stage; drawing order is registration order."""
    REGISTRY[stage.name] = stage
    return stage


def available(trace) -> list[str]:
    """The stages this trace has (all of them when there is no trace yet)."""
    return [n for n, s in REGISTRY.items() if trace is None or s.available(trace)]


def group(name: str) -> list[str]:
    return [n for n, s in REGISTRY.items() if s.group == name]
