"""The anchor what-if a trace can carry (numpy only: the window's process reads it without torch).
Computed by core.analysis.anchor_whatif; drawn by the anchors and anchor targets stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MATCHES = ("strong", "rescued", "starved")


@dataclass(frozen=True, eq=False)
class AnchorWhatIf:
    """A hypothetical ``AnchorGenerator(sizes, aspect_ratios)`` on this trace's feature maps: its
    anchor levels, the RPN's training labels with it (``targets``: label, matched, IoU, the
    minibatch for the training view's seed; no objectness: the RPN head is not rerun), and per
    truth object how it ends up with the model's generator (``before``) and with this one
    (``after``): an index into MATCHES, -1 for an object RPN training leaves out (a crowd region)."""

    sizes: tuple
    aspect_ratios: tuple
    paste: str  # the AnchorGenerator(...) line
    levels: tuple  # core.tracing.types.AnchorLevel per level, the hypothetical anchors
    targets: object  # core.training.types.AnchorTargets with these anchors, or None without truth
    gt_truth: np.ndarray  # [G] int64 truth index of each target row
    gt_boxes: np.ndarray  # [G, 4] model frame
    gt_boxes_image: np.ndarray  # [G, 4] original pixels
    before: np.ndarray  # [N truth] int8
    after: np.ndarray  # [N truth] int8
    seed: int
    best_before: np.ndarray  # [N truth] float32 best anchor IoU, model's anchors (-1: left out)
    best_after: np.ndarray  # [N truth] float32 the same with these anchors

    def object_line(self, i: int, name: str = "") -> str:
        """``1 rectangle: rescued (best anchor IoU 0.64) -> rescued (0.28)`` ("" for an object left out)."""
        if not 0 <= i < len(self.after) or self.after[i] < 0:
            return ""
        head = f"{i} {name}".strip()
        return (f"{head}: {MATCHES[self.before[i]]} (best anchor IoU {self.best_before[i]:.2f}) -> "
                f"{MATCHES[self.after[i]]} ({self.best_after[i]:.2f})")

    def counts(self, which: str = "after") -> dict:
        v = self.before if which == "before" else self.after
        return {m: int((v == i).sum()) for i, m in enumerate(MATCHES)}

    def line(self) -> str:
        """``strong / rescued / starved 3/2/0 -> 4/1/0`` for this image ("" without truth)."""
        if self.targets is None:
            return ""
        b, a = self.counts("before"), self.counts("after")
        return (f"strong / rescued / starved {b['strong']}/{b['rescued']}/{b['starved']} -> "
                f"{a['strong']}/{a['rescued']}/{a['starved']}")

    def caption(self) -> str:
        head = f"what-if {self.paste}"
        counts = self.line()
        return (f"{head}: {counts}" if counts else f"{head} (no truth: no counts)") + \
            "; the RPN head's objectness is not recomputed, the other stages keep the model's anchors"
