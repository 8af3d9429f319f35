"""``rcnn-lens analyze``: its options, the run (each torchrun rank its share) and the table it prints.
The work is core.analysis.analyze's."""

from __future__ import annotations

from pathlib import Path

from core.analysis.analyze import analyze
from core.analysis.files import CHART, DETECTIONS, RESULTS, SUMMARY, SWEEP, SWEEP_CHART, SWEEP_RESULTS
from core.analysis.ranks import Ranks
from core.cli.options import add_model_options, thresholds
from core.errors import LensError


def verdict_table(summary: dict) -> str:
    """What ``analyze`` prints at the end: the counts an engineer reads first."""
    v = summary["verdicts"]
    n = max(summary["objects"], 1)
    rows = [f"{summary['images']} images, {summary['objects']} objects, {summary['detections']} detections"]
    rows += [f"  {k:<18} {v[k]:6d}  {v[k] / n:6.1%}" for k in v if v[k]]
    e = summary["detection_errors"]
    rows.append("detections: " + ", ".join(f"{k} {e[k]}" for k in e))
    pr, ar = summary["proposal_recall"], summary["anchor_recall"]
    rows.append(f"proposal recall @0.5 {pr['0.5']}, @0.7 {pr['0.7']}; anchor recall @0.5 {ar['0.5']}, @0.7 {ar['0.7']}")
    rows.append(f"mAP@0.5 {summary['map50']}, mAP@[.5:.95] {summary['map']}")
    return "\n".join(rows)


def sweep_table(summary: dict) -> str:
    """What ``analyze --sweep`` prints: each grid point's numbers, the best, the class thresholds."""
    names = list(summary["sweep"])
    rows = [f"{summary['images']} images, {len(summary['points'])} settings of {', '.join(names)}"]
    rows.append("  ".join(f"{n:>16}" for n in names) + f"  {'mAP@0.5':>8} {'mAP':>7} {'recall':>7} {'precision':>9}")
    best = (summary["best"] or {}).get("index")
    for k, p in enumerate(summary["points"]):
        vals = "  ".join(f"{p['params'][n]:>16g}" for n in names)
        f = [("n/a" if p[x] is None else f"{p[x]:.3f}") for x in ("map50", "map", "recall", "precision")]
        rows.append(f"{vals}  {f[0]:>8} {f[1]:>7} {f[2]:>7} {f[3]:>9}" + ("  <- best" if k == best else ""))
    for name, c in summary["class_thresholds"]["classes"].items():
        if c:
            rows.append(f"  {name}: box score > {c['thresh']:g} gives the best F1 {c['f1']:.3f} "
                        f"(precision {c['precision']:.3f}, recall {c['recall']:.3f})")
    return "\n".join(rows)


def run(args) -> int:
    """``rcnn-lens analyze``."""
    sweep = None
    if args.sweep:
        from core.analysis.sweep import parse

        sweep = parse(args.sweep)  # a bad --sweep is one line before anything loads or is written
        clash = [n for n in sweep if n in thresholds(args)]
        if clash:
            raise LensError(f"--sweep {clash[0]}", "is also set as an option; sweep it or set it, not both")
    ranks = Ranks.from_env(args.device)
    res = None
    try:
        res = analyze(args.inputs, args.out, annotations=args.annotations, model=args.model, weights=args.weights,
                      device=args.device, params=thresholds(args), workers=args.workers,
                      progress=not args.quiet, ranks=ranks, sweep=sweep)
    finally:
        ranks.close(sync=res is not None and res.exit_code != 130)
    if res.summary is not None and not args.quiet:
        if sweep:
            print(sweep_table(res.summary))
            print(f"wrote {Path(args.out) / SWEEP_RESULTS}, {SWEEP}, {SWEEP_CHART}")
        else:
            print(verdict_table(res.summary))
            print(f"wrote {Path(args.out) / RESULTS}, {SUMMARY}, {CHART}, {DETECTIONS}")
    return res.exit_code


def add_parser(sub) -> None:
    a = sub.add_parser("analyze", help="why was each object missed: verdicts over a dataset (jsonl, summary, chart)")
    a.add_argument("inputs", nargs="+", metavar="IMAGES|FOLDER")
    a.add_argument("--annotations", default=None,
                   help="COCO json, VOC xml/folder or YOLO txt/folder (default: found beside each image)")
    a.add_argument("-o", "--out", required=True, help="output folder: analysis.jsonl, summary.json, summary.png")
    a.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers reading images (0: read in this process; default: 2 on a GPU or where "
                        "cores are left beside torch's threads, else 0)")
    a.add_argument("--quiet", action="store_true", help="no progress bar or table")
    a.add_argument("--sweep", nargs="+", default=None, metavar="NAME=VALUES",
                   help="sweep up to three test-time thresholds (e.g. box_score_thresh=0.05:0.95:0.05 "
                        "box_nms_thresh=0.4,0.5,0.6): one trace per image, a retrace per setting; writes sweep.jsonl, "
                        "sweep.json, sweep.png")
    add_model_options(a)
    a.set_defaults(func=run)
