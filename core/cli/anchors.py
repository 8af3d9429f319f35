"""``rcnn-lens anchors IMAGES|FOLDER --annotations A -o OUT``: anchor coverage with the model's own
anchors and Matcher, a suggested configuration judged on held-out images, anchors.json and
anchors.png. The work is core.analysis.anchor_fit's."""

from __future__ import annotations

import sys
from pathlib import Path

from core.analysis.anchor_config import AnchorConfig
from core.cli.options import add_model_options, load
from core.errors import LensError


def _bar(total=None, desc=""):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img" if desc == "images" else "trial", dynamic_ncols=True,
                file=sys.stderr, disable=None)


def table(report: dict) -> str:
    """What ``anchors`` prints: the configurations side by side, then the line to paste."""
    t = report["totals"]["all"]
    rows = [f"{report['images']} images, {report['object_count']} objects; the RPN's Matcher: IoU >= "
            f"{report['matcher']['fg_iou_thresh']:g} positive, < {report['matcher']['bg_iou_thresh']:g} negative"
            + (", best-match rule on" if report["matcher"]["allow_low_quality_matches"] else ""),
            f"judged ({'--sizes/--ratios' if report['judged']['what_if'] else 'the model'}): strong "
            f"{report['judged']['strong']}, rescued {report['judged']['rescued']}, starved {report['judged']['starved']}"
            f"; YOLOv5 would say BPR {t['yolov5_bpr']}, MMDetection mean best IoU {t['mean_best_iou']}",
            f"{'':<10} {'per loc.':>8} {'strong':>8} {'held-out strong':>16} {'starved':>8} {'positives':>10}"]
    for key in ("current", "suggested", "free"):
        c = report.get(key)
        if c is None:
            continue
        h = c["held_out"] or {}
        share = f"{h['strong_share']:.1%}" if h.get("strong_share") is not None else "-"
        rows.append(f"{key:<10} {'/'.join(str(n) for n in sorted(set(c['per_location']))):>8} "
                    f"{c['strong_share']:>8.1%} {share:>16} {h.get('starved', '-'):>8} "
                    f"{h.get('mean_positives') if h.get('mean_positives') is not None else '-':>10}")
    ch, sh = (report["current"]["held_out"] or {}).get("strong_share"), (report["suggested"]["held_out"] or {}).get(
        "strong_share")
    if ch is not None and sh is not None and sh <= ch:
        rows.append("the suggestion does not raise the strong share on the held-out images: keep the model's anchors")
    rows.append(f"suggested (the RPN head still loads): {report['suggested']['paste']}")
    if "free" in report:
        rows.append(f"free (the RPN head needs training): {report['free']['paste']}")
    return "\n".join(rows)


def run(args) -> int:
    from core.analysis import anchor_fit
    from core.analysis.analyze import list_images

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise LensError(out, "exists and is not a folder")
    if args.trials < 0 or (args.free_trials or 0) < 0:
        raise LensError("--trials", "must be 0 or more")
    if not 0 < args.fit_share < 1:
        raise LensError("--fit-share", f"{args.fit_share}: must lie between 0 and 1")
    config = None
    if args.sizes or args.ratios:
        if not (args.sizes and args.ratios):
            raise LensError("--sizes/--ratios", "give both")
        config = AnchorConfig.parse(args.sizes, args.ratios, None, "--sizes/--ratios")
    paths = list_images(args.inputs)
    ann = None
    if args.annotations is not None:
        from core.truth.sources import open_annotations

        ann = open_annotations(args.annotations)  # a bad file: one line before the model loads
    loaded = load(args)
    gen = anchor_fit.generator_of(loaded.module, loaded.name)
    if config is not None:  # before reading the images (the feature maps are checked again then)
        config.check(len(gen.cell_anchors), "--sizes/--ratios")
    quiet = args.quiet
    geoms, bad = anchor_fit.read(loaded, paths, ann, anchor_fit.log,
                                 None if quiet else (lambda ps: _iter(ps, _bar(len(ps), "images"))))
    if not geoms:
        raise LensError(args.inputs[0], "no image with annotations to fit anchors on")
    bar = None if quiet else _Trials()
    from core.threads import torch_threads

    with torch_threads(1):  # thousands of small IoU matrices: more threads only add overhead
        res = anchor_fit.fit(loaded, geoms, config=config, seed=args.seed, trials=args.trials,
                             free_trials=args.free_trials or None, fit_share=args.fit_share,
                             progress=None if quiet else bar.start)
    if bar is not None:
        bar.close()
    res.report["unreadable"] = bad
    anchor_fit.write(out, res)
    if not quiet:
        print(table(res.report))
        print(f"wrote {out / anchor_fit.JSON}, {anchor_fit.CHART}")
    return 1 if bad else 0


def _iter(ps, bar):
    with bar:
        for p in ps:
            yield p
            bar.update(1)


class _Trials:
    """The search's progress bar (trials judged)."""

    def __init__(self):
        self.bar = None

    def start(self, total: int):
        self.bar = _bar(total, "search")
        return self.update

    def update(self, done: int) -> None:
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def add_parser(sub) -> None:
    a = sub.add_parser("anchors", help="do the model's anchors fit the data: coverage with its own anchors and "
                                       "Matcher, a suggested configuration (anchors.json, anchors.png)")
    a.add_argument("inputs", nargs="+", metavar="IMAGES|FOLDER")
    a.add_argument("--annotations", default=None,
                   help="COCO json, VOC xml/folder or YOLO txt/folder (default: found beside each image)")
    a.add_argument("-o", "--out", required=True, help="output folder: anchors.json, anchors.png")
    a.add_argument("--sizes", default=None,
                   help='judge these sizes instead of the model\'s: per level, "16,24 / 32,48 / ..." (with --ratios)')
    a.add_argument("--ratios", default=None, help='aspect ratios h/w: "0.5,1,2" (every level) or per level with /')
    a.add_argument("--seed", type=int, default=0, help="the split into fitting and held-out halves, and the search")
    a.add_argument("--trials", type=int, default=400, help="search steps for the suggestion (default 400)")
    a.add_argument("--free-trials", type=int, default=150,
                   help="search steps per structure of the free search (other anchors per location); 0: none")
    a.add_argument("--fit-share", type=float, default=0.5, help="share of the images to fit on (default 0.5)")
    a.add_argument("--quiet", action="store_true", help="no progress bars or table")
    add_model_options(a, thresholds=False)  # the Matcher and sampler are the model's; no inference runs
    a.set_defaults(func=run)
