"""``compare.png`` (matplotlib, Agg): the verdict transition matrix of a consecutive pair of runs
(the one where most objects changed verdict) as a heatmap with counts, the per-class AP@0.5
differences of that pair with their bootstrap intervals (mAP first), and for three or more runs a
timeline: objects lost per stage and mAP per run."""

from __future__ import annotations

import io

import numpy as np

from core.analysis.verdicts import VERDICT_COLOURS, VERDICTS


def run_line(r: dict, first: dict) -> str:
    """``A: /out/a (demo, demo)`` plus the thresholds that differ from the first run's."""
    p, p0 = r.get("params") or {}, first.get("params") or {}
    diff = [f"{k} {p0.get(k)}->{p[k]}" for k in p if p0.get(k) != p[k]]
    who = f"{r.get('model')}, {r.get('weights')}"
    return f"{r['label']}: {r['folder']} ({who}" + (f"; {', '.join(diff)}" if diff else "") + ")"


def _heatmap(ax, table: dict, pair: str) -> None:
    used = [v for v in VERDICTS if v in table or any(v in row for row in table.values())]
    m = np.array([[table.get(a, {}).get(b, 0) for b in used] for a in used], np.float64).reshape(len(used), len(used))
    a, b = pair.split("->")
    if not m.size:
        ax.text(0.5, 0.5, f"no object has a verdict in both {a} and {b}\n(models without the truth's classes?)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    ax.imshow(np.log1p(m), cmap="Blues", vmin=0, vmax=max(np.log1p(m.max()), 1e-9) * 1.15, aspect="auto")
    for i in range(len(used)):
        for j in range(len(used)):
            n = int(m[i, j])
            if n:
                dark = np.log1p(n) > 0.6 * np.log1p(m.max())
                ax.text(j, i, str(n), ha="center", va="center", fontsize=10, weight="bold" if i != j else "normal",
                        color="white" if dark else "black")
    ax.set_xticks(range(len(used)), [u.replace("_", " ") for u in used], rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(used)), [u.replace("_", " ") for u in used], fontsize=8)
    for lab, v in zip(ax.get_xticklabels(), used):
        lab.set_color(tuple(c / 255 * 0.8 for c in VERDICT_COLOURS[v]))
    for lab, v in zip(ax.get_yticklabels(), used):
        lab.set_color(tuple(c / 255 * 0.8 for c in VERDICT_COLOURS[v]))
    ax.set_xlabel(f"verdict in run {b}")
    ax.set_ylabel(f"verdict in run {a}")
    moved = int(m.sum() - np.trace(m))
    ax.set_title(f"Where each object went, {a} -> {b}: {moved} of {int(m.sum())} changed verdict\n"
                 "(rows: run " + a + "; columns: run " + b + "; off the diagonal: changed)", loc="left", fontsize=10)


def _deltas(ax, cmp: dict, pair: str) -> None:
    d = cmp["delta"][pair]
    rows = [("mAP@0.5 (all classes)", d["map50"]), ("mAP@[.5:.95] (all classes)", d["map"])]
    rows += [(f"AP@0.5 {n}", c["ap50_diff"][pair]) for n, c in cmp["per_class"].items()]
    y = np.arange(len(rows))[::-1]
    for yy, (_name, v) in zip(y, rows):
        if v["diff"] is None:
            ax.text(0, yy, "n/a", ha="center", va="center", fontsize=8, color="grey")
            continue
        sig = v["low"] is not None and (v["low"] > 0 or v["high"] < 0)
        col = ("C2" if v["diff"] > 0 else "C3") if sig else "0.45"
        ax.barh(yy, v["diff"], color=col, alpha=0.35, height=0.6)
        if v["low"] is not None:
            ax.errorbar(v["diff"], yy, xerr=[[v["diff"] - v["low"]], [v["high"] - v["diff"]]], fmt="o", color=col,
                        capsize=4, ms=5)
        ax.text(1.01, yy, f"{v['diff']:+.3f}  [{v['low']:+.3f}, {v['high']:+.3f}]" if v["low"] is not None
                else f"{v['diff']:+.3f}", transform=ax.get_yaxis_transform(), va="center", fontsize=8, color=col)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [r[0] for r in rows], fontsize=8)
    a, b = pair.split("->")
    ax.set_xlabel(f"difference {b} - {a} (bar; whisker: 95% paired bootstrap interval over images)")
    ax.set_title(f"Did it help? AP differences {a} -> {b} (green/red: the interval excludes 0)", loc="left",
                 fontsize=10)
    ax.grid(alpha=0.3, axis="x")


def _timeline(ax, cmp: dict) -> None:
    runs = cmp["runs"]
    x = np.arange(len(runs))
    bottom = np.zeros(len(runs))
    for v in VERDICTS[1:]:
        n = np.array([r["verdicts"].get(v, 0) for r in runs], np.float64)
        if n.any():
            ax.bar(x, n, bottom=bottom, color=tuple(c / 255 for c in VERDICT_COLOURS[v]), label=v.replace("_", " "),
                   width=0.5)
            for xx, b, nn in zip(x, bottom, n):
                if nn:
                    ax.text(xx, b + nn / 2, str(int(nn)), ha="center", va="center", fontsize=8, color="white")
            bottom += n
    ax.set_xticks(x, [f"{r['label']}  ({r['verdicts'].get('detected', 0)} detected)" for r in runs])
    ax.set_ylabel("objects lost, by the stage that lost them (bars)")
    ax.set_ylim(0, max(bottom.max(), 1) * 1.25)
    ax.set_xlabel("run, in the order given")
    twin = ax.twinx()
    twin.plot(x, [np.nan if r["map50"] is None else r["map50"] for r in runs], "k-o", lw=2, label="mAP@0.5")
    twin.plot(x, [np.nan if r["map"] is None else r["map"] for r in runs], "k--s", lw=1.4, label="mAP@[.5:.95]")
    twin.set_ylabel("mAP (black lines)")
    twin.margins(y=0.3)
    ax.set_title("Timeline: objects lost per stage and mAP per run", loc="left", fontsize=10)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left", bbox_to_anchor=(1.08, 1.0), frameon=False)


def shown_pair(cmp: dict) -> str:
    """The consecutive pair the heatmap and the AP differences show: the one where most objects
    changed verdict (the first such), e.g. "A->B"."""
    pairs = list(cmp["transitions"])
    moved = [sum(n for a, row in cmp["transitions"][p].items() for b, n in row.items() if a != b) for p in pairs]
    return pairs[int(np.argmax(moved))]


def draw(cmp: dict) -> bytes:
    """The PNG bytes of the compare chart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = cmp["runs"]
    pair = shown_pair(cmp)
    timeline = len(runs) >= 3
    n_rows = 2 + len(cmp["per_class"])
    fig = Figure(figsize=(15, 5.8 + 0.12 * n_rows + (4.2 if timeline else 0)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2 if timeline else 1, 2, width_ratios=[1, 1.25],
                            height_ratios=[1.4, 1] if timeline else [1])
    _heatmap(fig.add_subplot(grid[0, 0]), cmp["transitions"][pair], pair)
    _deltas(fig.add_subplot(grid[0, 1]), cmp, pair)
    if timeline:
        _timeline(fig.add_subplot(grid[1, :]), cmp)
    d = cmp["delta"][pair]["map50"]
    head = (f"R-CNN Lens compare: {cmp['images']} images, {cmp['objects_compared']} objects; "
            f"{sum(1 for g in cmp['gained'] if g['pair'] == pair)} gained, "
            f"{sum(1 for g in cmp['lost'] if g['pair'] == pair)} lost {pair}")
    if d["diff"] is not None:
        head += f"; mAP@0.5 {d['diff']:+.3f} ({'significant' if d['significant'] else 'within noise'})"
    fig.suptitle(head + "\n" + "\n".join(run_line(r, runs[0]) for r in runs), fontsize=10, x=0.01, ha="left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
