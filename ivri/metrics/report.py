"""Reports of controller comparisons: a JSON file, a rich table and a 2x2 plot.

They all take *records*: one flat dict per controller run,
``{"scenario": str, "controller": str, "seed": int, "sumo_version": str,
"wall_time_s": float, **Kpis.to_dict()}`` with ``by_mode`` as a nested dict. Benchmarks
write them once at the end and read them back; no identities are in them, only aggregates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from ivri.metrics.health import gridlock_line
from ivri.metrics.vtypes import MODES

__all__ = ["kpi_table", "plot_comparison", "read_kpis_json", "write_kpis_json"]

Record = Mapping[str, Any]

# The modes whose mean delay the table shows, with their column labels.
_TABLE_MODES = (("car", "car delay s"), ("bicycle", "bike delay s"), ("pedestrian", "ped delay s"))
_MISSING = "-"


def write_kpis_json(records: Sequence[Record], path: Path) -> None:
    """Write the run records as one pretty JSON list (one object per controller run).

    Strict JSON: a NaN or infinity raises ``ValueError`` rather than writing a file other
    tools cannot read (undefined means are ``None`` -> ``null`` by construction).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps([dict(r) for r in records], indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def read_kpis_json(path: Path) -> list[dict[str, Any]]:
    """Read records written by :func:`write_kpis_json`."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise TypeError(f"{path}: expected a JSON list of run records")
    return data


def _mode_value(record: Record, mode: str, key: str) -> float | None:
    value = record.get("by_mode", {}).get(mode, {}).get(key)
    return None if value is None else float(value)


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _MISSING
    return f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    return _MISSING if value is None else f"{int(value):,}"


def kpi_table(records: Sequence[Record], title: str | None = None) -> Table:
    """A rich table with one row per run: the headline KPIs and the run's health side by side.

    Delays per mode are the mean over all trips of timeLoss + departDelay (pedestrians: of
    their walks); "emergency lost s" is the summed timeLoss of emergency vehicles; "depart %"
    the share of the vehicle-loss hours spent waiting to enter; "teleports", "not in"
    (vehicles still waiting to enter at the end), "collisions" and "e-brakes"
    (emergency braking) come from SUMO's statistics. A run that gridlocked gets one line
    under the table that says so (:func:`~ivri.metrics.health.gridlock_line`).
    """
    caption = [("delay = mean timeLoss + departDelay per trip; loss hours include depart delay "
                "(depart %: their share); not in = vehicles still waiting to enter at the end")]
    for r in records:
        line = gridlock_line(r.get("health") or {})
        if line is not None:
            caption.append(f"[bold red]{r.get('controller', '?')} (seed {r.get('seed', '')}): {line}[/]")
    table = Table(title=title, caption="\n".join(caption))
    table.add_column("controller", style="bold", no_wrap=True)
    table.add_column("seed", justify="right")
    for label in ("vehicle-loss h", "fuel L", "CO2 kg", "stops"):
        table.add_column(label, justify="right")
    for _, label in _TABLE_MODES:
        table.add_column(label, justify="right")
    table.add_column("emergency lost s", justify="right")
    for label in ("depart %", "teleports", "not in", "collisions", "e-brakes"):
        table.add_column(label, justify="right")
    table.add_column("wall s", justify="right")
    for r in records:
        stops = r.get("stops")
        health = r.get("health") or {}
        share = r.get("depart_delay_share")
        table.add_row(
            str(r.get("controller", "?")),
            str(r.get("seed", "")),
            _fmt(r.get("vehicle_loss_hours"), 2),
            _fmt(r.get("fuel_litres"), 1),
            _fmt(r.get("co2_kg"), 1),
            _MISSING if stops is None else f"{int(stops):,}",
            *(_fmt(_mode_value(r, mode, "mean_delay_s"), 1) for mode, _ in _TABLE_MODES),
            _fmt(r.get("emergency_time_lost_s"), 1),
            _fmt(None if share is None else 100.0 * share, 0),
            *(_count(health.get(k)) for k in ("teleports", "never_inserted", "collisions",
                                               "emergency_braking")),
            _fmt(r.get("wall_time_s"), 1),
        )
    return table


def _by_controller(records: Sequence[Record]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(str(r.get("controller", "?")), []).append(r)
    return groups


def _spread(values: list[float]) -> tuple[float, float, float]:
    """Mean and the distance to min and max (error bars over seeds); NaN when no values."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return math.nan, 0.0, 0.0
    mean = float(np.mean(finite))
    return mean, mean - min(finite), max(finite) - mean


def plot_comparison(records: Sequence[Record], path: Path, title: str) -> Path:
    """Save a 2x2 comparison of controllers to ``path`` (format from its suffix).

    Panels: vehicle-loss hours (time loss and depart delay stacked), fuel litres, stops of
    motor vehicles, and mean delay per trip by mode. One colour per controller; with several
    seeds per controller the bar is the mean and the whisker spans min to max.
    Uses the object-oriented matplotlib API with the Agg canvas: no global backend switch, no
    display needed, safe in worker processes.
    """
    # Imported here: matplotlib costs a noticeable import time that KPI-only users need not pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    groups = _by_controller(records)
    names = list(groups)
    colours = [f"C{i % 10}" for i in range(len(names))]
    x = np.arange(len(names))

    fig = Figure(figsize=(12.0, 8.5), layout="constrained")
    FigureCanvasAgg(fig)
    (ax_loss, ax_fuel), (ax_stops, ax_modes) = fig.subplots(2, 2)

    def stat(key: str) -> tuple[np.ndarray, np.ndarray | None]:
        spreads = [_spread([r.get(key) for r in groups[n]]) for n in names]
        means = np.array([s[0] for s in spreads])
        err = np.array([[s[1] for s in spreads], [s[2] for s in spreads]])
        return means, (err if err.any() else None)  # no whiskers when there is no spread

    # Vehicle-loss hours: stacked, so a jam that only shows as depart delay is visible.
    loss, _ = stat("time_loss_hours")
    delay, _ = stat("depart_delay_hours")
    total, total_err = stat("vehicle_loss_hours")
    ax_loss.bar(x, loss, color=colours)
    bars = ax_loss.bar(
        x, delay, bottom=loss, color=colours, alpha=0.45, hatch="//", edgecolor="white"
    )
    if total_err is not None:
        ax_loss.errorbar(x, total, yerr=total_err, fmt="none", ecolor="black", capsize=4)
    ax_loss.bar_label(bars, labels=[_fmt(t, 2) for t in total], padding=2)
    ax_loss.set_title("Vehicle-loss hours (motor vehicles)")
    ax_loss.set_ylabel("vehicle-loss [h]")
    ax_loss.legend(
        handles=[
            Patch(facecolor="grey", label="time loss"),
            Patch(facecolor="grey", alpha=0.45, hatch="//", label="depart delay"),
        ],
        loc="lower right",
    )

    for ax, key, label, heading, digits in (
        (ax_fuel, "fuel_litres", "fuel [L]", "Fuel (petrol + diesel)", 2),
        (ax_stops, "stops", "stops [count]", "Stops (motor vehicles)", 0),
    ):
        means, err = stat(key)
        bars = ax.bar(x, means, yerr=err, color=colours, capsize=4)
        # a mean over seeds may be fractional even for counts
        labels = [_fmt(m, digits if float(m).is_integer() else max(digits, 1)) for m in means]
        ax.bar_label(bars, labels=labels, padding=2)
        ax.set_title(heading)
        ax.set_ylabel(label)

    for ax in (ax_loss, ax_fuel, ax_stops):
        ax.set_xticks(x, names, rotation=20, ha="right")
        ax.set_xlabel("controller")
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.12)  # room for the value labels

    # Mean delay per mode: one group per mode that had trips, one bar per controller.
    had_trips = [m for m in MODES if any((_mode_value(r, m, "trips") or 0) > 0 for r in records)]
    modes = had_trips or ["car"]
    width = 0.8 / max(len(names), 1)
    mx = np.arange(len(modes))
    for i, name in enumerate(names):
        spreads = [
            _spread([_mode_value(r, m, "mean_delay_s") for r in groups[name]]) for m in modes
        ]
        err = np.array([[s[1] for s in spreads], [s[2] for s in spreads]])
        ax_modes.bar(
            mx + (i - (len(names) - 1) / 2) * width,
            [s[0] for s in spreads],
            width,
            yerr=err if err.any() else None,
            color=colours[i],
            capsize=2,
            label=name,
        )
    ax_modes.set_xticks(mx, modes, rotation=20, ha="right")
    ax_modes.set_title("Mean delay per trip by mode (time loss + depart delay)")
    ax_modes.set_xlabel("mode")
    ax_modes.set_ylabel("mean delay [s]")
    ax_modes.grid(axis="y", alpha=0.3)
    ax_modes.legend(title="controller", loc="best")

    scenarios = sorted({str(r.get("scenario", "?")) for r in records})
    seeds = sorted({r["seed"] for r in records if r.get("seed") is not None})
    versions = sorted({str(r["sumo_version"]) for r in records if r.get("sumo_version")})
    subtitle = f"scenario {', '.join(scenarios)}; seeds {seeds}; SUMO {', '.join(versions) or '?'}"
    fig.suptitle(f"{title}\n{subtitle}")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
