"""COCO JSON (``instances_*.json``): images matched by ``file_name``, categories of any id
numbering, ``bbox`` = [x, y, w, h] in pixels, ``iscrowd`` kept as a flag. Indexed by pycocotools
(its prints silenced); the structure is checked first so that a bad file is one clear line."""

from __future__ import annotations

import contextlib
import io
import json
from collections import defaultdict
from pathlib import Path, PurePosixPath

from core.errors import TruthError
from core.truth.common import Annotations, RawObject, number, read_capped

MAX_BYTES = 2 * 2**30  # instances_train2017.json is 448 MiB


def _id(v) -> bool:
    return isinstance(v, (int, str)) and not isinstance(v, bool)


def check(path: Path, data) -> None:
    """Structure a reader relies on; one line naming the first problem."""
    if not isinstance(data, dict):
        raise TruthError(path, "not a COCO annotation file (the top level is not an object)")
    images = data.get("images")
    if not isinstance(images, list):
        raise TruthError(path, "not a COCO annotation file (no 'images' list)")
    if not images:
        raise TruthError(path, "lists no images")
    anns = data.get("annotations")
    if not isinstance(anns, list):
        raise TruthError(path, "no 'annotations' list (an image-info file has no truth)")
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise TruthError(path, "no 'categories' list")
    image_ids, cat_ids, ann_ids = set(), set(), set()
    for i, im in enumerate(images):
        if not isinstance(im, dict) or not _id(im.get("id")) or not isinstance(im.get("file_name"), str):
            raise TruthError(path, f"images[{i}]: needs an 'id' and a 'file_name'")
        if im["id"] in image_ids:
            raise TruthError(path, f"image id {im['id']!r} appears twice")
        image_ids.add(im["id"])
        for key in ("width", "height"):
            if key in im:
                number(im[key], path, f"image {im['id']!r} {key}")
    for i, c in enumerate(cats):
        if not isinstance(c, dict) or not _id(c.get("id")) or not isinstance(c.get("name"), str):
            raise TruthError(path, f"categories[{i}]: needs an 'id' and a 'name'")
        if c["id"] in cat_ids:
            raise TruthError(path, f"category id {c['id']!r} appears twice")
        cat_ids.add(c["id"])
    for i, a in enumerate(anns):
        if not isinstance(a, dict) or not _id(a.get("id")):
            raise TruthError(path, f"annotations[{i}]: needs an 'id'")
        ref = f"annotation {a['id']!r}"
        if a["id"] in ann_ids:
            raise TruthError(path, f"{ref} appears twice")
        ann_ids.add(a["id"])
        if a.get("image_id") not in image_ids:
            raise TruthError(path, f"{ref}: image_id {a.get('image_id')!r} matches no image")
        if a.get("category_id") not in cat_ids:
            raise TruthError(path, f"{ref}: category_id {a.get('category_id')!r} matches no category")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise TruthError(path, f"{ref}: 'bbox' must be [x, y, width, height]")
        for v in bbox:
            number(v, path, f"{ref} bbox")


class CocoAnnotations(Annotations):
    format = "coco"

    def __init__(self, source: Path, data: dict):
        super().__init__(source)
        from pycocotools.coco import COCO

        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()
        self._by_name: dict[str, list] = defaultdict(list)
        for im in data["images"]:
            self._by_name[PurePosixPath(im["file_name"].replace("\\", "/")).name].append(im)

    def image_names(self) -> list[str]:
        return [im["file_name"] for im in self.coco.dataset["images"]]

    def _entry(self, image_path: Path):
        cands = self._by_name.get(image_path.name, [])
        if len(cands) > 1:
            full = image_path.as_posix()
            named = len(cands)
            cands = [im for im in cands if full.endswith("/" + im["file_name"].replace("\\", "/").lstrip("/"))
                     or full == im["file_name"]]
            if len(cands) != 1:
                raise TruthError(self.source, f"{named} images are named '{image_path.name}'; "
                                              f"their file_name paths do not tell which one this is")
        return cands[0] if cands else None

    def _objects(self, image_path: Path):
        im = self._entry(image_path)
        if im is None:
            return None
        coco = self.coco
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[im["id"]]))
        objects = []
        for a in anns:
            x, y, w, h = (float(v) for v in a["bbox"])
            objects.append(RawObject(f"annotation {a['id']!r}", coco.cats[a["category_id"]]["name"],
                                     (x, y, x + w, y + h), crowd=bool(a.get("iscrowd", 0))))
        declared = None
        if "width" in im and "height" in im:
            declared = (float(im["height"]), float(im["width"]))
        return self.source, objects, declared


def open_file(path: Path) -> CocoAnnotations:
    raw = read_capped(path, MAX_BYTES, "a COCO annotation file")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise TruthError(path, f"not valid JSON (line {err.lineno} column {err.colno}: {err.msg})") from None
    except (UnicodeDecodeError, RecursionError, ValueError) as err:
        raise TruthError(path, f"not valid JSON ({type(err).__name__})") from None
    check(path, data)
    return CocoAnnotations(path, data)
