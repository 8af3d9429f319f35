"""``rcnn-lens trace|export|analyze|models|download``: the command-line tools (no Qt).

A bad file prints one line on stderr naming it and the problem; the others are still processed;
the exit code is 1 at the end. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .cli_export import add_export_parser, run_export
from .errors import LensError
from .trace_summary import trace_summary, trace_table

THRESHOLD_OPTIONS = (
    ("--rpn-pre-nms-top-n", "rpn_pre_nms_top_n_test", int, "RPN: top-n proposals per level before NMS"),
    ("--rpn-post-nms-top-n", "rpn_post_nms_top_n_test", int, "RPN: proposals kept after NMS"),
    ("--rpn-nms-thresh", "rpn_nms_thresh", float, "RPN: NMS IoU threshold"),
    ("--rpn-score-thresh", "rpn_score_thresh", float, "RPN: objectness probability threshold"),
    ("--box-score-thresh", "box_score_thresh", float, "detections: class score threshold"),
    ("--box-nms-thresh", "box_nms_thresh", float, "detections: NMS IoU threshold"),
    ("--box-detections-per-img", "box_detections_per_img", int, "detections: at most this many"),
)


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="a preset (see `rcnn-lens models`), auto (the preset the checkpoint fits; the default "
                        "with a checkpoint) or your builder path/to/file.py:function or package.module:function "
                        "(runs your code); default: demo")
    p.add_argument("--weights", default=None,
                   help="demo, coco, random, random:SEED or a checkpoint (.pt/.pth/.ckpt/.safetensors; "
                        "default: the preset's)")
    p.add_argument("--trust", action="store_true",
                   help="load a whole pickled model (torch.save(model)) with weights_only=False: runs code from "
                        "the file; only for files you made")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    for flag, dest, typ, help_ in THRESHOLD_OPTIONS:
        p.add_argument(flag, dest=dest, type=typ, default=None, help=help_)
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def add_truth_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotations", default=None, metavar="FILE|FOLDER",
                   help="ground truth: a COCO .json, VOC .xml (or folder), YOLO .txt (or folder with classes.txt "
                        "or data.yaml); default: each image's own file beside it")
    p.add_argument("--seed", type=int, default=0, help="seed of the training view's random minibatches (default 0)")
    p.add_argument("--no-truth", action="store_true", help="ignore annotations: no truth, no training view")


def truth_lookup(args):
    """The run's TruthLookup (core.truth.lookup); a bad --annotations raises before the model loads."""
    from .truth.lookup import TruthLookup

    return TruthLookup(args.annotations, args.images, lambda line: print(f"rcnn-lens: {line}", file=sys.stderr),
                       enabled=not args.no_truth)


def with_truth(tr, lookup, path, class_names, seed: int):
    """``tr`` with its truth and training view when the lookup finds truth for ``path``."""
    truth = lookup.truth(path, tr.meta.original_size, class_names)
    if truth is None:
        return tr
    from .training import attach

    return attach(tr, truth, seed)


def finish_truth(lookup) -> int:
    """Print the missing-class notes once; 1 if any annotation file was bad."""
    for line in lookup.warnings():
        print(f"rcnn-lens: {line}", file=sys.stderr)
    return 1 if lookup.failed else 0


def thresholds(args) -> dict:
    return {dest: getattr(args, dest) for _, dest, _, _ in THRESHOLD_OPTIONS if getattr(args, dest) is not None}


def _load(args):
    from .models import load_model

    return load_model(args.model, weights=args.weights, device=args.device, trust=getattr(args, "trust", False),
                      download=True, bar=True)


def check_line(tr, image_name: str) -> str | None:
    """One warning line when a flagged model's checked trace differs from model(images)."""
    c = tr.check
    if c is None or not c.checked or c.equal:
        return None
    return (f"rcnn-lens: {image_name}: warning: {c.detail}; the model overrides {', '.join(c.overrides)}, so the "
            "stages shown may not be what it computes")


def cmd_trace(args) -> int:
    lookup = truth_lookup(args)  # before torch loads: a bad annotation file fails at once
    from .runner import trace

    model = _load(args)
    params = thresholds(args)
    failed = 0
    for path in args.images:
        try:
            tr = trace(model, path, **params)
            tr = with_truth(tr, lookup, path, model.class_names, args.seed)
        except LensError as err:
            print(f"rcnn-lens: {err}", file=sys.stderr)
            failed += 1
            continue
        warn = check_line(tr, path)
        if warn:
            print(warn, file=sys.stderr)
        if args.json:
            print(json.dumps({**trace_summary(tr, path), "loaded": model.summary}), flush=True)
        else:
            print(f"loaded: {model.summary}\n" + trace_table(tr, path), flush=True)
    return 1 if (finish_truth(lookup) or failed) else 0


def cmd_export(args) -> int:
    def truth():
        lookup = truth_lookup(args)  # before torch loads: a bad annotation file fails at once
        return (lambda tr, img, names: with_truth(tr, lookup, img, names, args.seed)), (lambda: finish_truth(lookup))

    return run_export(args, lambda: _load(args), thresholds(args), truth)


def cmd_models(args) -> int:
    from . import presets
    from . import weights as w

    if getattr(args, "fits", None):
        from . import checkpoints, fit

        ck = checkpoints.read(args.fits, trust=args.trust)
        sd = ck.state_dict if ck.module is None else ck.module.state_dict()
        names = fit.fitting_presets(sd, ck.config)
        print(json.dumps(names) if args.json else (", ".join(names) or "no preset fits"))
        return 0 if names else 1
    rows = []
    for name, p in presets.PRESETS.items():
        avail = [f"{a['spec']} ({a['note']})" if a["spec"] != "random" else "random" for a in w.availability(p)]
        rows.append({"name": name, "default": p.default_weights, "weights": avail, "about": p.description})
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['name']}\n    {r['about']}\n    weights: {', '.join(r['weights'])}; default {r['default']}")
    return 0


def cmd_download(args) -> int:
    from . import presets
    from . import weights as w

    path = w.download_coco(presets.get(args.preset))
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rcnn-lens", description="See how an image travels through a Faster R-CNN.")
    sub = ap.add_subparsers(dest="command")
    t = sub.add_parser("trace", help="run the staged trace and print each stage")
    t.add_argument("images", nargs="+", metavar="IMAGE")
    t.add_argument("--json", action="store_true", help="one JSON object per image per line")
    add_truth_options(t)
    add_model_options(t)
    t.set_defaults(func=cmd_trace)
    m = sub.add_parser("models", help="list presets and whether their weights are available offline")
    m.add_argument("--json", action="store_true")
    m.add_argument("--fits", metavar="CHECKPOINT", default=None, help="list the presets a checkpoint's keys fit")
    m.add_argument("--trust", action="store_true", help="with --fits: read a whole pickled model")
    m.add_argument("--debug", action="store_true")
    m.set_defaults(func=cmd_models)
    d = sub.add_parser("download", help="fetch a preset's COCO weights into torch.hub's cache (needs internet)")
    d.add_argument("preset")
    d.add_argument("--debug", action="store_true")
    d.set_defaults(func=cmd_download)
    add_export_parser(sub, add_model_options, add_truth_options, cmd_export)
    from .analyze import add_parser as add_analyze_parser

    add_analyze_parser(sub, add_model_options)
    return ap


COMMANDS = ("trace", "models", "download", "export", "analyze")


def main(argv: list[str] | None = None) -> int:
    """The command-line tools (``rcnn-lens trace|export|models|download``). ``rcnn-lens`` with no
    sub-command is the desktop app: the console script is ``gui.app:main``, which hands these
    sub-commands here."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        parser.print_usage(sys.stderr)
        print(f"rcnn-lens: choose one of {', '.join(COMMANDS)} (the desktop app is `rcnn-lens` itself)",
              file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        return args.func(args)
    except LensError as err:
        if getattr(args, "debug", False):
            raise
        print(f"rcnn-lens: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rcnn-lens: interrupted after {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if getattr(args, "debug", False):
            raise
        print(f"rcnn-lens: unexpected error: {type(err).__name__}: {err} (rerun with --debug)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
