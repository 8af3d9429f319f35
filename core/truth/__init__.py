"""Ground truth: annotated boxes in original pixels with the model's class indices.

Readers (``coco``, ``voc``, ``yolo``) turn an annotation file or folder into ``Truth`` objects per
image; names map onto the model's classes by name. Annotation files are untrusted input: JSON is
size-capped, XML goes through defusedxml (no DTD, no entities), YAML through ``yaml.safe_load``.

    ann = open_annotations("instances_val2017.json")      # COCO json, VOC xml/folder, YOLO txt/folder
    truth = ann.for_image("000000139.jpg", (426, 640), model.class_names)   # Truth | None
    truth = find_for_image("scene_1.png", (510, 547), model.class_names)    # looks beside the image

``Truth``: one image's objects. ``boxes`` [N, 4] float32 xyxy in original pixels, ``names`` the
annotated class name of each, ``labels`` [N] int64 the model's class index (-1 where the model has
no class of that name: kept as truth without a label), ``difficult`` [N] bool (VOC's flag; False
elsewhere), ``crowd`` [N] bool (COCO's ``iscrowd``; False elsewhere), ``source`` the annotation
file it came from.

Boxes (see ``common.check_boxes``): a box may overhang the image by at most ``TOLERANCE`` (1 px:
annotation tools round, VOC counts pixels from 1) and is then clipped to it; a box further outside,
empty or not finite is an error naming the file and the object. Coordinates: COCO ``[x, y, w, h]``
as is; VOC ``xmin - 1, ymin - 1, xmax, ymax`` (1-based pixel indices, as detectron2 reads them);
YOLO normalized ``cx cy w h`` times the image size.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TruthError

__all__ = ["Truth", "Annotations", "TruthError", "open_annotations", "find_for_image", "missing_warnings",
           "FORMATS"]

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


class Annotations:
    """An opened annotation file or folder. ``for_image`` -> ``Truth`` (None: no entry for it)."""

    format = ""

    def __init__(self, source: Path):
        self.source = Path(source)

    def for_image(self, image_path, image_size_hw, class_names) -> Truth | None:
        from .common import build

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


def open_annotations(path) -> Annotations:
    """Open a COCO json, a VOC xml or folder of them, or a YOLO txt or folder (with classes.txt or
    data.yaml); the format is detected. Raises ``TruthError`` naming the file and the problem."""
    from . import coco, voc, yolo

    p = Path(path).expanduser()
    if not p.exists():
        raise TruthError(p, "no such file or folder")
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix == ".json":
            return coco.open_file(p)
        if suffix == ".xml":
            return voc.open_file(p)
        if suffix == ".txt":
            return yolo.open_file(p)
        if suffix in (".yaml", ".yml"):
            return yolo.open_folder(p.parent, names_file=p)
        raise TruthError(p, "unknown annotation format; use a COCO .json, a VOC .xml or a YOLO .txt (or a folder)")
    if not p.is_dir():
        raise TruthError(p, "not a file or folder")
    vocs = voc.folder_files(p)
    if vocs:
        return voc.open_folder(p, vocs)
    if yolo.looks_like_folder(p):
        return yolo.open_folder(p)
    jsons = sorted(p.glob("*.json"))
    if len(jsons) == 1:
        return coco.open_file(jsons[0])
    if len(jsons) > 1:
        raise TruthError(p, f"{len(jsons)} .json files; name the COCO file itself")
    raise TruthError(p, "no annotations found: expected VOC .xml files, YOLO .txt files with classes.txt "
                        "or data.yaml, or a COCO .json")


def find_for_image(image_path, image_size_hw, class_names, annotations=None) -> Truth | None:
    """The truth of one image. With ``annotations`` (a path or an opened ``Annotations``) from it;
    without, from beside the image: ``STEM.xml`` (VOC), ``STEM.txt`` with ``classes.txt`` or
    ``data.yaml`` in its folder or one of the two above it (YOLO; also ``labels/`` mirroring
    ``images/``), or an ``annotations.json`` (COCO) in the image's folder. None if nothing is found.
    Raises ``TruthError`` for a file that is found but bad."""
    if annotations is not None:
        ann = annotations if isinstance(annotations, Annotations) else open_cached(annotations)
        return ann.for_image(image_path, image_size_hw, class_names)
    from .beside import beside

    ann = beside(Path(image_path))
    return None if ann is None else ann.for_image(image_path, image_size_hw, class_names)


_CACHE: dict = {}


def open_cached(path) -> Annotations:
    """``open_annotations`` remembered per (path, size, mtime): a big COCO file is parsed once."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return open_annotations(p)
    hit = _CACHE.get(key)
    if hit is None:
        hit = open_annotations(p)
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = hit
    return hit
