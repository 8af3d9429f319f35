"""``detections_coco.json``: an analysis's final detections in COCO's results format
(``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``), so that pycocotools, TIDE and
FiftyOne read the detections the verdicts were made on.

Where an image's truth is a COCO file (``--annotations`` or an ``annotations.json`` beside it), its
``image_id`` is that file's id for the image and ``category_id`` the file's id for the class name;
otherwise ``image_id`` is the image's position in ``analysis.jsonl`` (1-based, as ``summary.json``'s
COCOeval numbers them) and ``category_id`` the model's class index. Boxes and scores are those of
``analysis.jsonl`` (original pixels)."""

from __future__ import annotations

from pathlib import Path

from core.errors import LensError


def _coco_of(image: str, annotations):
    """The COCO annotations an image's truth came from, or None (VOC, YOLO, none)."""
    from core.truth.beside import beside
    from core.truth.sources import open_cached

    try:
        if annotations is not None:
            ann = annotations if not isinstance(annotations, (str, Path)) else open_cached(annotations)
        else:
            ann = beside(Path(image))
    except LensError:
        return None
    return ann if getattr(ann, "format", "") == "coco" else None


def coco_results(records: list[dict], annotations=None) -> list[dict]:
    """The detections of analysis.jsonl records in COCO's results format (see the module's doc)."""
    out = []
    for i, r in enumerate(records, start=1):
        coco = _coco_of(r["image"], annotations)
        image_id, cats = i, {}
        if coco is not None:
            try:
                entry = coco._entry(Path(r["image"]))
            except LensError:
                entry = None
            if entry is not None:
                image_id = entry["id"]
                cats = {c["name"]: c["id"] for c in coco.coco.dataset["categories"]}
        for d in r["detections"]:
            x1, y1, x2, y2 = d["box"]
            out.append({"image_id": image_id, "category_id": cats.get(d["name"], int(d["label"])),
                        "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                        "score": d["score"]})
    return out
