"""Export, copy and screenshot: the annotated PNG through the same renderer as ``rcnn-lens
export`` (so the two match pixel for pixel), its sidecar, the clipboard, a grab of the window.
Dialogs start in the folder last used for that kind of file, never in the install's own folders;
files get the user's normal permissions (core.atomic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog

from core.errors import LensError
from core.paths import ASSETS
from core.tracing.parts import Missing

INSTALL = ASSETS.parent


def _inside_install(folder: Path) -> bool:
    try:
        folder.resolve().relative_to(INSTALL.resolve())
        return True
    except ValueError:
        return False


class Actions:
    def __init__(self, win, state, persist, say, error, fetch):
        self.win, self.state, self.persist = win, state, persist
        self.say, self.error, self.fetch = say, error, fetch
        self.waiting: str | None = None  # an export waiting for a part to arrive

    def start_dir(self, kind: str) -> Path:
        """The last folder of this kind; else the image's folder unless that is inside the install
        (the demo scenes); else the user's Pictures or home folder."""
        last = self.persist.last_dir(kind)
        if last and Path(last).is_dir():
            return Path(last)
        if self.state.image_path and not _inside_install(Path(self.state.image_path).parent):
            return Path(self.state.image_path).parent
        pictures = Path.home() / "Pictures"
        return pictures if pictures.is_dir() else Path.home()

    def visible_stages(self) -> list[str]:
        return [s for s in self.state.available_stages() if self.state.visible.get(s)]

    # ---- export
    def export_dialog(self) -> None:
        if self.state.trace is None:
            self.error("nothing to export yet: the trace is still running")
            return
        name = self.start_dir("export") / f"{Path(self.state.image_path or 'image').stem}.lens.png"
        path, _ = QFileDialog.getSaveFileName(self.win, "Export annotated PNG", str(name), "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.persist.set_last_dir("export", str(Path(path).parent))
            self.export_to(path)

    def paths(self) -> dict:
        """The paths the window draws on top (a selected box, a selected object): the export draws them too."""
        return {"selection": self.state.selection, "object": self.state.gt.object}

    def export_to(self, path: str) -> bool:
        """Write the PNG and its sidecar; a part not fetched yet is fetched and the export done
        when it arrives (``retry``)."""
        if self.state.trace is None:
            self.error("nothing to export yet: the trace is still running")
            return False
        from core.overlays.export import write_export

        try:
            write_export(self.state.trace, Path(path), self.visible_stages(), self.state.settings, legend=True,
                         image_path=self.state.image_path, paths=self.paths())
        except Missing as m:
            self.waiting = path
            self.fetch(m.source, m.path)
            self.say(f"exporting {Path(path).name}: fetching {'.'.join(map(str, m.path))}…")
            return False
        except LensError as err:
            self.error(str(err))
            return False
        self.waiting = None
        self.say(f"exported {path} and its .json sidecar", 8000)
        return True

    def retry(self) -> None:
        if self.waiting:
            self.export_to(self.waiting)

    def annotated_qimage(self) -> QImage | None:
        if self.state.trace is None:
            return None
        from core.overlays.export import render_trace

        try:
            rgb, _, _ = render_trace(self.state.trace, self.visible_stages(), self.state.settings, legend=True,
                                     paths=self.paths())
        except Missing as m:
            self.fetch(m.source, m.path)
            return None
        rgb = np.ascontiguousarray(rgb)
        return QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format.Format_RGB888).copy()

    def copy(self) -> None:
        img = self.annotated_qimage()
        if img is None:
            self.error("nothing to copy yet: the trace is still running")
            return
        QGuiApplication.clipboard().setImage(img)
        self.say("annotated image copied to the clipboard", 5000)

    # ---- screenshot
    def grab_dialog(self) -> None:
        name = self.start_dir("grab") / "rcnn-lens-window.png"
        path, _ = QFileDialog.getSaveFileName(self.win, "Save window screenshot", str(name), "PNG (*.png)")
        if path:
            self.persist.set_last_dir("grab", str(Path(path).parent))
            self.grab_to(path)

    def grab_to(self, path: str) -> bool:
        from core.atomic import write_bytes

        buf = QBuffer()
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        self.win.grab().save(buf, "PNG")
        try:
            write_bytes(path, bytes(buf.data()))
        except LensError as err:
            self.error(str(err))
            return False
        self.say(f"saved window screenshot {path}", 8000)
        return True
