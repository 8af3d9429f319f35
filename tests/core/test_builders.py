"""The user's own builder (--model file.py:function / package.module:function), and the models the
runner cannot re-enact exactly: refused in one line, or traced and checked against model(images)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import core
from core.cli.options import check_line
from core.errors import ModelError
from core.models import presets
from core.models.support import inspect_model
from tests.core.same import assert_same

from .conftest import noise_image
from .tiny_models import tiny_faster_rcnn

TINY = Path(__file__).with_name("tiny_models.py")
ROOT = Path(__file__).resolve().parents[2]


def reference(module, image):
    with torch.inference_mode():
        return module([torch.from_numpy(image).permute(2, 0, 1).float().div(255)])[0]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_file_builder_with_weights_equals_torchvision(tmp_path):
    torch.manual_seed(5)
    src = tiny_faster_rcnn().eval()
    ck = tmp_path / "mine.pth"
    torch.save({"model": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 3}, ck)
    model = core.load_model(f"{TINY}:tiny_faster_rcnn", weights=str(ck))
    assert model.name == f"{TINY}:tiny_faster_rcnn" and model.class_names == ["__background__", "class 1", "class 2"]
    assert "prefix 'module.' removed" in model.summary
    image = noise_image(120, 150, seed=2)
    assert_same(core.trace(model, image), reference(src, image))
    # no weights: what the builder made (seeded), reproducible
    a = core.load_model(f"{TINY}:tiny_faster_rcnn")
    b = core.load_model(f"{TINY}:tiny_faster_rcnn", weights="builder")
    assert a.weights == b.weights == "builder" and "weights as the builder made them" in a.summary
    k = "roi_heads.box_predictor.cls_score.weight"
    assert torch.equal(a.module.state_dict()[k], b.module.state_dict()[k])


def test_module_builder(tmp_path, monkeypatch):
    pkg = tmp_path / "mydet"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg / "models.py", f"""
        import sys
        sys.path.insert(0, {str(TINY.parent)!r})
        from tiny_models import tiny_faster_rcnn

        def build():
            return tiny_faster_rcnn()
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = core.load_model("mydet.models:build", weights="random:2")
    assert model.name == "mydet.models:build" and model.support.overrides == ()
    with pytest.raises(ModelError, match=r"^nothere.mod:build: no module named nothere \(is it on PYTHONPATH\?\)$"):
        core.load_model("nothere.mod:build")


def test_errors_in_user_code_name_file_and_line(tmp_path):
    f = write(tmp_path / "det.py", """
        import torchvision

        def not_a_model():
            return 42

        def broken():
            x = 1
            return x / 0

        def needs(arg):
            return arg

        def deep():
            return torchvision.models.detection.fasterrcnn_resnet50_fpn(weights="no such weights")
    """)
    with pytest.raises(ModelError) as err:
        core.load_model(f"{f}:broken")
    assert str(err.value) == (f"{f}:9: ZeroDivisionError: division by zero (in builder {f}:broken; --debug shows "
                              "the traceback)")
    assert isinstance(err.value.__cause__, ZeroDivisionError)  # chained: --debug prints the user's traceback
    with pytest.raises(ModelError, match=r"not_a_model\(\) returned a builtins.int, not a torchvision GeneralizedRCNN"):
        core.load_model(f"{f}:not_a_model")
    with pytest.raises(ModelError, match=r"needs\(\) needs arguments \(arg\); a builder is called with none"):
        core.load_model(f"{f}:needs")
    with pytest.raises(ModelError, match=f"^{f}:15: KeyError: 'no such weights'"):  # raised in torchvision, called from line 15
        core.load_model(f"{f}:deep")
    with pytest.raises(ModelError, match=f"^{f}: has no function missing$"):
        core.load_model(f"{f}:missing")
    with pytest.raises(ModelError, match="no such builder file"):
        core.load_model(f"{tmp_path / 'none.py'}:build")
    syntax = write(tmp_path / "syn.py", "def build(:\n    pass\n")
    with pytest.raises(ModelError, match=f"^{syntax}:1: SyntaxError: "):
        core.load_model(f"{syntax}:build")
    at_import = write(tmp_path / "imp.py", "import os\nraise RuntimeError('no GPU here')\n")
    with pytest.raises(ModelError, match=f"^{at_import}:2: RuntimeError: no GPU here \\(while importing"):
        core.load_model(f"{at_import}:build")
    with pytest.raises(ModelError, match="expected a builder as path/to/file.py:function"):
        core.load_model("my model:")


def test_cli_builder_error_one_line_and_debug_traceback(tmp_path):
    f = write(tmp_path / "det.py", """
        def build():
            raise ValueError("bad anchors")
    """)
    img = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(img), noise_image(40, 40))
    cmd = [sys.executable, "-m", "core.cli", "trace", str(img), "--model", f"{f}:build"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 1
    assert r.stderr == f"rcnn-lens: {f}:3: ValueError: bad anchors (in builder {f}:build; --debug shows the traceback)\n"
    r = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 1 and "Traceback" in r.stderr and f'File "{f}", line 3, in build' in r.stderr


# --- the support check: models the runner cannot re-enact exactly ---------------------------------

def test_every_preset_is_plain_torchvision():
    for name, preset in presets.PRESETS.items():
        with torch.device("meta"):
            module = preset.build()
        assert inspect_model(module, name).overrides == (), name


def _subclass_model(tmp_path, body: str, name: str = "det.py"):
    head = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TINY.parent)!r})
        from tiny_models import tiny_faster_rcnn
        from torchvision.models.detection import FasterRCNN
        from torchvision.models.detection.roi_heads import RoIHeads
    """)
    f = tmp_path / name
    f.write_text(head + textwrap.dedent(body))
    return core.load_model(f"{f}:build", weights="random:1")


def test_override_with_same_output_is_checked_equal(tmp_path):
    model = _subclass_model(tmp_path, """
        class Logged(FasterRCNN):
            def forward(self, images, targets=None):
                return super().forward(images, targets)

        def build():
            m = tiny_faster_rcnn()
            m.__class__ = Logged
            return m
    """)
    assert model.support.overrides == ("Logged.forward",)
    assert "overrides Logged.forward: the first trace is checked against model(images)" in model.summary
    image = noise_image(100, 120, seed=1)
    tr = core.trace(model, image)
    assert tr.check.checked and tr.check.equal and tr.check.detail.startswith("equal to model(images)")
    assert check_line(tr, "x.png") is None
    tr2 = core.trace(model, noise_image(90, 100, seed=2))
    assert not tr2.check.checked and tr2.check.equal is None and "the first trace was: equal" in tr2.check.detail
    tr3 = core.retrace(tr, box_nms_thresh=0.2)
    assert not tr3.check.checked and "retraced, not checked" in tr3.check.detail


def test_override_that_changes_output_is_never_silent(tmp_path):
    model = core.load_model(f"{TINY}:top_one", weights="random:1")
    assert model.support.overrides == ("TopOne.postprocess_detections",)
    tr = core.trace(model, noise_image(100, 120, seed=1))
    assert tr.check.checked and tr.check.equal is False
    assert tr.check.detail.startswith("model(images) gave 1 detections, the trace ")
    line = check_line(tr, "x.png")
    assert line.startswith("rcnn-lens: x.png: warning: model(images) gave 1 detections") and "\n" not in line
    assert "overrides TopOne.postprocess_detections" in line


def test_instance_patch_is_flagged(tmp_path):
    model = _subclass_model(tmp_path, """
        def build():
            m = tiny_faster_rcnn()
            m.rpn.filter_proposals = lambda *a: RoIHeads  # never called by model(images) in a way we mimic
            return m
    """)
    assert model.support.overrides == ("RegionProposalNetwork.filter_proposals",)


def test_untraceable_models_are_refused_in_one_line(tmp_path):
    with pytest.raises(ModelError) as err:
        _subclass_model(tmp_path, """
            import torch

            class MyPool(torch.nn.Module):
                def forward(self, features, boxes, sizes):
                    return features["0"]

            def build():
                m = tiny_faster_rcnn()
                m.roi_heads.box_roi_pool = MyPool()
                return m
        """, "pool.py")
    assert str(err.value).endswith("cannot be traced: roi_heads.box_roi_pool (MyPool) has no featmap_names, so the "
                                   "runner cannot tell which feature level each RoI pooled from")
    with pytest.raises(ModelError, match="cannot be traced: its rpn is a Identity, not torchvision's "
                                         "RegionProposalNetwork"):
        _subclass_model(tmp_path, """
            import torch

            def build():
                m = tiny_faster_rcnn()
                m.rpn = torch.nn.Identity()
                return m
        """, "rpn.py")
