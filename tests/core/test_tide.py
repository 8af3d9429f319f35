"""TIDE's error type of every detection in analysis.jsonl equals what ``tidecv`` (TIDE's own code) finds
on the same truth and detections, crowd regions (TIDE's ignore regions) and duplicate truth boxes
included; and detections_coco.json is what pycocotools scores to summary.json's mAP."""

import contextlib
import io
import json

import pytest

from core.analysis.analyze import analyze
from core.analysis.files import DETECTIONS, RESULTS
from core.demo.dataset import write_dataset
from tests.core.test_analyze import jsonl

tidecv = pytest.importorskip("tidecv")

SHORT = {"Cls": "cls", "Loc": "loc", "Both": "both", "Dupe": "dupe", "Bkg": "bkg"}


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    """Scenes whose truth has crowd regions in place of some objects, crowd regions around others,
    and an exact duplicate of one box; analyzed at a low score threshold (many false positives)."""
    d = tmp_path_factory.mktemp("tide")
    ann_path = write_dataset(d / "scenes", n=10, seed=55)
    ann = json.loads(ann_path.read_text())
    anns = ann["annotations"]
    by_image = {}
    for a in anns:
        by_image.setdefault(a["image_id"], []).append(a)
    next_id = max(a["id"] for a in anns) + 1
    for k, (_img, objs) in enumerate(sorted(by_image.items())):
        a = objs[0]
        if k % 3 == 0:
            a["iscrowd"] = 1  # the object becomes a crowd region: detections on it are ignored, not matched
        elif k % 3 == 1:
            x, y, w, h = a["bbox"]
            anns.append({**a, "id": next_id, "bbox": [x - 10, y - 10, w + 20, h + 20], "iscrowd": 1,
                         "area": (w + 20) * (h + 20)})
            next_id += 1
        else:
            anns.append({**a, "id": next_id, "iscrowd": 0})  # two identical truth boxes
            next_id += 1
    ann_path.write_text(json.dumps(ann))
    analyze([d / "scenes"], d / "out", annotations=ann_path, workers=0, progress=False,
            params={"box_score_thresh": 0.02, "box_nms_thresh": 0.7})
    return d


def test_tide_error_types_equal_tidecv(crowded):
    from tidecv import TIDE, Data

    recs = jsonl(crowded / "out" / RESULTS)
    gt, preds = Data("truth"), Data("detections")
    ours = []
    for i, r in enumerate(recs, start=1):
        gt.add_image(i, r["image"])
        for o in r["truth"]:
            x1, y1, x2, y2 = o["box"]
            box = [x1, y1, x2 - x1, y2 - y1]
            if o.get("crowd"):
                gt.add_ignore_region(i, o["label"], box)
            elif o["label"] is not None:
                gt.add_ground_truth(i, o["label"], box)
        for d in r["detections"]:
            x1, y1, x2, y2 = d["box"]
            preds.add_detection(i, d["label"], d["score"], [x1, y1, x2 - x1, y2 - y1])
            ours.append(d["error"])
    with contextlib.redirect_stdout(io.StringIO()):
        run = TIDE().evaluate(gt, preds, mode=TIDE.BOX)
    theirs = ["tp" if p.get("used") else None for p in preds.annotations]
    for e in run.errors:
        if hasattr(e, "pred"):
            assert theirs[e.pred["_id"]] is None, "two TIDE types for one detection"
            theirs[e.pred["_id"]] = SHORT[type(e).short_name]
    assert theirs == ours
    kinds = set(ours)
    assert {"tp", "bkg", "dupe"} <= kinds and len(kinds) >= 4, kinds
    # the crowd regions were exercised: detections TIDE ignores (on a crowd region), typed all the same
    ignored = [k for k, p in enumerate(preds.annotations) if p.get("used") is None]
    assert ignored and all(ours[k] != "tp" for k in ignored)
    crowd = sum(1 for r in recs for o in r["truth"] if o.get("crowd"))
    assert crowd >= 6


def test_detections_coco_is_what_pycocotools_scores(crowded):
    """detections_coco.json against the annotation file itself (its image and category ids) gives
    summary.json's mAP."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = crowded / "out"
    dets = json.loads((out / DETECTIONS).read_text())
    recs = jsonl(out / RESULTS)
    assert len(dets) == sum(len(r["detections"]) for r in recs)
    assert set(dets[0]) == {"image_id", "category_id", "bbox", "score"}
    ann = json.loads((crowded / "scenes" / "annotations.json").read_text())
    ids = {im["file_name"]: im["id"] for im in ann["images"]}
    assert {d["image_id"] for d in dets} <= {ids[r["image"].rsplit("/", 1)[-1]] for r in recs}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(crowded / "scenes" / "annotations.json"))
        ev = COCOeval(gt, gt.loadRes(str(out / DETECTIONS)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = json.loads((out / "summary.json").read_text())
    assert (round(float(ev.stats[1]), 5), round(float(ev.stats[0]), 5)) == (s["map50"], s["map"])
