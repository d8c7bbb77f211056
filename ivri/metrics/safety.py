"""Safety KPIs of a run, counted from what the simulation shows (no identities leave).

* **Emergency passages**: an emergency vehicle crossed a controlled stop line, and whether its
  signal group showed red or amber then (DESIGN: GreenFlow must clear the way in time).
* **Persons caught on a crossing**: a pedestrian still on a crossing when a conflicting stream
  gets green; slow crossers (with and without the Crosswalk app) counted apart (DESIGN:
  "must be zero with Crosswalk"), and how many slow crossers used a crossing at all.

:class:`SafetyCounter` is array work over the rows the caller reads from SUMO each tick
(:class:`ivri.sumo.safety.SafetyWatch`); it needs no V2X emulation: the app flag is False
for everybody when nobody is emulated as equipped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.idx import AMBER, GREEN, RED

__all__ = ["PASSED_WITHIN_M", "SafetyCounter", "SafetyStats"]

#: An emergency vehicle whose next traffic light changes within this distance of a stop line
#: has passed it (at 0.1 s steps and 20 m/s it moves 2 m per step).
PASSED_WITHIN_M = 25.0
#: Remembered (person, crossing) pairs above which those of persons gone are forgotten.
_MAX_REMEMBERED = 20_000


@dataclass
class SafetyStats:
    """The safety counts of a run."""

    emergency_passages: int = 0
    emergency_red_passages: int = 0
    emergency_amber_passages: int = 0
    pedestrians_caught: int = 0          # on a crossing when a conflicting stream got green
    slow_caught_with_app: int = 0
    slow_caught_without_app: int = 0
    slow_crossings_with_app: int = 0     # slow crossers with the app seen on a crossing
    slow_crossings_without_app: int = 0

    def to_dict(self) -> dict[str, int]:
        """The counts by name (the ``safety`` block of a run's record)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class SafetyCounter:
    """Counts :class:`SafetyStats` tick by tick.

    ``cross_i`` / ``cross_g``: intersection and signal group of each crossing row (the rows the
    caller's crossing index ``k`` points into).
    """

    def __init__(self, net: CompiledNetwork, cross_i: np.ndarray, cross_g: np.ndarray) -> None:
        t = net.timing
        self._conflict = t.conflict & t.valid[:, None, :]
        self._cross_i = np.asarray(cross_i, np.int64)
        self._cross_g = np.asarray(cross_g, np.int64)
        self._prev_green = np.zeros(t.valid.shape, dtype=np.bool_)
        self._starts = np.zeros(t.valid.shape, dtype=np.bool_)
        self._ev_last: dict[Any, tuple[int, int, float]] = {}
        self._caught: set[tuple[str, str]] = set()
        self._seen_slow: set[tuple[str, str]] = set()
        self.stats = SafetyStats()

    def emergency(self, now: dict[Any, tuple[int, int, float]], state: np.ndarray) -> None:
        """Emergency vehicles near a controlled stop line this tick, ``{key: (intersection,
        group, distance_m)}``: one that was within :data:`PASSED_WITHIN_M` of its stop line
        last tick and now heads for another light (or none) has passed, at the aspect
        ``state`` shows its group."""
        for key, (i, g, d) in self._ev_last.items():
            cur = now.get(key)
            if (cur is None or cur[0] != i) and d <= PASSED_WITHIN_M and g >= 0:
                self.stats.emergency_passages += 1
                aspect = state[i, g]
                if aspect == RED:
                    self.stats.emergency_red_passages += 1
                elif aspect == AMBER:
                    self.stats.emergency_amber_passages += 1
        self._ev_last = now

    def crossings(self, ids: list[str], roads: list[str], k: np.ndarray, slow: np.ndarray, app: np.ndarray,
                  state: np.ndarray) -> None:
        """Persons near the crossings this tick: their ids and roads (in memory only), the
        crossing row ``k`` each is on (-1: not on a crossing), whether each is a slow crosser and
        carries the app. Call once per tick, also with no persons (it notes which greens
        started)."""
        green = state == GREEN
        np.logical_and(green, ~self._prev_green, out=self._starts)
        self._prev_green[...] = green
        on = k >= 0
        if not len(ids):
            return
        ci, cg = self._cross_i[np.maximum(k, 0)], self._cross_g[np.maximum(k, 0)]
        if on.any() and self._starts.any():
            caught = on & (self._conflict[ci, cg] & self._starts[ci]).any(axis=1)
            for j in np.nonzero(caught)[0]:
                key = (ids[j], roads[j])
                if key in self._caught:
                    continue
                self._caught.add(key)
                self.stats.pedestrians_caught += 1
                if slow[j]:
                    if app[j]:
                        self.stats.slow_caught_with_app += 1
                    else:
                        self.stats.slow_caught_without_app += 1
        for j in np.nonzero(on & slow)[0]:
            key = (ids[j], roads[j])
            if key not in self._seen_slow:
                self._seen_slow.add(key)
                if app[j]:
                    self.stats.slow_crossings_with_app += 1
                else:
                    self.stats.slow_crossings_without_app += 1
        if len(self._caught) + len(self._seen_slow) > _MAX_REMEMBERED:  # memory stays bounded
            alive = set(ids)
            self._caught = {c for c in self._caught if c[0] in alive}
            self._seen_slow = {c for c in self._seen_slow if c[0] in alive}
