"""`make bench` section `analyze`: the dataset pass against a plain inference loop over the same
images (target: analyze <= 1.2x the loop, plus start-up). Called from tests/bench.py.

Each repeat runs the plain loop (decode + ``model(images)``, one image at a time) and ``analyze``
on the same folder back to back (alternating which goes first) and compares the per-image loop
only (first image at the model to last line written); the fixed costs are reported apart:
start-up (model load, resume check, DataLoader workers) and the summary (summary.json, COCOeval
and the chart). On a shared machine one pair can be slowed several times over by other jobs, so
the target is checked on the best run of each side (``timeit``'s rule: the least disturbed run
measures the code), with the median of the paired ratios, their spread, the CPU time (this process
and its DataLoader workers) and the load average reported beside it. ``analyze`` picks its
DataLoader workers itself (``core.analysis.analyze.default_workers``), as the command line does."""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

N_IMAGES = 30
REPEATS = 7


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # DataLoader workers, once they have exited
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_analyze(n_images: int = N_IMAGES, repeats: int = REPEATS) -> list[tuple]:
    """Rows for bench.record: (name, value, target, ok, detail)."""
    import torch

    import core
    from core.analysis.analyze import analyze
    from core.demo.dataset import write_dataset
    from core.tracing.images import load

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "scenes"
        write_dataset(data, n=n_images)
        paths = sorted(data.glob("*.png"))
        model = core.load_model("demo")

        def plain() -> tuple[float, float]:
            t, c = time.perf_counter(), _cpu()
            with torch.inference_mode():
                for p in paths:
                    model.module([torch.from_numpy(load(p)).permute(2, 0, 1).float().div(255)])
            return time.perf_counter() - t, _cpu() - c

        with torch.inference_mode():  # warm-up
            model.module([torch.from_numpy(load(paths[0])).permute(2, 0, 1).float().div(255)])
        analyze([data], Path(tmp) / "warm", progress=False)
        wall, cpu, start, summary, detail = [], [], [], [], []
        workers = None
        plain_s, loop_s, loads = [], [], []
        for r in range(repeats):
            if r % 2:
                pw, pc = plain()
            c = _cpu()
            res = analyze([data], Path(tmp) / f"out{r}", progress=False)
            ac = _cpu() - c
            if not r % 2:
                pw, pc = plain()
            assert res.exit_code == 0 and res.analyzed == n_images
            workers = res.workers
            plain_s.append(pw)
            loop_s.append(res.loop_s)
            wall.append(res.loop_s / pw)
            cpu.append(ac / pc)
            start.append(res.startup_s)
            summary.append(res.total_s - res.startup_s - res.loop_s)
            detail.append(f"{pw:.2f}/{res.loop_s:.2f}")
            loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
    best = min(loop_s) / min(plain_s)
    return [
        (f"analyze / plain decode+model(images) loop, wall, best runs, demo, {n_images} scenes", best, "<= 1.2",
         best <= 1.2, f"best {min(loop_s):.2f} s vs {min(plain_s):.2f} s; paired ratios median "
                      f"{statistics.median(wall):.2f} ({', '.join(f'{w:.2f}' for w in wall)}); plain/analyze s "
                      f"{', '.join(detail)}; {workers} DataLoader workers; {torch.get_num_threads()} threads; "
                      f"load {min(loads):.1f}-{max(loads):.1f}"),
        (f"analyze / plain loop, CPU time incl. workers, start-up and summary, demo, {n_images} scenes",
         statistics.median(cpu), "reported", True, f"ratios {', '.join(f'{c:.2f}' for c in cpu)}"),
        ("analyze start-up (s): model, resume check, workers", statistics.median(start), "reported", True,
         ", ".join(f"{x:.2f}" for x in start)),
        ("analyze summary.json + summary.png (s)", statistics.median(summary), "reported", True,
         ", ".join(f"{x:.2f}" for x in summary)),
    ]


if __name__ == "__main__":
    for row in bench_analyze():
        print(row)


SWEEP_20 = {"box_score_thresh": [round(0.05 * k, 2) for k in range(1, 21)]}  # 0.05 ... 1.0: 20 points
SWEEP_RPN = {"rpn_post_nms_top_n_test": [20, 50, 100, 200, 300]}


def bench_sweep(n_images: int = N_IMAGES, repeats: int = 3) -> list[tuple]:
    """``analyze --sweep`` (20 box score thresholds) against one plain ``analyze`` pass over the same
    folder, whole passes (start-up, images, summary and charts), back to back, alternating which goes
    first; target: <= 2x. An RPN sweep (5 post-NMS top-n: RoIAlign and the box head rerun per
    setting) is reported beside it."""
    import torch

    from core.analysis.analyze import analyze
    from core.demo.dataset import write_dataset

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "scenes"
        write_dataset(data, n=n_images)
        analyze([data], Path(tmp) / "warm", progress=False)
        plain, swept, rpn, ratios = [], [], [], []
        for r in range(repeats):
            runs = [("plain", None), ("sweep", SWEEP_20)]
            for name, sweep in (runs if r % 2 == 0 else runs[::-1]):
                res = analyze([data], Path(tmp) / f"{name}{r}", progress=False, sweep=sweep)
                assert res.exit_code == 0 and res.analyzed == n_images
                (plain if sweep is None else swept).append(res.total_s)
            ratios.append(swept[-1] / plain[-1])
            rpn.append(analyze([data], Path(tmp) / f"rpn{r}", progress=False, sweep=SWEEP_RPN).total_s)
    best = min(swept) / min(plain)
    return [
        (f"analyze --sweep 20 box score thresholds / plain analyze, whole pass, demo, {n_images} scenes", best,
         "<= 2.0", best <= 2.0, f"best {min(swept):.2f} s vs {min(plain):.2f} s; paired ratios "
                                f"{', '.join(f'{x:.2f}' for x in ratios)}"),
        (f"analyze --sweep 5 RPN post-NMS top-n / plain analyze, whole pass, demo, {n_images} scenes",
         min(rpn) / min(plain), "reported", True, f"best {min(rpn):.2f} s; box head rerun per RPN setting"),
    ]
