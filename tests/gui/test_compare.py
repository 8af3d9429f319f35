"""A compare folder opens like an analysis folder: its objects, the changed first, with both verdicts;
choosing one shows it with run A's model and thresholds, B flips to run B's (the engine keeps both
models loaded: flipping back reuses the kept trace) with the object still selected and its path
drawn, and the legend says which run is shown."""

import shutil

from PySide6.QtCore import Qt

from core.paths import DEMO_IMAGES

from .conftest import wait_trace


def _runs(tmp_path):
    from core.analysis.analyze import analyze
    from core.analysis.compare import compare
    from core.analysis.compare_chart import draw

    (tmp_path / "imgs").mkdir()
    for k in (1, 2):
        shutil.copy(DEMO_IMAGES / f"scene_{k}.png", tmp_path / "imgs")
    shutil.copy(DEMO_IMAGES / "annotations.json", tmp_path / "imgs")
    import torch

    from core.paths import DEMO_WEIGHTS

    ck = torch.load(DEMO_WEIGHTS, weights_only=True)  # "another checkpoint": triangles score lower
    ck["model"]["roi_heads.box_predictor.cls_score.bias"][3] -= 40.0
    torch.save(ck, tmp_path / "other.pt")
    analyze([tmp_path / "imgs"], tmp_path / "a", workers=0, progress=False)
    analyze([tmp_path / "imgs"], tmp_path / "b", model="demo", weights=str(tmp_path / "other.pt"), workers=0,
            progress=False, params={"box_score_thresh": 0.3})
    import json

    cmp = compare([tmp_path / "a", tmp_path / "b"], resamples=20)
    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "compare.json").write_text(json.dumps(cmp))
    (tmp_path / "cmp" / "compare.png").write_bytes(draw(cmp))
    return tmp_path / "cmp"


def test_a_compare_folder_opens_and_b_flips_between_the_runs(make_window, qtbot, tmp_path):
    from core.analysis.browse import open_compare

    folder = _runs(tmp_path)
    c = open_compare(folder)
    row = c.rows[0]
    assert row["changed"] and row["verdicts"][0] == "detected" and row["verdicts"][1] != "detected"
    win = make_window([str(folder)])  # rcnn-lens CMP
    tr = wait_trace(qtbot, win, row["path"])
    qtbot.waitUntil(lambda: win.truth_side.gt.object == row["truth"])
    b = win.truth_side.browser
    assert win.docks["analysis"].isVisible() and b.paths[0] == row["path"]
    assert b.table.headerItem().text(2) == "A -> B" and b.table.topLevelItem(0).text(2).startswith("detected -> ")
    assert tr.weights == "demo" and tr.diagnosis.objects[row["truth"]].verdict == "detected"
    assert any(t.startswith("Showing run A") for t in win.legend.captions())
    statuses = []
    win.engine.status.connect(statuses.append)
    win.setFocus()
    qtbot.keyClick(win, Qt.Key.Key_B)  # run B: another checkpoint, its thresholds
    qtbot.waitUntil(lambda: win.state.trace is not None and win.state.trace.weights.endswith("other.pt") and win.settled,
                    timeout=90_000)
    tr = win.state.trace
    assert tr.params["box_score_thresh"] == 0.3 and tr.meta.name == row["path"]
    assert win.truth_side.gt.object == row["truth"]
    assert tr.diagnosis.objects[row["truth"]].verdict == row["verdicts"][1]
    assert any(t.startswith("Showing run B") for t in win.legend.captions())
    assert any(f"object {row['truth']}" in t for t in win.legend.captions())  # the object's path, drawn
    qtbot.keyClick(win, Qt.Key.Key_B)  # back to A: the model and its trace were kept
    qtbot.waitUntil(lambda: win.state.trace.weights == "demo" and win.settled, timeout=60_000)
    assert win.state.trace.diagnosis.objects[row["truth"]].verdict == "detected"
    assert any("the trace kept for demo" in t for t in statuses), statuses
    # another row: its image with run A
    other = next(i for i, r in enumerate(c.rows) if r["path"] != row["path"])
    b.table.setCurrentItem(b.table.topLevelItem(other))  # a click or the arrow keys
    wait_trace(qtbot, win, c.rows[other]["path"])
    qtbot.waitUntil(lambda: win.truth_side.gt.object == c.rows[other]["truth"])
    # a broken compare folder: one line, the app goes on
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "compare.json").write_text("{}")
    win.truth_side.open_analysis(str(tmp_path / "bad"))
    qtbot.waitUntil(lambda: win.messages.isVisible() and "not a result of rcnn-lens compare" in win.messages.text.text())
