"""rcnn-lens trace with the checkpoints users have: one clean line on stderr when refused (no torch
warning text), --trust for a whole pickle, mask_area in --json, models --fits."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

from .conftest import noise_image

ROOT = Path(__file__).resolve().parents[2]
TINY = Path(__file__).with_name("tiny_models.py")


def run(*args):
    """A fresh process: what a user's terminal shows, warnings filters as torch leaves them."""
    return subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def main(capsys, *args):
    """In-process (faster): (exit code, stdout, stderr)."""
    from core.cli.main import main as cli_main

    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


class Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from core.demo.model import build_shapes_model

    d = tmp_path_factory.mktemp("ck")
    cv2.imwrite(str(d / "scene.png"), noise_image(120, 160, seed=2))
    torch.manual_seed(3)
    m = build_shapes_model()
    torch.save({"model": m.state_dict(), "args": argparse.Namespace(model="demo", evil=Evil(d / "PWNED"))},
               d / "evil_args.pth")
    torch.save(m, d / "whole.pth")
    torch.save({"model": m.state_dict(), "epoch": 1, "args": argparse.Namespace(model="demo")}, d / "reference.pth")
    return d


def test_refusals_are_one_clean_line(files):
    img = str(files / "scene.png")
    r = run("trace", img, "--weights", str(files / "evil_args.pth"))
    assert r.returncode == 1 and r.stdout == "" and not (files / "PWNED").exists()
    assert r.stderr == (f"rcnn-lens: {files / 'evil_args.pth'}: refused: holds Python objects (io.open) beyond tensors "
                        "and plain data; checkpoints load with weights_only=True (pass --trust only for a file you "
                        "made)\n")
    r = run("trace", img, "--weights", str(files / "whole.pth"), "--json")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "--trust" in r.stderr and "Warning" not in r.stderr


def test_trust_loads_a_whole_pickle_and_json_says_what_was_loaded(files, capsys):
    code, out, err = main(capsys, "trace", str(files / "scene.png"), "--weights", str(files / "whole.pth"), "--trust",
                          "--json")
    assert code == 0 and err == ""
    j = json.loads(out)
    assert j["model"] == "auto" and j["loaded"].startswith("auto, 4 classes, weights whole.pth: a whole pickled FasterRCNN")
    code, out, err = main(capsys, "trace", str(files / "scene.png"), "--weights", str(files / "reference.pth"))
    assert code == 0 and out.startswith("loaded: demo, 4 classes, weights reference.pth: auto: demo (named by the "
                                        "checkpoint's args.model")


def test_mask_model_json_has_mask_area(files, capsys):
    code, out, err = main(capsys, "trace", str(files / "scene.png"), "--model", f"{TINY}:tiny_mask_rcnn", "--weights",
                          "random:1", "--json")
    assert code == 0, err
    j = json.loads(out)
    assert j["detections"] and all(isinstance(d["mask_area"], int) for d in j["detections"])
    assert j["mask_head"]["logits"][1:] == [3, 28, 28]


def test_models_fits_and_availability(files, tmp_path, capsys, monkeypatch):
    code, out, _ = main(capsys, "models", "--fits", str(files / "reference.pth"), "--json")
    assert code == 0 and json.loads(out) == ["demo"]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    code, out, _ = main(capsys, "models", "--json")
    rows = {x["name"]: x for x in json.loads(out)}
    assert {"maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn"} <= set(rows)
    assert any(x.startswith("coco (not cached: downloads on first use") for x in rows["maskrcnn_resnet50_fpn"]["weights"])
