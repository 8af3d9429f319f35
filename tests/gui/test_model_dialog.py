"""The model chooser and what it loads, offscreen: the dialog's choices make the right load request;
the trust checkbox is never remembered (nor is a model that runs the user's code); a checkpoint of
another preset gets that preset suggested (the engine reads it); COCO weights download with a
progress dialog that can be cancelled, against a loopback server standing in for the hub, leaving
no file; the command line's --trust; Mask R-CNN and Keypoint R-CNN rows that draw where the masks
and heatmaps are; the banner of a model whose trace differs from model(images). Waits are on the
window's state and the engine's replies, never sleeps."""

from pathlib import Path

import cv2
import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog

from core.colormaps import class_colour
from core.models import choice as mc
from core.paths import DEMO_WEIGHTS
from core.state.app_state import ModelChoice

from ..loopback import save_whole_pickle, serve_hub
from .conftest import view_pixels, wait_settled, wait_trace

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "core" / "tiny_models.py"
PRESET = "fasterrcnn_mobilenet_v3_large_320_fpn"


class FakeEngine(QObject):
    """Records what the dialog asks; the test answers as the engine would."""

    replied = Signal(str, int, object)
    died = Signal(str, bool)

    def __init__(self):
        super().__init__()
        self.asked = []

    def ask(self, kind, body=None):
        self.asked.append((kind, body))
        return len(self.asked)

    def seq(self, kind):
        return max(i + 1 for i, (k, _) in enumerate(self.asked) if k == kind)


def _rows(coco_cached: bool):
    from core.models.presets import PRESETS

    out = []
    for name, p in PRESETS.items():
        w = [{"spec": "demo", "available": True, "note": "shipped"}] if name == "demo" else []
        if p.coco:
            w.append({"spec": "coco", "available": coco_cached, "note": ""})
        out.append({"name": name, "description": p.description, "default": p.default_weights, "coco_file": "x.pth",
                    "coco_dir": "/cache", "coco_mb": 74.2, "weights": [*w, {"spec": "random", "available": True}]})
    return {"presets": out}


def _chosen(qtbot, dlg):
    with qtbot.waitSignal(dlg.chosen, timeout=5000) as sig:
        dlg.ok.click()
    return sig.args[0]


def test_dialog_choices_make_the_right_load_request(qtbot, tmp_path):
    from gui.model_dialog import ModelDialog

    ck = tmp_path / "mine.pth"
    ck.write_bytes(b"x")
    eng = FakeEngine()
    dlg = ModelDialog(ModelChoice("demo", None), eng)
    qtbot.addWidget(dlg)
    assert eng.asked == [("models", {})] and not dlg.trust.isChecked()
    assert dlg.current_weights() == "demo"
    # a torchvision preset: random until the engine says COCO weights are cached, then COCO
    dlg.model.setCurrentIndex(dlg.model.findData(PRESET))
    assert dlg.current_weights() == "random" and "checking" in dlg.weights_note.text()
    eng.replied.emit("models", eng.seq("models"), _rows(coco_cached=True))
    assert dlg.current_weights() == "coco" and dlg.weights.currentText() == "coco (cached)"
    assert _chosen(qtbot, dlg) == mc.Request(PRESET, "coco")
    # not cached: random by default, saying so; coco means a download first
    dlg = ModelDialog(ModelChoice("demo", None), eng)
    qtbot.addWidget(dlg)
    eng.replied.emit("models", eng.seq("models"), _rows(coco_cached=False))
    dlg.model.setCurrentIndex(dlg.model.findData("maskrcnn_resnet50_fpn"))
    assert dlg.current_weights() == "random" and "COCO weights are not cached" in dlg.weights_note.text()
    dlg.weights.setCurrentIndex(dlg.weights.findData("coco"))
    assert dlg.ok.text() == "Download and load"
    assert _chosen(qtbot, dlg) == mc.Request("maskrcnn_resnet50_fpn", "coco", False, "maskrcnn_resnet50_fpn")
    # the user's builder, with a note that it runs their code; a bad one is one line, the dialog stays
    dlg = ModelDialog(ModelChoice("demo", None), eng)
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.model.setCurrentIndex(dlg.model.findData(mc.BUILDER))
    assert dlg.builder.isVisible() and "Runs your code" in dlg.runs_code.text() and dlg.runs_code.isVisible()
    dlg.builder.setText(f"{tmp_path}/nope.py:build")
    with qtbot.assertNotEmitted(dlg.chosen):
        dlg.ok.click()
    assert dlg.isVisible() and dlg.problem.text() == f"{tmp_path}/nope.py: no such builder file"
    dlg.builder.setText(f"{TINY}:tiny_mask_rcnn")
    assert _chosen(qtbot, dlg) == mc.Request(f"{TINY}:tiny_mask_rcnn", None)
    # a checkpoint, trusted: the trust goes with this request only; the fitting preset is asked for
    dlg = ModelDialog(ModelChoice("demo", None), eng)
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.model.setCurrentIndex(dlg.model.findData(mc.AUTO))
    assert dlg.current_weights() == mc.CHECKPOINT and dlg.checkpoint.isVisible() and not dlg.trust_warning.isVisible()
    dlg.checkpoint.setText(str(ck))
    dlg.checkpoint.editingFinished.emit()
    assert eng.asked[-1] == ("suggest", {"path": str(ck), "trust": False})
    dlg.trust.setChecked(True)
    assert dlg.trust_warning.isVisible() and "Never remembered" in dlg.trust_warning.text()
    assert _chosen(qtbot, dlg) == mc.Request(mc.AUTO, str(ck), True)


def test_the_checkpoint_of_another_preset_gets_it_suggested(qtbot):
    from gui.model_dialog import ModelDialog

    eng = FakeEngine()
    dlg = ModelDialog(ModelChoice("fasterrcnn_resnet50_fpn", str(DEMO_WEIGHTS)), eng)
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.current_weights() == mc.CHECKPOINT and eng.asked[-1][0] == "suggest"
    eng.replied.emit("suggested", eng.seq("suggest"), {"path": str(DEMO_WEIGHTS), "trust": False, "fits": ["demo"],
                                                       "what": "state dict under 'model'", "error": None})
    assert dlg.suggestion.text().startswith("this checkpoint fits demo, not fasterrcnn_resnet50_fpn")
    assert dlg.uses[0].isVisible() and dlg.uses[0].text() == "Use demo" and not dlg.uses[1].isVisible()
    dlg.uses[0].click()
    assert dlg.current_model() == "demo" and dlg.current_weights() == mc.CHECKPOINT
    assert _chosen(qtbot, dlg) == mc.Request("demo", str(DEMO_WEIGHTS))


def test_both_presets_a_checkpoint_fits_are_offered_whole_and_an_error_disables_load(qtbot, tmp_path):
    """The buttons sit under the note, each with its whole text; the file is checked as it is typed;
    a red error leaves Load disabled until the file is good."""
    from PySide6.QtWidgets import QApplication

    from gui.model_dialog import ModelDialog

    both = ["fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_fpn"]
    ck = tmp_path / "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth"
    ck.write_bytes(b"x")
    eng = FakeEngine()
    dlg = ModelDialog(ModelChoice("demo", None), eng)
    qtbot.addWidget(dlg)
    dlg.resize(560, 400)
    dlg.show()
    dlg.weights.setCurrentIndex(dlg.weights.findData(mc.CHECKPOINT))
    dlg.checkpoint.clear()
    qtbot.keyClicks(dlg.checkpoint, str(ck))  # typed, the field still focused: asked after a pause
    qtbot.waitUntil(lambda: eng.asked[-1] == ("suggest", {"path": str(ck), "trust": False}), timeout=5000)
    eng.replied.emit("suggested", eng.seq("suggest"), {"path": str(ck), "trust": False, "fits": both,
                                                       "arch": both[0], "what": "", "error": None})
    QApplication.processEvents()
    shown = [b for b in dlg.uses if b.isVisible()]
    assert [b.text() for b in shown] == [f"Use {both[0]}", f"Use {both[1]}"]
    note = dlg.suggestion.geometry()
    for b in shown:
        assert b.width() >= b.fontMetrics().horizontalAdvance(b.text())  # not clipped
        top = b.mapTo(dlg.suggestion_row, b.rect().topLeft()).y()
        assert top >= note.bottom()  # under the note, never over it
    assert dlg.ok.isEnabled()
    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    dlg.checkpoint.setText(str(bad))
    dlg.checkpoint.editingFinished.emit()
    eng.replied.emit("suggested", eng.seq("suggest"), {"path": str(bad), "trust": False, "fits": [], "what": None,
                                                       "error": f"{bad}: not a PyTorch checkpoint (the file is empty)"})
    assert "not a PyTorch checkpoint" in dlg.suggestion.text() and not dlg.ok.isEnabled()
    dlg.checkpoint.setText(str(tmp_path / "gone.pt"))
    dlg.checkpoint.editingFinished.emit()
    assert dlg.suggestion.text().endswith("no such file") and not dlg.ok.isEnabled()


def test_wrapped_notes_are_never_cut_as_they_grow(qtbot, tmp_path):
    """Each note the dialog shows gets the height its wrapped lines need, also after a long error arrives."""
    from PySide6.QtWidgets import QApplication, QLabel

    from gui.model_dialog import ModelDialog

    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    eng = FakeEngine()
    dlg = ModelDialog(ModelChoice("demo", str(bad)), eng)
    qtbot.addWidget(dlg)
    dlg.show()
    eng.replied.emit("models", eng.seq("models"), _rows(coco_cached=False))
    eng.replied.emit("suggested", eng.seq("suggest"), {
        "path": str(bad), "trust": False, "fits": [], "what": None,
        "error": f"{bad}: not a PyTorch checkpoint (neither torch's zip format nor its legacy pickle format); "
                 "save it with torch.save(model.state_dict(), path)"})
    QApplication.processEvents()
    notes = [w for w in dlg.findChildren(QLabel) if w.isVisible() and w.wordWrap() and w.text()]
    assert dlg.suggestion in notes and dlg.about in notes
    for w in notes:
        assert w.height() >= w.heightForWidth(w.width()), (w.objectName(), w.text())


def test_trust_from_the_command_line_never_remembered_and_suggestions_from_the_engine(make_window, scenes, qtbot,
                                                                                      qsettings, tmp_path):
    from gui.app import parse

    whole = tmp_path / "whole.pt"
    save_whole_pickle(whole)
    args = parse(["--weights", str(whole), "--trust", scenes[0]])  # rcnn-lens --weights F --trust IMAGE
    win = make_window(args.images, model=mc.app_model(args.model, args.weights), weights=args.weights,
                      trust=args.trust)
    tr = wait_trace(qtbot, win, scenes[0])
    assert win.state.choice.trust and win.state.loaded["trusted"] and tr.model == "auto"
    assert "a whole pickled FasterRCNN (loaded trusting the file)" in win.inspector.model.text()
    assert qsettings.value("model") is None  # a model that runs the user's code is not loaded at the next start
    sent, orig = [], win.engine.load
    win.engine.load = lambda *a, **kw: (sent.append((a, kw)), orig(*a, **kw))[1]
    # the dialog: trust unticked though the current model is trusted; the engine suggests the preset
    dlg = win.model_dialog()
    assert not dlg.trust.isChecked() and dlg.current_model() == mc.AUTO and dlg.checkpoint.text() == str(whole)
    dlg.model.setCurrentIndex(dlg.model.findData("fasterrcnn_resnet50_fpn"))
    dlg.checkpoint.setText(str(DEMO_WEIGHTS))
    dlg.checkpoint.editingFinished.emit()
    qtbot.waitUntil(lambda: dlg.uses[0].isVisible(), timeout=60_000)
    assert dlg.suggestion.text().startswith("this checkpoint fits demo, not fasterrcnn_resnet50_fpn")
    dlg.uses[0].click()
    dlg.ok.click()
    qtbot.waitUntil(lambda: win.state.loaded["name"] == "demo" and win.settled, timeout=60_000)
    assert sent[-1] == (("demo", str(DEMO_WEIGHTS), "cpu"), {"trust": False})
    assert qsettings.value("model") == "demo" and qsettings.value("weights") == str(DEMO_WEIGHTS)
    # the pickle again, untrusted this time: one line, the previous model stays
    dlg = win.model_dialog()
    dlg.model.setCurrentIndex(dlg.model.findData(mc.AUTO))
    dlg.checkpoint.setText(str(whole))
    dlg.checkpoint.editingFinished.emit()
    qtbot.waitUntil(lambda: "refused" in dlg.suggestion.text(), timeout=60_000)
    assert "If you made this file, tick “Trust this file”" in dlg.suggestion.text()
    assert not dlg.ok.isEnabled()  # a red line: nothing to load from here
    dlg.reject()
    win.state.choose_model(mc.AUTO, str(whole))  # as a remembered or typed choice would: one line, the model stays
    qtbot.waitUntil(lambda: win.messages.isVisible() and win.settled, timeout=60_000)
    assert sent[-1] == (("auto", str(whole), "cpu"), {"trust": False})
    line = win.messages.text.text()
    assert line.startswith(f"{whole}: refused: a whole pickled model") and "\n" not in line
    assert "tick “Trust this file”" in line and win.state.loaded["name"] == "demo" and not win.state.choice.trust
    assert not win.model_dialog().trust.isChecked()
    win.close()
    saved = {k: str(qsettings.value(k)) for k in qsettings.allKeys()}
    assert not [k for k in saved if "trust" in k.lower()] and not [k for k, v in saved.items() if str(whole) in v]


# ---------------------------------------------------------------- downloads
@pytest.fixture
def hub(monkeypatch, tmp_path):
    with serve_hub(monkeypatch, tmp_path) as h:
        yield h


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _download_dialog(qtbot, win):
    qtbot.waitUntil(lambda: win.findChild(QDialog, "download_dialog") is not None, timeout=10_000)
    return win.findChild(QDialog, "download_dialog")


def test_coco_download_progress_cancel_wrong_hash_and_offline(make_window, scenes, qtbot, hub):
    h, cache, server = hub
    h.first = (1 << 16) + 1000  # one chunk (a progress message), then a stall
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    dlg = win.model_dialog()
    dlg.model.setCurrentIndex(dlg.model.findData(PRESET))
    qtbot.waitUntil(lambda: PRESET in dlg.infos, timeout=60_000)  # the engine looked in torch's cache
    assert dlg.current_weights() == "random" and "not cached" in dlg.weights_note.text()
    dlg.weights.setCurrentIndex(dlg.weights.findData("coco"))
    assert dlg.ok.text() == "Download and load"
    dlg.ok.click()
    dd = _download_dialog(qtbot, win)
    qtbot.waitUntil(lambda: dd.bar.maximum() == 1000 and dd.bar.value() > 0, timeout=30_000)  # a real bar
    assert dd.bar.value() <= 1000 * h.first // len(h.data) and f"of {len(h.data) / 1e6:.1f} MB" in dd.label.text()
    with qtbot.waitSignal(dd.ended, timeout=30_000) as ended:
        dd.cancel_button.click()
        assert dd.label.text() == "Cancelling…" and not dd.cancel_button.isEnabled()
        # the server holds the rest back: the cancel does not wait for a stalled connection
    assert ended.args == [f"download of the COCO weights of {PRESET} cancelled; nothing was saved"]
    assert _files(cache) == [] and win.state.choice.name == "demo" and not win.messages.isVisible()
    assert "cancelled; nothing was saved" in win.status.message.text()
    # a load of COCO weights that are not cached offers the download; this file's hash is wrong
    h.first = 1 << 62
    win.state.choose_model(PRESET, "coco")
    qtbot.waitUntil(lambda: win.messages.button.isVisible() and win.settled, timeout=60_000)
    assert win.messages.text.text().startswith(f"{PRESET}-907ea3f9.pth: COCO weights for {PRESET} are not cached")
    assert win.messages.button.text() == "Download…" and win.state.loaded["name"] == "demo"
    win.messages.button.click()
    dd = _download_dialog(qtbot, win)
    with qtbot.waitSignal(dd.ended, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: win.messages.isVisible())
    line = win.messages.text.text()
    assert "does not match the expected 907ea3f9; nothing was saved" in line and "\n" not in line
    assert _files(cache) == [] and win.state.loaded["name"] == "demo"
    # offline: the one line in the message bar
    server.shutdown()
    server.server_close()
    from gui.model_dialog import download

    dd = download(win, PRESET)
    with qtbot.waitSignal(dd.ended, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: "cannot reach" in win.messages.text.text())
    assert win.messages.text.text().endswith(f"put {PRESET}-907ea3f9.pth in {cache} by hand")
    assert _files(cache) == []


# ---------------------------------------------------------------- the extra heads
def _widget_points(win, xs, ys):
    pts = [win.view.to_widget(float(x) + 0.5, float(y) + 0.5) for x, y in zip(xs, ys)]
    return np.array([[p.x(), p.y()] for p in pts]).round().astype(int)


def _top_near(top, x, y):
    """The top mask at (x, y), or at its nearest neighbour that has one."""
    h, w = top.shape
    for dy, dx in ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1)):
        if 0 <= y + dy < h and 0 <= x + dx < w and top[y + dy, x + dx] >= 0:
            return top[y + dy, x + dx]
    raise AssertionError((x, y))


def _changed(before, after, pts):
    h, w = before.shape[:2]
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    pts = pts[ok]
    diff = np.abs(after.astype(int) - before.astype(int)).sum(2)
    return (diff[pts[:, 1], pts[:, 0]] > 20).mean(), len(pts)


def test_mask_and_keypoint_rows_draw_where_torchvision_puts_them(make_window, qtbot, tmp_path):
    grey = tmp_path / "grey.png"  # no colour of its own: a pixel of a mask's colour is the mask's
    rng = np.random.default_rng(0)
    cv2.imwrite(str(grey), (118 + rng.integers(0, 20, (240, 320, 3))).astype(np.uint8))
    win = make_window([str(grey)], model=f"{TINY}:tiny_mask_rcnn")
    tr = wait_trace(qtbot, win, str(grey))
    assert tr.masks is not None and len(tr.masks) == len(tr.detections.keep) > 1
    shown = [s for s, row in win.stages.rows.items() if not row.isHidden()]
    assert "masks" in shown and "keypoints" not in shown
    assert win.stages.controls[("masks", "detection")].maximum() == len(tr.masks) - 1
    win.set_setting("masks", "opacity", 1.0)
    win.state.set_visible("detections", False)  # their outlines (in the same class colours) lie on the masks' rims
    wait_settled(qtbot, win)
    before = view_pixels(win)
    win.stages.checks["masks"].click()
    wait_settled(qtbot, win)  # the pasted masks came from the engine on demand
    m = win.state.trace.masks
    assert isinstance(m.pasted, np.ndarray) and any(c.startswith("masks: ") for c in win.legend.captions())
    after = view_pixels(win)
    union = np.zeros(m.image_size, bool)
    top = np.full(m.image_size, -1)  # the detection whose mask is on top (the best: drawn last)
    for j in reversed(range(len(m))):
        hit = m.full(j) > 0.5  # torchvision's masks[:, 0] > 0.5, in original pixels
        union |= hit
        top[hit] = j
    kernel = np.ones((3, 3), np.uint8)
    u8 = union.astype(np.uint8)
    rim_in = union & ~cv2.erode(u8, kernel).astype(bool)  # mask pixels at its edge, and just outside it:
    rim_out = cv2.dilate(u8, kernel).astype(bool) & ~union  # a mask drawn a pixel off fails here
    sel = m.rois_image[0]  # the masks stage outlines detection 0 and labels it: not a mask
    band = np.zeros_like(union)
    band[max(int(sel[1]) - 25, 0):int(sel[3]) + 5, max(int(sel[0]) - 5, 0):int(sel[2]) + 5] = True
    band[int(sel[1]) + 4:int(sel[3]) - 4, int(sel[0]) + 4:int(sel[2]) - 4] = False
    rim_in, rim_out = rim_in & ~band, rim_out & ~band
    for rim, want_in in ((rim_in, True), (rim_out, False)):
        ys, xs = np.nonzero(rim)
        pick = rng.choice(len(xs), min(400, len(xs)), replace=False)
        pts = _widget_points(win, xs[pick], ys[pick])
        got = after[pts[:, 1], pts[:, 0]].astype(int)
        want = np.array([class_colour(int(m.labels[_top_near(top, x, y)])) for x, y in zip(xs[pick], ys[pick])])
        near = (np.abs(got - want).sum(1) < 30).mean()  # the mask's colour (a label may lie on top)
        assert (near > 0.85) if want_in else (near < 0.15), (want_in, near)
    far = ~union
    far[max(int(sel[1]) - 25, 0):int(sel[3]) + 6, max(int(sel[0]) - 6, 0):int(sel[2]) + 6] = False  # its box, label
    ys, xs = np.nonzero(far)
    pick = rng.choice(len(xs), min(400, len(xs)), replace=False)
    outside, n = _changed(before, after, _widget_points(win, xs[pick], ys[pick]))
    assert n > 50 and outside < 0.05, outside
    # one detection's 28x28 probabilities over its box
    win.set_setting("masks", "detection", 1)
    win.set_setting("masks", "probability", True)
    wait_settled(qtbot, win)
    hm = [la for la in win.view.layers["masks"].layers if la.name == "masks.probability"]
    assert len(hm) == 1 and hm[0].rect == tuple(float(v) for v in m.rois_image[1])
    # Keypoint R-CNN: its row, a heatmap picked by keypoint name, fetched (one detection's row) on demand
    win.state.choose_model(f"{TINY}:tiny_keypoint_rcnn", None)
    qtbot.waitUntil(lambda: win.state.trace is not None and win.state.trace.keypoints is not None and win.settled,
                    timeout=60_000)
    kp = win.state.trace.keypoints
    shown = [s for s, row in win.stages.rows.items() if not row.isHidden()]
    assert "keypoints" in shown and "masks" not in shown
    combo = win.stages.controls[("keypoints", "heatmap")]
    assert combo.count() == len(kp.names) + 1 and combo.itemText(4) == f"3: {kp.names[3]}"
    before = view_pixels(win)
    win.stages.checks["keypoints"].click()
    combo.setCurrentIndex(4)
    assert win.state.settings["keypoints"]["heatmap"] == 3
    wait_settled(qtbot, win)
    after = view_pixels(win)
    layer = next(la for la in win.view.layers["keypoints"].layers if la.name == "keypoints.heatmap")
    x0, y0, x1, y1 = kp.rois_image[0]
    assert layer.rect == (x0, y0, x1, y1) and layer.data.shape == kp.heatmaps.shape[2:]
    img = [it for it in win.view.items["keypoints"] if isinstance(it, pg.ImageItem)]
    r = img[0].mapRectToItem(win.view.photo, img[0].boundingRect())  # on screen: over exactly that box
    assert len(img) == 1 and np.allclose([r.left(), r.top(), r.right(), r.bottom()], [x0, y0, x1, y1], atol=1e-3)
    ys, xs = np.mgrid[int(y0) + 1:int(y1) - 1:3, int(x0) + 1:int(x1) - 1:3]
    inside, n = _changed(before, after, _widget_points(win, xs.ravel(), ys.ravel()))
    assert n > 20 and inside > 0.6, inside  # a translucent colour map: dark on dark changes little
    pts = win.state.trace.keypoints.keypoints_image[..., :2].reshape(-1, 2)
    drawn = next(la for la in win.view.layers["keypoints"].layers if la.name == "keypoints.points")
    assert np.allclose(np.sort(drawn.xy, 0), np.sort(pts, 0))  # where torchvision returns them


# ---------------------------------------------------------------- the model check
def test_a_model_whose_trace_differs_from_model_images_gets_a_banner(make_window, scenes, qtbot, tmp_path):
    win = make_window([scenes[0]], model=f"{TINY}:tiny_faster_rcnn")
    tr = wait_trace(qtbot, win, scenes[0])
    assert tr.check is None and not win.view.banner.isVisibleTo(win)  # torchvision's own modules: no banner
    win.state.choose_model(f"{TINY}:top_one", None)
    qtbot.waitUntil(lambda: win.state.trace is not None and win.state.trace.model == f"{TINY}:top_one" and win.settled,
                    timeout=60_000)
    assert win.view.banner.isVisibleTo(win)
    assert win.view.banner.text().startswith("not what the model computes: model(images) gave 1 detections")
    assert "TopOne.postprocess_detections" in win.view.banner.text()
    assert "check: NOT equal to model(images): model(images) gave 1 detections" in win.inspector.model.text()
    assert "overrides TopOne.postprocess_detections" in win.inspector.model.text()  # the loaded summary
