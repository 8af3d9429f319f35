"""The COCO weights download: a progress dialog with a real progress bar and a Cancel button. The
engine downloads (core.engine.model_handlers ``download``) and reports progress; Cancel sends ``cancel``,
which stops the download at its next chunk, and nothing partial is kept. A failure (offline, a
wrong hash, a broken connection) is one line in the message bar (the session shows the engine's
error); this dialog closes."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QProgressBar, QVBoxLayout

STEPS = 1000  # the bar counts per mille: byte counts overflow a QProgressBar's int past 2 GB


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class DownloadDialog(QDialog):
    downloaded = Signal(str)  # the cached file
    ended = Signal(str)  # how it ended, in words for the status line ("" on success)

    def __init__(self, engine, preset: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Downloading COCO weights")
        self.setObjectName("download_dialog")
        self.setMinimumWidth(460)
        self.engine, self.preset = engine, preset
        self.cancelling = False
        lay = QVBoxLayout(self)
        self.label = QLabel(f"Downloading the COCO weights of {preset}…")
        self.label.setObjectName("download_label")
        self.label.setWordWrap(True)
        lay.addWidget(self.label)
        self.bar = QProgressBar()
        self.bar.setObjectName("download_bar")
        self.bar.setRange(0, 0)  # busy until the first progress says how much
        lay.addWidget(self.bar)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        engine.replied.connect(self._replied)
        engine.died.connect(self._died)
        self.seq = engine.ask("download", {"preset": preset})

    def _replied(self, kind: str, seq: int, body) -> None:
        if seq != self.seq:
            return
        if kind == "progress":
            done, total = int(body.get("done") or 0), body.get("total")
            if total:
                self.bar.setRange(0, STEPS)
                self.bar.setValue(min(STEPS, done * STEPS // int(total)))
                self.label.setText(f"Downloading the COCO weights of {self.preset}: {_mb(done)} of {_mb(int(total))}")
            else:
                self.label.setText(f"Downloading the COCO weights of {self.preset}: {_mb(done)}")
        elif kind == "status":
            self.label.setText(str(body.get("text", "")))
        elif kind == "downloaded":
            self.bar.setRange(0, STEPS)
            self.bar.setValue(STEPS)
            self._finish(True, "")
            self.downloaded.emit(str(body.get("path", "")))
        elif kind in ("cancelled", "dropped"):
            self._finish(False, f"download of the COCO weights of {self.preset} cancelled; nothing was saved")
        elif kind == "error":
            self._finish(False, "")  # the session shows the engine's one line in the message bar

    def _died(self, _why: str, _lost: bool = True) -> None:
        self._finish(False, "")

    def _finish(self, ok: bool, text: str) -> None:
        for sig, slot in ((self.engine.replied, self._replied), (self.engine.died, self._died)):
            try:
                sig.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        self.ended.emit(text)
        super().accept() if ok else super().reject()

    def reject(self) -> None:
        """Cancel (the button, Escape, closing the window): ask the engine to stop; the dialog closes
        when it says it stopped (a download that finished meanwhile still counts)."""
        if self.cancelling:
            return
        self.cancelling = True
        self.cancel_button.setEnabled(False)
        self.label.setText("Cancelling…")
        self.engine.ask("cancel", {})
