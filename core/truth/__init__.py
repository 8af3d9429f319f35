"""Ground truth: annotated boxes in original pixels with the model's class indices.

Readers (``coco``, ``voc``, ``yolo``) turn an annotation file or folder into ``Truth`` objects per
image; names map onto the model's classes by name. Annotation files are untrusted input.

The contract the rest of the core builds on (training targets, per-object verdicts, analysis):

``Truth``: one image's objects. ``boxes`` [N, 4] float32 xyxy in original pixels, ``names`` the
annotated class name of each, ``labels`` [N] int64 the model's class index (-1 where the model has
no class of that name: kept as truth without a label), ``difficult`` [N] bool (VOC's flag; False
elsewhere), ``source`` the annotation file it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Truth:
    boxes: np.ndarray  # [N, 4] float32 xyxy, original pixels
    names: tuple[str, ...]  # annotated class name per object
    labels: np.ndarray  # [N] int64 model class index; -1: not a class of this model
    difficult: np.ndarray = field(default=None)  # [N] bool
    source: str = ""  # the annotation file (or folder) it was read from

    def __post_init__(self):
        n = int(np.asarray(self.boxes).reshape(-1, 4).shape[0])
        object.__setattr__(self, "boxes", np.asarray(self.boxes, np.float32).reshape(-1, 4))
        object.__setattr__(self, "labels", np.asarray(self.labels, np.int64).reshape(-1))
        if self.difficult is None:
            object.__setattr__(self, "difficult", np.zeros(n, bool))
        else:
            object.__setattr__(self, "difficult", np.asarray(self.difficult, bool).reshape(-1))
        object.__setattr__(self, "names", tuple(str(s) for s in self.names))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def known(self) -> np.ndarray:
        """[N] bool: objects whose class the model has (label >= 0)."""
        return self.labels >= 0
