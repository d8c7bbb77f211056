"""The signal timeline plot of one intersection, the picture of a V-Log viewer.

One row per signal group, top to bottom in the intersection's order: a bar that is red,
green or amber over time; beneath it a thin strip with the detector occupancy (dark) and the
calls for green (light); priority requests as an outlined band above the bar and grants as a
filled one, coloured by class. Drawn with matplotlib's object API on the Agg canvas (no display,
no global state), as PNG and SVG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ivri.core.idx import AMBER, GREEN, MODE_BICYCLE, MODE_BUS, MODE_PEDESTRIAN, MODE_TRAM, RED
from ivri.metrics.timeline import Timeline

__all__ = ["plot_timeline"]

_ASPECT_COLOURS = {RED: "#d62728", GREEN: "#2ca02c", AMBER: "#ffbf00"}
_MODE_NAMES = {MODE_BICYCLE: "bike", MODE_PEDESTRIAN: "ped", MODE_BUS: "bus", MODE_TRAM: "tram"}
_CLASS_COLOURS = {
    "emergency": "#1f3fff", "public_transport": "#ff7f0e", "freight": "#8c564b", "cyclist": "#17becf",
    "rain": "#7f7f7f", "slow_crosser_walk": "#e377c2", "slow_crosser_clearing": "#e377c2",
    "compensation": "#bcbd22",
}


def plot_timeline(timeline: Timeline, intersection: str, path: str | Path, *, t_from: float | None = None,
                  t_to: float | None = None, title: str | None = None, formats: tuple[str, ...] = ("png", "svg"),
                  ) -> list[Path]:
    """Draw the timeline of ``intersection`` between ``t_from`` and ``t_to`` (default: the whole
    run) and save it as ``path`` with each suffix of ``formats``. Returns the files written.

    Raises ``KeyError`` for an unknown intersection and ``ValueError`` for an empty window or
    one outside the run.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    i = timeline.index_of(intersection)
    lo = timeline.begin_s if t_from is None else float(t_from)
    hi = timeline.end_s if t_to is None else float(t_to)
    # A window outside the run (times are SUMO's clock, which a real-world scenario starts at
    # its hour of day, e.g. 57,600 s) would draw an empty chart without a word.
    if not hi > lo or hi <= timeline.begin_s or lo >= timeline.end_s:
        raise ValueError(f"empty time window: from {lo:g} s to {hi:g} s (the run spans "
                         f"{timeline.begin_s:g} to {timeline.end_s:g} s)")
    groups = timeline.group_ids[i]
    n = len(groups)
    fig = Figure(figsize=(12.0, 1.0 + 0.42 * n), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()

    def bars(channel: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        g, start, end, value = timeline.segments(channel, i)
        inside = (end > lo) & (start < hi)
        return g[inside], np.maximum(start[inside], lo), np.minimum(end[inside], hi), value[inside]

    def draw(g: np.ndarray, start: np.ndarray, end: np.ndarray, y0: float, height: float, **style: object) -> None:
        # One PolyCollection per style: rows are y = n - 1 - g (first group on top).
        for k in np.unique(g):
            m = g == k
            ax.broken_barh(np.column_stack([start[m], end[m] - start[m]]), (n - 1 - k + y0, height), **style)

    g, start, end, value = bars("state")
    for aspect, colour in _ASPECT_COLOURS.items():
        m = value == aspect
        draw(g[m], start[m], end[m], -0.05, 0.45, facecolors=colour, edgecolor="none")
    g, start, end, value = bars("demand")
    m = value > 0
    draw(g[m], start[m], end[m], -0.30, 0.18, facecolors="#9ecae1", edgecolor="none")
    g, start, end, value = bars("detector")
    m = value > 0
    draw(g[m], start[m], end[m], -0.30, 0.18, facecolors="#08306b", edgecolor="none")
    used: set[str] = set()
    for channel, filled in (("priority", False), ("granted", True)):
        g, start, end, value = bars(channel)
        for cls in np.unique(value[value > 0]):
            name = timeline.class_names.get(int(cls), str(cls))
            colour = _CLASS_COLOURS.get(name, "#9467bd")
            m = value == cls
            style = ({"facecolors": colour, "edgecolor": "none"} if filled
                     else {"facecolors": "none", "edgecolor": colour, "linewidth": 1.0})
            draw(g[m], start[m], end[m], 0.42, 0.14, **style)
            used.add(name)

    mode = timeline.mode[i]
    labels = [f"{gid} {_MODE_NAMES.get(int(mode[k]), '')}".strip() for k, gid in enumerate(groups)]
    ax.set_yticks(np.arange(n), labels[::-1])
    ax.set_ylim(-0.5, n - 0.4)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("simulation time [s]")
    ax.set_ylabel("signal group")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or f"signal timeline of {intersection}, {lo:g}-{hi:g} s")
    handles = [Patch(facecolor=c, label={RED: "red", GREEN: "green", AMBER: "amber"}[a])
               for a, c in _ASPECT_COLOURS.items()]
    handles += [Patch(facecolor="#08306b", label="detector occupied"), Patch(facecolor="#9ecae1", label="call")]
    for name in sorted(used):
        colour = _CLASS_COLOURS.get(name, "#9467bd")
        handles.append(Patch(facecolor=colour, label=f"{name.replace('_', ' ')} (outline: request, filled: grant)"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.6 / max(n, 1) - 0.08),
              ncol=min(len(handles), 4), fontsize="small", frameon=False)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        out = path.with_suffix(f".{fmt}")
        fig.savefig(out, dpi=110)
        written.append(out)
    return written
