"""What the user sees around the photo: the legend area (captions, colour bars with their range),
labels whole and apart, the status line's two parts, a small screen, and the engine dying."""

import os
import signal

import numpy as np
from PySide6.QtCore import QPoint, Qt

from core.overlays.layers import Heatmap

from .conftest import activate, wait_settled, wait_trace


def test_legend_shows_captions_and_colour_bars_not_the_photo(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    activate(qtbot, win)
    for key in "124":
        qtbot.keyClick(win.view, key)
    wait_settled(qtbot, win)
    caps = win.legend.captions()
    assert any(c.startswith("features") and "overhangs" in c for c in caps)  # the grid explained
    assert any(c.startswith("objectness") for c in caps) and any(c.startswith("input") for c in caps)
    from gui.view.legend import ColourBar

    bars = [b for b in win.legend.findChildren(ColourBar) if b.isVisibleTo(win.legend)]
    hms = [lay for st in ("features", "objectness") for lay in win.view.layers[st].layers if isinstance(lay, Heatmap)]
    assert sorted(b.range for b in bars) == sorted((h.vmin, h.vmax) for h in hms)
    assert bars[0].lo.text() and bars[0].hi.text()
    # nothing but layers of the stages on the photo: no text items over it
    from gui.view.text import TextGroup

    assert not [it for items in win.view.items.values() for it in items if isinstance(it, TextGroup)]
    qtbot.keyClick(win.view, "2")
    assert not any(c.startswith("features") for c in win.legend.captions())
    assert tr is not None


def test_labels_are_whole_apart_and_inside_the_view(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    win.set_setting("detections", "suppressed", True)
    win.state.set_visible("proposals", True)
    win.state.set_visible("anchors", True)
    wait_settled(qtbot, win)
    vp = win.view.viewport()
    placed = [r for st in win.view.labels for _, r in win.view.labels[st].placed()
              if win.view.is_shown(st)]
    assert len(placed) > 10
    r = np.array(placed)
    assert (r[:, 0] >= 0).all() and (r[:, 1] >= 0).all() and (r[:, 2] <= vp.width()).all() \
        and (r[:, 3] <= vp.height()).all()  # whole: inside the view
    over = 0
    for i in range(len(r)):
        for j in range(i):
            w = min(r[i, 2], r[j, 2]) - max(r[i, 0], r[j, 0])
            h = min(r[i, 3], r[j, 3]) - max(r[i, 1], r[j, 1])
            over += w > 0.5 and h > 0.5
    assert over == 0  # apart
    # zoomed in on the top-left corner, the labels are placed again, still inside
    win.view.vb.setRange(xRange=(0, 60), yRange=(0, 40), padding=0)
    qtbot.waitUntil(lambda: all(rr[1] >= 0 for st in win.view.labels for _, rr in win.view.labels[st].placed()))


def test_status_messages_and_the_hover_readout_show_together(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    tr = wait_trace(qtbot, win, scenes[0])
    b = tr.detections.final_boxes_image[0]
    p = win.view.to_widget(float(b[0] + b[2]) / 2, float(b[1] + b[3]) / 2).toPoint()
    for q in (p + QPoint(40, 30), p):  # from elsewhere: the cursor may be at p already
        with qtbot.waitSignal(win.view.hovered, timeout=5000):
            qtbot.mouseMove(win.view.viewport(), q)
    qtbot.waitUntil(lambda: win.status.readout.text().startswith("x "))
    win.say("exported somewhere.png and its .json sidecar")
    assert win.status.message.isVisible() and win.status.readout.isVisible()
    assert win.status.message.text().startswith("exported") and win.status.readout.text().startswith("x ")
    assert win.status.message.geometry().right() <= win.status.readout.geometry().left()
    # a long message and a long readout each keep to their part, drawn whole or ending in "…"
    win.say("exported " + "a-very-long-folder-name/" * 12 + "scene.png and its .json sidecar")
    for part in (win.status.message, win.status.readout):
        fm = part.fontMetrics()
        assert fm.horizontalAdvance(part.shown()) <= part.width(), part.objectName()
    assert win.status.message.shown().endswith("…") and win.status.message.toolTip().endswith("sidecar")
    assert win.status.message.geometry().right() <= win.status.readout.geometry().left()
    # paging to another image: the readout of the last one goes
    win.files.step(1)
    qtbot.waitUntil(lambda: win.state.image_path != scenes[0], timeout=10_000)
    assert win.status.readout.text() == ""


def test_usable_at_1024x700_every_dock_comes_back(make_window, scenes, qtbot):
    win = make_window([scenes[0]], size=(1024, 700))
    wait_trace(qtbot, win, scenes[0])
    assert win.width() <= 1024 and win.height() <= 700
    assert win.view.width() >= 420 and win.view.height() >= 350
    assert not win.docks["analysis"].isVisibleTo(win)  # until an analysis folder opens
    from PySide6.QtWidgets import QTabBar

    bars = [b for b in win.findChildren(QTabBar) if b.isVisible()]
    names = {b.tabText(i) for b in bars for i in range(b.count())}
    assert {"Stages", "Thresholds", "Anchor what-if"} <= names  # the dock tabs say whole names...
    assert all(b.elideMode() == Qt.TextElideMode.ElideNone and b.usesScrollButtons() for b in bars)  # ...never "S..."
    for dock in win.docks.values():
        assert dock.toggleViewAction() in win.view_menu.actions()
        if not dock.isVisibleTo(win):
            dock.toggleViewAction().trigger()
        dock.toggleViewAction().trigger()
        assert not dock.isVisible()
        dock.toggleViewAction().trigger()
        assert dock.isVisibleTo(win)
    t = win.inspector.table
    win.docks["inspector"].show()
    win.docks["inspector"].raise_()
    qtbot.waitUntil(lambda: t.isVisible())
    head = t.header()
    assert sum(head.sectionSize(i) for i in range(head.count())) <= t.viewport().width() + 1  # columns fit
    assert not t.horizontalScrollBar().isVisible()


def test_engine_death_is_said_and_a_restart_reloads_and_retraces(make_window, scenes, qtbot):
    win = make_window([scenes[0]])
    wait_trace(qtbot, win, scenes[0])
    old = win.engine.pid
    win.state.set_visible("features", True)  # parts will have to come from the new engine
    wait_settled(qtbot, win)
    os.kill(old, signal.SIGKILL)
    qtbot.waitUntil(lambda: win.messages.isVisible() and "engine stopped" in win.messages.text.text(), timeout=10_000)
    assert "killed by signal 9" in win.messages.text.text()
    assert "in progress" not in win.messages.text.text()  # it was idle: nothing was lost
    assert not win.busy.isVisible() and not win.session.busy
    assert win.messages.button.isVisible() and win.messages.button.text() == "Restart engine"
    win.messages.dismiss()
    win.files.step(1)  # PageDown with no engine: said again, with the way out; no busy bar that never ends
    qtbot.waitUntil(lambda: win.messages.isVisible(), timeout=5000)
    assert "not running" in win.messages.text.text() and not win.session.busy and not win.busy.isVisible()
    assert win.messages.button.text() == "Restart engine"
    qtbot.mouseClick(win.messages.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.engine.pid != old and win.engine.is_alive())
    prev = win.state.trace
    qtbot.waitUntil(lambda: win.state.trace is not prev and win.settled, timeout=90_000)
    assert win.state.trace.meta.name == win.state.image_path and "features" in win.view.layers


def test_the_wheel_scrolls_the_stage_panel_and_never_changes_a_setting_under_the_mouse(qtbot):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication, QScrollArea

    from gui.panels.stages import StagePanel

    panel = StagePanel()
    qtbot.addWidget(panel)
    panel.resize(260, 300)  # the rows do not fit: the panel scrolls
    panel.show()
    qtbot.waitExposed(panel)
    combo = panel.controls[("features", "reduction")]
    bar = panel.findChild(QScrollArea).verticalScrollBar()
    sent = []
    panel.setting_changed.connect(lambda *a: sent.append(a))

    def wheel(w):
        pos = QPointF(w.width() / 2, w.height() / 2)
        ev = QWheelEvent(pos, w.mapToGlobal(pos), QPoint(0, -120), QPoint(0, -120), Qt.MouseButton.NoButton,
                         Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(w, ev)

    before, top = combo.currentIndex(), bar.value()
    wheel(combo)
    assert combo.currentIndex() == before and not sent  # the setting stays
    assert bar.value() > top  # the panel scrolled instead
    combo.setFocus()  # clicked into: now the wheel is the user's choice
    qtbot.waitUntil(combo.hasFocus)
    wheel(combo)
    assert combo.currentIndex() != before and sent


def test_a_layout_saved_on_a_large_screen_folds_into_one_column_at_1024x700(make_window, scenes, qtbot, qsettings):
    """Three columns saved at 1920x1080 leave a 370 px view at 1024x700: the docks fold into one
    tabbed column and the view gets the room."""
    big = make_window([scenes[0]], size=(1920, 1080))
    wait_trace(qtbot, big, scenes[0])
    from PySide6.QtCore import Qt

    big.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, big.docks["inspector"])  # three columns
    big.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, big.docks["truth"])
    areas = {big.dockWidgetArea(d) for d in big.docks.values() if d.isVisibleTo(big)}
    assert len(areas) == 2
    big.close()  # the layout is saved
    win = make_window([scenes[0]], size=(1024, 700))
    wait_trace(qtbot, win, scenes[0])
    qtbot.waitUntil(lambda: win.view.width() >= 560, timeout=5000)
    shown = [d for d in win.docks.values() if d.isVisibleTo(win)]
    assert len({win.dockWidgetArea(d) for d in shown}) == 1
    win.resize(1920, 1000)  # growing again keeps the user's one column (nothing moves by itself)
    win.resize(900, 650)
    qtbot.wait(400)
    assert win.view.width() >= 450


def test_the_legend_holds_two_stages_whole_and_a_colour_bar_reads_on_one_line(make_window, scenes, qtbot):
    """At 1024x700 the features' caption with its colour bar and the detections' caption show without
    scrolling; each colour bar's numbers sit beside its ramp (0 was wrapped under it); a toggle leaves
    the view's height alone (the user sets the legend's with the splitter)."""
    win = make_window([scenes[0]], size=(1024, 700))
    wait_trace(qtbot, win, scenes[0])
    view_h = win.view.height()
    win.state.set_visible("features", True)
    wait_settled(qtbot, win)
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    lg = win.legend
    assert lg.verticalScrollBar().maximum() == 0, lg.widget().sizeHint().height()  # no scrolling for two stages
    from gui.view.legend import ColourBar

    bar = next(b for b in lg.findChildren(ColourBar) if b.isVisibleTo(lg))
    ramp = bar.ramp.geometry()
    for label in (bar.lo, bar.hi):
        g = label.geometry()
        assert ramp.top() <= g.center().y() <= ramp.bottom() + 1, (label.text(), g, ramp)  # on the ramp's line
    assert bar.lo.geometry().right() <= ramp.left() and bar.hi.geometry().left() >= ramp.right()
    assert win.view.height() == view_h


def test_the_training_tab_reads_at_1024x700_without_cells_of_many_lines(make_window, qtbot):
    from core.paths import DEMO_IMAGES

    scene = str(DEMO_IMAGES / "scene_1.png")
    win = make_window([scene], size=(1024, 700))
    wait_trace(qtbot, win, scene)
    page = win.inspector.training
    win.docks["inspector"].show()
    win.docks["inspector"].raise_()
    win.inspector.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.isVisible() and page.tree.topLevelItemCount() > 0)
    page.show_training(win.state.trace, None)
    texts = [page.tree.topLevelItem(k).text(c) for k in range(page.tree.topLevelItemCount()) for c in (0, 1)]
    assert all(t.count("\n") <= 2 for t in texts), [t for t in texts if t.count("\n") > 2]
    assert any(t.startswith("train-mode features") for t in texts)
    fm = page.tree.fontMetrics()
    for t in texts:
        for line in t.split("\n"):
            assert fm.horizontalAdvance(line) <= page.tree.viewport().width(), line
