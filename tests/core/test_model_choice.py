"""The model chooser's rules (core.models.choice, Qt-free and torch-free) and the engine's requests
behind it (core.engine.model_handlers): which weights are here offline and the default each preset gets,
the one line wrong with an input, the presets a checkpoint fits, a COCO download with progress
and cancel against a loopback server standing in for the hub (RCNN_LENS_WEIGHTS_MIRROR), and a
load of uncached COCO weights that answers one line instead of fetching."""

from pathlib import Path

import pytest

from core.errors import LensError
from core.models import choice as mc
from core.paths import DEMO_WEIGHTS
from core.tracing.types import ModelCheck

from ..loopback import save_whole_pickle, serve_hub
from .conftest import Engine

ROOT = Path(__file__).resolve().parents[2]
PRESET = "fasterrcnn_mobilenet_v3_large_320_fpn"


def _info(coco_available):
    return {"name": PRESET, "coco_file": "f-907ea3f9.pth", "coco_dir": "/c", "coco_mb": 74.2,
            "weights": [{"spec": "coco", "available": coco_available, "note": ""},
                        {"spec": "random", "available": True, "note": ""}]}


def test_defaults_coco_when_cached_else_random_and_say_so():
    assert mc.default_weights(PRESET, _info(True)) == ("coco", "default: COCO weights (cached)")
    spec, why = mc.default_weights(PRESET, _info(False))
    assert spec == "random" and "COCO weights are not cached" in why and "choose coco to download" in why
    assert mc.default_weights("demo")[0] == "demo" and mc.default_weights("seed-alexnet")[0] == "random"
    assert mc.default_weights(mc.AUTO)[0] == mc.CHECKPOINT and mc.default_weights(mc.BUILDER)[0] == mc.BUILDER
    labels = [o.label for o in mc.weights_options(PRESET, _info(False))]
    assert labels == ["coco (not cached: download 74 MB)", "random (every stage shows noise)", "checkpoint file"]
    assert [o.spec for o in mc.weights_options("maskrcnn_resnet50_fpn")] == ["coco", "random", mc.CHECKPOINT]
    keys = [k for k, _, _ in mc.models()]
    assert {"maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn"} <= set(keys)
    assert keys[-2:] == [mc.AUTO, mc.BUILDER]


def test_requests_and_the_one_line_wrong_with_an_input(tmp_path):
    ck = tmp_path / "w.pt"
    ck.write_bytes(b"x")
    builder = tmp_path / "b.py"
    builder.write_text("def build(): pass\n")
    assert mc.request(PRESET, "", "coco", "", False, _info(False)) == mc.Request(PRESET, "coco", False, PRESET)
    assert mc.request(PRESET, "", "coco", "", False, _info(True)) == mc.Request(PRESET, "coco")
    assert mc.request(PRESET, "", "random", "", True) == mc.Request(PRESET, "random")  # trust only with a file
    assert mc.request(mc.AUTO, "", mc.CHECKPOINT, f" {ck} ", True) == mc.Request(mc.AUTO, str(ck), True)
    assert mc.request(mc.BUILDER, f"{builder}:build", mc.BUILDER, "", False) == mc.Request(f"{builder}:build", None)
    assert mc.request(mc.BUILDER, "pkg.mod:fn", mc.CHECKPOINT, str(ck), False) == mc.Request("pkg.mod:fn", str(ck))
    for args, line in [
        ((mc.BUILDER, "", mc.BUILDER, ""), "builder: name your builder as path/to/file.py:function"),
        ((mc.BUILDER, "b.py", mc.BUILDER, ""), "b.py: expected a builder as path/to/file.py:function"),
        ((mc.BUILDER, f"{tmp_path}/nope.py:f", mc.BUILDER, ""), f"{tmp_path}/nope.py: no such builder file"),
        ((PRESET, "", mc.CHECKPOINT, ""), "checkpoint: choose a checkpoint file"),
        ((PRESET, "", mc.CHECKPOINT, str(tmp_path / "gone.pt")), f"{tmp_path}/gone.pt: no such checkpoint file"),
        ((PRESET, "", mc.CHECKPOINT, str(tmp_path)), f"{tmp_path}: is a folder, not a checkpoint"),
    ]:
        with pytest.raises(LensError) as err:
            mc.request(*args, False)
        assert str(err.value).startswith(line) and "\n" not in str(err.value)
    assert mc.app_model(None, str(ck)) == mc.AUTO and mc.app_model(None, "coco") is None
    assert mc.app_model("x.py:f", str(ck)) == "x.py:f"
    assert mc.initial("x.py:f", str(ck)) == (mc.BUILDER, "x.py:f", mc.CHECKPOINT, str(ck))
    assert mc.initial("seed-alexnet", "random:3") == ("seed-alexnet", "", "random:3", "")
    assert not mc.remember({"name": "x.py:f"}) and not mc.remember({"name": "demo", "trusted": True})
    assert mc.remember({"name": "demo", "trusted": False})


def test_suggestions_name_the_preset_that_fits():
    reply = {"fits": ["demo"], "what": "state dict under 'model'", "error": None}
    s = mc.suggestion(reply, "fasterrcnn_resnet50_fpn")
    assert (s.text, s.uses, s.level) == ("this checkpoint fits demo, not fasterrcnn_resnet50_fpn (state dict under "
                                         "'model')", ("demo",), "warn")
    assert mc.suggestion(reply, "demo").level == "info" and mc.suggestion(reply, "demo").uses == ()
    assert mc.suggestion(reply, mc.AUTO).text.startswith("auto will load demo")
    bad = mc.suggestion({"error": "f.pt: refused: a whole pickled model ...; or pass --trust if you made this file",
                         "needs_trust": True, "trust": False}, "demo")
    assert bad.level == "error" and "tick “Trust this file” if you made" in bad.text and "--trust" not in bad.text


def test_a_checkpoint_both_mobilenets_fit_names_both_and_prefers_the_one_it_names():
    """MobileNetV3-Large FPN and its 320 variant have the same keys and shapes: both are offered, the
    one the checkpoint names (its args.model or its file name) first."""
    from core.engine.model_handlers import named_by_file

    both = ["fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn"]
    assert named_by_file("/w/fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth", both) == both[1]
    assert named_by_file("/w/fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth", both) == both[0]
    assert named_by_file("/w/model_final.pth", both) is None
    named = {"fits": [both[1], both[0]], "arch": both[1], "what": "", "error": None}
    s = mc.suggestion(named, both[0])
    assert s.uses == (both[1],) and s.level == "warn"
    assert s.text == f"fits {both[0]} and {both[1]}; the checkpoint names {both[1]}"
    s = mc.suggestion(named, "demo")
    assert s.uses == (both[1], both[0]) and s.text.startswith(f"this checkpoint fits {both[1]} and {both[0]}, not demo")
    unnamed = {"fits": both, "arch": None, "what": "", "error": None}
    assert mc.suggestion(unnamed, both[0]) == mc.Suggestion(f"fits {both[0]}; also fits {both[1]}", (both[1],), "info")


def test_banner_says_random_weights_and_a_check_that_failed():
    class T:
        check = None

    tr = T()
    assert mc.banner(tr, False) == "" and mc.banner(tr, True) == mc.RANDOM_BANNER
    tr.check = ModelCheck(True, True, ("X.forward",), "equal to model(images) (3 detections)")
    assert mc.banner(tr, False) == "" and mc.check_text(tr) == "check: equal to model(images) (3 detections)"
    tr.check = ModelCheck(True, False, ("TopOne.postprocess_detections",), "model(images) gave 1 detections, the "
                                                                           "trace 12")
    assert mc.banner(tr, False).startswith("not what the model computes: model(images) gave 1 detections")
    assert mc.check_text(tr) == "check: NOT equal to model(images): model(images) gave 1 detections, the trace 12"
    tr.check = ModelCheck(False, None, ("T.f",), "retraced, not checked; the first trace was: model(images) gave 1")
    assert mc.banner(tr, False).startswith("unchecked: retraced")
    tr.check = ModelCheck(False, None, ("T.f",), "not checked; the first trace was: equal to model(images) (3)")
    assert mc.banner(tr, False) == ""


# ---------------------------------------------------------------- the engine's side
@pytest.fixture
def hub(monkeypatch, tmp_path):
    with serve_hub(monkeypatch, tmp_path) as h:
        yield h


@pytest.fixture
def engine(hub):
    e = Engine()  # started after the hub fixture set its environment: the engine inherits it
    yield e
    e.send("quit", 0)
    assert e.proc.wait(30) == 0


def test_models_and_suggest_through_the_engine(engine, hub, tmp_path):
    engine.send("models", 1, {})
    _, _, body = engine.until(("models", "error"))
    rows = {r["name"]: r for r in body["presets"]}
    assert rows["demo"]["weights"][0] == {"spec": "demo", "available": True, "note": "shipped"}
    coco = rows[PRESET]["weights"][0]
    assert coco["spec"] == "coco" and coco["available"] is False and rows[PRESET]["coco_mb"] > 10
    assert rows[PRESET]["coco_dir"] == str(hub[1])
    engine.send("suggest", 2, {"path": str(DEMO_WEIGHTS), "trust": False})
    _, _, s = engine.until(("suggested", "error"))
    assert s["fits"] == ["demo"] and s["error"] is None and s["what"].startswith("state dict under")
    text = tmp_path / "notes.txt"
    text.write_text("just some text\n")
    engine.send("suggest", 3, {"path": str(text), "trust": False})
    _, _, s = engine.until(("suggested", "error"))
    assert s["fits"] == [] and s["error"] == (f"{text}: not a PyTorch checkpoint (neither torch's zip format nor its "
                                              "legacy pickle format)")


def test_a_whole_pickle_is_suggested_only_when_trusted(engine, tmp_path):
    f = tmp_path / "whole.pt"
    save_whole_pickle(f)
    engine.send("suggest", 1, {"path": str(f), "trust": False})
    _, _, s = engine.until(("suggested",))
    assert s["needs_trust"] and "refused: a whole pickled model" in s["error"] and s["fits"] == []
    engine.send("suggest", 2, {"path": str(f), "trust": "yes"})  # only true trusts
    assert "refused" in engine.until(("suggested",))[2]["error"]
    engine.send("suggest", 3, {"path": str(f), "trust": True})
    _, _, s = engine.until(("suggested",))
    assert s["error"] is None and s["what"].startswith("a whole pickled FasterRCNN")


def test_download_reports_progress_and_cancel_keeps_nothing(engine, hub):
    h, cache, _ = hub
    h.first = (1 << 16) + 1000  # one chunk (a progress message), then a stall
    engine.send("download", 1, {"preset": PRESET})
    kind, seq, body = engine.until(("progress", "error"))
    assert (kind, seq) == ("progress", 1) and 0 < body["done"] <= h.first and body["total"] == len(h.data)
    engine.send("cancel", 2, {})  # the server holds the rest back: the cancel must not wait for it
    kind, seq, body = engine.until(("cancelled", "downloaded", "error"))
    assert (kind, seq, body["kind"]) == ("cancelled", 1, "download") and "nothing was saved" in body["at"]
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_with_a_wrong_hash_keeps_nothing_and_a_load_never_fetches(engine, hub):
    h, cache, _ = hub
    engine.send("download", 1, {"preset": PRESET})
    msgs = []
    while not msgs or msgs[-1][0] not in ("downloaded", "error"):
        msgs.append(engine.until(("progress", "downloaded", "error")))
    assert msgs[-2][2] == {"done": len(h.data), "total": len(h.data)}  # the bar reached the end
    kind, _, body = msgs[-1]
    assert kind == "error" and "does not match the expected 907ea3f9; nothing was saved" in body["message"]
    assert list(cache.iterdir()) == []
    engine.send("load", 2, {"name": PRESET, "weights": "coco", "device": "cpu"})
    _, _, err = engine.until(("error", "loaded"))
    assert err["download"] == PRESET and err["message"].startswith(f"fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth:"
                                                                   f" COCO weights for {PRESET} are not cached (74 MB)")
    assert list(cache.iterdir()) == [] and "\n" not in err["message"]


def test_a_mirror_must_be_an_http_folder(monkeypatch):
    from core.models import presets
    from core.models import weights as w

    monkeypatch.setenv("RCNN_LENS_WEIGHTS_MIRROR", "file:///etc/")
    with pytest.raises(LensError, match="RCNN_LENS_WEIGHTS_MIRROR: expected the http"):
        w.coco_url(presets.get(PRESET))
    monkeypatch.setenv("RCNN_LENS_WEIGHTS_MIRROR", "https://mirror.example/models")
    assert w.coco_url(presets.get(PRESET)) == "https://mirror.example/models/fasterrcnn_mobilenet_v3_large_320_fpn-" \
                                               "907ea3f9.pth"
