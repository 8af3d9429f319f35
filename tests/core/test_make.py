"""The README's `make run` starts on the shipped demo model whatever model the app used last (the app
itself starts on the model it used last); a model in ARGS is the user's."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dry_run(*args) -> str:
    r = subprocess.run(["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if "rcnn-lens" in line][-1]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_run_names_the_demo_model_unless_args_name_one():
    assert dry_run().split()[1:] == ["--model", "demo", "--weights", "demo"]
    assert dry_run("ARGS=--model seed-alexnet a.png").split()[1:] == ["--model", "seed-alexnet", "a.png"]
