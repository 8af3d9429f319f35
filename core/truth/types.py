"""One image's ground truth (``Truth``) and the note for names the model lacks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

FORMATS = ("coco", "voc", "yolo")


@dataclass(frozen=True, eq=False)
class Truth:
    boxes: np.ndarray  # [N, 4] float32 xyxy, original pixels
    names: tuple[str, ...]  # annotated class name per object
    labels: np.ndarray  # [N] int64 model class index; -1: not a class of this model
    difficult: np.ndarray = field(default=None)  # [N] bool
    source: str = ""  # the annotation file (or folder) it was read from
    crowd: np.ndarray = field(default=None)  # [N] bool: COCO iscrowd (a region, not one object)
    format: str = ""  # coco, voc or yolo

    def __post_init__(self):
        n = int(np.asarray(self.boxes).reshape(-1, 4).shape[0])
        object.__setattr__(self, "boxes", np.asarray(self.boxes, np.float32).reshape(-1, 4))
        object.__setattr__(self, "labels", np.asarray(self.labels, np.int64).reshape(-1))
        for name in ("difficult", "crowd"):
            v = getattr(self, name)
            object.__setattr__(self, name, np.zeros(n, bool) if v is None else np.asarray(v, bool).reshape(-1))
        object.__setattr__(self, "names", tuple(str(s) for s in self.names))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def known(self) -> np.ndarray:
        """[N] bool: objects whose class the model has (label >= 0)."""
        return self.labels >= 0

    @property
    def trainable(self) -> np.ndarray:
        """[N] bool: the objects torchvision would train on: a class of the model, not a crowd region
        (torchvision's detection reference drops ``iscrowd`` annotations)."""
        return self.known & ~self.crowd

    def missing(self) -> Counter:
        """Annotated names the model lacks -> how many objects carry them."""
        return Counter(n for n, lab in zip(self.names, self.labels) if lab < 0)

    @property
    def warnings(self) -> list[str]:
        return missing_warnings(self.missing())

    def at(self, x: float, y: float) -> int:
        """The object under original pixel (x, y) (the smallest box containing it), or -1."""
        b = self.boxes
        inside = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])
        if not inside.any():
            return -1
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        idx = np.nonzero(inside)[0]
        return int(idx[np.argmin(area[idx])])

    def records(self) -> list[dict]:
        """``[{"box": [x1, y1, x2, y2], "label": i, "name": s}]`` (what ``trace --json`` prints); ``"label":
        None`` (JSON null) for a name the model lacks: truth without a label."""
        out = []
        for i in range(len(self)):
            lab = int(self.labels[i])
            r = {"box": [float(v) for v in self.boxes[i]], "label": lab if lab >= 0 else None, "name": self.names[i]}
            if self.difficult[i]:
                r["difficult"] = True
            if self.crowd[i]:
                r["crowd"] = True
            out.append(r)
        return out


def missing_warnings(counts: Counter) -> list[str]:
    """``3 objects of 'person': not a class of this model``, one line per name, most frequent first."""
    return [f"{n} object{'s' if n != 1 else ''} of '{name}': not a class of this model"
            for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
