"""The model chooser (Ctrl+M): a preset, ``auto`` or the user's own builder; its weights, with which
are here offline (asked of the engine: torch never loads in this process); a checkpoint, with the
presets it fits (the engine reads it off the GUI thread); the trust checkbox for a whole pickled
model, unticked each time the dialog opens and never remembered. The rules are core.models.choice's;
this module shows them, and wires the choice to the state (downloading COCO weights first where
they are not cached: gui.download_dialog)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.errors import LensError
from core.models import choice as mc

STYLE = {"info": "color: palette(text);", "warn": "color: #b35c00;", "error": "color: #c0392b;"}
TYPED = {"builder": "", "checkpoint": ""}  # what was last typed, for this run only (so a failed load is one edit
# away); never written anywhere, and never the trust checkbox


def _note(name: str, style: str = "info") -> QLabel:
    label = QLabel("")
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet(STYLE[style])
    label.setMinimumWidth(440)  # a wrapped label's height follows this width, not Qt's narrow guess
    return label


def _row(*widgets) -> QWidget:
    row = QWidget()
    h = QHBoxLayout(row)
    h.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        h.addWidget(w, 1 if i == 0 else 0)
    return row


def _path_row(name: str, text: str, placeholder: str, browse) -> tuple[QLineEdit, QWidget]:
    """A path field and its Browse… button (objects ``name`` and ``name_browse``)."""
    field = QLineEdit(text)
    field.setObjectName(name)
    field.setPlaceholderText(placeholder)
    button = QPushButton("Browse…")
    button.setObjectName(f"{name}_browse")
    button.clicked.connect(browse)
    return field, _row(field, button)


class ModelDialog(QDialog):
    chosen = Signal(object)  # core.models.choice.Request

    def __init__(self, choice, engine=None, persist=None, parent=None):
        """``choice``: the state's ModelChoice; ``engine``: anything with ``ask(kind, body) -> seq``
        and a ``replied(kind, seq, body)`` signal (gui.worker.EngineClient), or None."""
        super().__init__(parent)
        self.setWindowTitle("Choose model and weights")
        self.setObjectName("model_dialog")
        self.setMinimumWidth(560)
        self.engine, self.persist = engine, persist
        self.infos: dict[str, dict] = {}  # preset -> the engine's row (availability)
        self.suggested: dict | None = None  # the engine's answer about the checkpoint shown
        self._level = "info"  # the suggestion's: error (Load disabled), reading, warn or info
        self._asked_path: str | None = None
        self._asked: dict[str, int] = {}  # request kind -> its seq
        model, builder, weights, checkpoint = mc.initial(choice.name, choice.weights)
        builder, checkpoint = builder or TYPED["builder"], checkpoint or TYPED["checkpoint"]
        self._keep_random = weights if mc.is_random(weights) else None
        self._touched = weights is not None  # an explicit choice is kept as the user's

        self.form = form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.model = QComboBox()
        self.model.setObjectName("model")
        for key, label, tip in mc.models():
            self.model.addItem(label, key)
            self.model.setItemData(self.model.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        form.addRow("Model", self.model)
        self.about = _note("about")
        form.addRow("", self.about)
        self.builder, self.builder_row = _path_row("builder", builder, "path/to/file.py:function  or  "
                                                   "package.module:function", self._browse_builder)
        form.addRow("Builder", self.builder_row)
        self.runs_code = _note("runs_code", "warn")
        self.runs_code.setText(mc.RUNS_CODE + " The function is called with no arguments and returns a "
                               "torchvision GeneralizedRCNN.")
        form.addRow("", self.runs_code)
        self.weights = QComboBox()
        self.weights.setObjectName("weights")
        form.addRow("Weights", self.weights)
        self.weights_note = _note("weights_note")
        form.addRow("", self.weights_note)
        self.checkpoint, self.checkpoint_row = _path_row("checkpoint", checkpoint, "a .pt / .pth / .ckpt / "
                                                         ".safetensors file", self._browse_checkpoint)
        form.addRow("Checkpoint", self.checkpoint_row)
        self.suggestion = _note("suggestion")
        self.uses = [QPushButton("") for _ in range(mc.MAX_USES)]  # one per preset the file fits: under the note
        for k, b in enumerate(self.uses):
            b.setObjectName(f"use_suggestion_{k}")
            b.clicked.connect(lambda _=False, k=k: self._use_suggestion(k))
        self.suggestion_row = QWidget()
        col = QVBoxLayout(self.suggestion_row)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.suggestion)
        self.uses_row = QWidget()  # one button per line, left-aligned: each text whole at any width
        stack = QVBoxLayout(self.uses_row)
        stack.setContentsMargins(0, 0, 0, 0)
        for b in self.uses:
            stack.addWidget(b, 0, Qt.AlignmentFlag.AlignLeft)
        col.addWidget(self.uses_row)
        form.addRow("", self.suggestion_row)
        self._typing = QTimer(self)  # the file is checked as it is typed, not only when the field is left
        self._typing.setSingleShot(True)
        self._typing.setInterval(400)
        self._typing.timeout.connect(self._ask_suggestion)
        self.trust = QCheckBox("Trust this file (load a whole pickled model; runs code inside it)")
        self.trust.setObjectName("trust")
        self.trust.setChecked(False)  # never remembered: unticked each time the dialog opens
        form.addRow("", self.trust)
        self.trust_warning = _note("trust_warning", "error")
        self.trust_warning.setText(mc.TRUST_WARNING)
        form.addRow("", self.trust_warning)
        self.problem = _note("problem", "error")
        form.addRow("", self.problem)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

        self.model.setCurrentIndex(max(self.model.findData(model), 0))
        self._fill_weights(weights)
        self.model.currentIndexChanged.connect(self._model_picked)
        self.weights.currentIndexChanged.connect(self._weights_picked)  # _fill_weights blocks it
        self.checkpoint.editingFinished.connect(self._ask_if_changed)
        self.checkpoint.textEdited.connect(lambda _t: self._typing.start())
        self.trust.toggled.connect(self._trust_toggled)
        for w in (self.builder, self.checkpoint):
            w.textEdited.connect(lambda _t: self.problem.setText(""))
        if engine is not None:
            engine.replied.connect(self._replied)
            self._asked["models"] = engine.ask("models", {})
        self._refresh()
        if checkpoint:
            self._ask_suggestion()

    # ---- the fields
    def current_model(self) -> str:
        return self.model.currentData()

    def current_weights(self) -> str:
        return self.weights.currentData() or ""

    def _fill_weights(self, want: str | None) -> None:
        model = self.current_model()
        info = self.infos.get(model)
        options = mc.weights_options(model, info, self._keep_random)
        if want is None or want not in [o.spec for o in options]:
            want = mc.default_weights(model, info)[0]
        self.weights.blockSignals(True)
        self.weights.clear()
        for o in options:
            self.weights.addItem(o.label, o.spec)
            self.weights.setItemData(self.weights.count() - 1, o.note, Qt.ItemDataRole.ToolTipRole)
        self.weights.setCurrentIndex(max(self.weights.findData(want), 0))
        self.weights.blockSignals(False)

    def _model_picked(self, _i: int) -> None:
        # weights the user picked stay where the new model has them (a checkpoint, random); else its default
        self._fill_weights(self.current_weights() if self._touched else None)
        self._refresh()

    def _weights_picked(self, _i: int) -> None:
        self._touched = True
        self._refresh()
        if self.current_weights() == mc.CHECKPOINT and not self.checkpoint.text().strip():
            self.checkpoint.setFocus()

    def _refresh(self) -> None:
        """Rows, notes and the OK button's words from the fields (no request sent)."""
        model, weights = self.current_model(), self.current_weights()
        builder, ckpt = model == mc.BUILDER, weights == mc.CHECKPOINT
        self.about.setText(next((tip for key, _, tip in mc.models() if key == model and key != mc.BUILDER), ""))
        self.form.setRowVisible(self.about, bool(self.about.text()))
        for w in (self.builder_row, self.runs_code):
            self.form.setRowVisible(w, builder)
        self.form.setRowVisible(self.checkpoint_row, ckpt)
        self.form.setRowVisible(self.suggestion_row, ckpt and bool(self.suggestion.text()))
        self.form.setRowVisible(self.trust, ckpt)
        self.form.setRowVisible(self.trust_warning, ckpt and self.trust.isChecked())
        info = self.infos.get(model)
        option = next((o for o in mc.weights_options(model, info, self._keep_random) if o.spec == weights), None)
        default, why = mc.default_weights(model, info)
        note = option.note if option is not None else ""
        if weights == default and why:
            note = why
        self.weights_note.setText(note)
        self.form.setRowVisible(self.weights_note, bool(note))
        self._show_suggestion()
        req = self._request_or_none()
        self.ok.setText("Download and load" if req is not None and req.download else "Load")
        # a checkpoint the engine refused (a red line) cannot be loaded from here
        self.ok.setEnabled(not (ckpt and self._level == "error"))
        self._fit()

    def _fit(self) -> None:
        """The height the wrapped notes need at the dialog's width (adjustSize measures a word-wrapped
        label at its one-line width and cuts its second line)."""
        for row in self.findChildren(QWidget):  # rows (a note beside a button) cache the notes' old heights
            if row.layout() is not None and row is not self:
                row.layout().invalidate()
                row.updateGeometry()
        self.form.invalidate()
        self.form.activate()
        w = max(self.width(), self.minimumWidth())
        h = self.form.totalHeightForWidth(w) if self.form.hasHeightForWidth() else self.form.totalSizeHint().height()
        h = max(h, self.form.totalMinimumSize().height())
        self.setMinimumHeight(h)
        self.resize(w, h)

    def _request_or_none(self):
        try:
            return self.request()
        except LensError:
            return None

    def request(self) -> mc.Request:
        """The load request the fields make, or LensError (the one line that is wrong)."""
        return mc.request(self.current_model(), self.builder.text(), self.current_weights(), self.checkpoint.text(),
                          self.trust.isChecked(), self.infos.get(self.current_model()))

    # ---- the checkpoint and its suggestion
    def _ask_if_changed(self) -> None:
        self._typing.stop()
        if self.checkpoint.text().strip() != self._asked_path:
            self._ask_suggestion()

    def _ask_suggestion(self) -> None:
        self._typing.stop()
        path = self.checkpoint.text().strip()
        self._asked_path = path
        self.suggested = None
        self._show_uses(())
        if not path or not Path(path).expanduser().is_file():
            self.suggestion.setText("" if not path else f"{path}: no such file")
            self._level = "error" if path else "info"
            self.suggestion.setStyleSheet(STYLE["error"])
        elif self.engine is not None:
            self.suggestion.setText("reading the checkpoint…")
            self._level = "reading"
            self.suggestion.setStyleSheet(STYLE["info"])
            self._asked["suggest"] = self.engine.ask("suggest", {"path": path, "trust": self.trust.isChecked()})
        self._refresh()

    def _show_uses(self, uses) -> None:
        for k, b in enumerate(self.uses):
            b.setText(f"Use {uses[k]}" if k < len(uses) else "")
            b.setVisible(k < len(uses))
        self.uses_row.setVisible(bool(uses))

    def _show_suggestion(self) -> None:
        if self.suggested is None:
            return
        s = mc.suggestion(self.suggested, self.current_model())
        self.suggestion.setText(s.text)
        self.suggestion.setStyleSheet(STYLE[s.level])
        self._level = s.level
        self._show_uses(s.uses)
        self.form.setRowVisible(self.suggestion_row, self.current_weights() == mc.CHECKPOINT)

    def _use_suggestion(self, k: int) -> None:
        s = mc.suggestion(self.suggested or {}, self.current_model())
        if k < len(s.uses):
            self.model.setCurrentIndex(self.model.findData(s.uses[k]))
            self.weights.setCurrentIndex(self.weights.findData(mc.CHECKPOINT))
            self._refresh()

    def _trust_toggled(self, on: bool) -> None:
        self._refresh()
        if self.suggested is not None and self.suggested.get("needs_trust"):
            self._ask_suggestion()  # read again, now trusting (or not) the file

    def _browse_checkpoint(self) -> None:
        start = self.persist.last_dir("checkpoint") if self.persist is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint", start, "Checkpoints (*.pt *.pth *.ckpt *.safetensors "
                                              "*.bin);;All files (*)")
        if path:
            if self.persist is not None:
                self.persist.set_last_dir("checkpoint", str(Path(path).parent))
            self.checkpoint.setText(path)
            self.weights.setCurrentIndex(self.weights.findData(mc.CHECKPOINT))
            self._touched = True
            self._ask_suggestion()

    def _browse_builder(self) -> None:
        start = self.persist.last_dir("builder") if self.persist is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, "Builder (a Python file)", start, "Python (*.py)")
        if path:
            if self.persist is not None:
                self.persist.set_last_dir("builder", str(Path(path).parent))
            func = self.builder.text().rpartition(":")[2] if ":" in self.builder.text() else "build"
            self.builder.setText(f"{path}:{func}")
            self.builder.setFocus()
            self.builder.setSelection(len(path) + 1, len(func))  # the function name: type yours
            self._refresh()

    # ---- the engine's answers
    def _replied(self, kind: str, seq: int, body) -> None:
        if kind == "models" and seq == self._asked.get("models"):
            self.infos = {r["name"]: r for r in body.get("presets") or []}
            self._fill_weights(self.current_weights() if self._touched else None)
            self._refresh()
        elif kind == "suggested" and seq == self._asked.get("suggest"):
            if body.get("path") == self.checkpoint.text().strip():
                self.suggested = dict(body)
                self._refresh()

    # ---- closing
    def accept(self) -> None:
        try:
            req = self.request()
        except LensError as err:
            self.problem.setText(mc.for_app(str(err)))
            self._fit()
            return
        TYPED.update(builder=self.builder.text().strip(), checkpoint=self.checkpoint.text().strip())
        self.chosen.emit(req)
        super().accept()

    def done(self, result: int) -> None:
        if self.engine is not None:
            try:
                self.engine.replied.disconnect(self._replied)
            except (RuntimeError, TypeError):
                pass
        super().done(result)


# ---------------------------------------------------------------- the window's side
def open_chooser(win) -> ModelDialog:
    """Ctrl+M: the chooser over the window; its choice loads (after a download where needed)."""
    dlg = ModelDialog(win.state.choice, win.session.engine, win.persist, win)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.chosen.connect(lambda req: choose(win, req))
    dlg.open()
    return dlg


def choose(win, req: mc.Request) -> None:
    win.messages.dismiss()  # a new choice: an old model's problem no longer applies
    if req.download:
        download(win, req.download)
    else:
        win.state.choose_model(req.name, req.weights, trust=req.trust)


def download(win, preset: str):
    """Fetch ``preset``'s COCO weights with a progress dialog; load them when they came."""
    from .download_dialog import DownloadDialog

    dlg = DownloadDialog(win.session.engine, preset, win)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.downloaded.connect(lambda _path: win.state.choose_model(preset, "coco"))
    dlg.ended.connect(lambda text: text and win.say(text, 10000))
    dlg.open()
    return dlg


def model_loaded(win, info: dict) -> None:
    """The engine loaded a model: say so, show its summary, remember it unless it runs the user's code."""
    if mc.remember(info):
        win.persist.save_model(info["name"], win.state.choice.weights)
    win.inspector.set_model(mc.for_app(info.get("summary") or f"{info['name']} ({info['weights']})"))
    win.say(f"model {info['name']} ({info['weights']}) on {info['device']}")
