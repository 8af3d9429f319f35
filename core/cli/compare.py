"""``rcnn-lens compare RUN_A RUN_B [RUN_C ...] -o OUT``: analysis folders compared object by object
(core.analysis.compare): OUT/compare.json, OUT/compare.png and a short table."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from core.errors import LensError


def table(cmp: dict) -> str:
    """mAP of each run, each consecutive difference with its interval, objects gained and lost by stage."""
    rows = [f"{cmp['images']} images, {cmp['objects_compared']} objects compared"]
    for r in cmp["runs"]:
        m50 = "n/a" if r["map50"] is None else f"{r['map50']:.4f}"
        m = "n/a" if r["map"] is None else f"{r['map']:.4f}"
        rows.append(f"  {r['label']}  mAP@0.5 {m50}  mAP@[.5:.95] {m}  recall {r['recall']}  {r['folder']}")
    for pair, d in cmp["delta"].items():
        for key, name in (("map50", "mAP@0.5"), ("map", "mAP@[.5:.95]")):
            v = d[key]
            if v["diff"] is None:
                continue
            iv = f"[{v['low']:+.4f}, {v['high']:+.4f}]" if v["low"] is not None else "[n/a]"
            rows.append(f"  {pair} {name:<12} {v['diff']:+.4f}  95% interval {iv}  "
                        f"{'significant' if v['significant'] else 'within noise'}")
        g = Counter(x["was_lost_at"] for x in cmp["gained"] if x["pair"] == pair)
        lo = Counter(x["lost_at"] for x in cmp["lost"] if x["pair"] == pair)
        rows.append(f"  {pair} gained {sum(g.values())}" + (f" (were lost at: {_by(g)})" if g else "")
                    + f"; lost {sum(lo.values())}" + (f" (now lost at: {_by(lo)})" if lo else ""))
    return "\n".join(rows)


def _by(c: Counter) -> str:
    return ", ".join(f"{k} {n}" for k, n in c.most_common())


def run(args) -> int:
    from core.analysis.compare import COMPARE, COMPARE_CHART, compare
    from core.analysis.compare_chart import draw
    from core.analysis.files import RESULTS
    from core.atomic import write_bytes, write_text

    if args.resamples < 1 or args.seed < 0:
        raise LensError("--resamples" if args.resamples < 1 else "--seed", "must be >= 1 (resamples), >= 0 (seed)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise LensError(out, "exists and is not a folder")
    if (out / RESULTS).exists():
        raise LensError(out, "holds an analysis; write the comparison to another folder")
    bars: list = []  # made at the first draw: a refused input prints its one line only

    def progress() -> None:
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=args.resamples, desc="bootstrap", unit="draw", file=sys.stderr,
                             dynamic_ncols=True, leave=False))
        bars[0].update(1)

    try:
        cmp = compare(args.runs, resamples=args.resamples, seed=args.seed, progress=None if args.quiet else progress)
    finally:
        for bar in bars:
            bar.close()
    png = draw(cmp)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / COMPARE, json.dumps(cmp, indent=1) + "\n")
    write_bytes(out / COMPARE_CHART, png)
    if not args.quiet:
        print(table(cmp))
        print(f"wrote {out / COMPARE}, {COMPARE_CHART}")
    return 0


def add_parser(sub) -> None:
    from core.analysis.bootstrap import RESAMPLES, SEED

    c = sub.add_parser("compare", help="did it help? analysis folders compared object by object (json, chart)")
    c.add_argument("runs", nargs="+", metavar="RUN", help="analysis folders (rcnn-lens analyze -o) over the same "
                                                          "images and truth, in order (A, B, C, ...)")
    c.add_argument("-o", "--out", required=True, help="output folder: compare.json, compare.png")
    c.add_argument("--resamples", type=int, default=RESAMPLES, help=f"bootstrap resamples (default {RESAMPLES})")
    c.add_argument("--seed", type=int, default=SEED, help=f"bootstrap seed (default {SEED})")
    c.add_argument("--quiet", action="store_true", help="no progress bar or table")
    c.add_argument("--debug", action="store_true", help="show tracebacks")
    c.set_defaults(func=run)
