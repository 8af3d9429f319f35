"""``sweep.json``: every grid point's numbers from the ``sweep.jsonl`` lines, computed as ``analyze``
computes them for one setting (verdict and TIDE counts, pycocotools' mAP on the same rounded
detections), the best point, and per class the box score threshold of the best F1."""

from __future__ import annotations

from collections import Counter

import numpy as np

from core.analysis.summary import ap50_per_class, coco_evaluated, coco_map, map_of
from core.analysis.verdicts import ERRORS, VERDICTS


def point_records(lines: list[dict], k: int, class_names) -> list[dict]:
    """Grid point ``k`` as analysis.jsonl-like records (the fields the summary reads)."""
    names = list(class_names)
    out = []
    for ln in lines:
        pt = ln["points"][k]
        truth = [{**t, "verdict": v} for t, v in zip(ln["truth"], pt["v"])]
        dets = [{"box": d[:4], "label": d[4], "score": d[5], "error": d[6],
                 "name": names[d[4]] if 0 <= d[4] < len(names) else str(d[4])} for d in pt["d"]]
        out.append({"image": ln["image"], "size": ln["size"], "truth": truth, "detections": dets})
    return out


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 5) if b else None


def point_numbers(records: list[dict], class_names) -> dict:
    objs = [o for r in records for o in r["truth"] if o["verdict"] is not None]
    dets = [d for r in records for d in r["detections"]]
    verdicts = Counter(o["verdict"] for o in objs)
    errors = Counter(d["error"] for d in dets)
    ev = coco_evaluated(records, class_names, all_areas=False)  # mAP reads the area range 'all' only
    if ev is None:
        (map50, map_), ap = coco_map(records, class_names), {}
    else:
        (map50, map_), ap = map_of(ev), ap50_per_class(ev)
    per_class = {}
    for name in sorted({o["name"] for o in objs} | {d["name"] for d in dets}):
        label = next((o["label"] for o in objs if o["name"] == name), None)
        if label is None:
            label = next(d["label"] for d in dets if d["name"] == name)
        n_obj = sum(1 for o in objs if o["name"] == name)
        found = sum(1 for o in objs if o["name"] == name and o["verdict"] == "detected")
        n_det = sum(1 for d in dets if d["name"] == name)
        tp = sum(1 for d in dets if d["name"] == name and d["error"] == "tp")
        per_class[name] = {"ap50": ap.get(int(label)) if n_obj else None, "recall": _ratio(found, n_obj),
                           "precision": _ratio(tp, n_det), "objects": n_obj, "detections": n_det}
    return {"map50": map50, "map": map_, "recall": _ratio(verdicts["detected"], len(objs)),
            "precision": _ratio(errors["tp"], len(dets)), "objects": len(objs), "detections": len(dets),
            "per_class": per_class, "verdicts": {v: int(verdicts.get(v, 0)) for v in VERDICTS},
            "errors": {e: int(errors.get(e, 0)) for e in ERRORS}}


def best_point(points: list[dict]) -> int | None:
    """The point of the highest mAP@0.5, ties to the higher mAP, then the first."""
    scored = [i for i, p in enumerate(points) if p["map50"] is not None]
    if not scored:
        return None
    return max(scored, key=lambda i: (points[i]["map50"], points[i]["map"] or 0.0, -i))


def pr_curves(records: list[dict]) -> dict[str, dict]:
    """Per class, the detections by descending score with cumulative precision and recall (COCO's
    matching as in the verdicts: a detection is a true positive when its TIDE type is tp)."""
    objs = Counter(o["name"] for r in records for o in r["truth"] if o["verdict"] is not None)
    by_class: dict[str, list] = {}
    for r in records:
        for d in r["detections"]:
            by_class.setdefault(d["name"], []).append((d["score"], d["error"] == "tp"))
    out = {}
    for name in sorted(set(objs) | set(by_class)):
        rows = sorted(by_class.get(name, []), key=lambda x: -x[0])
        scores = np.array([s for s, _ in rows], np.float64)
        tp = np.cumsum([t for _, t in rows]).astype(np.float64)
        k = np.arange(1, len(rows) + 1)
        n = objs.get(name, 0)
        out[name] = {"scores": scores, "precision": tp / np.maximum(k, 1), "recall": tp / n if n else tp * 0.0,
                     "objects": n}
    return out


def class_thresholds(curves: dict, floor: float) -> dict:
    """Per class the box score threshold of the best F1 over the detections of one pass at the
    lowest threshold ``floor``: keep scores > ``thresh`` (a threshold can only fall between two
    different scores, so F1 is read at the end of each run of equal scores; ``thresh`` is halfway
    to the next lower score)."""
    out = {}
    for name, c in curves.items():
        s = c["scores"]
        if not s.size or not c["objects"]:
            out[name] = None
            continue
        ends = np.nonzero(np.append(s[1:] < s[:-1], True))[0]
        p, r = c["precision"][ends], c["recall"][ends]
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
        j = int(np.argmax(f1))
        e = int(ends[j])
        # halfway to the next lower score: the scores are rounded to 5 digits, the model's are not
        thresh = round((float(s[e]) + float(s[e + 1])) / 2, 6) if e + 1 < s.size else float(floor)
        out[name] = {"thresh": thresh, "lowest_kept_score": round(float(s[e]), 5),
                     "f1": round(float(f1[j]), 5), "precision": round(float(p[j]), 5),
                     "recall": round(float(r[j]), 5), "detections": e + 1, "objects": int(c["objects"])}
    return out


def summarize(lines: list[dict], settings: dict, points: list[dict], unreadable: list[dict]) -> tuple[dict, dict]:
    """(sweep.json, the PR curves of the class-threshold pass for the chart)."""
    names = settings.get("class_names", [])
    sweep = settings["sweep"]
    rows = []
    for k, params in enumerate(points):
        rows.append({"params": params, **point_numbers(point_records(lines, k, names), names)})
    best = best_point(rows)
    # the class thresholds: the best point's other thresholds at the lowest box score threshold swept
    ref = points[best] if best is not None else points[0]
    low = min(sweep.get("box_score_thresh", [ref["box_score_thresh"]]))
    k = next(i for i, p in enumerate(points) if p == {**ref, "box_score_thresh": low})
    curves = pr_curves(point_records(lines, k, names))
    out = {"images": len(lines), "sweep": sweep, "points": rows, "best": None if best is None else
           {"index": best, "params": rows[best]["params"], "map50": rows[best]["map50"], "map": rows[best]["map"]},
           "class_thresholds": {"from_point": k, "params": points[k], "classes": class_thresholds(curves, low)},
           "settings": settings, "unreadable": unreadable}
    return out, curves
