"""Scrolling a panel never changes a setting: the wheel over a combo box, spin box or slider that the
user has not clicked into scrolls the panel instead (Qt gives it to the control under the mouse)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QComboBox, QScrollArea, QWidget

KINDS = (QComboBox, QAbstractSpinBox, QAbstractSlider)


class WheelGuard(QObject):
    def __init__(self, scroll: QScrollArea):
        super().__init__(scroll)
        self.scroll = scroll

    def guard(self, root: QWidget) -> None:
        """Every value control under ``root``: it takes the wheel only once it has focus (a click or Tab)."""
        for w in root.findChildren(QWidget):
            if isinstance(w, KINDS) and w is not self.scroll.verticalScrollBar():
                w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
                w.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Wheel and not obj.hasFocus():
            QCoreApplication.sendEvent(self.scroll.verticalScrollBar(), event)  # the panel scrolls
            return True
        return False
