"""An analysis folder (the OUT of ``rcnn-lens analyze``) as the app browses it, Qt-free: its images
with the most missed objects first (core.analysis.files.read_analysis), each image's path found again
(analyze records them as it was given them, often relative to where it ran), the annotations,
model and thresholds it recorded (so a click shows the image with the same truth and verdicts),
and its summary line. A compare folder (the OUT of ``rcnn-lens compare``) likewise: its runs and its
objects, the changed first (``open_compare``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.analysis.files import COMPARE, RESULTS, SETTINGS, SUMMARY, read_analysis
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


# ---------------------------------------------------------------- compare folders (rcnn-lens compare -o)

def is_compare(path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / COMPARE).is_file()


def is_browsable(path) -> bool:
    """An analysis or a compare folder: what the app opens in its Analysis dock."""
    return is_analysis(path) or is_compare(path)


@dataclass(frozen=True)
class Comparison:
    folder: Path
    runs: list  # per run: label, folder (found again), model, weights, params, annotations (found again), note
    rows: list  # per object, the changed first: image, path, truth, name, verdicts, changed
    data: dict  # compare.json

    def headline(self) -> str:
        """``24 objects, 3 changed verdict A->B (2 gained, 1 lost); mAP@0.5 0.94 -> 0.95``"""
        changed = sum(1 for r in self.rows if r["changed"])
        g, lo = len(self.data.get("gained", [])), len(self.data.get("lost", []))
        maps = " -> ".join("n/a" if r.get("map50") is None else f"{r['map50']:.3g}" for r in self.data["runs"])
        pairs = ", ".join(self.data.get("transitions", {}))
        return (f"{len(self.rows)} objects in {self.data.get('images')} images, {changed} changed verdict {pairs} "
                f"({g} gained, {lo} lost); mAP@0.5 {maps}")


def run_note(run: dict, first: dict) -> str:
    """``run B: /x/b (demo, demo; box_score_thresh 0.5->0.9)``"""
    p, p0 = run.get("params") or {}, first.get("params") or {}
    diff = [f"{k} {p0.get(k)}->{p[k]}" for k in p if p0.get(k) != p[k]]
    return (f"run {run['label']}: {Path(str(run['folder'])).name} ({run.get('model')}, {run.get('weights')}"
            + (f"; {', '.join(diff)}" if diff else "") + ")")


def open_compare(folder) -> Comparison:
    """Read a compare folder: its runs (their annotations found again) and its objects, the ones
    whose verdict changed first (gained or lost first of all). Raises LensError (one line)."""
    p = Path(folder).expanduser()
    data = _json(p / COMPARE, None)
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or not isinstance(data.get("objects"), list):
        raise LensError(p / COMPARE, "not a result of rcnn-lens compare")
    runs = []
    for r in data["runs"]:
        run_folder = find(str(r.get("folder")), p)
        s = settings(run_folder) if run_folder else {}
        runs.append({**r, "folder": run_folder or str(r.get("folder")),
                     "annotations": find(s.get("annotations"), Path(run_folder)) if run_folder else None,
                     "note": run_note(r, data["runs"][0])})
    images: dict = {}
    rows = []
    for o in data["objects"]:
        vs = list(o["verdicts"])
        changed = len(set(vs)) > 1
        if o["image"] not in images:
            images[o["image"]] = find(o["image"], p) or next((find(o["image"], Path(r["folder"])) for r in runs
                                                            if find(o["image"], Path(r["folder"]))), None)
        rank = 0 if changed and "detected" in vs else 1 if changed else 2
        rows.append({"image": o["image"], "path": images[o["image"]], "truth": int(o["truth"]), "name": o["name"],
                     "verdicts": vs, "changed": changed, "rank": rank})
    rows.sort(key=lambda r: (r["rank"], r["image"], r["truth"]))
    return Comparison(p, runs, rows, data)
