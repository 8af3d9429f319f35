"""``rcnn-lens analyze``: its options, the run (each torchrun rank its share) and the table it prints.
The work is core.analysis.analyze's."""

from __future__ import annotations

from pathlib import Path

from core.analysis.analyze import analyze
from core.analysis.files import CHART, RESULTS, SUMMARY
from core.analysis.ranks import Ranks
from core.cli.options import add_model_options, thresholds


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


def run(args) -> int:
    """``rcnn-lens analyze``."""
    ranks = Ranks.from_env(args.device)
    res = None
    try:
        res = analyze(args.inputs, args.out, annotations=args.annotations, model=args.model, weights=args.weights,
                      device=args.device, params=thresholds(args), workers=args.workers,
                      progress=not args.quiet, ranks=ranks)
    finally:
        ranks.close(sync=res is not None and res.exit_code != 130)
    if res.summary is not None and not args.quiet:
        print(verdict_table(res.summary))
        print(f"wrote {Path(args.out) / RESULTS}, {SUMMARY}, {CHART}")
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
    add_model_options(a)
    a.set_defaults(func=run)
