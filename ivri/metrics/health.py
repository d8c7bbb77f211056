"""How healthy a run was: teleports, collisions, emergency braking and the insertion backlog.

Vehicle-loss hours alone can hide a broken run: a controller that jams a network loses little
time *inside* it while hundreds of vehicles wait to enter, and SUMO teleports vehicles that
stood still too long (``--time-to-teleport``, 300 s by default) out of the jam. These figures
come from two SUMO outputs that :func:`ivri.metrics.sumo_output_options` switches on:

- ``--statistic-output`` (SUMO 1.28, ``statistic_file.xsd``): ``<vehicles loaded inserted
  running waiting>``, ``<teleports total jam yield wrongLane>`` and ``<safety collisions
  emergencyStops emergencyBraking>`` at the end of the run. ``waiting`` is the number of
  vehicles whose departure time has passed but that never got into the network.
- ``--summary-output`` every :data:`SUMMARY_PERIOD_S` s: the ``waiting`` count over time,
  the insertion backlog, whose growth tells a jam that gets worse from a queue at the edge
  that a peak fills and empties.

A run *gridlocks* (:attr:`Health.gridlock`) when SUMO teleported a vehicle out of a jam (it
stood too long in a jam, waiting to yield, or on a lane it could not leave), or when the
backlog at the end is at least :data:`BACKLOG_GROWTH_VEHICLES` vehicles larger than half-way
through the run. A vehicle that SUMO teleports after a collision (its default
``--collision.action``) counts in ``teleports`` and ``collisions``, not as a jam: SUMO counts it
in the total but under none of the three jam reasons.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict

from ivri.errors import SimulationError
from ivri.timefmt import parse_time_s

__all__ = [
    "BACKLOG_GROWTH_VEHICLES",
    "STATISTICS_FILENAME",
    "SUMMARY_FILENAME",
    "SUMMARY_PERIOD_S",
    "Health",
    "backlog_grew",
    "compute_health",
    "gridlock_line",
    "jam_teleports",
    "read_backlog",
    "read_statistics",
]

STATISTICS_FILENAME = "statistics.xml"
SUMMARY_FILENAME = "summary.xml"
#: Period of the summary output [s]: enough to see a backlog grow, small enough to stay tiny.
SUMMARY_PERIOD_S = 60
#: Growth of the insertion backlog over the second half of a run that counts as gridlock.
#: A peak fills a queue at the network's edge by a few vehicles and empties it again; a
#: blocked entry grows by a vehicle per headway (hundreds an hour).
BACKLOG_GROWTH_VEHICLES = 20
_S_PER_H = 3600.0


class Health(BaseModel):
    """Health of one run. Counts over the whole run; the backlog in vehicles."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    teleports: int
    """vehicles SUMO teleported (all reasons)"""
    teleports_jam: int
    """stood still longer than time-to-teleport in a jam"""
    teleports_yield: int
    """stood still at a junction waiting to yield"""
    teleports_wrong_lane: int
    """could not change to the lane their route needs"""
    collisions: int
    emergency_stops: int
    emergency_braking: int
    """vehicles braking harder than their emergency deceleration"""
    vehicles_loaded: int
    """vehicles whose departure time came during the run"""
    vehicles_inserted: int
    never_inserted: int
    """loaded but never in the network: the insertion backlog at the end"""
    backlog_max: int
    """largest insertion backlog seen in the summary output"""
    backlog_mid: int
    """insertion backlog half-way through the run"""
    backlog_growth_per_h: float | None
    """growth of the backlog over the second half of the run [vehicles per hour]"""
    gridlock: bool
    """teleports, or a backlog that grew by at least BACKLOG_GROWTH_VEHICLES in the second half"""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, ready for JSON."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`."""
        return cls.model_validate(dict(data))


def _xml_root(path: Path, what: str) -> ET.Element:
    path = Path(path)
    if not path.is_file():
        raise SimulationError(f"{what} not found: {path} (did SUMO run with it?)")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SimulationError(f"cannot read {what} {path}: {exc} (SUMO did not finish?)") from None


def read_statistics(path: Path) -> dict[str, int]:
    """The counters of a SUMO ``--statistic-output`` file (missing ones are 0)."""
    root = _xml_root(path, "SUMO statistics")

    def count(tag: str, attr: str) -> int:
        el = root.find(tag)
        return 0 if el is None else int(float(el.get(attr, "0")))

    return {
        "loaded": count("vehicles", "loaded"),
        "inserted": count("vehicles", "inserted"),
        "waiting": count("vehicles", "waiting"),
        "teleports": count("teleports", "total"),
        "teleports_jam": count("teleports", "jam"),
        "teleports_yield": count("teleports", "yield"),
        "teleports_wrong_lane": count("teleports", "wrongLane"),
        "collisions": count("safety", "collisions"),
        "emergency_stops": count("safety", "emergencyStops"),
        "emergency_braking": count("safety", "emergencyBraking"),
    }


def read_backlog(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Times [s] and insertion backlog (``waiting``) of a SUMO ``--summary-output`` file."""
    root = _xml_root(path, "SUMO summary")
    steps = root.findall("step")
    times = np.array([parse_time_s(s.get("time", ""), what="summary step time") for s in steps],
                     dtype=np.float64)
    waiting = np.array([int(float(s.get("waiting", "0"))) for s in steps], dtype=np.int64)
    return times, waiting


def backlog_grew(end_backlog: int, mid_backlog: int) -> bool:
    """The gridlock rule for the insertion backlog: it grew by at least
    :data:`BACKLOG_GROWTH_VEHICLES` over the second half of the run."""
    return end_backlog - mid_backlog >= BACKLOG_GROWTH_VEHICLES


def compute_health(statistics: Path, summary: Path, begin_s: float, end_s: float) -> Health:
    """The :class:`Health` of a run from its statistics and summary outputs.

    ``begin_s``/``end_s`` are the simulated span; the backlog at the end is the statistics'
    ``waiting`` (the summary's last row may be up to a period earlier).
    """
    stats = read_statistics(statistics)
    times, waiting = read_backlog(summary)
    end_backlog = stats["waiting"]
    mid_s = begin_s + 0.5 * (end_s - begin_s)
    before_mid = times <= mid_s + 1e-9
    mid_backlog = int(waiting[before_mid][-1]) if before_mid.any() else 0
    span_h = (end_s - mid_s) / _S_PER_H
    growth = (end_backlog - mid_backlog) / span_h if span_h > 0 else None
    backlog_max = max(int(waiting.max()) if waiting.size else 0, end_backlog)
    gridlock = jam_teleports(stats) > 0 or backlog_grew(end_backlog, mid_backlog)
    return Health(
        teleports=stats["teleports"],
        teleports_jam=stats["teleports_jam"],
        teleports_yield=stats["teleports_yield"],
        teleports_wrong_lane=stats["teleports_wrong_lane"],
        collisions=stats["collisions"],
        emergency_stops=stats["emergency_stops"],
        emergency_braking=stats["emergency_braking"],
        vehicles_loaded=stats["loaded"],
        vehicles_inserted=stats["inserted"],
        never_inserted=end_backlog,
        backlog_max=backlog_max,
        backlog_mid=mid_backlog,
        backlog_growth_per_h=None if growth is None else round(growth, 1),
        gridlock=gridlock,
    )


def jam_teleports(counts: Mapping[str, Any]) -> int:
    """Vehicles teleported out of a jam: jam, yield and wrong lane (not after a collision)."""
    return sum(int(counts.get(k, 0) or 0) for k in ("teleports_jam", "teleports_yield", "teleports_wrong_lane"))


def gridlock_line(health: Mapping[str, Any]) -> str | None:
    """One line that says why a run gridlocked (None when it did not)."""
    if not health.get("gridlock"):
        return None
    parts = []
    jammed = jam_teleports(health)
    if jammed:
        parts.append(f"{jammed} vehicles teleported out of jams (jam "
                     f"{health.get('teleports_jam', 0)}, yield {health.get('teleports_yield', 0)}, "
                     f"wrong lane {health.get('teleports_wrong_lane', 0)})")
    end, mid = health.get("never_inserted", 0), health.get("backlog_mid", 0)
    growth = end - mid
    if backlog_grew(end, mid):
        parts.append(f"{health['never_inserted']} vehicles never got in, the backlog grew by {growth} "
                     "in the second half")
    elif health.get("never_inserted"):
        parts.append(f"{health['never_inserted']} vehicles never got in")
    return "GRIDLOCK: " + "; ".join(parts)
