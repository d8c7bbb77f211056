"""One page per run: ``DIR/report.html``, self-contained (images inlined), for a traffic engineer.

Sections (each an ``<section id=...>``, which the tests look for):

``settings``     the command, scenario, seed, simulated time, controllers with their
                 parameters, and the versions of SUMO, ivri, Python and numpy
``kpis``         the KPI table of every controller, with the difference to the first one
                 (the baseline) in absolute terms and in percent
``comparison``   the comparison plot (:func:`ivri.metrics.report.plot_comparison`)
``timeline``     the signal timeline of the busiest intersection (the most halting
                 vehicle-hours under the baseline) for each ivri controller, over a window of
                 at most :data:`TIMELINE_WINDOW_S` (around the first priority grant there, if any)
``decisions``    per run with priority applications, the summary of ``ivri log``
``health``       per run: teleports, collisions, emergency braking, vehicles never inserted,
                 the largest insertion backlog, a GRIDLOCK line where it applies, and SUMO's
                 warnings (lines in ``sumo_errors.log``)

Plots are PNGs inlined as base64 data URLs: the page opens anywhere, also as an e-mail
attachment, and stays small (an SVG of an hour of signal changes would not).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["REPORT_FILENAME", "TIMELINE_WINDOW_S", "busiest_intersection", "write_html_report"]

REPORT_FILENAME = "report.html"
#: The report's timeline shows at most this many seconds (a V-Log viewer's screen).
TIMELINE_WINDOW_S = 600.0

Record = Mapping[str, Any]

# (label, key or (mode, key), digits): the KPI columns; lower is better for all of them.
_KPIS: tuple[tuple[str, Any, int], ...] = (
    ("vehicle-loss h", "vehicle_loss_hours", 2),
    ("fuel L", "fuel_litres", 1),
    ("CO2 kg", "co2_kg", 1),
    ("stops", "stops", 0),
    ("car delay s", ("car", "mean_delay_s"), 1),
    ("bike delay s", ("bicycle", "mean_delay_s"), 1),
    ("ped delay s", ("pedestrian", "mean_delay_s"), 1),
    ("emergency lost s", "emergency_time_lost_s", 1),
)

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
th { background: #f3f3f3; }
.better { color: #1a7f37; } .worse { color: #b42318; } .diff { font-size: .85em; display: block; }
img { max-width: 100%; border: 1px solid #eee; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: 600; } dd { margin: 0; font-family: ui-monospace, monospace; font-size: .9em; }
.note { color: #666; font-size: .9em; }
"""


def _value(record: Record, key: Any) -> float | None:
    if isinstance(key, tuple):
        v = record.get("by_mode", {}).get(key[0], {}).get(key[1])
    else:
        v = record.get(key)
    return None if v is None else float(v)


def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:,.{digits}f}"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _kpi_section(records: Sequence[Record]) -> str:
    base = records[0]
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _, _ in _KPIS)
    rows = []
    for n, r in enumerate(records):
        cells = []
        for _, key, digits in _KPIS:
            v, b = _value(r, key), _value(base, key)
            cell = _fmt(v, digits)
            if n > 0 and v is not None and b is not None:
                d = v - b
                pct = f" ({d / b:+.0%})" if b else ""
                cls = "better" if d < 0 else "worse" if d > 0 else ""
                cell += f'<span class="diff {cls}">{d:+,.{digits}f}{pct}</span>'
            cells.append(f"<td>{cell}</td>")
        rows.append(f"<tr><td>{html.escape(str(r.get('controller')))} (seed {r.get('seed')})</td>{''.join(cells)}</tr>")
    return (f"<table><tr><th>controller</th>{head}</tr>{''.join(rows)}</table>"
            f'<p class="note">Differences against the first row, {html.escape(str(base.get("controller")))}; '
            "green is better (lower). Delay per trip = time loss + depart delay; vehicle-loss hours "
            "include the depart delay of vehicles that waited to enter.</p>")


def busiest_intersection(records: Sequence[Record]) -> str | None:
    """The intersection with the most halting vehicle-hours in the first record that has them."""
    for r in records:
        by = r.get("by_intersection") or {}
        if by:
            return max(by, key=lambda x: float(by[x].get("halting_veh_h", 0.0)))
    return None


def _window(timeline: Any, i: int) -> tuple[float, float] | None:
    """At most TIMELINE_WINDOW_S from 2 minutes before the first grant at ``i`` (None: no grant)."""
    t, ii, _, vv = timeline.events["granted"]
    grants = t[(ii == i) & (vv > 0)]
    if not len(grants):
        return None
    lo = max(timeline.begin_s, min(float(grants[0]) - 120.0, timeline.end_s - TIMELINE_WINDOW_S))
    return lo, min(timeline.end_s, lo + TIMELINE_WINDOW_S)


def _timeline_section(out_dir: Path, records: Sequence[Record]) -> str:
    from ivri.metrics.timeline import TIMELINE_FILENAME, load_timeline
    from ivri.metrics.timeline_plot import plot_timeline
    from ivri.runner import run_dir_of

    x = busiest_intersection(records)
    runs = []
    for r in records:
        path = run_dir_of(out_dir, str(r.get("controller"))) / TIMELINE_FILENAME
        if x is not None and path.is_file():
            timeline = load_timeline(path)
            if x in timeline.intersection_ids:
                runs.append((str(r.get("controller")), path.parent, timeline))
    if not runs:
        return '<p class="note">No signal timeline: no run under an ivri controller.</p>'
    # One window for every controller, so that the pictures compare: around the first grant
    # at this intersection in the first run that has one, else the start of the run.
    first = runs[0][2]
    windows = [w for _, _, tl in runs if (w := _window(tl, tl.index_of(x))) is not None]
    lo, hi = windows[0] if windows else (first.begin_s, min(first.end_s, first.begin_s + TIMELINE_WINDOW_S))
    parts = []
    for name, folder, timeline in runs:
        png = folder / f"timeline_{x}.png"
        plot_timeline(timeline, x, png, t_from=lo, t_to=hi, formats=("png",),
                      title=f"{x} under {name}, {lo:g}-{hi:g} s")
        parts.append(f"<h3>{html.escape(name)}</h3>{_img(png.read_bytes(), f'timeline {x}')}")
    return (f"<p>Intersection <b>{html.escape(x)}</b>, the busiest (most halting vehicle-hours under "
            f"{html.escape(str(records[0].get('controller')))}). Per signal group: red / green / amber; "
            "beneath, detector occupancy (dark) and calls (light); above, priority requests (outlined) "
            f"and grants (filled). <code>ivri plot {html.escape(str(out_dir))} --intersection {html.escape(x)}"
            "</code> draws any intersection and window.</p>" + "".join(parts))


def _decision_section(out_dir: Path, records: Sequence[Record]) -> str:
    from ivri.metrics.decisions import DECISIONS_FILENAME, summarise_decisions
    from ivri.runner import run_dir_of

    parts = []
    for r in records:
        path = run_dir_of(out_dir, str(r.get("controller"))) / DECISIONS_FILENAME
        if not path.is_file():
            continue
        summary = summarise_decisions([path])
        cols = ("requests", "grants", "refusals", "time-outs", "deferred", "releases", "recoveries")
        rows = "".join(
            f"<tr><td>{html.escape(c)}</td>{''.join(f'<td>{row[k]}</td>' for k in cols)}"
            f"<td>{'-' if row['grant_rate'] is None else format(row['grant_rate'], '.0%')}</td></tr>"
            for c, row in summary["by_class"].items())
        table = (f"<table><tr><th>class</th>{''.join(f'<th>{c}</th>' for c in cols)}<th>grant rate</th></tr>"
                 f"{rows}</table>")
        reasons = "".join(
            f"<tr><td>{html.escape(x['priority_class'])}</td><td class=\"text\">{html.escape(x['event'])}</td>"
            f"<td class=\"text\">{html.escape(x['reason'])}</td><td>{x['count']}</td></tr>" for x in summary["reasons"][:10])
        if reasons:
            table += ("<table><tr><th>class</th><th>event</th><th>reason</th><th>count</th></tr>"
                      f"{reasons}</table>")
        parts.append(f"<h3>{html.escape(str(r.get('controller')))}</h3>{table}")
    if not parts:
        return '<p class="note">No priority applications in these runs (no decisions.jsonl).</p>'
    return "<p>What the arbiter decided, per priority class (the decision log holds no identities).</p>" + "".join(parts)


def _versions() -> dict[str, str]:
    from importlib import metadata

    from ivri.sumo.connection import sumo_version

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"ivri": version("ivri"), "SUMO": sumo_version(), "Python": platform.python_version(),
            "numpy": np.__version__, "numba": version("numba"), "platform": platform.platform()}


def _params(params: Mapping[str, Any] | None) -> str:
    """``key = value`` per parameter (nested reprs without their escaped quotes)."""
    if not params:
        return "SUMO's own programs"
    return "; ".join(f"{k} = {str(v).replace(chr(92) + chr(39), chr(39))}" for k, v in params.items())


def _settings_section(records: Sequence[Record], command: str | None) -> str:
    first = records[0]
    items = {
        "command": command or "-",
        "scenario": f"{first.get('scenario')} ({Path(str(first.get('sumocfg'))).name})",
        "seed": ", ".join(sorted({str(r.get("seed")) for r in records})),
        "simulated": f"{float(first.get('simulated_s', 0.0)):g} s",
        "backend": str(first.get("backend")),
        **{f"controller {r.get('controller')}": _params(r.get("controller_params")) for r in records},
        **{f"version of {k}": v for k, v in _versions().items()},
        "written": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items.items()) + "</dl>"


#: The health columns of the report: (label, key of the record's ``health`` block).
_HEALTH: tuple[tuple[str, str], ...] = (
    ("teleports", "teleports"),
    ("collisions", "collisions"),
    ("emergency braking", "emergency_braking"),
    ("never inserted", "never_inserted"),
    ("largest backlog", "backlog_max"),
)


def _health_section(records: Sequence[Record]) -> str:
    from ivri.metrics.health import gridlock_line

    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in _HEALTH)
    rows, lines = [], []
    for r in records:
        health = r.get("health") or {}
        cells = "".join(f"<td>{_fmt(health.get(key), 0)}</td>" for _, key in _HEALTH)
        rows.append(f"<tr><td>{html.escape(str(r.get('controller')))}</td>{cells}"
                    f"<td>{int(r.get('sumo_warnings') or 0)}</td><td>{_fmt(r.get('wall_time_s'), 1)}</td></tr>")
        line = gridlock_line(health)
        if line is not None:
            lines.append(f'<p class="worse">{html.escape(str(r.get("controller")))}: {html.escape(line)}</p>')
    return (f"<table><tr><th>controller</th>{head}<th>SUMO warning lines (sumo_errors.log)</th>"
            f"<th>wall time s</th></tr>{''.join(rows)}</table>"
            + ("".join(lines) if lines else '<p class="note">No run gridlocked: no teleports, and no '
               "growing queue of vehicles waiting to enter.</p>"))


def write_html_report(out_dir: str | Path, records: Sequence[Record], *, command: str | None = None,
                      comparison_png: str | Path | None = None) -> Path:
    """Write ``out_dir/report.html`` for the run records of one ``ivri run`` (see the module
    docstring). ``comparison_png`` defaults to ``out_dir/comparison.png`` (drawn if missing)."""
    from ivri.metrics.report import plot_comparison

    out_dir = Path(out_dir)
    if not records:
        raise ValueError("a report needs at least one run record")
    scenario = str(records[0].get("scenario"))
    png_path = Path(comparison_png) if comparison_png is not None else out_dir / "comparison.png"
    if not png_path.is_file():
        plot_comparison(records, png_path, title=scenario)
    comparison = png_path.read_bytes()
    sections = (
        ("settings", "Settings and versions", _settings_section(records, command)),
        ("kpis", "KPIs per controller", _kpi_section(records)),
        ("comparison", "Comparison", _img(comparison, "comparison of the controllers")),
        ("timeline", "Signal timeline", _timeline_section(out_dir, records)),
        ("decisions", "Priority decisions", _decision_section(out_dir, records)),
        ("health", "Health of the runs and SUMO messages", _health_section(records)),
    )
    body = "".join(f'<section id="{sid}"><h2>{html.escape(title)}</h2>{content}</section>'
                   for sid, title, content in sections)
    names = ", ".join(str(r.get("controller")) for r in records)
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ivri: {html.escape(scenario)}'
            f"</title><style>{_CSS}</style></head><body><h1>ivri run: {html.escape(scenario)}</h1>"
            f"<p>{html.escape(names)}</p>{body}</body></html>\n")
    path = out_dir / REPORT_FILENAME
    path.write_text(page, encoding="utf-8")
    return path
