"""Finding an image's annotation beside it: ``STEM.xml`` (VOC), ``STEM.txt`` with class names
(YOLO; also ``labels/`` mirroring ``images/``), ``annotations.json`` (COCO) in its folder."""

from __future__ import annotations

from pathlib import Path

from . import Annotations, open_cached
from .yolo import YoloFile, find_names_file

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
