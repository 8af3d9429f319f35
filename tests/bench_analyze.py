"""`make bench` section `analyze`: the dataset pass against a plain inference loop over the same
images (target: analyze <= 1.2x the loop, plus start-up). Called from tests/bench.py.

Each repeat runs the plain loop (decode + ``model(images)``, one image at a time) and then
``analyze`` on the same folder, back to back, and takes their ratio; the median ratio is reported
with the spread, as wall time and as CPU time (this process and its DataLoader workers), which a
shared machine disturbs less."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from pathlib import Path

N_IMAGES = 30
REPEATS = 3


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # DataLoader workers, once they have exited
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_analyze(n_images: int = N_IMAGES, repeats: int = REPEATS) -> list[tuple]:
    """Rows for bench.record: (name, value, target, ok, detail)."""
    import torch

    import core
    from core.analyze import analyze
    from core.demo.dataset import write_dataset
    from core.images import load

    torch.set_num_threads(2)
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
        wall, cpu, detail = [], [], []
        for r in range(repeats):
            pw, pc = plain()
            c = _cpu()
            res = analyze([data], Path(tmp) / f"out{r}", workers=2, progress=False)
            ac = _cpu() - c
            assert res.exit_code == 0 and res.analyzed == n_images
            wall.append(res.loop_s / pw)
            cpu.append(ac / pc)
            detail.append(f"plain {pw:.1f} s, analyze {res.loop_s:.1f} s + start-up {res.startup_s:.1f} s "
                          f"+ summary/chart {res.total_s - res.startup_s - res.loop_s:.1f} s")
    med = statistics.median(wall)
    return [
        (f"analyze / plain decode+model(images) loop, wall, demo, {n_images} scenes", med, "<= 1.2", med <= 1.2,
         f"ratios {', '.join(f'{w:.2f}' for w in wall)}; " + "; ".join(detail)),
        (f"analyze / plain loop, CPU time incl. workers, demo, {n_images} scenes", statistics.median(cpu),
         "reported", True, f"ratios {', '.join(f'{c:.2f}' for c in cpu)}"),
    ]


if __name__ == "__main__":
    for row in bench_analyze():
        print(row)
