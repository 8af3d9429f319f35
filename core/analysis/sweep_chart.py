"""``sweep.png`` (matplotlib, Agg): per swept threshold, mAP, recall and precision against its values
(the other swept thresholds held at the best point's); per class the precision-recall curve of one
pass at the lowest box score threshold, each class's F1-best threshold marked."""

from __future__ import annotations

import io

import numpy as np

MAX_CLASSES = 10
SERIES = (("map50", "mAP@0.5", "C0", "-", 2.4), ("map", "mAP@[.5:.95]", "C0", "--", 1.6),
          ("recall", "recall (objects detected)", "C2", "-", 1.8),
          ("precision", "precision (true positives / detections)", "C3", "-", 1.4))


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def _along(ax, summary: dict, name: str) -> None:
    points = summary["points"]
    best = summary["best"]
    ref = best["params"] if best else points[0]["params"]
    others = {k: ref[k] for k in summary["sweep"] if k != name}
    row = sorted((p for p in points if all(p["params"][k] == v for k, v in others.items())),
                 key=lambda p: p["params"][name])
    x = [p["params"][name] for p in row]
    for key, label, col, ls, lw in SERIES:
        y = [np.nan if p[key] is None else p[key] for p in row]
        ax.plot(x, y, color=col, ls=ls, lw=lw, marker="o", ms=3.5, label=label)
    if best:
        ax.axvline(ref[name], color="0.3", lw=1, ls=":")
        ax.text(ref[name], 0.3, f" best: {_fmt(ref[name])}", fontsize=8, color="0.3", va="bottom", ha="left",
                transform=ax.get_xaxis_transform())
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(name)
    ax.set_ylabel("score (0-1)")
    held = ", ".join(f"{k}={_fmt(v)}" for k, v in others.items())
    ax.set_title(f"mAP, recall and precision against {name}" + (f"\n(held: {held})" if held else ""),
                 loc="left", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def _pr(ax, summary: dict, curves: dict) -> None:
    ct = summary["class_thresholds"]
    classes = sorted(curves, key=lambda n: (-curves[n]["objects"], n))[:MAX_CLASSES]
    for k, name in enumerate(classes):
        c = curves[name]
        if not c["scores"].size:
            continue
        col = f"C{k % 10}"
        best = ct["classes"].get(name)
        label = f"{name} (n={c['objects']})"
        if best:
            label += f": best F1 {best['f1']:.2f} at score > {best['thresh']:.2f}"
        ax.plot(c["recall"], c["precision"], color=col, lw=1.6, label=label)
        if best:
            ax.plot([best["recall"]], [best["precision"]], marker="*", ms=14, color=col, mec="black", mew=0.8)
    ax.plot([], [], marker="*", ms=10, color="white", mec="black", ls="none", label="each class's F1-best point")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall (share of the class's objects detected)")
    ax.set_ylabel("precision (share of detections that are right)")
    low = ct["params"]["box_score_thresh"]
    ax.set_title(f"Precision-recall per class, one pass at box_score_thresh {_fmt(low)}", loc="left", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def draw(summary: dict, curves: dict) -> bytes:
    """The PNG bytes of the sweep chart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(summary["sweep"])
    cols = len(names) + 1
    fig = Figure(figsize=(5.2 * cols, 5.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, cols, squeeze=False)[0]
    for ax, name in zip(axes, names):
        _along(ax, summary, name)
    _pr(axes[-1], summary, curves)
    best = summary["best"]
    s = summary.get("settings", {})
    head = (f"R-CNN Lens threshold sweep: {summary['images']} images, {len(summary['points'])} settings; "
            f"model {s.get('model', '?')}, weights {s.get('weights', '?')}")
    if best:
        head += (f"\nbest mAP@0.5 {best['map50']:.3f} (mAP@[.5:.95] {best['map'] or 0:.3f}) at "
                 + ", ".join(f"{k}={_fmt(best['params'][k])}" for k in names))
    fig.suptitle(head, fontsize=11, x=0.01, ha="left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
