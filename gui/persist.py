"""What the app remembers between runs (QSettings): the window's geometry and docks, the model,
the stages' settings and toggles, recent files and the last folder of each dialog."""

from __future__ import annotations

import json

from PySide6.QtCore import QByteArray, QSettings


class Persist:
    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings or QSettings("rcnn-lens", "rcnn-lens")
        self._files: dict = {}  # recent files and folders: kept here, written at close (a QSettings
        # write costs tens of milliseconds on the GUI thread; paging must not pay it per image)

    def _json(self, key: str, default):
        try:
            v = json.loads(self.q.value(key, "") or "null")
        except (ValueError, TypeError):
            return default
        return v if isinstance(v, type(default)) else default

    # ---- model
    def model(self) -> tuple[str | None, str | None]:
        return self.q.value("model", None) or None, self.q.value("weights", None) or None

    def save_model(self, name: str, weights: str | None) -> None:
        self.q.setValue("model", name)
        self.q.setValue("weights", weights or "")

    # ---- stages
    def stages(self) -> tuple[dict, dict]:
        return self._json("stage_settings", {}), self._json("visible", {})

    def save_stages(self, settings: dict, visible: dict) -> None:
        self.q.setValue("stage_settings", json.dumps(settings))
        self.q.setValue("visible", json.dumps(visible))

    # ---- files
    def recent(self) -> list[str]:
        if "recent" not in self._files:
            self._files["recent"] = [str(p) for p in self._json("recent", [])]
        return list(self._files["recent"])

    def add_recent(self, path: str) -> None:
        self._files["recent"] = [path, *[p for p in self.recent() if p != path]][:10]

    def last_dir(self, kind: str) -> str:
        """The folder the ``kind`` dialog (open, export, grab) used last; "" if none."""
        key = f"{kind}_dir"
        if key not in self._files:
            self._files[key] = self.q.value(key, "") or ""
        return self._files[key]

    def set_last_dir(self, kind: str, folder: str) -> None:
        self._files[f"{kind}_dir"] = str(folder)

    # ---- window
    def restore_window(self, win) -> None:
        geo, state, split = self.q.value("geometry"), self.q.value("window_state"), self.q.value("legend_split")
        if isinstance(geo, QByteArray):
            win.restoreGeometry(geo)
        if isinstance(state, QByteArray):
            win.restoreState(state)
        if isinstance(split, QByteArray):
            win.split.restoreState(split)

    def has_window_state(self) -> bool:
        return isinstance(self.q.value("window_state"), QByteArray)

    def save_window(self, win) -> None:
        self.q.setValue("geometry", win.saveGeometry())
        self.q.setValue("window_state", win.saveState())
        self.q.setValue("legend_split", win.split.saveState())

    def sync(self) -> None:
        for key, v in self._files.items():
            self.q.setValue(key, json.dumps(v) if key == "recent" else v)
        self.q.sync()
