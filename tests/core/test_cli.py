"""rcnn-lens trace / models: notebook shapes, JSON lines, a bad file in a batch."""

import json
import subprocess
import sys

import cv2
import pytest

from .conftest import noise_image


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def img800(tmp_path_factory):
    p = tmp_path_factory.mktemp("img") / "scene 800.png"
    cv2.imwrite(str(p), noise_image(800, 800))
    return p


def test_trace_json_walkthrough_shapes(img800, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    r = run("trace", str(img800), str(bad), str(img800), "--model", "seed-walkthrough", "--json",
            "--weights", "random:1", "--box-score-thresh", "0.0")
    assert r.returncode == 1
    assert r.stderr.strip() == f"rcnn-lens: {bad}: not an image OpenCV can read"
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 2
    j = lines[0]
    assert j["image"] == str(img800) and j["image_size"] == [800, 800] and j["model"] == "seed-walkthrough"
    assert j["transform"] == {"resized_size": [800, 800], "batch_size": [800, 800], "scale": [1.0, 1.0]}
    assert j["features"] == {"0": [256, 24, 24]}
    assert j["anchors"]["per_cell"] == {"0": 9} and j["anchors"]["grid"] == {"0": [24, 24]}
    assert j["anchors"]["total"] == 5184
    assert j["rpn"]["objectness"] == {"0": [9, 24, 24]} and j["rpn"]["deltas"] == {"0": [36, 24, 24]}
    n = j["rpn"]["post_nms"]
    assert j["roi_pool"] == [n, 256, 7, 10]
    assert j["box_head"] == {"features": [n, 1024], "class_logits": [n, 17], "box_regression": [n, 68]}
    scores = [p[4] for p in j["rpn"]["proposals"]]
    assert len(scores) == n and scores == sorted(scores, reverse=True)
    assert 0 < len(j["detections"]) <= 100
    d = j["detections"][0]
    assert set(d) == {"box", "label", "name", "score"} and d["name"] == f"class {d['label']}"
    assert set(j["timings_ms"]) >= {"backbone", "rpn_filter", "roi_pool", "postprocess"}


def test_trace_table_is_readable(img800):
    r = run("trace", str(img800), "--model", "seed-walkthrough", "--weights", "random:1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "256 x 24 x 24" in out and "9 x 24 x 24" in out and "36 x 24 x 24" in out and "5184" in out
    assert " x 256 x 7 x 10" in out and " x 1024" in out and " x 17" in out and " x 68" in out


def test_errors_are_one_line_without_traceback(tmp_path):
    r = run("trace", str(tmp_path / "missing.png"), "--model", "nope")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "nope: unknown model preset" in r.stderr
    r = run("trace", str(tmp_path / "missing.png"), "--weights", str(tmp_path / "w.pt"))
    assert r.returncode == 1 and r.stderr.strip() == f"rcnn-lens: {tmp_path / 'w.pt'}: no such checkpoint file"


def test_models_lists_presets_and_offline_availability(tmp_path):
    r = subprocess.run([sys.executable, "-m", "core.cli", "models", "--json"], capture_output=True, text=True,
                       env={"TORCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert {"demo", "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
            "fasterrcnn_mobilenet_v3_large_320_fpn", "seed-walkthrough", "seed-alexnet"} <= set(rows)
    assert any("not cached" in w for w in rows["fasterrcnn_resnet50_fpn"]["weights"])
    assert rows["demo"]["default"] == "demo"
