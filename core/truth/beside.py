"""Finding an image's annotation beside it: ``STEM.xml`` (VOC), ``STEM.txt`` with class names
(YOLO; also ``labels/`` mirroring ``images/``), ``annotations.json`` (COCO) in its folder."""

from __future__ import annotations

from pathlib import Path

from core.truth.common import Annotations
from core.truth.sources import open_cached
from core.truth.types import Truth
from core.truth.yolo import YoloFile, find_names_file

COCO_NAMES = ("annotations.json",)


def _mirrored_labels(image: Path) -> Path | None:
    """dataset/images/train/x.jpg -> dataset/labels/train/x.txt (YOLO's layout)."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            return Path(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt")
    return None


def beside(image: Path) -> Annotations | None:
    xml = image.with_suffix(".xml")
    if xml.is_file():
        return open_cached(xml)
    for txt in (image.with_suffix(".txt"), _mirrored_labels(image)):
        if txt is not None and txt.is_file():
            names = find_names_file(txt.parent)
            if names is not None:
                return YoloFile(txt, names)
    for name in COCO_NAMES:
        js = image.parent / name
        if js.is_file():
            return open_cached(js)
    return None


def find_for_image(image_path, image_size_hw, class_names, annotations=None) -> Truth | None:
    """The truth of one image. With ``annotations`` (a path or an opened ``Annotations``) from it;
    without, from beside the image: ``STEM.xml`` (VOC), ``STEM.txt`` with ``classes.txt`` or
    ``data.yaml`` in its folder or one of the two above it (YOLO; also ``labels/`` mirroring
    ``images/``), or an ``annotations.json`` (COCO) in the image's folder. None if nothing is found.
    Raises ``TruthError`` for a file that is found but bad."""
    if annotations is not None:
        ann = annotations if isinstance(annotations, Annotations) else open_cached(annotations)
        return ann.for_image(image_path, image_size_hw, class_names)
    ann = beside(Path(image_path))
    return None if ann is None else ann.for_image(image_path, image_size_hw, class_names)
