"""rcnn-lens analyze --sweep: every grid point equals a separate analyze with its thresholds (verdicts,
TIDE types, detections, mAP), the class thresholds are what an analyze at that threshold finds,
resume and two torchrun ranks give the same bytes, bad sweeps are one line with nothing written."""

import json
import shutil
from pathlib import Path

import pytest

from core.analysis import sweep as sweeping
from core.analysis.analyze import analyze
from core.analysis.files import RESULTS, SWEEP, SWEEP_RESULTS
from core.demo.dataset import write_dataset
from core.errors import LensError
from tests.core.test_analyze import cli, jsonl

SWEEP_SPEC = {"box_score_thresh": [0.05, 0.6], "rpn_nms_thresh": [0.5, 0.7]}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep_scenes")
    write_dataset(d, n=5, seed=321)
    return d


@pytest.fixture(scope="module")
def swept(scenes, tmp_path_factory):
    out = tmp_path_factory.mktemp("swept")
    res = analyze([scenes], out, workers=0, progress=False, sweep=SWEEP_SPEC)
    assert res.exit_code == 0
    return out


def test_parse_values_and_ranges():
    got = sweeping.parse(["box_score_thresh=0.05:0.95:0.05", "--box-nms-thresh=0.5,0.3", "rpn-post-nms-top-n=10,50"])
    assert got["box_score_thresh"][0] == 0.05 and got["box_score_thresh"][-1] == 0.95
    assert len(got["box_score_thresh"]) == 19 and got["box_nms_thresh"] == [0.3, 0.5]
    assert got["rpn_post_nms_top_n_test"] == [10, 50] and all(isinstance(v, int) for v in got["rpn_post_nms_top_n_test"])
    base = {"rpn_pre_nms_top_n_test": 500, "rpn_post_nms_top_n_test": 300, "rpn_nms_thresh": 0.7,
            "rpn_score_thresh": 0.0, "box_score_thresh": 0.5, "box_nms_thresh": 0.5, "box_detections_per_img": 50}
    w = sweeping.widest(got, base)
    assert w["box_score_thresh"] == 0.05 and w["box_nms_thresh"] == 0.5 and w["rpn_post_nms_top_n_test"] == 50
    assert len(sweeping.grid(got, base)) == 19 * 2 * 2
    for bad, msg in ((["nms=0.5"], "not a test-time threshold"), (["box_nms_thresh=0.5,1.5"], "1.5 is out of range"),
                     (["rpn_post_nms_top_n_test=-1,5"], "-1 is out of range"), (["box_score_thresh=a,b"], "must be numbers"),
                     (["box_score_thresh=0.5:0.1:0.1"], "STOP >= START"), (["box_nms_thresh"], "NAME=VALUES"),
                     (["box_detections_per_img=2.5"], "whole numbers"),
                     ([f"{n}=0.5" for n in ("box_score_thresh", "box_nms_thresh", "rpn_nms_thresh", "rpn_score_thresh")],
                      "at most 3")):
        with pytest.raises(LensError, match=msg):
            sweeping.parse(bad)


@pytest.mark.parametrize("point", [{"box_score_thresh": 0.6, "rpn_nms_thresh": 0.5},
                                   {"box_score_thresh": 0.05, "rpn_nms_thresh": 0.7}])
def test_a_grid_point_equals_a_separate_analyze(scenes, swept, tmp_path, point):
    """The point's verdicts, detections with their TIDE types, counts and pycocotools' mAP are those of
    ``analyze`` run with its thresholds (an RPN threshold changed: the box head ran on new proposals)."""
    res = analyze([scenes], tmp_path / "one", workers=0, progress=False, params=point)
    plain = {r["image"]: r for r in jsonl(tmp_path / "one" / RESULTS)}
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    sw = json.loads((swept / SWEEP).read_text())
    k = next(i for i, p in enumerate(sw["points"]) if all(p["params"][n] == v for n, v in point.items()))
    assert sw["points"][k]["params"] == summary["settings"]["params"]
    lines = jsonl(swept / SWEEP_RESULTS)
    assert [ln["image"] for ln in lines] == list(plain)
    for ln in lines:
        rec = plain[ln["image"]]
        pt = ln["points"][k]
        assert pt["v"] == [o["verdict"] for o in rec["truth"]]
        assert pt["d"] == [[*d["box"], d["label"], d["score"], d["error"]] for d in rec["detections"]]
    got = sw["points"][k]
    assert (got["map50"], got["map"]) == (summary["map50"], summary["map"]) and summary["map50"] is not None
    assert got["verdicts"] == summary["verdicts"] and got["errors"] == summary["detection_errors"]
    assert got["recall"] == round(summary["verdicts"]["detected"] / summary["objects"], 5)
    assert res.exit_code == 0


def test_the_points_differ_and_the_best_is_the_highest_map50(swept):
    sw = json.loads((swept / SWEEP).read_text())
    assert len(sw["points"]) == 4 and (swept / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert len({json.dumps(p["verdicts"]) + json.dumps(p["errors"]) for p in sw["points"]}) > 1
    best = max(sw["points"], key=lambda p: (p["map50"], p["map"]))
    assert sw["best"]["map50"] == best["map50"] and sw["best"]["params"] == best["params"]


def test_class_thresholds_are_what_an_analyze_at_that_threshold_finds(scenes, swept, tmp_path):
    """Per class, the F1-best score threshold of the lowest pass: an analyze at that box score
    threshold gives the class the precision and recall the sweep reports, and no other threshold
    between two of the pass's scores gives a higher F1."""
    sw = json.loads((swept / SWEEP).read_text())
    ct = sw["class_thresholds"]
    assert ct["params"]["box_score_thresh"] == 0.05 and ct["params"]["rpn_nms_thresh"] == sw["best"]["params"]["rpn_nms_thresh"]
    name, c = next((n, c) for n, c in ct["classes"].items() if c)
    params = {**{k: ct["params"][k] for k in SWEEP_SPEC}, "box_score_thresh": c["thresh"]}
    analyze([scenes], tmp_path / "at", workers=0, progress=False, params=params)
    recs = jsonl(tmp_path / "at" / RESULTS)
    objs = [o for r in recs for o in r["truth"] if o["verdict"] is not None and o["name"] == name]
    dets = [d for r in recs for d in r["detections"] if d["name"] == name]
    assert c["recall"] == round(sum(o["verdict"] == "detected" for o in objs) / len(objs), 5)
    assert c["precision"] == round(sum(d["error"] == "tp" for d in dets) / len(dets), 5)
    # brute force over the lowest pass's own scores
    k = ct["from_point"]
    lines = jsonl(swept / SWEEP_RESULTS)
    names = sw["settings"]["class_names"]
    pairs = [(d[5], d[6] == "tp") for ln in lines for d in ln["points"][k]["d"] if names[d[4]] == name]
    n_obj = sum(1 for ln in lines for t, v in zip(ln["truth"], ln["points"][k]["v"]) if v is not None and t["name"] == name)
    best = 0.0
    for t in {0.05} | {s for s, _ in pairs}:  # keep scores > t
        kept = [tp for s, tp in pairs if s > t]
        if kept and sum(kept):
            p, r = sum(kept) / len(kept), sum(kept) / n_obj
            best = max(best, 2 * p * r / (p + r))
    assert c["f1"] == round(best, 5)


def test_resume_after_a_torn_line_equals_a_full_run(scenes, swept, tmp_path):
    part = tmp_path / "part"
    part.mkdir()
    shutil.copy(swept / "settings.json", part / "settings.json")
    lines = (swept / SWEEP_RESULTS).read_text().splitlines(True)
    (part / SWEEP_RESULTS).write_text(lines[0] + lines[1][:40])
    res = analyze([scenes], part, workers=0, progress=False, sweep=SWEEP_SPEC)
    assert res.resumed == 1 and res.analyzed == 4
    for name in (SWEEP_RESULTS, SWEEP, "sweep.png"):
        assert (part / name).read_bytes() == (swept / name).read_bytes(), name
    with pytest.raises(LensError, match="another sweep"):
        analyze([scenes], part, workers=0, progress=False, sweep={"box_score_thresh": [0.3]})


def test_two_torchrun_cpu_ranks_write_what_one_process_writes(scenes, swept, tmp_path):
    two = tmp_path / "two"
    r = cli("--standalone", "--nproc_per_node", "2", "-m", "tests.core.analyze_rank", "analyze", str(scenes),
            "-o", str(two), "--quiet", "--sweep", "box_score_thresh=0.05,0.6", "rpn_nms_thresh=0.5,0.7",
            module=("-m", "torch.distributed.run"), timeout=400)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in two.iterdir()) == ["settings.json", SWEEP, "sweep.jsonl", "sweep.png"]
    for name in (SWEEP_RESULTS, SWEEP, "sweep.png"):
        assert (two / name).read_bytes() == (swept / name).read_bytes(), name


@pytest.mark.parametrize("args, line", [
    (["--sweep", "nms=0.5"], "rcnn-lens: --sweep nms=0.5: not a test-time threshold; sweep one of "),
    (["--sweep", "box_nms_thresh=0.2,1.2"], "rcnn-lens: --sweep box_nms_thresh=0.2,1.2: 1.2 is out of range "),
    (["--sweep", "rpn_post_nms_top_n_test=-5,10"], "rcnn-lens: --sweep rpn_post_nms_top_n_test=-5,10: -5 is out of "),
    (["--sweep", "box_score_thresh=0.3", "--box-score-thresh", "0.5"], "rcnn-lens: --sweep box_score_thresh: is also "),
])
def test_a_bad_sweep_is_one_line_and_nothing_is_written(tmp_path, args, line):
    out = tmp_path / "out"
    r = cli("analyze", "assets/demo", "-o", str(out), *args)
    assert r.returncode == 1 and r.stderr.startswith(line) and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists()


def test_no_usable_input_writes_nothing(tmp_path):
    out = tmp_path / "out"
    r = cli("analyze", str(tmp_path / "nonexistent"), "-o", str(out))
    assert r.returncode == 1 and r.stderr == f"rcnn-lens: {tmp_path / 'nonexistent'}: no such file or folder\n"
    assert not out.exists()
    r = cli("analyze", "assets/demo", "-o", str(out), "--weights", str(tmp_path / "missing.pt"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and not out.exists(), r.stderr


def test_sweep_file_names_are_not_an_analysis(swept):
    from core.analysis.browse import is_analysis

    assert not is_analysis(swept) and not (swept / RESULTS).exists() and Path(swept / SWEEP).is_file()
