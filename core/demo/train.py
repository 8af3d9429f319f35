"""Train the demo shapes detector from scratch (seeded), on CPU or CUDA.

    python -m core.demo.train --out assets/demo_shapes.pt

Scenes come from ``core.demo.shapes`` (seed, index), so a run is reproducible. A progress bar
shows the loss; every step's losses go to a CSV log beside the weights. The weights file is
written atomically every ``--save-every`` steps, so an interrupted run still leaves usable weights.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.analysis.anchor_config import AnchorConfig
from core.demo.model import DEFAULT_CONFIG, build_shapes_model
from core.demo.shapes import CLASSES, make_scene, scene_rng
from core.errors import LensError
from core.threads import torch_threads

FORMAT = "rcnn-lens-checkpoint/1"


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def save_checkpoint(model: torch.nn.Module, config: dict, path: Path, meta: dict) -> None:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "model": state,
        "classes": ["__background__", *CLASSES],
        "config": config,
        "meta": meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def lr_at(step: int, steps: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (0.1 + 0.9 * step / warmup)
    t = (step - warmup) / max(1, steps - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def anchor_config(args, levels: int):
    """The anchors to train with: ``--anchors anchors.json`` (its ``suggested``, ``free`` or
    ``current``), ``--sizes``/``--ratios`` (the default's where one is missing), or None (the default)."""
    if args.anchors:
        try:
            data = json.loads(Path(args.anchors).read_text())
            block = data[args.anchors_key]
            return AnchorConfig.of(block["sizes"], block["aspect_ratios"], levels, args.anchors)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise LensError(args.anchors, f"cannot read its {args.anchors_key!r} anchors ({type(err).__name__}: {err})") from None
    if args.sizes or args.ratios:
        sizes = args.sizes or " / ".join(",".join(str(s) for s in lvl) for lvl in DEFAULT_CONFIG["anchor_sizes"])
        ratios = args.ratios or ",".join(str(r) for r in DEFAULT_CONFIG["aspect_ratios"])
        return AnchorConfig.parse(sizes, ratios, levels, "--sizes/--ratios")
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.demo.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("assets/demo_shapes.pt"))
    ap.add_argument("--steps", type=int, default=3600)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--anchors", default=None, metavar="ANCHORS_JSON",
                    help="train with the configuration `rcnn-lens anchors` suggested (its anchors.json; "
                         "--anchors-key free for the free search's)")
    ap.add_argument("--anchors-key", default="suggested", choices=("suggested", "free", "current"))
    ap.add_argument("--sizes", default=None, help='anchor sizes per level, e.g. "16,24 / 32,48 / 64,96 / 128,192"')
    ap.add_argument("--ratios", default=None, help='aspect ratios (h/w), e.g. "0.5, 1, 2" (every level)')
    args = ap.parse_args(argv)
    try:
        anchors = anchor_config(args, len(DEFAULT_CONFIG["anchor_sizes"]))
    except LensError as err:
        print(f"python -m core.demo.train: {err}", file=sys.stderr)
        return 1

    with torch_threads(args.threads):
        return _train(args, anchors)


def _train(args, anchors) -> int:
    """The training loop: seeded, a progress bar, the loss log, a checkpoint every ``save_every``."""
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    config = dict(DEFAULT_CONFIG)
    if anchors is not None:
        config.update(anchor_sizes=[list(lvl) for lvl in anchors.sizes],
                      aspect_ratios=[list(lvl) for lvl in anchors.aspect_ratios])
        print(f"anchors: {anchors.paste()}", file=sys.stderr)
    model = build_shapes_model(config, training=True).to(args.device)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    log_path = args.out.with_suffix(".log.csv")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    meta = {"seed": args.seed, "steps": args.steps, "batch": args.batch, "lr": args.lr}
    with open(log_path, "w", newline="") as log_file:
        log = csv.writer(log_file)
        log.writerow(["step", "lr", "loss", "loss_classifier", "loss_box_reg", "loss_objectness",
                      "loss_rpn_box_reg", "seconds"])
        bar = tqdm(range(args.steps), desc="train", unit="step", dynamic_ncols=True,
                   disable=None)
        smooth = None
        for step in bar:
            lr = lr_at(step, args.steps, args.lr, warmup=150)
            for g in opt.param_groups:
                g["lr"] = lr
            scenes = [make_scene(scene_rng(args.seed, step * args.batch + i)) for i in range(args.batch)]
            images = [to_tensor(s.image).to(args.device) for s in scenes]
            targets = [{"boxes": torch.from_numpy(s.boxes).to(args.device),
                        "labels": torch.from_numpy(s.labels).to(args.device)} for s in scenes]
            losses = model(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                print(f"step {step}: loss is not finite, stopping", file=sys.stderr)
                return 1
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            value = float(loss.detach())
            smooth = value if smooth is None else 0.98 * smooth + 0.02 * value
            bar.set_postfix(loss=f"{smooth:.3f}", lr=f"{lr:.1e}")
            log.writerow([step, f"{lr:.6g}", f"{value:.5f}",
                          *(f"{float(losses[k].detach()):.5f}" for k in ("loss_classifier", "loss_box_reg",
                                                                 "loss_objectness", "loss_rpn_box_reg")),
                          f"{time.time() - started:.1f}"])
            if (step + 1) % args.save_every == 0 or step + 1 == args.steps:
                log_file.flush()
                save_checkpoint(model, config, args.out,
                                {**meta, "trained_steps": step + 1, "seconds": round(time.time() - started, 1)})
    print(f"saved {args.out} after {args.steps} steps in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
