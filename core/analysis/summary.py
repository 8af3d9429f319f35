"""The numbers of an analysis (``summary.json``), from its per-image records (``analysis.jsonl``
lines): verdict counts overall and per class, TIDE error counts, proposal and anchor recall, and
COCO's mAP (pycocotools) on the same detections."""

from __future__ import annotations

import contextlib
import io
from collections import Counter

import numpy as np

from core.analysis.verdicts import ERRORS, VERDICTS

RECALL_IOUS = (0.5, 0.7)


def _counts(items, keys) -> dict:
    c = Counter(items)
    return {k: int(c.get(k, 0)) for k in keys}


def _ignored(o: dict) -> bool:
    """A crowd region or a VOC 'difficult' object: COCO's ignore (no verdict, iscrowd in mAP)."""
    return bool(o.get("crowd") or o.get("difficult"))


def judged_objects(records) -> list[dict]:
    """Objects that have a verdict (a class of the model, neither a crowd region nor VOC 'difficult')."""
    return [o for r in records for o in r["truth"] if o["verdict"] is not None]


def recall(objects, key: str, ious=RECALL_IOUS) -> dict:
    vals = np.array([o[key] if o[key] is not None else 0.0 for o in objects], np.float64)
    return {f"{t:g}": (round(float((vals >= t).mean()), 5) if vals.size else None) for t in ious}


def coco_data(records, class_names) -> tuple[list, list, list, list]:
    """(images, annotations, detections, categories) in COCO's formats, image ids 1.. in record order.
    Objects the model has no class for are left out; crowd regions and VOC 'difficult' objects are
    COCO crowd (ignored)."""
    images, anns, dets = [], [], []
    for i, r in enumerate(records, start=1):
        h, w = r["size"]
        images.append({"id": i, "height": h, "width": w})
        for o in r["truth"]:
            if o["label"] is None or o["label"] < 1 or (o["verdict"] is None and not _ignored(o)):
                continue
            x1, y1, x2, y2 = o["box"]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(o["label"]),
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                         "iscrowd": int(_ignored(o))})
        for d in r["detections"]:
            x1, y1, x2, y2 = d["box"]
            dets.append({"image_id": i, "category_id": int(d["label"]), "score": d["score"],
                         "bbox": [x1, y1, x2 - x1, y2 - y1]})
    cats = [{"id": k, "name": n} for k, n in enumerate(class_names) if k >= 1]
    return images, anns, dets, cats


def coco_evaluated(records, class_names, all_areas: bool = True):
    """pycocotools' COCOeval after ``evaluate()`` (per image and class), or None when there is no
    object to find or no detection. ``all_areas=False``: only the area range 'all' (what mAP reads)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets, cats = coco_data(records, class_names)
    if not any(a["iscrowd"] == 0 for a in anns) or not dets:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": cats}
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = [im["id"] for im in images]
        if not all_areas:
            ev.params.areaRng, ev.params.areaRngLbl = ev.params.areaRng[:1], ev.params.areaRngLbl[:1]
        ev.evaluate()
    return ev


def coco_map(records, class_names) -> tuple[float | None, float | None]:
    """(mAP@0.5, mAP@[0.5:0.95]) by pycocotools' COCOeval over all images (see ``coco_data``)."""
    ev = coco_evaluated(records, class_names)
    if ev is None:
        _, anns, _, _ = coco_data(records, class_names)
        return (None, None) if not any(a["iscrowd"] == 0 for a in anns) else (0.0, 0.0)
    return map_of(ev)


def map_of(ev) -> tuple[float | None, float | None]:
    """(mAP@0.5, mAP@[0.5:0.95]) of an evaluated COCOeval: its ``accumulate`` and ``summarize``."""
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
        ev.summarize()
    m, m50 = float(ev.stats[0]), float(ev.stats[1])
    return (round(m50, 5) if m50 >= 0 else None), (round(m, 5) if m >= 0 else None)


def ap50_per_class(ev) -> dict[int, float | None]:
    """AP@0.5 per category id (area all, the most detections) from an accumulated COCOeval, as
    COCOeval.summarize averages it; None for a category without objects."""
    prec = ev.eval["precision"][0, :, :, 0, -1]  # [recall thresholds, categories]
    out = {}
    for k, cat in enumerate(ev.params.catIds):
        col = prec[:, k]
        col = col[col > -1]
        out[int(cat)] = round(float(col.mean()), 5) if col.size else None
    return out


def summarize(records: list[dict], settings: dict, unreadable: list[dict]) -> dict:
    objs = judged_objects(records)
    every = [o for r in records for o in r["truth"]]
    dets = [d for r in records for d in r["detections"]]
    names = sorted({o["name"] for o in objs})
    det_names = sorted({d["name"] for d in dets})
    map50, map_ = coco_map(records, settings.get("class_names", []))
    missing = Counter(o["name"] for o in every if o["verdict"] is None and not _ignored(o))
    return {
        "images": len(records),
        "objects": len(objs),
        "objects_without_verdict": {"not_a_class": dict(sorted(missing.items())),
                                    "crowd": sum(1 for o in every if o.get("crowd")),
                                    "difficult": sum(1 for o in every if o.get("difficult") and not o.get("crowd"))},
        "verdicts": _counts((o["verdict"] for o in objs), VERDICTS),
        "verdicts_per_class": {n: _counts((o["verdict"] for o in objs if o["name"] == n), VERDICTS) for n in names},
        "detections": len(dets),
        "detection_errors": _counts((d["error"] for d in dets), ERRORS),
        "detection_errors_per_class": {n: _counts((d["error"] for d in dets if d["name"] == n), ERRORS)
                                       for n in det_names},
        "proposal_recall": recall(objs, "best_proposal_iou"),
        "anchor_recall": recall(objs, "best_anchor_iou"),
        "map50": map50,
        "map": map_,
        "settings": settings,
        "unreadable": unreadable,
    }
