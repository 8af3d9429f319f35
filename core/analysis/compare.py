"""``rcnn-lens compare RUN_A RUN_B [RUN_C ...] -o OUT``: analysis folders over the same images and
truth, compared object by object (paired by image and truth index): each object's verdict per run,
the verdict transitions between consecutive runs, the objects gained and lost (with the stage where
the other run lost them), recall and AP@0.5 per class, and the mAP differences with a paired
bootstrap interval over images (core.analysis.bootstrap). Writes ``OUT/compare.json`` and
``OUT/compare.png``; nothing is written when an input is refused."""

from __future__ import annotations

import json
import string
from collections import Counter
from pathlib import Path

from core.analysis import bootstrap
from core.analysis.files import (
    COMPARE,
    COMPARE_CHART,
    RESULTS,
    SETTINGS,
    SUMMARY,
    SWEEP,
    SWEEP_RESULTS,
    read_lines,
    visible_parts,
)
from core.analysis.verdicts import VERDICTS
from core.errors import LensError

__all__ = ["COMPARE", "COMPARE_CHART", "compare", "read_run"]


def label(k: int) -> str:
    return string.ascii_uppercase[k] if k < 26 else f"R{k + 1}"


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise LensError(path, f"cannot read ({type(err).__name__})") from None


def read_run(folder) -> dict:
    """An analysis folder: its settings, summary and records (analysis.jsonl in order). Raises
    LensError (one line) for what is not a finished analysis folder."""
    p = Path(folder).expanduser()
    if not p.is_dir():
        raise LensError(p, "no such folder" if not p.exists() else "not a folder")
    if (p / COMPARE).is_file():
        raise LensError(p, "a compare folder, not an analysis folder; compare the analysis folders it was made from")
    if not (p / RESULTS).is_file():
        what = "a sweep folder (analyze --sweep)" if (p / SWEEP).is_file() or (p / SWEEP_RESULTS).is_file() \
            else f"not an analysis folder (no {RESULTS})"
        raise LensError(p, f"{what}; compare the folders of rcnn-lens analyze -o")
    data = (p / RESULTS).read_bytes()
    half = visible_parts(p) or (data and not data.endswith(b"\n")) or not (p / SUMMARY).is_file()
    summary = _json(p / SUMMARY) if (p / SUMMARY).is_file() else None
    lines = read_lines(p / RESULTS)
    if not half and (not isinstance(summary, dict) or summary.get("images") != len(lines)):
        half = True
    if half:
        raise LensError(p, "a half-written analysis (interrupted or still running); resume it first: run the same "
                           "rcnn-lens analyze command again")
    try:
        records = [json.loads(x) for x in lines.values()]
        for r in records:
            r["truth"], r["detections"], r["size"]  # noqa: B018 - the fields compare reads
    except (ValueError, KeyError, TypeError) as err:
        raise LensError(p / RESULTS, f"not a result of rcnn-lens analyze ({type(err).__name__}: {err})") from None
    settings = _json(p / SETTINGS) if (p / SETTINGS).is_file() else summary.get("settings", {})
    return {"folder": p, "settings": settings if isinstance(settings, dict) else {}, "summary": summary,
            "records": records}


def check_pairs(runs: list[dict]) -> None:
    """Refuse runs over other images or other truth than the first, naming the first difference."""
    a = runs[0]
    names_a = [r["image"] for r in a["records"]]
    for b in runs[1:]:
        by_b = {r["image"]: r for r in b["records"]}
        only_a = next((x for x in names_a if x not in by_b), None)
        only_b = next((r["image"] for r in b["records"] if r["image"] not in set(names_a)), None)
        if only_a is not None or only_b is not None:
            which = f"{only_a} is in {a['folder']} only" if only_a is not None else f"{only_b} is in it only"
            raise LensError(b["folder"], f"other images than {a['folder']} ({which}); compare runs over the same images")
        for ra in a["records"]:
            ta, tb = ra["truth"], by_b[ra["image"]]["truth"]
            if len(ta) != len(tb):
                raise LensError(b["folder"], f"other truth than {a['folder']} ({ra['image']}: {len(tb)} objects vs "
                                             f"{len(ta)}); compare runs with the same annotations")
            for i, (x, y) in enumerate(zip(ta, tb)):
                if x["box"] != y["box"] or x["name"] != y["name"]:
                    raise LensError(b["folder"], f"other truth than {a['folder']} ({ra['image']} object {i}: "
                                                 f"another box or class); compare runs with the same annotations")


def objects(runs: list[dict]) -> list[dict]:
    """Every object with a verdict in some run, in the first run's order: its verdict per run."""
    by = [{r["image"]: r for r in run["records"]} for run in runs]
    out = []
    for ra in runs[0]["records"]:
        for i, o in enumerate(ra["truth"]):
            vs = [b[ra["image"]]["truth"][i]["verdict"] for b in by]
            if all(v is None for v in vs):
                continue  # a class no run's model has, or a crowd region
            out.append({"image": ra["image"], "truth": i, "name": o["name"], "verdicts": vs})
    return out


def transitions(objs: list[dict], n_runs: int) -> dict:
    """For each consecutive pair "A->B": {verdict in A: {verdict in B: objects}} (objects judged in both)."""
    out = {}
    for k in range(n_runs - 1):
        c = Counter((o["verdicts"][k], o["verdicts"][k + 1]) for o in objs
                    if o["verdicts"][k] is not None and o["verdicts"][k + 1] is not None)
        table: dict = {}
        for (a, b), n in sorted(c.items(), key=lambda kv: (VERDICTS.index(kv[0][0]), VERDICTS.index(kv[0][1]))):
            table.setdefault(a, {})[b] = n
        out[f"{label(k)}->{label(k + 1)}"] = table
    return out


def gained_lost(objs: list[dict], n_runs: int) -> tuple[list, list]:
    gained, lost = [], []
    for k in range(n_runs - 1):
        pair = f"{label(k)}->{label(k + 1)}"
        for o in objs:
            a, b = o["verdicts"][k], o["verdicts"][k + 1]
            base = {"pair": pair, "image": o["image"], "truth": o["truth"], "name": o["name"]}
            if a not in (None, "detected") and b == "detected":
                gained.append({**base, "was_lost_at": a})
            elif a == "detected" and b not in (None, "detected"):
                lost.append({**base, "lost_at": b})
    return gained, lost


def _recall(objs, k: int, name: str | None = None) -> float | None:
    vs = [o["verdicts"][k] for o in objs if o["verdicts"][k] is not None and (name is None or o["name"] == name)]
    return round(sum(v == "detected" for v in vs) / len(vs), 5) if vs else None


def _diff(a, b):
    return None if a is None or b is None or a != a or b != b else round(b - a, 5)


def compare(folders, resamples: int = bootstrap.RESAMPLES, seed: int = bootstrap.SEED, progress=None) -> dict:
    """compare.json for analysis folders (see the module's doc). Raises LensError before any work
    for a folder that is not a finished analysis, or runs over other images or truth."""
    if len(folders) < 2:
        raise LensError("compare", "name at least two analysis folders")
    runs = [read_run(f) for f in folders]
    check_pairs(runs)
    order = [r["image"] for r in runs[0]["records"]]
    for run in runs[1:]:  # the first run's image order: the bootstrap draws the same images from each
        pos = {r["image"]: r for r in run["records"]}
        run["records"] = [pos[x] for x in order]
    names = runs[0]["settings"].get("class_names") or []
    objs = objects(runs)
    evals = [bootstrap.RunEval(r["records"], r["settings"].get("class_names") or names) for r in runs]
    ident = list(range(len(order)))
    point = [e.scores(ident) for e in evals]
    draws = bootstrap.paired(evals, resamples, seed, progress)
    classes = sorted({o["name"] for o in objs})
    label_of = [{n: i for i, n in enumerate(r["settings"].get("class_names") or names)} for r in runs]
    out_runs = []
    for k, run in enumerate(runs):
        s = run["settings"]
        out_runs.append({"label": label(k), "folder": str(run["folder"]), "model": s.get("model"),
                         "weights": s.get("weights"), "params": s.get("params"),
                         "map50": run["summary"].get("map50"), "map": run["summary"].get("map"),
                         "recall": _recall(objs, k), "verdicts": dict(Counter(o["verdicts"][k] for o in objs
                                                                              if o["verdicts"][k] is not None))})
    delta, per_class = {}, {}
    for k in range(len(runs) - 1):
        pair = f"{label(k)}->{label(k + 1)}"
        d = {}
        for j, key in ((0, "map50"), (1, "map")):
            lo, hi = bootstrap.interval([x[k + 1][j] - x[k][j] for x in draws])
            diff = _diff(out_runs[k][key], out_runs[k + 1][key])
            d[key] = {"diff": diff, "low": lo, "high": hi,
                      "significant": bool(lo is not None and (lo > 0 or hi < 0))}
        delta[pair] = d
    nan = float("nan")
    for name in classes:
        c = [lab.get(name) for lab in label_of]  # the class's index in each run's model
        ap = [None if ck is None or not p[2].get(ck, nan) == p[2].get(ck, nan) else round(p[2][ck], 5)
              for ck, p in zip(c, point)]
        row = {"ap50": ap, "recall": [_recall(objs, k, name) for k in range(len(runs))], "ap50_diff": {},
               "recall_diff": {}}
        for k in range(len(runs) - 1):
            pair = f"{label(k)}->{label(k + 1)}"
            lo, hi = bootstrap.interval([x[k + 1][2].get(c[k + 1], nan) - x[k][2].get(c[k], nan) for x in draws])
            row["ap50_diff"][pair] = {"diff": _diff(ap[k], ap[k + 1]), "low": lo, "high": hi}
            row["recall_diff"][pair] = _diff(row["recall"][k], row["recall"][k + 1])
        per_class[name] = row
    gained, lost = gained_lost(objs, len(runs))
    return {"images": len(order), "objects_compared": len(objs), "runs": out_runs, "objects": objs,
            "transitions": transitions(objs, len(runs)), "gained": gained, "lost": lost, "per_class": per_class,
            "delta": delta, "bootstrap": {"resamples": resamples, "seed": seed, "level": bootstrap.LEVEL,
                                          "over": "images", "method": "paired percentile bootstrap: every run "
                                          "scored on the same draw of images (with replacement) by pycocotools' "
                                          "COCOeval.accumulate"}}
