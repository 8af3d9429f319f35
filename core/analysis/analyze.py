"""``rcnn-lens analyze IMAGES|FOLDER [--annotations A] -o OUT``: why was each object missed, over a
dataset. Per image: ``core.trace`` -> ``core.analysis.diagnose`` (verdicts, TIDE error types); one JSON line
per image in ``OUT/analysis.jsonl``; then ``OUT/summary.json`` and ``OUT/summary.png``.

- Images (and their annotations) are read in DataLoader workers while the model runs (on a CPU
  whose cores torch's threads already take, in this process between two images: ``default_workers``).
- Every finished image is one whole line, written and flushed at once: Ctrl+C keeps them, and
  the same command again resumes (images already in the jsonl are skipped; a torn last line is cut).
  ``OUT/settings.json`` holds the model and thresholds: a rerun with other ones is refused.
- Unreadable images or annotations are printed, listed in the summary and skipped; exit 1 at the end.
- Under ``torchrun`` each rank analyzes its share of the images on its own device (gloo on CPU,
  NCCL on GPUs, as torchvision's detection references set it up) into
  ``OUT/analysis.rankR.jsonl``; rank 0 gathers the lines and writes the same files one process
  would.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.analysis.files import (
    CHART,
    DETECTIONS,
    RESULTS,
    SETTINGS,
    SUMMARY,
    SWEEP,
    SWEEP_CHART,
    SWEEP_RESULTS,
    check_settings,
    part_file,
    read_lines,
    visible_parts,
)
from core.analysis.ranks import Ranks
from core.atomic import write_bytes, write_text
from core.errors import LensError

# ---------------------------------------------------------------- inputs

def list_images(inputs) -> list[str]:
    """Files as given; folders -> their image files, sorted by name. Duplicates dropped."""
    from core.tracing.images import IMAGE_SUFFIXES

    out: list[str] = []
    for x in inputs:
        p = Path(x)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise LensError(p, "no images in this folder")
            out += [str(f) for f in files]
        else:
            out.append(str(p))
    seen: set = set()
    return [x for x in out if not (x in seen or seen.add(x))]


class ImageSet:
    """A torch Dataset (used through DataLoader workers): index -> (index, image tensor | None,
    Truth | None, error line | None). Reading never raises: errors come back as one line."""

    def __init__(self, paths: list[str], annotations, class_names):
        self.paths = paths
        self.annotations = annotations
        self.class_names = list(class_names)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, k: int):
        import torch

        from core.tracing.images import load
        from core.truth.beside import find_for_image

        path = self.paths[k]
        try:
            rgb = load(path)
            truth = find_for_image(path, rgb.shape[:2], self.class_names, self.annotations)
        except LensError as err:
            return k, None, None, str(err)
        if truth is None:
            where = f"in {self.annotations.source}" if self.annotations is not None else "beside it"
            return k, None, None, f"{path}: no annotation for this image {where}"
        return k, torch.from_numpy(rgb), truth, None


def _first(batch):
    return batch[0]


def default_workers(device) -> int:
    """DataLoader workers reading images when ``--workers`` is not given: 2 when the model runs on a
    GPU, or as many (at most 2) as the cores torch's threads leave free on this host (torchrun's
    ranks on it counted); 0 (images read in this process, between two forwards) when they take
    every core, where a worker only takes time from the model (on 2 cores with 2 threads: a
    decode + model(images) loop fed by 2 workers ran 1.2x as long as one reading in-process)."""
    import torch

    if getattr(device, "type", str(device)).startswith("cuda"):
        return 2
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    busy = torch.get_num_threads() * max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(0, min(2, cores - busy))


# ---------------------------------------------------------------- records and resume

def record(key: str, tr, dg) -> dict:
    """One analysis.jsonl line: the image, its objects with verdicts and evidence, its detections."""
    truth = []
    for o in dg.objects:
        j = o.to_json()
        j.pop("index")
        j["rois"] = len(o.rois)
        j.pop("positive_anchors")
        head = {k: j.pop(k) for k in ("box", "label", "name", "verdict", "best_anchor_iou", "best_proposal_iou",
                                      "detection")}
        truth.append({**head, "why": dg.explain(o.index), **j})
    return {"image": key, "size": list(tr.meta.original_size), "scale": [round(v, 6) for v in tr.meta.scale],
            "truth": truth, "detections": [d.to_json() for d in dg.detections]}


# ---------------------------------------------------------------- the pass

@dataclass
class Result:
    exit_code: int = 0
    analyzed: int = 0  # images analyzed by this process in this run
    resumed: int = 0  # images found already done
    unreadable: list = field(default_factory=list)
    workers: int = 0  # DataLoader workers used
    startup_s: float = 0.0  # start until the first image reached the model
    loop_s: float = 0.0  # first image to last
    total_s: float = 0.0
    summary: dict | None = None


def analyze(inputs, out, annotations=None, model: str | None = None, weights: str | None = None,
            device: str | None = "cpu", params: dict | None = None, workers: int | None = None,
            progress: bool = True, ranks: Ranks | None = None, sweep: dict | None = None) -> Result:
    """The dataset pass (see the module's doc). Raises LensError for a fatal problem (no images,
    a bad --annotations file, a model that does not load, OUT holding another analysis), before
    anything is written. ``workers``: DataLoader workers reading images; None: ``default_workers``.
    ``sweep``: {threshold: values} (core.analysis.sweep.parse): sweep.jsonl, sweep.json and sweep.png
    instead of the analysis of one setting."""
    t0 = time.perf_counter()
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from core.analysis.diagnose import anchor_evidence, diagnose
    from core.models.load import load_model
    from core.models.params import check_params, model_params
    from core.tracing.runner import trace
    from core.truth.sources import open_annotations

    ranks = ranks or Ranks()
    params = dict(params or {})
    check_params(params)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LensError(out, "exists and is not a folder")
    paths = list_images(inputs)
    if not any(Path(p).exists() for p in paths):  # nothing to analyze: write nothing
        raise LensError(paths[0] if len(paths) == 1 else ", ".join(paths[:3]), "no such file or folder")
    ann = open_annotations(annotations) if annotations is not None else None
    loaded = load_model(model, weights=weights, device=ranks.device(device))
    out.mkdir(parents=True, exist_ok=True)
    gen = loaded.module.rpn.anchor_generator
    settings = {
        "model": loaded.name, "weights": loaded.weights, "params": {**model_params(loaded.module), **params},
        "annotations": None if annotations is None else str(annotations), "class_names": list(loaded.class_names),
        "device": str(device), "cover_iou": 0.5, "tide": {"foreground": 0.5, "background": 0.1},
        "anchor_sizes": sorted({float(s) for level in gen.sizes for s in level}),
        "aspect_ratios": sorted({float(r) for level in gen.aspect_ratios for r in level}),
    }
    results = RESULTS
    if sweep:
        from core.analysis import sweep as sweeping

        settings["sweep"] = {k: list(v) for k, v in sweep.items()}
        points = sweeping.grid(sweep, settings["params"])
        wide = sweeping.widest(sweep, settings["params"])
        results = SWEEP_RESULTS
    if ranks.rank == 0:
        check_settings(out, settings)
        write_text(out / SETTINGS, json.dumps(settings, indent=1) + "\n")
    ranks.barrier()

    # resume: what every rank can see already done
    mine_file = part_file(out, ranks.rank, ranks.world, results)
    done_here = read_lines(out / results, cut_torn=ranks.rank == 0 or mine_file.name == results)
    for p in visible_parts(out, results):
        done_here.update(read_lines(p, cut_torn=p == mine_file))
    done = set().union(*ranks.all_gather(sorted(done_here)))
    todo = [p for p in paths if p not in done]
    mine = todo[ranks.rank::ranks.world]
    res = Result(resumed=len(paths) - len(todo))
    if ranks.rank == 0 and res.resumed and progress:
        print(f"rcnn-lens: resuming: {res.resumed} of {len(paths)} images already analyzed in {out}", file=sys.stderr)

    data = ImageSet(mine, ann, loaded.class_names)
    workers = default_workers(loaded.device) if workers is None else max(0, int(workers))
    res.workers = workers = workers if mine else 0
    loader = DataLoader(data, batch_size=1, shuffle=False, num_workers=workers, collate_fn=_first,
                        persistent_workers=False, prefetch_factor=4 if workers else None)
    what = "sweep" if sweep else "analyze"
    bar = tqdm(total=len(mine), desc=what if ranks.world == 1 else f"{what} rank 0/{ranks.world}",
               unit="img", file=sys.stderr, disable=not progress or ranks.rank != 0, dynamic_ncols=True)
    first = None
    interrupted = False
    try:
        with open(mine_file, "a", encoding="utf-8") as f:
            for k, img, truth, err in loader:
                if first is None:
                    first = time.perf_counter()
                key = mine[k]
                if err is None:
                    try:
                        if sweep:
                            line = sweeping.image_line(loaded, img.numpy(), truth, key, points, wide)
                        else:
                            tr = trace(loaded, img.numpy(), **params)
                            with torch.inference_mode():
                                dg = diagnose(tr, truth, anchor_evidence(tr, truth))
                            line = record(key, tr, dg)
                    except LensError as e:
                        err = f"{key}: {e.problem}"
                    else:
                        f.write(json.dumps(line) + "\n")  # one whole line per image
                        f.flush()
                        res.analyzed += 1
                if err is not None:
                    res.unreadable.append({"image": key, "error": err})
                    bar.write(f"rcnn-lens: {err}", file=sys.stderr)
                bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    res.startup_s = (first or time.perf_counter()) - t0
    res.loop_s = time.perf_counter() - (first or time.perf_counter())
    if interrupted:
        print(f"rcnn-lens: interrupted: {res.analyzed} more images kept in {mine_file}; run the same command "
              f"again to resume", file=sys.stderr)
        res.exit_code = 130
        return res

    # gather: rank 0 writes the files one process would
    own = read_lines(mine_file) if ranks.world > 1 else {}
    gathered = ranks.gather((own, res.unreadable, res.analyzed + len(res.unreadable)))
    if ranks.rank == 0:
        lines = read_lines(out / results)
        for p in visible_parts(out, results):
            lines.update(read_lines(p))
        unreadable = []
        for their_lines, their_bad, _ in gathered:
            lines.update(their_lines)
            unreadable += their_bad
        if ranks.world > 1 and progress:
            print(f"rcnn-lens: {ranks.world} ranks took {' + '.join(str(g[2]) for g in gathered)} images",
                  file=sys.stderr)
        order = {p: i for i, p in enumerate(paths)}
        kept = sorted((p for p in lines if p in order), key=order.get)
        write_text(out / results, "".join(lines[p] + "\n" for p in kept))
        for p in visible_parts(out, results):
            p.unlink(missing_ok=True)
        unreadable.sort(key=lambda u: order.get(u["image"], len(order)))
        res.unreadable = unreadable
        records = [json.loads(lines[p]) for p in kept]
        if sweep:
            res.summary = _write_sweep(out, records, settings, points, unreadable)
        else:
            res.summary = _write_analysis(out, records, settings, unreadable, ann)
    ranks.barrier()
    if ranks.rank != 0:
        mine_file.unlink(missing_ok=True)
    bad = ranks.all_gather(len(res.unreadable) if ranks.rank == 0 else 0)
    res.exit_code = 1 if sum(bad) else 0
    res.total_s = time.perf_counter() - t0
    return res


def _write_analysis(out: Path, records, settings, unreadable, ann) -> dict:
    from core.analysis.chart import draw
    from core.analysis.coco_results import coco_results
    from core.analysis.summary import summarize

    for stale in (out / SUMMARY, out / CHART):  # an earlier run's: a summary and its chart come together
        stale.unlink(missing_ok=True)
    summary = summarize(records, settings, unreadable)
    png = draw(records, summary)  # the slow part before either file: Ctrl+C here leaves neither
    write_text(out / DETECTIONS, json.dumps(coco_results(records, ann)) + "\n")
    write_bytes(out / CHART, png)
    write_text(out / SUMMARY, json.dumps(summary, indent=1) + "\n")  # last: the folder is complete
    for line in _missing_lines(summary):
        print(f"rcnn-lens: {line}", file=sys.stderr)
    return summary


def _write_sweep(out: Path, lines, settings, points, unreadable) -> dict:
    from core.analysis.sweep_chart import draw
    from core.analysis.sweep_summary import summarize

    summary, curves = summarize(lines, settings, points, unreadable)
    write_text(out / SWEEP, json.dumps(summary, indent=1) + "\n")
    write_bytes(out / SWEEP_CHART, draw(summary, curves))
    return summary


def _missing_lines(summary: dict) -> list[str]:
    from collections import Counter

    from core.truth.types import missing_warnings

    return missing_warnings(Counter(summary["objects_without_verdict"]["not_a_class"]))
