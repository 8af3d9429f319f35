"""The Anchor what-if dock, offscreen with the real engine: it starts at the model's generator; Apply
redraws the anchors and anchor targets with a hypothetical generator (no backbone rerun) and the
panel and the Truth dock show strong / rescued / starved before -> after: the counts
``rcnn-lens anchors`` gives for the same configuration on the same image; paging keeps it; a bad
configuration is one line in the message bar and changes nothing; Reset goes back."""

import json

from core.cli.main import main as cli
from core.paths import DEMO_IMAGES

from .conftest import wait_settled, wait_trace

SCENE_1, SCENE_2 = str(DEMO_IMAGES / "scene_1.png"), str(DEMO_IMAGES / "scene_2.png")
SIZES = ["24, 40", "48, 80", "96, 160", "192, 320"]
RATIOS = "0.5, 1, 2"


def _counts(tmp_path, image):
    out = tmp_path / "cli"
    assert cli(["anchors", image, "-o", str(out), "--sizes", " / ".join(SIZES), "--ratios", RATIOS, "--trials", "1",
                "--free-trials", "0", "--quiet"]) == 0
    after = json.loads((out / "anchors.json").read_text())["per_image"][image]
    assert cli(["anchors", image, "-o", str(tmp_path / "base"), "--trials", "1", "--free-trials", "0", "--quiet"]) == 0
    before = json.loads((tmp_path / "base" / "anchors.json").read_text())["per_image"][image]
    return "/".join(str(before[k]) for k in ("strong", "rescued", "starved")), \
        "/".join(str(after[k]) for k in ("strong", "rescued", "starved"))


def test_what_if_panel(make_window, qtbot, tmp_path):
    before, after = _counts(tmp_path, SCENE_1)
    win = make_window([SCENE_1, SCENE_2])
    tr = wait_trace(qtbot, win, SCENE_1)
    side, panel = win.anchor_side, win.anchor_side.panel
    assert [w.text() for w in panel.sizes] == ["16, 24", "32, 48", "64, 96", "128, 192"]
    assert panel.ratios.text() == "0.5, 1, 2" and not panel.reset_button.isEnabled()
    assert not side.truth_line.isVisible()
    for w, text in zip(panel.sizes, SIZES):
        w.setText(text)
    panel.apply_button.click()
    qtbot.waitUntil(lambda: win.state.trace.anchor_whatif is not None and win.settled, timeout=60_000)
    t1 = win.state.trace
    assert t1.features["0"].data.source == tr.features["0"].data.source  # the backbone did not rerun
    line = f"strong / rescued / starved {before} -> {after}"
    assert line in panel.summary.text() and line in side.truth_line.text()
    assert win.state.visible["anchors"] and win.state.visible["anchor_targets"]
    caps = win.legend.captions()
    assert sum("what-if AnchorGenerator(sizes=((24, 40)" in c and line in c for c in caps) == 2  # anchors, targets
    assert all("not recomputed" in c for c in caps if "what-if" in c)
    assert panel.paste.text().startswith("AnchorGenerator(sizes=((24, 40), (48, 80)")
    # every object's before -> after with its best anchor IoU, the changed first
    w = t1.anchor_whatif
    rows = panel.objects.text().splitlines()
    assert panel.objects.isVisible() and len(rows) == len(w.after)
    changed = [i for i in range(len(w.after)) if w.before[i] != w.after[i]]
    assert [int(r.split()[0]) for r in rows[:len(changed)]] == changed
    assert f"{rows[0]}" == w.object_line(int(rows[0].split()[0]), t1.truth.names[int(rows[0].split()[0])])
    assert "best anchor IoU" in rows[0]
    # a truth object selected: its own before -> after
    win.state.gt.select(0)
    qtbot.waitUntil(lambda: "object 0 " in side.truth_line.text(), timeout=10_000)
    assert w.object_line(0, t1.truth.names[0]) in side.truth_line.text()
    # the next image keeps the what-if
    win.files.step(1)
    wait_trace(qtbot, win, SCENE_2)
    qtbot.waitUntil(lambda: win.state.trace.anchor_whatif is not None, timeout=60_000)
    assert [w.text() for w in panel.sizes] == SIZES
    # a bad configuration: one line, nothing sent
    panel.sizes[1].setText("48, -80")
    panel.apply_button.click()
    assert "not a positive number" in win.last_error and win.state.trace.anchor_whatif is not None
    assert win.last_error.endswith("(the what-if shown stays)")
    assert win.messages.isVisible()
    assert [bool(w.styleSheet()) for w in panel.sizes] == [False, True, False, False]  # the bad field outlined
    panel.sizes[1].setText("48, 80")
    panel.apply_button.click()  # corrected: the complaint goes
    assert not win.messages.isVisible() and win.last_error is None
    assert not any(w.styleSheet() for w in [*panel.sizes, panel.ratios])
    # Reset: the model's generator, in the fields too
    panel.reset_button.click()
    qtbot.waitUntil(lambda: win.state.trace.anchor_whatif is None and win.settled, timeout=60_000)
    assert [w.text() for w in panel.sizes] == ["16, 24", "32, 48", "64, 96", "128, 192"]
    assert not side.truth_line.isVisible()
    wait_settled(qtbot, win)

