"""rcnn-lens compare: transitions equal a count made straight from the analysis.jsonl files, the
bootstrap's identity draw is summary.json's mAP and its interval covers the difference, the
per-class APs average to pycocotools' mAP, and bad inputs are one line, exit 1, nothing written."""

import json
import shutil
from collections import Counter

import pytest

from core.analysis.analyze import analyze
from core.analysis.bootstrap import RunEval
from core.analysis.compare import compare
from core.analysis.files import RESULTS
from core.demo.dataset import write_dataset
from core.errors import LensError
from tests.core.test_analyze import cli, jsonl

B_PARAMS = {"rpn_post_nms_top_n_test": 12, "box_score_thresh": 0.85}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    write_dataset(root / "scenes", n=8, seed=77)
    analyze([root / "scenes"], root / "a", workers=0, progress=False)
    analyze([root / "scenes"], root / "b", workers=0, progress=False, params=B_PARAMS)
    return root


def test_transitions_gained_and_lost_are_counts_of_the_two_jsonl_files(runs):
    cmp = compare([runs / "a", runs / "b"], resamples=200)
    a = {r["image"]: r for r in jsonl(runs / "a" / RESULTS)}
    b = {r["image"]: r for r in jsonl(runs / "b" / RESULTS)}
    count = Counter()
    for img, ra in a.items():
        for oa, ob in zip(ra["truth"], b[img]["truth"]):
            if oa["verdict"] is not None:
                count[(oa["verdict"], ob["verdict"])] += 1
    got = Counter({(x, y): n for x, row in cmp["transitions"]["A->B"].items() for y, n in row.items()})
    assert got == count and sum(n for (x, y), n in count.items() if x != y) > 0
    gained = sum(n for (x, y), n in count.items() if x != "detected" and y == "detected")
    lost = sum(n for (x, y), n in count.items() if x == "detected" and y != "detected")
    assert len(cmp["gained"]) == gained and len(cmp["lost"]) == lost and lost > 0
    for g in cmp["lost"]:
        assert b[g["image"]]["truth"][g["truth"]]["verdict"] == g["lost_at"] != "detected"
    assert len(cmp["objects"]) == sum(1 for r in a.values() for o in r["truth"] if o["verdict"] is not None)
    assert cmp["runs"][1]["params"]["box_score_thresh"] == 0.85


def test_the_bootstrap_is_pycocotools_and_its_interval_covers_the_difference(runs):
    cmp = compare([runs / "a", runs / "b"], resamples=1000, seed=3)
    sa = json.loads((runs / "a" / "summary.json").read_text())
    sb = json.loads((runs / "b" / "summary.json").read_text())
    names = sa["settings"]["class_names"]
    for s, folder in ((sa, "a"), (sb, "b")):  # the identity draw = summary.json (COCOeval.summarize)
        m50, m, per = RunEval(jsonl(runs / folder / RESULTS), names).scores(range(s["images"]))
        assert (round(m50, 5), round(m, 5)) == (s["map50"], s["map"])
        aps = [v for v in per.values() if v == v]
        assert round(sum(aps) / len(aps), 5) == s["map50"]  # COCO's mAP is the mean of the class APs
    d = cmp["delta"]["A->B"]
    assert cmp["bootstrap"]["resamples"] == 1000 and cmp["bootstrap"]["seed"] == 3
    for key, s_a, s_b in (("map50", sa["map50"], sb["map50"]), ("map", sa["map"], sb["map"])):
        v = d[key]
        assert v["diff"] == round(s_b - s_a, 5)
        assert v["low"] <= v["diff"] <= v["high"] and v["low"] < v["high"]
        assert v["significant"] == (v["low"] > 0 or v["high"] < 0)
    for name, row in cmp["per_class"].items():
        iv = row["ap50_diff"]["A->B"]
        assert iv["low"] <= iv["diff"] <= iv["high"], name
    again = compare([runs / "a", runs / "b"], resamples=1000, seed=3)
    assert again["delta"] == cmp["delta"]  # seeded


def test_the_cli_writes_json_chart_and_table(runs, tmp_path):
    r = cli("compare", str(runs / "a"), str(runs / "b"), str(runs / "a"), "-o", str(tmp_path / "cmp"), "--quiet",
            "--resamples", "100")
    assert r.returncode == 0, r.stderr
    cmp = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert list(cmp["transitions"]) == ["A->B", "B->C"] and len(cmp["runs"]) == 3
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    r = cli("compare", str(runs / "a"), str(runs / "b"), "-o", str(tmp_path / "cmp2"), "--resamples", "50")
    assert "A->B mAP@0.5" in r.stdout and "lost" in r.stdout and "wrote" in r.stdout


def _refused(args, out, start):
    r = cli("compare", *map(str, args), "-o", str(out))  # not --quiet: no progress bar before the line
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"rcnn-lens: {start}"), r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
    return r.stderr


def test_bad_inputs_are_one_line_and_nothing_is_written(runs, tmp_path):
    out = tmp_path / "out"
    assert "not an analysis folder" in _refused([runs / "a", runs / "scenes"], out, runs / "scenes")
    assert "no such folder" in _refused([runs / "a", tmp_path / "nope"], out, tmp_path / "nope")
    cmp = tmp_path / "cmp"
    cmp.mkdir()
    (cmp / "compare.json").write_text("{}")
    assert "a compare folder" in _refused([runs / "a", cmp], out, cmp)
    # half-written: a torn last line, a rank's part file, no summary
    for how in ("torn", "part", "summary"):
        half = tmp_path / f"half_{how}"
        shutil.copytree(runs / "b", half)
        if how == "torn":
            with open(half / RESULTS, "a") as f:
                f.write('{"image": "x", "tr')
        elif how == "part":
            (half / "analysis.rank1.jsonl").write_text("")
        else:
            (half / "summary.json").unlink()
        assert "half-written" in _refused([runs / "a", half], out, half), how
    # other images, other truth
    fewer = tmp_path / "fewer"
    shutil.copytree(runs / "b", fewer)
    lines = (fewer / RESULTS).read_text().splitlines(True)
    (fewer / RESULTS).write_text("".join(lines[:-1]))
    s = json.loads((fewer / "summary.json").read_text())
    (fewer / "summary.json").write_text(json.dumps({**s, "images": len(lines) - 1}))
    msg = _refused([runs / "a", fewer], out, fewer)
    assert "other images than" in msg and json.loads(lines[-1])["image"] in msg
    other = tmp_path / "other_truth"
    shutil.copytree(runs / "b", other)
    recs = jsonl(other / RESULTS)
    recs[1]["truth"] = recs[1]["truth"][:-1]
    (other / RESULTS).write_text("".join(json.dumps(r) + "\n" for r in recs))
    msg = _refused([runs / "a", other], out, other)
    assert f"{recs[1]['image']}: {len(recs[1]['truth'])} objects vs {len(recs[1]['truth']) + 1}" in msg
    with pytest.raises(LensError, match="at least two"):
        compare([runs / "a"])
