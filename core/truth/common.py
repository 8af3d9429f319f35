"""What the readers share: reading a capped file, checking boxes against the image, mapping names
onto the model's classes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import TruthError
from core.truth.types import Truth

TOLERANCE = 1.0  # pixels a box may overhang the image (then clipped); further out is an error


@dataclass(frozen=True)
class RawObject:
    ref: str  # how the user finds it in the file: "object 3", "annotation 1234", "line 7"
    name: str
    box: tuple[float, float, float, float]  # xyxy, original pixels, not yet checked
    difficult: bool = False
    crowd: bool = False


class Annotations:
    """An opened annotation file or folder. ``for_image`` -> ``Truth`` (None: no entry for it)."""

    format = ""

    def __init__(self, source: Path):
        self.source = Path(source)

    def for_image(self, image_path, image_size_hw, class_names) -> Truth | None:
        found = self._objects(Path(image_path))
        if found is None:
            return None
        subject, objects, declared = found
        return build(subject, self.format, objects, declared, image_path, image_size_hw, class_names)

    def image_names(self) -> list[str]:
        """The image file names (or stems, for VOC/YOLO folders) this source annotates."""
        raise NotImplementedError

    def _objects(self, image_path: Path):
        """-> (subject file, [RawObject], declared (h, w) or None) or None."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.format} {self.source}>"


def read_capped(path: Path, limit: int, what: str, allow_empty: bool = False) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise TruthError(path, f"{size / 2**20:.0f} MiB is too large for {what} (limit {limit / 2**20:.0f} MiB)")
        data = path.read_bytes()
    except OSError as err:
        raise TruthError(path, f"cannot read ({err.strerror or err})") from None
    if not allow_empty and not data.strip():
        raise TruthError(path, "empty file")
    return data


def number(value, subject, where: str) -> float:
    """A finite float from JSON/XML/text, or a TruthError naming where it was."""
    try:
        if isinstance(value, bool):
            raise ValueError
        v = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise TruthError(subject, f"{where}: {value!r} is not a number") from None
    if not math.isfinite(v):
        raise TruthError(subject, f"{where}: {value!r} is not a finite number")
    return v


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name).casefold())


def class_index(class_names) -> dict:
    """Annotated name -> the model's class index: exact name first, else the same name ignoring case,
    spaces, '_' and '-' ('potted plant' = 'pottedplant') when that is unambiguous. Index 0 is the
    background and never matches; COCO's 'N/A' placeholders never match."""
    exact: dict[str, int] = {}
    loose: dict[str, set] = {}
    for i, n in enumerate(class_names or ()):
        if i == 0 or n in ("N/A", "__background__", ""):
            continue
        exact.setdefault(n, i)
        loose.setdefault(_norm(n), set()).add(i)
    return {"exact": exact, "loose": {k: next(iter(v)) for k, v in loose.items() if len(v) == 1}}


def map_name(index: dict, name: str) -> int:
    if name in index["exact"]:
        return index["exact"][name]
    return index["loose"].get(_norm(name), -1)


def build(subject, fmt: str, objects: list[RawObject], declared, image_path, image_size_hw, class_names):
    """Check ``objects`` against the image and map their names: -> core.truth.types.Truth."""
    h, w = (int(v) for v in image_size_hw)
    if declared is not None:
        dh, dw = (int(round(v)) for v in declared)
        if dh > 0 and dw > 0 and (dh, dw) != (h, w):
            raise TruthError(subject, f"image '{Path(image_path).name}' is {dw}x{dh} here but {w}x{h} on disk "
                                      f"(width x height): the boxes would not fit it")
    boxes = check_boxes(subject, [o.box for o in objects], [o.ref for o in objects],
                        [o.name for o in objects], (h, w))
    index = class_index(class_names)
    labels = [map_name(index, o.name) for o in objects]
    return Truth(boxes=boxes, names=tuple(o.name for o in objects), labels=np.asarray(labels, np.int64),
                 difficult=np.array([o.difficult for o in objects], bool),
                 crowd=np.array([o.crowd for o in objects], bool), source=str(subject), format=fmt)


def check_boxes(subject, boxes, refs, names, image_size_hw) -> np.ndarray:
    """xyxy boxes -> [N, 4] float32 clipped to the image. Overhanging by <= TOLERANCE px is clipped;
    further outside, empty (x2 <= x1 or y2 <= y1) or not finite: TruthError naming the object."""
    h, w = image_size_hw
    out = np.zeros((len(boxes), 4), np.float32)
    for i, (b, ref, name) in enumerate(zip(boxes, refs, names)):
        x1, y1, x2, y2 = (float(v) for v in b)
        where = f"{ref} ('{name}')"
        shown = f"[{x1:g}, {y1:g}, {x2:g}, {y2:g}]"
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            raise TruthError(subject, f"{where}: box {shown} is not finite")
        if x2 <= x1 or y2 <= y1:
            raise TruthError(subject, f"{where}: box {shown} is empty (x2 <= x1 or y2 <= y1)")
        if x1 < -TOLERANCE or y1 < -TOLERANCE or x2 > w + TOLERANCE or y2 > h + TOLERANCE:
            raise TruthError(subject, f"{where}: box {shown} lies outside the {w}x{h} image")
        c = (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h))
        if c[2] <= c[0] or c[3] <= c[1]:
            raise TruthError(subject, f"{where}: box {shown} has no area inside the {w}x{h} image")
        out[i] = c
        if out[i, 2] <= out[i, 0] or out[i, 3] <= out[i, 1]:  # torchvision trains on float32 boxes
            raise TruthError(subject, f"{where}: box {shown} has no width or height in float32 (torchvision "
                                      "refuses such a box)")
    return out
