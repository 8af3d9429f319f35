"""The files of an analysis folder (``rcnn-lens analyze -o OUT``): their names, reading the jsonl
(a torn last line cut), the settings a rerun must agree with, and the folder as the app lists it.
Plain JSON, no torch: the app's browser reads these too."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from core.errors import LensError

RESULTS = "analysis.jsonl"
SUMMARY = "summary.json"
CHART = "summary.png"
SETTINGS = "settings.json"
DETECTIONS = "detections_coco.json"  # the final detections in COCO's results format
SWEEP_RESULTS = "sweep.jsonl"  # analyze --sweep: per image, every grid point's verdicts and detections
SWEEP = "sweep.json"
SWEEP_CHART = "sweep.png"
COMPARE = "compare.json"  # rcnn-lens compare -o OUT
COMPARE_CHART = "compare.png"
# settings that must agree for a rerun to resume (the device may change)
RESUME_KEYS = ("model", "weights", "params", "annotations", "class_names", "sweep")


def read_lines(path: Path, cut_torn: bool = False) -> dict[str, str]:
    """image -> line of a jsonl file. A last line without its newline (a write cut short) is
    dropped and, with ``cut_torn``, cut from the file; lines that do not parse are skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise LensError(path, f"cannot read ({err.strerror or err})") from None
    end = data.rfind(b"\n") + 1
    if cut_torn and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    out: dict[str, str] = {}
    for line in data[:end].decode("utf-8", "replace").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("image"), str):
            out[obj["image"]] = line
    return out


def part_file(out: Path, rank: int, world: int, results: str = RESULTS) -> Path:
    return out / results if world == 1 else out / f"{Path(results).stem}.rank{rank}.jsonl"


def visible_parts(out: Path, results: str = RESULTS) -> list[Path]:
    return sorted(out.glob(f"{Path(results).stem}.rank*.jsonl"))


def check_settings(out: Path, settings: dict) -> None:
    p = out / SETTINGS
    if p.is_file():
        try:
            old = json.loads(p.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and any(k in old for k in RESUME_KEYS):
            diff = [k for k in RESUME_KEYS if json.dumps(old.get(k), sort_keys=True) !=
                    json.dumps(settings.get(k), sort_keys=True)]
            if diff and any((out / r).exists() or visible_parts(out, r) for r in (RESULTS, SWEEP_RESULTS)):
                k = diff[0]
                detail = ""
                if k == "params":
                    ch = [n for n in settings["params"] if old.get("params", {}).get(n) != settings["params"][n]]
                    detail = " (" + ", ".join(f"{n} {old.get('params', {}).get(n)} -> {settings['params'][n]}"
                                              for n in ch[:3]) + ")"
                raise LensError(out, f"holds an analysis made with another {k}{detail}; rerun it as it was, "
                                     f"or choose another -o folder")


def read_analysis(out) -> list[dict]:
    """An analysis folder as a list of its images, the most missed objects first: ``{"image",
    "objects", "missed", "verdicts": {verdict: n}, "errors": {type: n}}`` (the GUI's browser)."""
    p = Path(out)
    if not (p / RESULTS).is_file():
        raise LensError(p, f"not an analysis folder (no {RESULTS})")
    rows = []
    for line in read_lines(p / RESULTS).values():
        r = json.loads(line)
        v = Counter(o["verdict"] for o in r["truth"] if o["verdict"] is not None)
        rows.append({"image": r["image"], "objects": sum(v.values()), "missed": sum(v.values()) - v["detected"],
                     "verdicts": dict(v), "errors": dict(Counter(d["error"] for d in r["detections"]))})
    rows.sort(key=lambda row: (-row["missed"], -row["objects"], row["image"]))
    return rows
