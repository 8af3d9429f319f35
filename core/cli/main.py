"""``rcnn-lens trace|export|analyze|compare|models|download``: the command-line tools (no Qt).

A bad file prints one line on stderr naming it and the problem; the others are still processed;
the exit code is 1 at the end. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from core.cli import analyze as analyze_cmd
from core.cli import anchors as anchors_cmd
from core.cli import compare as compare_cmd
from core.cli import export as export_cmd
from core.cli.options import (
    add_model_options,
    add_truth_options,
    check_line,
    finish_truth,
    load,
    thresholds,
    truth_lookup,
    with_truth,
)
from core.errors import LensError
from core.tracing.summary import trace_summary, trace_table


def cmd_trace(args) -> int:
    lookup = truth_lookup(args)  # before torch loads: a bad annotation file fails at once
    from core.tracing.runner import trace

    model = load(args)
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


def cmd_models(args) -> int:
    from core.models import presets
    from core.models import weights as w

    if getattr(args, "fits", None):
        from core.models import checkpoints, fit

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
    from core.models import presets
    from core.models import weights as w

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
    export_cmd.add_parser(sub)
    analyze_cmd.add_parser(sub)
    compare_cmd.add_parser(sub)
    anchors_cmd.add_parser(sub)
    return ap


COMMANDS = ("trace", "models", "download", "export", "analyze", "compare", "anchors")


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
