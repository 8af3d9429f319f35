"""``rcnn-lens trace|export|models|download``: the command-line tools (no Qt).

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
from .summary import trace_summary, trace_table

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
    p.add_argument("--model", default=None, help="model preset (default: demo); see `rcnn-lens models`")
    p.add_argument("--weights", default=None,
                   help="demo, coco, random, random:SEED or a checkpoint path (default: the preset's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    for flag, dest, typ, help_ in THRESHOLD_OPTIONS:
        p.add_argument(flag, dest=dest, type=typ, default=None, help=help_)
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def thresholds(args) -> dict:
    return {dest: getattr(args, dest) for _, dest, _, _ in THRESHOLD_OPTIONS if getattr(args, dest) is not None}


def _load(args):
    from .models import load_model

    return load_model(args.model, weights=args.weights, device=args.device)


def cmd_trace(args) -> int:
    from .runner import trace

    model = _load(args)
    params = thresholds(args)
    failed = 0
    for path in args.images:
        try:
            tr = trace(model, path, **params)
        except LensError as err:
            print(f"rcnn-lens: {err}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps(trace_summary(tr, path)), flush=True)
        else:
            print(trace_table(tr, path), flush=True)
    return 1 if failed else 0


def cmd_export(args) -> int:
    return run_export(args, lambda: _load(args), thresholds(args))


def cmd_models(args) -> int:
    from . import presets
    from . import weights as w

    rows = []
    for name, p in presets.PRESETS.items():
        avail = []
        if name == "demo":
            avail.append(f"demo ({'shipped' if w.DEMO_WEIGHTS.is_file() else 'missing: make train'})")
        if p.coco:
            try:
                f = w.coco_file(p)
                avail.append(f"coco ({'cached' if f.is_file() else 'not cached: put ' + f.name + ' in ' + str(f.parent)})")
            except Exception:  # noqa: BLE001
                avail.append("coco (unknown)")
        avail.append("random")
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
    add_model_options(t)
    t.set_defaults(func=cmd_trace)
    m = sub.add_parser("models", help="list presets and whether their weights are available offline")
    m.add_argument("--json", action="store_true")
    m.add_argument("--debug", action="store_true")
    m.set_defaults(func=cmd_models)
    d = sub.add_parser("download", help="fetch a preset's COCO weights into torch.hub's cache (needs internet)")
    d.add_argument("preset")
    d.add_argument("--debug", action="store_true")
    d.set_defaults(func=cmd_download)
    add_export_parser(sub, add_model_options, cmd_export)
    return ap


COMMANDS = ("trace", "models", "download", "export")


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
