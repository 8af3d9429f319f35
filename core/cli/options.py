"""What the commands share: the model and threshold options, the truth options, loading the model
they name, the truth of each image and the warning for a model whose trace was checked."""

from __future__ import annotations

import argparse
import sys

THRESHOLD_OPTIONS = (
    ("--rpn-pre-nms-top-n", "rpn_pre_nms_top_n_test", int, "RPN: top-n proposals per level before NMS"),
    ("--rpn-post-nms-top-n", "rpn_post_nms_top_n_test", int, "RPN: proposals kept after NMS"),
    ("--rpn-nms-thresh", "rpn_nms_thresh", float, "RPN: NMS IoU threshold"),
    ("--rpn-score-thresh", "rpn_score_thresh", float, "RPN: objectness probability threshold"),
    ("--box-score-thresh", "box_score_thresh", float, "detections: class score threshold"),
    ("--box-nms-thresh", "box_nms_thresh", float, "detections: NMS IoU threshold"),
    ("--box-detections-per-img", "box_detections_per_img", int, "detections: at most this many"),
)


def add_model_options(p: argparse.ArgumentParser, thresholds: bool = True) -> None:
    """--model, --weights, --trust, --device, --debug, and the test-time thresholds unless a command
    does not run the model's inference (``thresholds=False``)."""
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
    for flag, dest, typ, help_ in THRESHOLD_OPTIONS if thresholds else ():
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
    from core.truth.lookup import TruthLookup

    return TruthLookup(args.annotations, args.images, lambda line: print(f"rcnn-lens: {line}", file=sys.stderr),
                       enabled=not args.no_truth)


def with_truth(tr, lookup, path, class_names, seed: int):
    """``tr`` with its truth, training view and verdicts (as the app's trace has them) when the lookup
    finds truth for ``path``."""
    truth = lookup.truth(path, tr.meta.original_size, class_names)
    if truth is None:
        return tr
    from dataclasses import replace

    from core.analysis.diagnose import anchor_evidence, diagnose
    from core.training.targets import attach

    tr = attach(tr, truth, seed)
    return replace(tr, diagnosis=diagnose(tr, truth, anchor_evidence(tr, truth)))


def finish_truth(lookup) -> int:
    """Print the missing-class notes once; 1 if any annotation file was bad."""
    for line in lookup.warnings():
        print(f"rcnn-lens: {line}", file=sys.stderr)
    return 1 if lookup.failed else 0


def thresholds(args) -> dict:
    return {dest: getattr(args, dest) for _, dest, _, _ in THRESHOLD_OPTIONS if getattr(args, dest) is not None}


def load(args):
    from core.models.load import load_model

    return load_model(args.model, weights=args.weights, device=args.device, trust=getattr(args, "trust", False),
                      download=True, bar=True)


def check_line(tr, image_name: str) -> str | None:
    """One warning line when a flagged model's checked trace differs from model(images)."""
    c = tr.check
    if c is None or not c.checked or c.equal:
        return None
    return (f"rcnn-lens: {image_name}: warning: {c.detail}; the model overrides {', '.join(c.overrides)}, so the "
            "stages shown may not be what it computes")
