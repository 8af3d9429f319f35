"""`make bench`: speed and memory targets, measured side by side in one run (ratios, medians).

Not a test: these machines are shared and noisy, so nothing here runs under pytest.
Prints a table, writes bench-out/bench.json, exits 1 if a target is missed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS: list[dict] = []


def record(name: str, value: float, target: str, ok: bool, detail: str = "") -> None:
    RESULTS.append({"name": name, "value": round(value, 4), "target": target, "ok": bool(ok), "detail": detail})
    print(f"{'PASS' if ok else 'FAIL'}  {name:<58} {value:10.4f}  (target {target}) {detail}", flush=True)


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    import cv2

    r = np.random.default_rng(seed)
    small = r.integers(0, 256, (h // 24, w // 24, 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def interleaved(fns: dict, repeats: int) -> dict:
    """Run each fn once to warm up, then alternate them ``repeats`` times; medians in seconds."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_trace() -> None:
    import torch

    import core

    torch.set_num_threads(2)
    for name, limit, repeats, size in (("fasterrcnn_resnet50_fpn", 1.05, 3, (480, 640)),
                                       ("fasterrcnn_mobilenet_v3_large_320_fpn", 1.10, 15, (480, 640))):
        model = core.load_model(name, weights="random:0")
        img = photo(*size)
        x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)

        def plain():
            with torch.inference_mode():
                model.module([x])

        holder = {}

        def traced():
            holder["tr"] = core.trace(model, img)

        med = interleaved({"plain": plain, "trace": traced}, repeats)
        ratio = med["trace"] / med["plain"]
        record(f"trace / model.module([x]) {name}", ratio, f"<= {limit}", ratio <= limit,
               f"trace {med['trace'] * 1000:.0f} ms, plain {med['plain'] * 1000:.0f} ms")
        if name == "fasterrcnn_resnet50_fpn":
            tr = holder["tr"]
            vals = iter(np.linspace(0.3, 0.7, 1000))
            r = interleaved({"retrace": lambda: core.retrace(tr, box_nms_thresh=float(next(vals)),
                                                             box_score_thresh=float(next(vals)) / 10)}, 15)
            ratio = r["retrace"] / med["trace"]
            record("retrace(box thresholds) / trace fasterrcnn_resnet50_fpn", ratio, "<= 0.02", ratio <= 0.02,
                   f"retrace {r['retrace'] * 1000:.1f} ms")


MEM_CHILD = r"""
import gc, sys, torch, numpy as np
sys.path.insert(0, sys.argv[3])
import core

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0

torch.set_num_threads(2)
m = core.load_model(sys.argv[1], weights="random:0")
img = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)
with torch.inference_mode():
    m.module([x])  # warm-up: allocator pools and lazy inits on both sides
gc.collect()
base = rss()
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
    f.write("5")
if sys.argv[2] == "trace":
    tr = core.trace(m, img)
else:
    with torch.inference_mode():
        out = m.module([x])
print(hwm() - base)
"""


def bench_memory() -> None:
    name = "fasterrcnn_resnet50_fpn"
    got = {}
    for mode in ("plain", "trace"):
        out = subprocess.run([sys.executable, "-c", MEM_CHILD, name, mode, str(ROOT)], capture_output=True,
                             text=True, check=True)
        got[mode] = float(out.stdout.strip().splitlines()[-1])
    ratio = got["trace"] / max(got["plain"], 1e-6)
    record(f"peak memory trace / plain forward {name}", ratio, "reported", True,
           f"trace +{got['trace']:.0f} MiB, plain +{got['plain']:.0f} MiB over the loaded model")


def bench_overlays() -> None:
    import core
    from core.overlays.export import render_trace

    model = core.load_model("demo")
    img = photo(1080, 1920, seed=3)
    tr = core.trace(model, img)
    settings = {"proposals": {"pre_nms": True}, "detections": {"suppressed": True}}
    med = interleaved({"all": lambda: render_trace(tr, list(core.STAGES), settings, legend=False)}, 20)["all"]
    record("build + render all 7 layers, 1920x1080 (ms)", med * 1000, "<= 30", med <= 0.030)


def main() -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    out = ROOT / "bench-out"
    out.mkdir(exist_ok=True)
    only = sys.argv[1:] or ["trace", "memory", "overlays", "gui", "analyze"]
    if "trace" in only:
        bench_trace()
    if "memory" in only:
        bench_memory()
    if "overlays" in only:
        bench_overlays()
    if "gui" in only:
        try:
            from tests.bench_gui import bench_gui
        except ImportError as err:
            print(f"skip gui benchmark: {err}")
        else:
            for r in bench_gui():
                record(*r)
    if "analyze" in only:  # tests/bench_analyze.py
        from tests.bench_analyze import bench_analyze

        for r in bench_analyze():
            record(*r)
    if "sweep" in only or "analyze" in only:  # tests/bench_analyze.py
        from tests.bench_analyze import bench_sweep

        for r in bench_sweep():
            record(*r)
    (out / "bench.json").write_text(json.dumps(RESULTS, indent=2))
    return 0 if all(r["ok"] for r in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
