"""An analysis folder (the OUT of ``rcnn-lens analyze``) as the app browses it, Qt-free: its images
with the most missed objects first (core.analysis.files.read_analysis), each image's path found again
(analyze records them as it was given them, often relative to where it ran), the annotations,
model and thresholds it recorded (so a click shows the image with the same truth and verdicts),
and its summary line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.analysis.files import RESULTS, SETTINGS, SUMMARY, read_analysis
from core.errors import LensError


def is_analysis(path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / RESULTS).is_file()


def find(recorded: str | None, folder: Path) -> str | None:
    """A path analyze recorded -> an existing path: as it is (absolute, or relative to the current
    folder), else relative to the analysis folder or the folder above it; None if nowhere."""
    if not recorded:
        return None
    p = Path(recorded).expanduser()
    if p.is_absolute():
        return str(p) if p.exists() else None
    for base in (Path.cwd(), folder, folder.parent):
        q = base / p
        if q.exists():
            return str(q.resolve())
    return None


@dataclass(frozen=True)
class Analysis:
    folder: Path
    rows: list  # read_analysis rows, each with "path": the image found again (or None)
    settings: dict  # model, weights, params, annotations, ... as analyze recorded them
    summary: dict | None

    @property
    def annotations(self) -> str | None:
        """The annotations the analysis used, found again (None: found beside each image)."""
        return find(self.settings.get("annotations"), self.folder)

    @property
    def annotations_missing(self) -> bool:
        return bool(self.settings.get("annotations")) and self.annotations is None

    def headline(self) -> str:
        """``12 images, 45 objects, 3 missed (rpn_cut 2, box_low_score 1); mAP@0.5 0.94 (demo)``"""
        objects = sum(r["objects"] for r in self.rows)
        missed = sum(r["missed"] for r in self.rows)
        lost: dict = {}
        for r in self.rows:
            for v, n in r["verdicts"].items():
                if v != "detected":
                    lost[v] = lost.get(v, 0) + n
        text = f"{len(self.rows)} images, {objects} objects, {missed} missed"
        if lost:
            text += " (" + ", ".join(f"{k} {v}" for k, v in sorted(lost.items(), key=lambda kv: -kv[1])) + ")"
        if self.summary and self.summary.get("map50") is not None:
            text += f"; mAP@0.5 {self.summary['map50']:.3g}"
        model = self.settings.get("model")
        return text + (f"; model {model}" if model else "")


def settings(folder) -> dict:
    """The model, weights, thresholds and annotations an analysis recorded (settings.json only:
    cheap, unlike its results); {} if it has none. Raises LensError for an unreadable file."""
    got = _json(Path(folder).expanduser() / SETTINGS, {})
    return got if isinstance(got, dict) else {}


def open_folder(folder) -> Analysis:
    """Read an analysis folder. Raises LensError (one line) for a folder that is not one."""
    p = Path(folder).expanduser()
    try:
        rows = read_analysis(p)
    except (KeyError, TypeError, AttributeError) as err:
        raise LensError(p / RESULTS, f"not a result of rcnn-lens analyze (a line lacks {err})") from None
    summary = _json(p / SUMMARY, None)
    out = [{**r, "path": find(r["image"], p)} for r in rows]
    return Analysis(p, out, settings(p), summary if isinstance(summary, dict) else None)


def _json(path: Path, default):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as err:
        raise LensError(path, f"cannot read ({type(err).__name__}: {err})") from None
