"""How the app speaks without interrupting: a message bar above the view for problems (a bad
file, a model that did not load, the engine stopped - with a button where there is something to
do), and a status line whose messages (loading, tracing, exported) sit beside the hover readout,
never behind it. No modal dialog pops up while the user works."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QStatusBar, QToolButton


class MessageBar(QFrame):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("message_bar")
        self.setStyleSheet("#message_bar { background: #5a3a12; } #message_bar QLabel { color: #ffe9c2; }")
        h = QHBoxLayout(self)
        h.setContentsMargins(8, 3, 4, 3)
        self.text = QLabel("")
        self.text.setObjectName("message")
        self.text.setWordWrap(True)
        h.addWidget(self.text, 1)
        self.button = QPushButton("")
        self.button.setObjectName("message_action")
        self.button.setVisible(False)
        h.addWidget(self.button)
        close = QToolButton()
        close.setText("×")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        h.addWidget(close)
        self._action = None
        self.button.clicked.connect(self._act)
        self.setVisible(False)

    def show_message(self, text: str, action: str | None = None, slot=None) -> None:
        self.text.setText(text)
        self._action = slot
        self.button.setText(action or "")
        self.button.setVisible(bool(action))
        self.setVisible(True)

    def dismiss(self) -> None:
        self.setVisible(False)
        self._action = None

    def _act(self) -> None:
        slot = self._action
        self.dismiss()
        if slot is not None:
            slot()


class Elided(QLabel):
    """A one-line label that never asks for more width than its share: a long text ends in "…" (the
    whole of it in the tooltip), so the message and the hover readout never run into each other."""

    def __init__(self, name: str):
        super().__init__("")
        self.setObjectName(name)
        self.full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        self.full = str(text)
        self.setToolTip(self.full)
        self._elide()

    def text(self) -> str:
        return self.full

    def shown(self) -> str:
        """What is drawn (tests read this)."""
        return super().text()

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(ev)
        self._elide()

    def _elide(self) -> None:
        super().setText(self.fontMetrics().elidedText(self.full, Qt.TextElideMode.ElideRight, max(self.width() - 4, 0)))


class StatusLine:
    """The status bar's two parts: messages on the left, the hover readout on the right."""

    def __init__(self, bar: QStatusBar, busy):
        self.message = Elided("status_message")
        self.readout = Elided("readout")
        bar.addWidget(self.message, 2)
        bar.addWidget(self.readout, 3)
        bar.addPermanentWidget(busy)
        self._timer = QTimer(bar)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(lambda: self.message.setText(""))

    def say(self, text: str, ms: int = 0) -> None:
        self.message.setText(text)
        if ms:
            self._timer.start(ms)
        else:
            self._timer.stop()
