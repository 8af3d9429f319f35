"""``summary.png``: the picture of an analysis, drawn with matplotlib (Agg, no display): per class,
where objects were lost (a bar split by verdict, in stage order); proposal and anchor recall
against the IoU asked for; anchor coverage against object size in the model's frame."""

from __future__ import annotations

import io

import numpy as np

from core.analysis.summary import judged_objects
from core.analysis.verdicts import VERDICT_COLOURS, VERDICTS

MAX_CLASSES = 15
MIN_BIN = 3  # size bins with fewer objects get no coverage point
IOUS = np.round(np.arange(0.5, 0.951, 0.05), 2)


def _rgb(v) -> tuple:
    return tuple(c / 255 for c in VERDICT_COLOURS[v])


def _funnel(ax, objs) -> None:
    by_class: dict[str, list] = {}
    for o in objs:
        by_class.setdefault(o["name"], []).append(o["verdict"])
    classes = sorted(by_class, key=lambda n: (-len(by_class[n]), n))
    rows = [("all classes", [o["verdict"] for o in objs])]
    rows += [(n, by_class[n]) for n in classes[:MAX_CLASSES]]
    rows = rows[::-1]  # first row at the top
    used = [v for v in VERDICTS if any(v in vs for _, vs in rows)]
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    for v in used:
        share = np.array([vs.count(v) / max(len(vs), 1) for _, vs in rows])
        ax.barh(y, share * 100, left=left, color=_rgb(v), edgecolor="white", linewidth=0.6, label=v, height=0.7)
        for k, s in enumerate(share):
            if s >= 0.06:
                ax.text(left[k] + s * 50, y[k], f"{s * 100:.0f}%", ha="center", va="center", fontsize=8,
                        color="white" if v not in ("box_cut", "rpn_cut") else "black")
        left += share * 100
    ax.set_yticks(y, [f"{n}  (n={len(vs)})" for n, vs in rows], fontsize=9)
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of objects (%)")
    ax.set_title("Where objects were lost: verdicts per class, in stage order", loc="left", fontsize=11)
    if used:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(len(used), 5), fontsize=8, frameon=False)
    if len(classes) > MAX_CLASSES:
        ax.text(1.0, -0.02, f"{len(classes) - MAX_CLASSES} smaller classes in 'all classes' only",
                transform=ax.transAxes, ha="right", va="top", fontsize=7, color="grey")


def _recall(ax, objs) -> None:
    def curve(key, sel):
        vals = np.array([o[key] or 0.0 for o in sel], np.float64)
        return [float((vals >= t).mean()) if vals.size else np.nan for t in IOUS]

    ax.plot(IOUS, curve("best_proposal_iou", objs), color="black", lw=2.4, marker="o", ms=4,
            label="proposals after NMS, all")
    ax.plot(IOUS, curve("best_anchor_iou", objs), color="black", lw=1.4, ls="--", label="anchors, all")
    names = sorted({o["name"] for o in objs}, key=lambda n: (-sum(o["name"] == n for o in objs), n))[:8]
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
    for t, style, col in ((0.5, "-", "C0"), (0.7, "--", "C1")):
        share = np.array([(best[k == b] >= t).mean() if count[b] >= MIN_BIN else np.nan for b in range(len(centre))])
        ax.plot(centre, share, ls=style, marker="o", ms=4, color=col, lw=2, label=f"best anchor IoU >= {t}")
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


def draw(records: list[dict], summary: dict) -> bytes:
    """The PNG bytes of the summary chart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    objs = judged_objects(records)
    per_record = [[o for o in r["truth"] if o["verdict"] is not None] for r in records]
    n_rows = min(len({o["name"] for o in objs}), MAX_CLASSES) + 1
    fig = Figure(figsize=(15, 4.2 + 0.32 * n_rows + 4.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.1 + 0.32 * n_rows, 4.6])
    s = summary.get("settings", {})
    m50, m = summary.get("map50"), summary.get("map")
    v = summary.get("verdicts", {})
    total = max(summary.get("objects", 0), 1)
    fig.suptitle(f"R-CNN Lens analysis: {summary.get('images', 0)} images, {summary.get('objects', 0)} objects, "
                 f"{v.get('detected', 0) / total:.0%} detected   |   mAP@0.5 "
                 f"{'n/a' if m50 is None else f'{m50:.3f}'}, mAP@[.5:.95] {'n/a' if m is None else f'{m:.3f}'}   |   "
                 f"model {s.get('model', '?')}, weights {s.get('weights', '?')}", fontsize=12, x=0.01, ha="left")
    _funnel(fig.add_subplot(grid[0, :]), objs)
    _recall(fig.add_subplot(grid[1, 0]), objs)
    _coverage(fig.add_subplot(grid[1, 1]), records, per_record, s.get("anchor_sizes", []))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
