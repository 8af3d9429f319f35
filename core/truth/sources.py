"""An annotation source, opened: a COCO json, a VOC xml or folder of them, a YOLO txt or folder; the
format detected from the file (``open_annotations``), parsed once per file version (``open_cached``)."""

from __future__ import annotations

from pathlib import Path

from core.errors import TruthError
from core.truth import coco, voc, yolo
from core.truth.common import Annotations


def open_annotations(path) -> Annotations:
    """Open a COCO json, a VOC xml or folder of them, or a YOLO txt or folder (with classes.txt or
    data.yaml); the format is detected. Raises ``TruthError`` naming the file and the problem."""
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
