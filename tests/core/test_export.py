"""rcnn-lens export: PNG at the photo's size (+ legend), JSON sidecar that reproduces it, atomic writes."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import core

from .conftest import noise_image

MODEL = ["--model", "seed-alexnet", "--weights", "random:1", "--box-score-thresh", "0.0"]


def run(*args):
    return subprocess.run([sys.executable, "-m", "core.cli", "export", *args, *MODEL], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "in put.png"
    cv2.imwrite(str(p), noise_image(150, 250, seed=4))
    return p


def test_export_png_sidecar_npz(photo, tmp_path):
    out = tmp_path / "out.png"
    r = run(str(photo), "--overlays", "features,detections", "-o", str(out), "--npz", "--level", "0",
            "--reduction", "max", "--suppressed")
    assert r.returncode == 0, r.stderr
    img = cv2.imread(str(out))
    assert img.shape[1] == 250 and img.shape[0] > 150  # legend below the photo
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model"] == "seed-alexnet" and meta["weights"] == "random:1"
    assert meta["overlays"] == ["features", "detections"]
    assert meta["settings"]["features"]["reduction"] == "max" and meta["settings"]["detections"]["suppressed"]
    assert meta["params"]["box_score_thresh"] == 0.0 and len(meta["image_sha256"]) == 64
    assert meta["image_size"] == [250, 150] and meta["output_size"] == [250, img.shape[0]]  # W, H
    npz = np.load(out.with_suffix(".npz"))
    assert "features_0" in npz and "detections_boxes" in npz
    # the sidecar reproduces the image
    again = tmp_path / "again.png"
    r = run(str(photo), "--overlays", "features,detections", "-o", str(again), "--settings",
            str(out.with_suffix(".json")))
    assert r.returncode == 0, r.stderr
    assert np.array_equal(cv2.imread(str(again)), img)


def test_no_legend_keeps_photo_size_and_untouched_pixels(photo, tmp_path):
    out = tmp_path / "plain.png"
    r = run(str(photo), "--overlays", "proposals", "--top-n", "0", "-o", str(out), "--no-legend")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(cv2.imread(str(out)), cv2.imread(str(photo)))


def test_batch_to_folder_with_a_bad_file(photo, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    folder = tmp_path / "outs"
    r = run(str(photo), str(bad), str(photo), "--overlays", "all", "-o", str(folder))
    assert r.returncode == 1
    assert f"{bad}: not an image" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["in put-1.lens.json", "in put-1.lens.png",
                                                       "in put.lens.json", "in put.lens.png"]


def test_unwritable_target_one_line_no_partial_file(photo, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    r = run(str(photo), "-o", str(blocker / "out.png"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and str(blocker / "out.png") in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "in put.png"]


def test_bad_option_is_one_line(photo, tmp_path):
    r = run(str(photo), "-o", str(tmp_path / "x.png"), "--overlays", "features,heat")
    assert r.returncode == 1 and r.stderr.strip() == "rcnn-lens: heat: unknown overlay; use all, training or some " \
        "of input,features,anchors,objectness,proposals,rois,detections,masks,keypoints,truth,anchor_targets," \
        "roi_targets,loss"


def test_written_files_get_the_users_normal_permissions(tmp_path):
    import os

    from core.atomic import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.json", "{}")
        os.umask(0o002)
        write_text(tmp_path / "b.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o664


def test_export_does_not_import_the_command_line():
    import ast
    from pathlib import Path

    src = (Path(__file__).resolve().parents[2] / "core" / "overlays" / "export.py").read_text()
    mods = [n.module for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom)]
    assert mods and not [m for m in mods if m and m.startswith("core.cli")]


def test_the_paths_the_window_draws_go_into_the_png_and_the_sidecar_reproduces_them(tmp_path):
    """A selected box's path and a lost object's path are drawn on top of the stages, kept in the
    sidecar, and `--settings SIDECAR` (or --select/--object) draws them again, pixel for pixel."""
    from core.overlays.export import render_trace, write_export
    from core.paths import DEMO_IMAGES
    from core.training.targets import attach
    from core.truth.beside import find_for_image

    scene = str(DEMO_IMAGES / "scene_4.png")
    model = core.load_model("demo")
    tr = core.trace(model, scene)
    truth = find_for_image(scene, tr.meta.original_size, model.class_names)
    from core.analysis.diagnose import anchor_evidence, diagnose

    tr = attach(tr, truth, 0)
    from dataclasses import replace

    tr = replace(tr, diagnosis=diagnose(tr, truth, anchor_evidence(tr, truth)))
    lost = next((o.index for o in tr.diagnosis.objects if o.verdict not in (None, "detected")), 0)
    paths = {"selection": {"kind": "detection", "index": 0}, "object": lost}
    plain, _, _ = render_trace(tr, ["detections"], legend=False)
    drawn, layers, _ = render_trace(tr, ["detections"], legend=False, paths=paths)
    assert [sl.stage for sl in layers][-2:] == ["selection", "object"] and not np.array_equal(plain, drawn)
    out = tmp_path / "with_paths.png"
    meta = write_export(tr, out, ["detections"], legend=True, image_path=scene, paths=paths)
    assert meta["paths"] == paths
    again = tmp_path / "again.png"
    r = subprocess.run([sys.executable, "-m", "core.cli", "export", scene, "--model", "demo", "--overlays", "detections",
                        "-o", str(again), "--settings", str(out.with_suffix(".json"))], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(cv2.imread(str(again)), cv2.imread(str(out)))
    flags = tmp_path / "flags.png"
    r = subprocess.run([sys.executable, "-m", "core.cli", "export", scene, "--model", "demo", "--overlays", "detections",
                        "-o", str(flags), "--select", "detection:0", "--object", str(lost)], capture_output=True,
                       text=True, cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(cv2.imread(str(flags)), cv2.imread(str(out)))
    r = subprocess.run([sys.executable, "-m", "core.cli", "export", scene, "--model", "demo", "-o", str(flags),
                        "--select", "nothing"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert r.returncode == 1 and r.stderr.strip() == "rcnn-lens: --select nothing: expected KIND:INDEX, e.g. detection:0"
