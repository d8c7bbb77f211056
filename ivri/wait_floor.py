"""The floor of the core's anti-starvation bound for intersections the project derives or imports.

Anti-starvation (``SignalGroupConfig.max_wait_s``) is the core's safety net, not a control
strategy: a group that waits as long as the longest regular cycle must not count as starving,
or the core pre-empts the stage plan at every peak and the pre-emptions cascade (measured: a
Dutch four-arm crossing at peak went from 17 to 218 vehicle-loss hours with a 90 s limit). The
floor has a fixed ceiling: on networks with long maximum greens it reached 362 s, and movements
stood red 300-580 s with cars waiting (measured on real city networks).

Both the SUMO network derivation (:mod:`ivri.sumo.network`) and the TLCGen import
(:mod:`ivri.tlcgen.convert`) apply it through :func:`with_wait_floor`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ivri.config import ConflictConfig, SignalGroupConfig

__all__ = ["MAX_WAIT_CEILING_S", "WAIT_CYCLE_FACTOR", "longest_cycle_s", "wait_floor_s", "with_wait_floor"]

#: max_wait_s is at least this many times the longest cycle of the stage plan ...
WAIT_CYCLE_FACTOR = 1.25
#: ... but the floor is never more than this [s].
MAX_WAIT_CEILING_S = 180.0


def longest_cycle_s(groups: Sequence[SignalGroupConfig], conflicts: Sequence[ConflictConfig],
                    stages: Sequence[Sequence[str]]) -> float:
    """The longest cycle the stage plan can run: every stage at max green plus its clearance."""
    max_green = {g.id: g.max_green_s for g in groups}
    clear_into: dict[str, float] = {g.id: 0.0 for g in groups}
    for c in conflicts:
        a, b = c.between
        clear_into[b] = max(clear_into[b], c.intergreen_s[0])
        clear_into[a] = max(clear_into[a], c.intergreen_s[1])
    return sum(max(max_green[g] for g in st) + max(clear_into[g] for g in st) for st in stages if st)


def wait_floor_s(groups: Sequence[SignalGroupConfig], conflicts: Sequence[ConflictConfig],
                 stages: Sequence[Sequence[str]]) -> float:
    """The lowest ``max_wait_s`` for the groups of a stage plan (see the module docstring)."""
    return min(WAIT_CYCLE_FACTOR * longest_cycle_s(groups, conflicts, stages), MAX_WAIT_CEILING_S)


def with_wait_floor(groups: Sequence[SignalGroupConfig], conflicts: Sequence[ConflictConfig],
                    stages: Sequence[Sequence[str]]) -> list[SignalGroupConfig]:
    """The groups with ``max_wait_s`` raised to the floor, in whole seconds (a higher value
    that a group already has stays)."""
    floor = wait_floor_s(groups, conflicts, stages)
    return [g.model_copy(update={"max_wait_s": float(math.ceil(max(g.max_wait_s, floor)))}) for g in groups]
