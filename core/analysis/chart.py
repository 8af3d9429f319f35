"""``summary.png``: the picture of an analysis, drawn with matplotlib (Agg, no display): the lost
objects by the stage that lost them, with counts, split by class; proposal and anchor recall against
the IoU asked for, per class in the same class colours; anchor coverage against object size in the
model's frame."""

from __future__ import annotations

import io

import numpy as np

from core.analysis.summary import judged_objects
from core.analysis.verdicts import TITLES, VERDICTS

MAX_CLASSES = 15
MIN_BIN = 3  # size bins with fewer objects get no coverage point
IOUS = np.round(np.arange(0.5, 0.951, 0.05), 2)


def _lost(ax, objs, classes) -> None:
    """The lost objects by the stage that lost them (stage order, top down), a count per bar, split by
    class in the class colours of the recall chart; the detected ones in the title."""
    lost = [v for v in VERDICTS if v != "detected" and any(o["verdict"] == v for o in objs)]
    n_lost = sum(o["verdict"] != "detected" for o in objs)
    ax.set_title(f"Where the {n_lost} lost objects were lost, by stage ({len(objs) - n_lost} of {len(objs)} "
                 "detected)", loc="left", fontsize=11)
    if not lost:
        ax.text(0.5, 0.5, "no object was lost", ha="center", va="center", fontsize=12, transform=ax.transAxes)
        ax.set_axis_off()
        return
    y = np.arange(len(lost))[::-1]  # the first stage at the top
    left = np.zeros(len(lost))
    shown = classes[:MAX_CLASSES]
    for k, n in enumerate([*shown, None]):
        counts = np.array([sum(o["verdict"] == v and (o["name"] == n if n is not None else o["name"] not in shown)
                               for o in objs) for v in lost], float)
        if not counts.any():
            continue
        ax.barh(y, counts, left=left, height=0.45, color=f"C{k % 10}" if n is not None else "0.6",
                edgecolor="white", linewidth=0.6, label=n if n is not None else "other classes")
        left += counts
    for yy, total, v in zip(y, left, lost):
        ax.text(total, yy, f"  {int(total)}  ({total / max(len(objs), 1):.1%} of all objects)", va="center",
                fontsize=9)
        ax.text(0, yy + 0.36, f"{TITLES[v]}  ({v})", va="bottom", fontsize=9)  # above its bar: no wide margin
    ax.set_yticks([])
    ax.set_ylim(-0.6, max(len(lost), 3) - 0.2)
    ax.set_xlim(0, left.max() * 1.35)
    ax.set_xlabel("objects lost at this stage (count)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", title="class", title_fontsize=8)


def _recall(ax, objs) -> None:
    def curve(key, sel):
        vals = np.array([o[key] or 0.0 for o in sel], np.float64)
        return [float((vals >= t).mean()) if vals.size else np.nan for t in IOUS]

    ax.plot(IOUS, curve("best_proposal_iou", objs), color="black", lw=2.4, marker="o", ms=4,
            label="proposals after NMS, all")
    ax.plot(IOUS, curve("best_anchor_iou", objs), color="black", lw=1.4, ls="--", label="anchors, all")
    names = _classes(objs)[:8]
    if len(names) > 1:
        for k, n in enumerate(names):
            ax.plot(IOUS, curve("best_proposal_iou", [o for o in objs if o["name"] == n]), lw=1.2,
                    color=f"C{k}", label=f"proposals, {n}")
    ax.set_xlim(0.5, 0.95)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("IoU asked for")
    ax.set_ylabel("recall (objects with a box at that IoU)")
    ax.set_title("Proposal and anchor recall against IoU", loc="left", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def _coverage(ax, records, objs_by_record, anchor_sizes) -> None:
    sizes, best = [], []
    for r, objs in zip(records, objs_by_record):
        sy, sx = r.get("scale", (1.0, 1.0))
        for o in objs:
            x1, y1, x2, y2 = o["box"]
            sizes.append(np.sqrt(max((x2 - x1) * sx, 1e-6) * max((y2 - y1) * sy, 1e-6)))
            best.append(o["best_anchor_iou"] or 0.0)
    sizes, best = np.array(sizes), np.array(best)
    ax.set_title("Anchor coverage against object size (model frame)", loc="left", fontsize=11)
    ax.set_xlabel("object size sqrt(w*h) in the model's frame (px); ticks at the anchor sizes")
    ax.set_ylabel(f"share of objects with an anchor at IoU (bins of >= {MIN_BIN})")
    ax.set_xscale("log")
    if not sizes.size:
        return
    lo, hi = sizes.min() * 0.95, sizes.max() * 1.05
    if anchor_sizes:
        lo, hi = min(lo, min(anchor_sizes) * 0.8), max(hi, max(anchor_sizes) * 1.25)
    edges = np.geomspace(lo, hi, 13)
    k = np.clip(np.digitize(sizes, edges) - 1, 0, len(edges) - 2)
    centre = np.sqrt(edges[:-1] * edges[1:])
    count = np.bincount(k, minlength=len(centre))
    twin = ax.twinx()
    twin.bar(centre, count, width=np.diff(edges) * 0.9, color="0.9", zorder=0)
    twin.set_ylim(0, max(int(count.max()), 1) * 3)  # the counts stay in the lower third
    twin.set_ylabel("objects per size bin (grey bars)", color="0.55")
    twin.tick_params(axis="y", colors="0.55")
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    for t, style in ((0.5, "-"), (0.7, "--")):  # black as the recall chart's "all": colours mean classes
        share = np.array([(best[k == b] >= t).mean() if count[b] >= MIN_BIN else np.nan for b in range(len(centre))])
        ax.plot(centre, share, ls=style, marker="o", ms=4, color="black", lw=1.8, label=f"best anchor IoU >= {t}")
    for s in anchor_sizes:
        ax.axvline(s, color="C3", lw=0.8, alpha=0.6, ls=":")
    if anchor_sizes:
        ax.plot([], [], color="C3", ls=":", label="anchor sizes")
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ticks = anchor_sizes if 0 < len(anchor_sizes) <= 12 else list(edges[::3])
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    fmt = ScalarFormatter()
    fmt.set_scientific(False)
    ax.xaxis.set_major_formatter(fmt)
    ax.set_ylim(0, 1.05)
    ax.set_xlim(lo, hi)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center right")


def _classes(objs) -> list[str]:
    """Class names, most objects first: one order (and so one colour, C0, C1, ...) in every panel."""
    return sorted({o["name"] for o in objs}, key=lambda n: (-sum(o["name"] == n for o in objs), n))


def draw(records: list[dict], summary: dict) -> bytes:
    """The PNG bytes of the summary chart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    objs = judged_objects(records)
    per_record = [[o for o in r["truth"] if o["verdict"] is not None] for r in records]
    n_rows = max(sum(any(o["verdict"] == v for o in objs) for v in VERDICTS[1:]), 3)
    fig = Figure(figsize=(15, 1.6 + 0.45 * n_rows + 5.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.0 + 0.45 * n_rows, 4.6])
    s = summary.get("settings", {})
    m50, m = summary.get("map50"), summary.get("map")
    v = summary.get("verdicts", {})
    total = max(summary.get("objects", 0), 1)
    fig.suptitle(f"R-CNN Lens analysis: {summary.get('images', 0)} images, {summary.get('objects', 0)} objects, "
                 f"{v.get('detected', 0) / total:.0%} detected   |   mAP@0.5 "
                 f"{'n/a' if m50 is None else f'{m50:.3f}'}, mAP@[.5:.95] {'n/a' if m is None else f'{m:.3f}'}   |   "
                 f"model {s.get('model', '?')}, weights {s.get('weights', '?')}", fontsize=12, x=0.01, ha="left")
    _lost(fig.add_subplot(grid[0, :]), objs, _classes(objs))
    _recall(fig.add_subplot(grid[1, 0]), objs)
    _coverage(fig.add_subplot(grid[1, 1]), records, per_record, s.get("anchor_sizes", []))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
