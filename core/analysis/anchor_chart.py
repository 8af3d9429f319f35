"""``anchors.png``: the picture of ``rcnn-lens anchors``, drawn with matplotlib (Agg, no display), on
the held-out half of the images: how objects end up in the RPN's training (strong / rescued /
starved) by object size and by aspect ratio, the model's configuration beside the suggestion;
and the objects' shapes against the anchors' shapes, where the rescued and starved ones are."""

from __future__ import annotations

import io

import numpy as np

from core.analysis.anchor_coverage import anchor_shapes, box_shapes, totals
from core.analysis.anchor_match import MATCHES

COLOURS = {"strong": "#2e9e4f", "rescued": "#f0a020", "starved": "#d62728"}
MEANING = {"strong": "strong: an anchor at IoU >= {fg:g}",
           "rescued": "rescued: positive only by the best-match rule",
           "starved": "starved: no positive anchor"}


def _bars(ax, cur: list, sug: list, title: str, xlabel: str) -> None:
    """Per bin two stacked bars (model, suggestion) of strong / rescued / starved shares."""
    rows = [(c, s) for c, s in zip(cur, sug) if c["objects"]]
    x = np.arange(len(rows))
    w = 0.38
    for off, pick, hatch in ((-w / 2 - 0.01, 0, None), (w / 2 + 0.01, 1, "//")):
        bottom = np.zeros(len(rows))
        for m in MATCHES:
            share = np.array([r[pick][m] / r[pick]["objects"] for r in rows]) * 100
            ax.bar(x + off, share, w, bottom=bottom, color=COLOURS[m], edgecolor="white", linewidth=0.6,
                   hatch=hatch, alpha=0.95 if pick else 0.8)
            bottom += share
    for k, (c, s) in enumerate(rows):
        ax.text(k - w / 2 - 0.01, 101, f"{c['strong_share']:.0%}", ha="center", va="bottom", fontsize=8)
        ax.text(k + w / 2 + 0.01, 101, f"{s['strong_share']:.0%}", ha="center", va="bottom", fontsize=8,
                fontweight="bold")
    ax.set_xticks(x, [f"{c['bin']}\n(n={c['objects']})" for c, _ in rows], fontsize=8)
    ax.set_ylim(0, 112)
    ax.set_ylabel("share of objects (%)")
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(axis="y", alpha=0.3)


def _limits(*covs) -> tuple[float, float]:
    """Shared axis limits of the shape panels: every object and every anchor of both."""
    vals = [box_shapes(c.geometries).ravel() for c in covs] + [anchor_shapes(c.config).ravel() for c in covs]
    v = np.concatenate(vals)
    v = v[v > 0]
    return (max(float(v.min()) * 0.7, 1.0), float(v.max()) * 1.4) if len(v) else (8.0, 512.0)


def _shapes(ax, cov, title: str, marker: str, colour, lims) -> None:
    wh = box_shapes(cov.geometries)
    o = cov.outcomes
    for i, m in enumerate(MATCHES):
        sel = o == i
        if sel.any():
            ax.scatter(wh[sel, 0], wh[sel, 1], s=14 if m == "strong" else 24, color=COLOURS[m], alpha=0.7,
                       linewidths=0, zorder=2 + i, label=f"{m} ({int(sel.sum())})")
    a = anchor_shapes(cov.config)
    ax.scatter(a[:, 0], a[:, 1], marker=marker, s=70, color=colour, linewidths=1.8, zorder=6,
               label=f"anchor shapes ({len(a)})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    lo, hi = lims
    for r in (0.5, 1, 2):  # h/w guides, labelled where they leave the plot
        ax.plot([lo, hi], [lo * r, hi * r], color="0.8", lw=0.8, zorder=1)
        x = hi / 1.3 if r <= 1 else hi / 1.3 / r
        ax.text(x, x * r, f"h/w={r:g}", fontsize=7, color="0.45", ha="center", va="bottom", rotation=45,
                rotation_mode="anchor", zorder=1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("object width (px, model frame)")
    ax.set_ylabel("object height (px)")
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(alpha=0.25, which="both")
    ax.legend(fontsize=7, loc="upper left", markerscale=1.2)


def draw(fit, path=None) -> bytes:
    """The PNG bytes of anchors.png (also written to ``path``); ``fit`` is core.analysis.anchor_fit.Fit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r = fit.report
    cur, sug = fit.current_held, fit.suggested_held
    where = "held-out half"
    if cur is None:  # a single image: nothing held out, the same image shown
        cur, sug, where = fit.current, fit.suggested_all, "all images (too few to hold half out)"
    tc, ts = totals(cur), totals(sug)
    fig = Figure(figsize=(15, 11), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.25])
    sc, ss = cur.summary(), sug.summary()
    fg = r["matcher"]["fg_iou_thresh"]
    fig.suptitle(
        f"Do the anchors fit?  {where}: {sc['images']} images, {sc['objects']} objects.  Strong share (an anchor "
        f"at IoU >= {fg:g}, as the RPN's Matcher decides):  model {sc['strong_share']:.0%}  ->  suggested "
        f"{ss['strong_share']:.0%}\nWhat other tools would say on the same boxes: YOLOv5 BPR "
        f"{tc['all']['yolov5_bpr']:.0%} -> {ts['all']['yolov5_bpr']:.0%}, MMDetection mean best IoU "
        f"{tc['all']['mean_best_iou']:.2f} -> {ts['all']['mean_best_iou']:.2f} (shape only: no position, stride or "
        "Matcher)", fontsize=12, x=0.01, ha="left")
    _bars(fig.add_subplot(grid[0, 0]), tc["by_size"], ts["by_size"],
          "By object size: left bar the model's anchors, right (hatched) the suggestion",
          "object size sqrt(w*h), model frame (px); % above = strong share")
    ax = fig.add_subplot(grid[0, 1])
    _bars(ax, tc["by_ratio"], ts["by_ratio"], "By aspect ratio (h/w): the same two bars",
          "object aspect ratio h/w (torchvision's convention)")
    from matplotlib.patches import Patch

    handles = [Patch(color=COLOURS[m], label=MEANING[m].format(fg=fg)) for m in MATCHES]
    handles += [Patch(facecolor="white", edgecolor="0.3", label="model's anchors"),
                Patch(facecolor="white", edgecolor="0.3", hatch="//", label="suggested anchors")]
    fig.legend(handles=handles, fontsize=9, loc="outside lower center", ncol=5, frameon=False)
    lims = _limits(cur, sug)
    _shapes(fig.add_subplot(grid[1, 0]), cur, "The model's anchors (x) and the objects, by how they end up",
            "x", "black", lims)
    _shapes(fig.add_subplot(grid[1, 1]), sug, "The suggested anchors (+) and the same objects", "+", "#1f4fd6", lims)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    data = buf.getvalue()
    if path is not None:
        from core.atomic import write_bytes

        write_bytes(path, data)
    return data
