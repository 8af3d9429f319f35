"""rcnn-lens analyze: records equal torchvision's outputs and pycocotools' matching, mAP equals torchmetrics', resume after a
torn line or Ctrl+C, unreadable files listed, two torchrun CPU ranks write what one process does."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import core
from core.analysis.analyze import analyze
from core.analysis.chart import draw
from core.analysis.files import RESULTS, read_analysis, read_lines
from core.analysis.verdicts import ERRORS, VERDICTS
from core.demo.dataset import write_dataset
from core.errors import LensError
from core.paths import DEMO_IMAGES

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, timeout=300, env=None, module=("-m", "core.cli")):
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *module, *args], capture_output=True, text=True, timeout=timeout,
                          env=e, cwd=ROOT)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenes")
    write_dataset(d, n=6, seed=123)
    return d


def jsonl(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def torchvision_reference(module, img, truth_xyxy):
    """What torchvision itself computes for one image, with no code of ours: the detections of
    ``model(images)``, and each truth object's best IoU with the RPN's proposals after NMS (what the
    box head sees) and with the anchors, in the model's frame (truth resized as the transform resizes)."""
    from torchvision.models.detection.transform import resize_boxes
    from torchvision.ops import box_iou

    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)
    with torch.inference_mode():
        out = module([x])[0]
        images, _ = module.transform([x])
        feats = module.backbone(images.tensors)
        proposals, _ = module.rpn(images, feats)
        anchors = module.rpn.anchor_generator(images, list(feats.values()))
    t = resize_boxes(truth_xyxy, img.shape[:2], images.image_sizes[0])
    return out, box_iou(t, proposals[0]).max(1).values.numpy(), box_iou(t, anchors[0]).max(1).values.numpy()


def coco_matches(ann: dict, recs: list[dict]):
    """pycocotools' own matching at IoU 0.5 (area all, 100 detections): the matched detection of
    each truth object and whether each detection matched, per image, and COCOeval's mAPs."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = {**ann, "annotations": [{**a, "area": a["bbox"][2] * a["bbox"][3], "iscrowd": a.get("iscrowd", 0)}
                                         for a in ann["annotations"]]}
    ids = {Path(im["file_name"]).name: im["id"] for im in ann["images"]}
    dets, det_ids = [], {}
    for r in recs:
        for k, d in enumerate(r["detections"]):
            x1, y1, x2, y2 = d["box"]
            det_ids[len(dets) + 1] = (Path(r["image"]).name, k)
            dets.append({"image_id": ids[Path(r["image"]).name], "category_id": d["label"],
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "score": d["score"]})
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    truth_of, matched = {}, set()
    a = ev.params.areaRng.index([0, 1e10])
    for e in ev.evalImgs:
        if e is None or e["aRng"] != ev.params.areaRng[a]:
            continue
        for gid, m in zip(e["gtIds"], e["gtMatches"][0]):
            truth_of[gid] = det_ids[int(m)] if m else None
        matched |= {det_ids[int(d)] for d, m in zip(e["dtIds"], e["dtMatches"][0]) if m}
    return truth_of, matched, float(ev.stats[1]), float(ev.stats[0])


def test_records_are_torchvisions_outputs_and_pycocotools_matches(scenes, tmp_path):
    from torchmetrics.detection import MeanAveragePrecision

    out = tmp_path / "out"
    res = analyze([scenes], out, workers=2, progress=False)
    assert res.exit_code == 0 and res.analyzed == 6 and res.unreadable == []
    recs = jsonl(out / RESULTS)
    assert [Path(r["image"]).name for r in recs] == [f"scene_{i:04d}.png" for i in range(6)]
    ann = json.loads((scenes / "annotations.json").read_text())
    model = core.load_model("demo")
    metric = MeanAveragePrecision(iou_type="bbox", backend="pycocotools")
    truth_of, matched, map50, map_ = coco_matches(ann, recs)
    for r, im in zip(recs, ann["images"]):
        truth = [a for a in ann["annotations"] if a["image_id"] == im["id"]]
        assert len(r["truth"]) == len(truth) > 0
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in truth])
        img = cv2.imread(r["image"])[..., ::-1].copy()
        ref, proposal_iou, anchor_iou = torchvision_reference(model.module, img, boxes)
        got = r["detections"]
        assert len(got) == len(ref["boxes"])
        np.testing.assert_allclose([d["box"] for d in got], ref["boxes"].numpy().reshape(-1, 4), atol=2e-3)
        np.testing.assert_allclose([d["score"] for d in got], ref["scores"].numpy(), atol=1e-5)
        assert [d["label"] for d in got] == ref["labels"].tolist()
        assert {d["error"] for d in got} <= set(ERRORS)
        name = Path(r["image"]).name
        for k, d in enumerate(got):  # TIDE's tp is pycocotools' match
            assert (d["error"] == "tp") == ((name, k) in matched), (name, k, d)
        for o, a, p_iou, a_iou in zip(r["truth"], truth, proposal_iou, anchor_iou):
            assert {"box", "label", "name", "verdict", "best_anchor_iou", "best_proposal_iou", "detection",
                    "why"} <= set(o)
            assert o["verdict"] in VERDICTS and isinstance(o["why"], str)
            want = truth_of[a["id"]]  # the detection pycocotools matched to this object, or None
            assert (o["verdict"] == "detected") == (want is not None), (name, o)
            assert o["detection"] == (want[1] if want else None)
            assert o["best_proposal_iou"] == pytest.approx(float(p_iou), abs=1e-4)
            assert o["best_anchor_iou"] == pytest.approx(float(a_iou), abs=1e-4)
            cov = o["covering_rois"]  # per covering RoI, compact (test_diagnose checks the values)
            assert set(cov) == {"roi", "iou", "class_prob", "winner", "winner_prob"}
            assert all(len(v) == o["rois"] for v in cov.values()) and (o["rois"] > 0) == (p_iou >= 0.5)
            assert cov["iou"] == sorted(cov["iou"], reverse=True) and all(x >= 0.5 for x in cov["iou"])
        metric.update([{k: ref[k] for k in ("boxes", "scores", "labels")}],
                      [{"boxes": boxes, "labels": torch.tensor([a["category_id"] for a in truth])}])
    m = metric.compute()
    s = json.loads((out / "summary.json").read_text())
    assert s["map50"] == pytest.approx(float(m["map_50"]), abs=2e-4) == pytest.approx(map50, abs=2e-4)
    assert s["map"] == pytest.approx(float(m["map"]), abs=2e-4) == pytest.approx(map_, abs=2e-4)
    assert s["images"] == 6 and s["objects"] == len(ann["annotations"]) == sum(s["verdicts"].values())
    assert s["verdicts"]["detected"] == sum(v is not None for v in truth_of.values())
    assert s["detection_errors"]["tp"] == len(matched) and sum(s["detection_errors"].values()) == s["detections"]
    assert s["settings"]["params"]["box_score_thresh"] == 0.5 and s["settings"]["model"] == "demo"
    png = cv2.imread(str(out / "summary.png"))
    assert png is not None and png.shape[1] >= 1200 and png.std() > 10
    rows = read_analysis(out)  # the folder browser: most missed first
    assert sorted(r["image"] for r in rows) == sorted(r["image"] for r in recs)
    assert [r["missed"] for r in rows] == sorted((r["missed"] for r in rows), reverse=True)
    assert sum(r["missed"] for r in rows) == s["objects"] - s["verdicts"]["detected"]
    with pytest.raises(LensError, match="not an analysis folder"):
        read_analysis(tmp_path)


def test_resume_after_a_torn_line_equals_a_full_run(scenes, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    analyze([scenes], full, workers=0, progress=False)
    lines = (full / RESULTS).read_text().splitlines(True)
    part.mkdir()
    shutil.copy(full / "settings.json", part / "settings.json")
    (part / RESULTS).write_text(lines[0] + lines[1] + lines[2][:50])  # a write cut short by a crash
    res = analyze([scenes], part, workers=0, progress=False)
    assert res.resumed == 2 and res.analyzed == 4 and res.exit_code == 0
    for name in (RESULTS, "summary.json", "summary.png"):
        assert (part / name).read_bytes() == (full / name).read_bytes(), name
    # the same folder with other thresholds is refused, in one line naming it
    with pytest.raises(LensError, match=r"another params \(box_score_thresh 0.5 -> 0.3\)") as err:
        analyze([scenes], part, workers=0, progress=False, params={"box_score_thresh": 0.3})
    assert str(err.value).startswith(str(part))
    assert read_lines(part / RESULTS).keys() == read_lines(full / RESULTS).keys()


def test_unreadable_files_are_listed_and_exit_1(scenes, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(scenes, folder)
    (folder / "broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(folder / "extra.png"), np.zeros((50, 60, 3), np.uint8))  # no entry in annotations.json
    r = cli("analyze", str(folder), "-o", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 1, r.stderr
    err = [x for x in r.stderr.splitlines() if x.startswith("rcnn-lens:")]
    assert f"rcnn-lens: {folder / 'broken.png'}: not an image OpenCV can read" in err
    assert any(x.startswith(f"rcnn-lens: {folder / 'extra.png'}: no annotation") for x in err)
    assert "Traceback" not in r.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [Path(u["image"]).name for u in s["unreadable"]] == ["broken.png", "extra.png"]
    assert s["images"] == 6 and len(jsonl(tmp_path / "out" / RESULTS)) == 6
    # a bad --annotations file: one line, exit 1, quickly
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    t = time.perf_counter()
    r = cli("analyze", str(scenes), "--annotations", str(bad), "-o", str(tmp_path / "out2"))
    assert r.returncode == 1 and r.stderr.strip() == f"rcnn-lens: {bad}: not valid JSON (line 1 column 2: " \
                                                     f"Expecting property name enclosed in double quotes)"
    assert time.perf_counter() - t < 60


def test_ctrl_c_keeps_finished_images_and_the_same_command_resumes(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, n=10, seed=9)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "core.cli", "analyze", str(data), "-o", str(out), "--workers", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    deadline = time.time() + 240
    while time.time() < deadline and len(read_lines(out / RESULTS)) < 2 and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("the analysis finished before the interrupt arrived")
    assert p.returncode == 130, stderr
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    kept = read_lines(out / RESULTS)
    assert 2 <= len(kept) < 10
    text = (out / RESULTS).read_text()
    assert text.endswith("\n") and len(text.splitlines()) == len(kept)
    r = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"resuming: {len(kept)} of 10 images already analyzed" in r.stderr
    final = read_lines(out / RESULTS)
    assert len(final) == 10 and all(final[k] == v for k, v in kept.items())
    assert json.loads((out / "summary.json").read_text())["images"] == 10


def test_two_torchrun_cpu_ranks_write_what_one_process_writes(scenes, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    r = cli("analyze", str(scenes), "-o", str(one), "--quiet", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    r = cli("--standalone", "--nproc_per_node", "2", "-m", "tests.core.analyze_rank", "analyze", str(scenes),
            "-o", str(two), module=("-m", "torch.distributed.run"), timeout=400)
    assert r.returncode == 0, r.stderr
    assert "rcnn-lens: 2 ranks took 3 + 3 images" in r.stderr  # each rank its share
    # the process group is gone before shutdown: no gloo thread left to abort the process at exit
    threads = re.findall(r"rank \d threads at exit: [^\n]*", r.stderr)
    assert len(threads) == (2 if Path("/proc/self/task").is_dir() else 0), r.stderr
    assert not any("gloo" in x for x in threads), threads
    assert sorted(p.name for p in two.iterdir()) == ["analysis.jsonl", "detections_coco.json", "settings.json",
                                                     "summary.json", "summary.png"]
    for name in (RESULTS, "summary.json", "summary.png", "detections_coco.json"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_shipped_demo_scenes_with_their_truth(tmp_path):
    res = analyze([DEMO_IMAGES], tmp_path / "out", workers=0, progress=False)
    s = res.summary
    assert res.exit_code == 0 and s["images"] == 4 and s["objects"] == 24
    assert sum(s["verdicts"].values()) == 24 and s["verdicts"]["detected"] >= 20


def test_a_name_the_model_lacks_is_truth_without_a_label(tmp_path):
    """``"label": null`` in analysis.jsonl, no verdict, left out of mAP, counted in the summary; a resume reads
    the lines back."""
    shutil.copy(DEMO_IMAGES / "scene_1.png", tmp_path / "scene_1.png")
    ann = json.loads((DEMO_IMAGES / "annotations.json").read_text())
    im = next(i for i in ann["images"] if i["file_name"] == "scene_1.png")
    ann["images"] = [im]
    ann["annotations"] = [a for a in ann["annotations"] if a["image_id"] == im["id"]]
    ann["categories"].append({"id": 99, "name": "person"})
    ann["annotations"][0]["category_id"] = 99
    (tmp_path / "annotations.json").write_text(json.dumps(ann))
    out = tmp_path / "out"
    res = analyze([tmp_path / "scene_1.png"], out, workers=0, progress=False)
    assert res.exit_code == 0
    (rec,) = jsonl(out / RESULTS)
    first = rec["truth"][0]
    assert first["label"] is None and first["name"] == "person" and first["verdict"] is None
    assert all(isinstance(o["label"], int) and o["label"] > 0 for o in rec["truth"][1:])
    assert res.summary["objects_without_verdict"]["not_a_class"] == {"person": 1}
    assert res.summary["objects"] == len(rec["truth"]) - 1 and res.summary["map50"] is not None
    again = analyze([tmp_path / "scene_1.png"], out, workers=0, progress=False)  # all read back from the file
    assert again.resumed == 1 and again.summary["map50"] == res.summary["map50"]


def test_chart_draws_edge_cases():
    def rec(objs, dets=()):
        return {"image": "x", "size": [100, 100], "scale": [1.0, 1.0], "truth": objs, "detections": list(dets)}

    def obj(name, verdict, iou=0.6):
        return {"box": [0, 0, 30, 40], "label": 1, "name": name, "verdict": verdict, "best_anchor_iou": iou,
                "best_proposal_iou": iou, "detection": None}

    many = [obj(f"class{k}", VERDICTS[k % len(VERDICTS)], 0.4 + k / 50) for k in range(20)]
    for records in ([], [rec([])], [rec([obj("a", None)])], [rec(many)]):
        summary = {"images": len(records), "objects": 0, "settings": {"anchor_sizes": [32.0, 64.0]}}
        png = cv2.imdecode(np.frombuffer(draw(records, summary), np.uint8), cv2.IMREAD_COLOR)
        assert png is not None and png.shape[0] > 400


def test_ctrl_c_while_the_summary_is_drawn_leaves_neither_file_and_a_rerun_writes_both(scenes, tmp_path, monkeypatch):
    import core.analysis.chart as chart

    out = tmp_path / "out"
    real = chart.draw

    def interrupted(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(chart, "draw", interrupted)
    with pytest.raises(KeyboardInterrupt):
        analyze([scenes], out, workers=0, progress=False)
    assert (out / RESULTS).exists() and not (out / "summary.json").exists() and not (out / "summary.png").exists()
    monkeypatch.setattr(chart, "draw", real)
    res = analyze([scenes], out, workers=0, progress=False)
    assert res.resumed == 6 and (out / "summary.json").exists() and (out / "summary.png").exists()
