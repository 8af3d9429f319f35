"""The window's furniture: the central area (message bar, view, legend), the docks (stages and
thresholds tabbed on the left, the inspector on the right: usable at 1024x700), the status line,
and the menus (every dock can be brought back from the View menu)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QProgressBar, QSplitter, QTabBar, QVBoxLayout, QWidget

from core.overlays import REGISTRY

from .messages import MessageBar, StatusLine
from .panels.inspector import Inspector
from .panels.stages import StagePanel
from .panels.thresholds import ThresholdPanel
from .view.canvas import LensView
from .view.legend import Legend

MIN_VIEW = 560  # px: narrower than this, the docks fold into one tabbed column
LEGEND_HEIGHT = 150  # px at first: two stages' captions and a colour bar without scrolling


def one_column(win) -> bool:
    """Gather the docks into one tabbed column on the left when beside each other they leave the view
    under ``MIN_VIEW`` px (a layout saved on a large screen, shown on a small one). True if it did."""
    left = Qt.DockWidgetArea.LeftDockWidgetArea
    shown = [d for d in win.docks.values() if not d.isHidden() and not d.isFloating()]
    central = win.centralWidget()
    if len({win.dockWidgetArea(d) for d in shown}) <= 1 or central is None or central.width() >= MIN_VIEW:
        return False
    first = win.docks["stages"]
    if win.dockWidgetArea(first) != left:
        win.addDockWidget(left, first)
    for d in shown:
        if d is not first:
            win.addDockWidget(left, d)
            win.tabifyDockWidget(first, d)
    first.raise_()
    return True


def readable_tabs(bar) -> None:
    """A dock tab bar shows each dock's whole name ("Anchor what-if", not "Anchor ..."): scroll arrows
    when the names do not fit, never elided text."""
    if isinstance(bar, QTabBar):
        bar.setElideMode(Qt.TextElideMode.ElideNone)
        bar.setUsesScrollButtons(True)
        bar.setExpanding(False)


def add_dock(win, title: str, widget, area) -> QDockWidget:
    """A dock named ``dock_<title>`` (the layout is saved by that name), kept in ``win.docks``."""
    dock = QDockWidget(title, win)
    dock.setObjectName(f"dock_{title.lower()}")
    dock.setWidget(widget)
    dock.setMinimumWidth(200)
    win.addDockWidget(area, dock)
    win.docks[title.lower()] = dock
    return dock


def furnish(win) -> None:
    win.view, win.legend, win.messages = LensView(), Legend(), MessageBar()
    central = QWidget()
    box = QVBoxLayout(central)
    box.setContentsMargins(0, 0, 0, 0)
    box.setSpacing(0)
    win.split = QSplitter(Qt.Orientation.Vertical)  # the view over the legend; drag the handle to share them
    win.split.setObjectName("view_legend")
    win.split.addWidget(win.view)
    win.split.addWidget(win.legend)
    win.split.setStretchFactor(0, 1)
    win.split.setStretchFactor(1, 0)
    win.split.setCollapsible(0, False)
    win.split.setSizes([600, LEGEND_HEIGHT])
    box.addWidget(win.messages, 0)
    box.addWidget(win.split, 1)
    win.setCentralWidget(central)
    win.stages, win.thresholds, win.inspector = StagePanel(), ThresholdPanel(), Inspector()
    win.docks = {}
    for title, widget, area in (("Stages", win.stages, Qt.DockWidgetArea.LeftDockWidgetArea),
                                ("Thresholds", win.thresholds, Qt.DockWidgetArea.LeftDockWidgetArea),
                                ("Inspector", win.inspector, Qt.DockWidgetArea.RightDockWidgetArea)):
        add_dock(win, title, widget, area)
    win.tabifyDockWidget(win.docks["stages"], win.docks["thresholds"])
    win.docks["stages"].raise_()
    win.resizeDocks([win.docks["stages"], win.docks["inspector"]], [270, 290], Qt.Orientation.Horizontal)
    win.busy = QProgressBar()
    win.busy.setObjectName("busy")
    win.busy.setRange(0, 0)
    win.busy.setMaximumWidth(100)
    win.busy.setVisible(False)
    win.status = StatusLine(win.statusBar(), win.busy)


def add_action(win, menu, text, slot, shortcut=None, name=None, before=None) -> QAction:
    """A menu entry (before ``before``, else last) whose shortcut works anywhere in the window."""
    a = QAction(text, win)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    a.triggered.connect(slot)
    a.setObjectName(name or "")
    menu.insertAction(before, a) if before is not None else menu.addAction(a)
    win.addAction(a)
    return a


def menus(win) -> None:
    def act(menu, text, slot, shortcut=None, name=None):
        return add_action(win, menu, text, slot, shortcut, name)

    m = win.menuBar().addMenu("&File")
    act(m, "&Open…", win.open_dialog, QKeySequence.StandardKey.Open, "open")
    win.recent_menu = m.addMenu("Open &Recent")
    win.recent_menu.aboutToShow.connect(win.fill_recent)
    act(m, "&Next image", lambda: win.files.step(1), "PgDown", "next")
    act(m, "&Previous image", lambda: win.files.step(-1), "PgUp", "previous")
    m.addSeparator()
    act(m, "&Export annotated PNG…", win.actions_.export_dialog, "Ctrl+E", "export")
    act(m, "&Copy annotated image", win.actions_.copy, "Ctrl+Shift+C", "copy")
    act(m, "Save &window screenshot…", win.actions_.grab_dialog, "Ctrl+Shift+S", "grab")
    m.addSeparator()
    act(m, "&Quit", win.close, "Ctrl+Q", "quit")
    act(win.menuBar().addMenu("&Model"), "Choose &model and weights…", win.model_dialog, "Ctrl+M", "model")
    v = win.menuBar().addMenu("&View")
    win.view_menu = v
    act(v, "&Fit image", win.view.fit, "F", "fit")
    act(v, "Back to the &view", win.view.setFocus, "Escape", "focus_view")
    v.addSeparator()
    for name, st in REGISTRY.items():
        if st.key:
            act(v, f"Toggle {st.title}", lambda _=False, n=name: win.key_toggle(n), str(st.key), f"toggle_{name}")
    v.addSeparator()
    for dock in win.docks.values():
        v.addAction(dock.toggleViewAction())
