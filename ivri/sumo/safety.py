"""What the safety KPIs need from SUMO, read every step, with or without V2X emulation.

:class:`SafetyWatch` feeds :class:`ivri.metrics.safety.SafetyCounter`: emergency vehicles near
a controlled stop line (from the V2X emulator when it runs, which reads them anyway; else
from a subscription of its own to every emergency vehicle's next traffic light) and the
persons near the signalised crossings (the observer's context subscription). The pieces both
the watch and the emulator use live here once: :class:`StopLines` (a vehicle's next traffic
light -> intersection and signal group) and :class:`Crossings` (who is on or at which
crossing, and who is a slow crosser).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import TYPE_CHECKING, Any

import numpy as np
from traci.constants import VAR_ARRIVED_VEHICLES_IDS, VAR_DEPARTED_VEHICLES_IDS, VAR_NEXT_TLS

from ivri.core.compile import CompiledNetwork
from ivri.metrics.safety import SafetyCounter
from ivri.sumo.network import TlsLinkMap
from ivri.sumo.observe import VAR_NEXT_EDGE, VAR_ROAD_ID, VAR_TYPE, Observer

if TYPE_CHECKING:
    from ivri.sumo.v2x import V2XEmulator

__all__ = ["Crossings", "PersonsNear", "SafetyWatch", "StopLines", "next_tls"]

# libsumo hands VAR_NEXT_TLS over as an object whose only view is a string:
# "TraCINextTLSDataVectorWrapped[TraCINextTLSData(J1,4,141.367,G),...]". One regex over all
# of them takes the first entry of each (empty groups when a vehicle has none ahead).
_NEXT_TLS = re.compile(r"Wrapped\[(?:TraCINextTLSData\(([^,]*),(-?\d+),([^,]*),[^)]*\))?")
_ROAD, _NEXT, _TYPE = itemgetter(VAR_ROAD_ID), itemgetter(VAR_NEXT_EDGE), itemgetter(VAR_TYPE)
_NEXT_TLS_VALUE = itemgetter(VAR_NEXT_TLS)


def next_tls(values: list[Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The first entry of each vehicle's ``VAR_NEXT_TLS``: traffic light ids, link indices (-1:
    none) and distances (inf: none)."""
    if not values:
        return [], np.zeros(0, np.int64), np.zeros(0)
    if isinstance(values[0], tuple):  # TraCI over a socket: tuples of (tls, link, dist, state)
        first = [v[0] if v else ("", -1, math.inf, "") for v in values]
        return ([f[0] for f in first], np.array([f[1] for f in first], np.int64),
                np.array([f[2] for f in first], np.float64))
    found = _NEXT_TLS.findall("\n".join(map(methodcaller("getString"), values)))
    tls = [f[0] for f in found]
    link = np.array([int(f[1]) if f[1] else -1 for f in found], np.int64)
    dist = np.array([float(f[2]) if f[2] else math.inf for f in found], np.float64)
    return tls, link, dist


class StopLines:
    """A vehicle's next traffic light and link -> the intersection and signal group it waits for."""

    def __init__(self, link_maps: Sequence[TlsLinkMap]) -> None:
        self._tls_index = {lm.tls_id: i for i, lm in enumerate(link_maps)}
        # link index -> group, all intersections in one array (offset per intersection).
        self._link_offset = np.cumsum([0] + [lm.n_links for lm in link_maps]).astype(np.int64)
        self._group_of_link = (np.concatenate([lm.group_of_link for lm in link_maps]).astype(np.int64)
                               if link_maps else np.zeros(0, np.int64))

    def locate(self, values: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """From ``VAR_NEXT_TLS`` values: intersection (-1: not ours), group (-1: none), distance
        to the stop line, and whether the vehicle heads for a controlled stop line."""
        tls, link, dist = next_tls(values)
        n = len(tls)
        inter = np.fromiter(map(self._tls_index.get, tls, repeat(-1)), np.int64, n)
        ours = (inter >= 0) & (link >= 0)
        flat = np.where(ours, self._link_offset[np.maximum(inter, 0)] + np.maximum(link, 0), 0)
        group = np.where(ours, self._group_of_link[flat] if len(self._group_of_link) else -1, -1)
        return inter, group, dist, ours


@dataclass
class PersonsNear:
    """The persons near the signalised crossings this tick (ids in memory only), in one order."""

    ids: list[str]
    values: list[dict[int, Any]]
    roads: list[str]
    k: np.ndarray      # int64: the crossing row each is on, -1: not on a crossing
    kerb: np.ndarray   # int64: ``i * G + g`` of the crossing each waits at, -1: none
    slow: np.ndarray   # bool: a slow crosser (vType parameter ``ivri.slow``)


class Crossings:
    """The signalised crossings of a run: per row its intersection, group, length and lane
    heading (degrees, 0 = north, clockwise, as SUMO's VAR_ANGLE)."""

    def __init__(self, conn: Any, link_maps: Sequence[TlsLinkMap], observer: Observer, sumo_net: Any) -> None:
        self.conn = conn
        rows: list[tuple[str, int, int, float, float]] = []
        for i, lm in enumerate(link_maps):
            for g, edges in enumerate(lm.crossings):
                for e in edges:
                    lane = sumo_net.getEdge(e).getLanes()[0]
                    (x0, y0), (x1, y1) = lane.getShape()[0], lane.getShape()[-1]
                    rows.append((e, i, g, float(lane.getLength()),
                                 math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360.0))
        self._index = {r[0]: j for j, r in enumerate(rows)}
        rows = rows or [("", 0, 0, 0.0, 0.0)]  # the arrays are indexed with max(k, 0)
        self.cross_i = np.array([r[1] for r in rows], dtype=np.int64)
        self.cross_g = np.array([r[2] for r in rows], dtype=np.int64)
        self.length_m = np.array([r[3] for r in rows])
        self.heading_deg = np.array([r[4] for r in rows])
        self._kerb = {k: cols[0] for k, cols in observer.crossing_calls.items()}
        # Filled lazily from the concrete types of persons seen: asking SUMO about every id
        # of vehicletype.getIDList() at the start would touch vType *distributions*, and SUMO
        # draws a type from a distribution it is asked about, which shifts the random number
        # stream and changes the run (measured: crossing:peak 11.87 -> 12.26 veh-h).
        self._slow_type: dict[str, bool] = {}
        self._last: tuple[int, PersonsNear] | None = None

    def is_slow(self, vtype: str) -> bool:
        """Whether persons of ``vtype`` are slow crossers (its parameter ``ivri.slow``)."""
        slow = self._slow_type.get(vtype)
        if slow is None:
            value = self.conn.vehicletype.getParameter(vtype, "ivri.slow") if vtype else ""
            slow = self._slow_type[vtype] = value in ("1", "true", "True")
        return slow

    def classify(self, persons: dict[str, dict[int, Any]]) -> PersonsNear:
        """The persons of the observer's subscription (needs ``VAR_TYPE``: ``person_details``),
        classified once per tick (a second call with the same dict returns the same rows)."""
        if self._last is not None and self._last[0] == id(persons):
            return self._last[1]
        ids = list(persons)
        vals = list(persons.values())
        n = len(ids)
        roads = list(map(_ROAD, vals))
        types = list(map(_TYPE, vals))
        for t in set(types) - self._slow_type.keys():
            self.is_slow(t)
        near = PersonsNear(
            ids=ids, values=vals, roads=roads,
            k=np.fromiter(map(self._index.get, roads, repeat(-1)), np.int64, n),
            kerb=np.fromiter(map(self._kerb.get, zip(roads, map(_NEXT, vals), strict=True), repeat(-1)),
                             np.int64, n),
            slow=np.fromiter(map(self._slow_type.__getitem__, types), np.bool_, n),
        )
        self._last = (id(persons), near)
        return near


class SafetyWatch:
    """Reads the safety KPIs' rows every step and counts them (see the module docstring).

    ``own_emergency``: subscribe to the emergency vehicles here (no V2X emulation runs);
    otherwise :meth:`read` takes them from the emulator.
    """

    def __init__(self, conn: Any, net: CompiledNetwork, link_maps: Sequence[TlsLinkMap], observer: Observer,
                 sumo_net: Any, *, own_emergency: bool) -> None:
        self.conn = conn
        self.observer = observer
        self.crossings = Crossings(conn, link_maps, observer, sumo_net)
        self.stop_lines = StopLines(link_maps)
        self.counter = SafetyCounter(net, self.crossings.cross_i, self.crossings.cross_g)
        self._own = bool(own_emergency)
        self._emergency: set[str] = set()
        if self._own:
            conn.simulation.subscribe([VAR_DEPARTED_VEHICLES_IDS, VAR_ARRIVED_VEHICLES_IDS])

    @property
    def stats(self) -> Any:
        """The counts so far (:class:`~ivri.metrics.safety.SafetyStats`)."""
        return self.counter.stats

    def _emergency_rows(self) -> dict[Any, tuple[int, int, float]]:
        sim = self.conn.simulation.getSubscriptionResults()
        veh = self.conn.vehicle
        for vid in sim.get(VAR_DEPARTED_VEHICLES_IDS, ()):
            if veh.getVehicleClass(vid) == "emergency":
                veh.subscribe(vid, [VAR_NEXT_TLS])
                self._emergency.add(vid)
        self._emergency.difference_update(sim.get(VAR_ARRIVED_VEHICLES_IDS, ()))
        if not self._emergency:
            return {}
        res = veh.getAllSubscriptionResults()
        ids = [v for v in res if v in self._emergency]
        inter, group, dist, ours = self.stop_lines.locate([_NEXT_TLS_VALUE(res[v]) for v in ids])
        return {ids[j]: (int(inter[j]), int(group[j]), float(dist[j])) for j in np.flatnonzero(ours)}

    def read(self, state: np.ndarray, emulator: V2XEmulator | None = None) -> None:
        """Count this step; ``state`` is what SUMO shows (``[I, G]``), ``emulator`` the V2X
        emulator when one runs (after its read of this step)."""
        self.counter.emergency(self._emergency_rows() if emulator is None else emulator.emergency_now, state)
        near = self.crossings.classify(self.observer.persons)
        app = emulator.person_app_now if emulator is not None else np.zeros(len(near.ids), np.bool_)
        self.counter.crossings(near.ids, near.roads, near.k, near.slow, app, state)
