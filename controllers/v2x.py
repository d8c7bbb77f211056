"""What connected road users tell an intersection: CAM-like status and app requests, as arrays.

The priority applications read one :class:`V2XObservation` per tick. It does not know where
it came from: the SUMO bridge emulates it from the simulation (:mod:`ivri.sumo.v2x`), the
MQTT gateway fills it from CAMs and SREMs, tests write it by hand. One row per equipped road
user near an intersection, struct-of-arrays so that applications filter rows with numpy
masks, never a Python loop over road users.

Privacy: ``token`` is a per-run pseudonym that lets an application recognise the same road
user from tick to tick. It lives in memory only; nothing that is logged or written to a
result carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

import numpy as np

from ._rows import Rows

__all__ = ["Role", "V2XObservation"]


class Role(IntEnum):
    """The kind of road user a row describes (from the CAM station type and vehicle role)."""

    CAR = 0
    EMERGENCY = 1
    BUS = 2
    TRUCK = 3
    CYCLIST = 4
    PEDESTRIAN = 5


_DTYPES: dict[str, type] = {
    "token": np.int64,
    "intersection": np.int64,
    "group": np.int64,
    "distance_m": np.float64,
    "speed_mps": np.float64,
    "role": np.int8,
    "siren": np.bool_,
    "app": np.bool_,
    "slow": np.bool_,
    "on_crossing": np.bool_,
    "lateness_s": np.float64,
}


@dataclass
class V2XObservation(Rows):
    """Connected road users near the intersections this tick, one row each (arrays of length N).

    Columns:

    ``token``         int64: in-memory pseudonym, stable while the road user is in range
    ``intersection``  int64: row index into the compiled network
    ``group``         int64: the signal group of its movement (-1: not known yet)
    ``distance_m``    float64: along its route to the stop line (to the far kerb for a
                      pedestrian on a crossing); 0 for a pedestrian waiting at the kerb
    ``speed_mps``     float64: its speed
    ``role``          int8: a :class:`Role`
    ``siren``         bool: an emergency vehicle with lights and siren on (CAM
                      ``lightBarSirenInUse``)
    ``app``           bool: it sends app requests (Schwung, Crosswalk) or an SREM
    ``slow``          bool: the app says it walks slowly (Crosswalk)
    ``on_crossing``   bool: a pedestrian who is on the crossing, not at the kerb
    ``lateness_s``    float64: a bus's delay against its timetable (0 when on time or unknown)
    """

    token: np.ndarray
    intersection: np.ndarray
    group: np.ndarray
    distance_m: np.ndarray
    speed_mps: np.ndarray
    role: np.ndarray
    siren: np.ndarray
    app: np.ndarray
    slow: np.ndarray
    on_crossing: np.ndarray
    lateness_s: np.ndarray

    DTYPES: ClassVar[dict[str, type]] = _DTYPES

    @classmethod
    def from_rows(cls, rows: list[dict[str, object]]) -> V2XObservation:
        """Build from a list of row dicts (tests and the gateway); missing columns get defaults.

        Defaults: ``group`` -1, ``role`` CAR, booleans False, numbers 0.
        """
        defaults = {"group": -1, "role": int(Role.CAR)}
        cols = {
            name: [r.get(name, defaults.get(name, 0)) for r in rows] for name in _DTYPES
        }
        for name in ("token", "intersection"):
            if rows and any(name not in r for r in rows):
                raise ValueError(f"V2XObservation.from_rows: every row needs {name!r}")
        return cls(**{k: np.asarray(v, dtype=_DTYPES[k]) for k, v in cols.items()})

    def eta_s(self, min_speed_mps: float = 1.0) -> np.ndarray:
        """Seconds to the stop line at the present speed (at least ``min_speed_mps``)."""
        return self.distance_m / np.maximum(self.speed_mps, min_speed_mps)
