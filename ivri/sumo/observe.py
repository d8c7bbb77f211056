"""Read SUMO once per tick through subscriptions and fill the controllers' :class:`Observation`.

At start :class:`Observer` subscribes, once per object:

* every E1 loop of :mod:`ivri.sumo.detectors` (stop-line and extension loops) to
  ``LAST_STEP_TIME_SINCE_DETECTION``, which is 0 while a vehicle is over the loop:
  occupancy and gap in one value;
* every incoming and outgoing lane of a group (each lane once, however many intersections
  and groups it serves) to ``LAST_STEP_VEHICLE_HALTING_NUMBER`` and
  ``LAST_STEP_VEHICLE_NUMBER``;
* every junction with a signalised crossing to a *context* subscription of the persons
  within its outline (plus 5 m) with their ``VAR_ROAD_ID`` and ``VAR_NEXT_EDGE``. A person
  on a walking area whose next edge is a crossing wants to cross it: that is the push
  button. (libsumo 1.28 has no per-crossing waiting count; lane person counts cannot tell
  a person who waits to cross from one who walks round the corner; the context
  subscription needs no per-person call and sees only persons near the junction.)

Each tick :meth:`Observer.read` makes one ``getAllSubscriptionResults()`` call per domain
(one context call for persons) and copies the values into flat arrays in subscription order.
:meth:`Observer.observation` then aggregates them to ``[intersection, group]`` with
precomputed index arrays (``np.bincount``, ``np.minimum.at``), no Python loop over groups:

* ``demand``: a vehicle over a stop-line loop, a halting vehicle on an incoming lane, a
  vehicle that passed a loop within the last :data:`CALL_WINDOW_S` (it is between the
  extension loop and the stop line), or a person waiting to cross;
* ``gap_s``: the shortest time since a vehicle was over any loop of the group's lanes;
* ``queue_veh``: halting vehicles on the group's incoming lanes (a lane shared by several
  groups counts for each), persons waiting for pedestrian groups;
* ``approach_veh``: vehicles on the group's incoming lanes (persons waiting, for pedestrians);
* ``downstream_queue_veh``: halting vehicles on the lanes the group feeds.

It also sums, per intersection, the halting vehicles on its incoming lanes times the step
length (``queue_veh_s``), the per-intersection delay measure of a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ivri.controllers.base import NO_DETECTION_S, Observation
from ivri.core.compile import CompiledNetwork
from ivri.sumo.connection import SumoConnection
from ivri.sumo.detectors import Detector
from ivri.sumo.network import TlsLinkMap

__all__ = ["Observer"]

# TraCI variable ids (traci.constants), fixed by the protocol; kept here so that importing
# this module does not import traci.
LAST_STEP_VEHICLE_NUMBER = 0x10
LAST_STEP_TIME_SINCE_DETECTION = 0x16
LAST_STEP_VEHICLE_HALTING_NUMBER = 0x14
VAR_ROAD_ID = 0x50
VAR_NEXT_EDGE = 0xC1
CMD_GET_PERSON_VARIABLE = 0xAE
#: A vehicle that passed the extension loop this recently calls for green: 40 m at 5 m/s (a
#: cyclist) takes 8 s, after which a vehicle held by red is halting and calls through the queue.
CALL_WINDOW_S = 10.0
#: Persons this far outside a junction's outline are still seen by its context subscription.
PERSON_RANGE_MARGIN_M = 5.0


def _pairs(n_obj: int, items: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Flatten "object k serves columns items[k]" into two aligned index arrays."""
    obj = [k for k in range(n_obj) for _ in items[k]]
    col = [c for k in range(n_obj) for c in items[k]]
    return np.asarray(obj, dtype=np.intp), np.asarray(col, dtype=np.intp)


class Observer:
    """Subscriptions made once, read once per tick, aggregated into one reused Observation.

    ``lanes_only=True`` subscribes only the incoming lanes, for the per-intersection queue
    measure of a run under SUMO's own programs (no detectors there).
    """

    def __init__(
        self,
        conn: SumoConnection,
        net: CompiledNetwork,
        link_maps: Sequence[TlsLinkMap],
        detectors: Sequence[Detector] = (),
        *,
        dt_s: float,
        lanes_only: bool = False,
    ) -> None:
        self.conn = conn
        self.net = net
        self.dt_s = float(dt_s)
        self.lanes_only = lanes_only
        n_i, n_g = net.timing.valid.shape
        self._n_cols = n_i * n_g
        col = lambda i, g: i * n_g + g

        # --- lanes: incoming (queue, stats) and outgoing (downstream queue) -----------------
        lane_ids: list[str] = []
        lane_pos: dict[str, int] = {}

        def lane_index(lane: str) -> int:
            if lane not in lane_pos:
                lane_pos[lane] = len(lane_ids)
                lane_ids.append(lane)
            return lane_pos[lane]

        in_pairs: list[tuple[int, int]] = []
        out_pairs: list[tuple[int, int]] = []
        stat_pairs: set[tuple[int, int]] = set()
        for i, lm in enumerate(link_maps):
            for g in range(lm.n_groups):
                for lane in lm.in_lanes[g]:
                    k = lane_index(lane)
                    in_pairs.append((k, col(i, g)))
                    stat_pairs.add((k, i))
                if not lanes_only:
                    for lane in lm.out_lanes[g]:
                        out_pairs.append((lane_index(lane), col(i, g)))
        self.lane_ids = tuple(lane_ids)
        self._in_lane, self._in_col = self._split(in_pairs)
        self._out_lane, self._out_col = self._split(out_pairs)
        self._stat_lane, self._stat_i = self._split(sorted(stat_pairs))
        self._halting = np.zeros(len(lane_ids))
        self._halting_s = np.zeros(len(lane_ids))  # per lane, summed every step (cheap)
        self._n_i = n_i

        # --- detectors ------------------------------------------------------------------------
        loops = [d for d in detectors if d.kind in ("stopline", "extension")] if not lanes_only else []
        self.loop_ids = tuple(d.id for d in loops)
        self._gap_loop, self._gap_col = _pairs(len(loops), [[col(i, g) for i, g in d.targets] for d in loops])
        self._loop_since = np.full(len(loops), NO_DETECTION_S)
        self._vehicles = np.zeros(len(lane_ids))

        # --- pedestrians: (walking area, crossing) -> columns -----------------------------------
        self._ped_key: dict[tuple[str, str], list[int]] = {}
        ped_junctions: set[str] = set()
        if not lanes_only:
            for i, lm in enumerate(link_maps):
                for g in range(lm.n_groups):
                    for crossing in lm.crossings[g]:
                        for wa in lm.waiting_areas[g]:
                            self._ped_key.setdefault((wa, crossing), []).append(col(i, g))
                        ped_junctions.update(lm.junctions)
        self.person_junctions = tuple(sorted(ped_junctions))
        self._ped_cols = np.zeros(0, dtype=np.intp)

        self.obs = Observation.empty(net)
        self._subscribe()

    @staticmethod
    def _split(pairs: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        if not pairs:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        a = np.asarray(pairs, dtype=np.intp)
        return a[:, 0].copy(), a[:, 1].copy()

    def _subscribe(self) -> None:
        c = self.conn
        for d in self.loop_ids:
            c.inductionloop.subscribe(d, [LAST_STEP_TIME_SINCE_DETECTION])
        lane_vars = ([LAST_STEP_VEHICLE_HALTING_NUMBER] if self.lanes_only
                     else [LAST_STEP_VEHICLE_HALTING_NUMBER, LAST_STEP_VEHICLE_NUMBER])
        for lane in self.lane_ids:
            c.lane.subscribe(lane, lane_vars)
        for j in self.person_junctions:
            cx, cy = c.junction.getPosition(j)
            shape = c.junction.getShape(j) or [(cx, cy)]
            radius = max(float(np.hypot(x - cx, y - cy)) for x, y in shape) + PERSON_RANGE_MARGIN_M
            c.junction.subscribeContext(j, CMD_GET_PERSON_VARIABLE, radius, [VAR_ROAD_ID, VAR_NEXT_EDGE])

    @property
    def queue_veh_s(self) -> np.ndarray:
        """float ``[I]``: halting vehicles on each intersection's incoming lanes, summed over
        the steps read so far, times the step length (vehicle-seconds of queueing)."""
        if not len(self._stat_lane):
            return np.zeros(self._n_i)
        w = self._halting_s[self._stat_lane] * self.dt_s
        return np.bincount(self._stat_i, weights=w, minlength=self._n_i)

    # ------------------------------------------------------------------------------------------

    def read(self) -> None:
        """Copy this step's subscription results into the flat arrays (call once per SUMO step)."""
        c = self.conn
        if self.lane_ids:
            res: dict[str, Any] = c.lane.getAllSubscriptionResults()
            rows = [res[k] for k in self.lane_ids]
            self._halting[:] = [r[LAST_STEP_VEHICLE_HALTING_NUMBER] for r in rows]
            self._halting_s += self._halting
            if self.lanes_only:
                return
            self._vehicles[:] = [r[LAST_STEP_VEHICLE_NUMBER] for r in rows]
        if self.lanes_only:
            return
        if self.loop_ids:
            res = c.inductionloop.getAllSubscriptionResults()
            self._loop_since[:] = [res[k][LAST_STEP_TIME_SINCE_DETECTION] for k in self.loop_ids]
        if self.person_junctions:
            persons: dict[str, dict[int, Any]] = {}
            for found in c.junction.getAllContextSubscriptionResults().values():
                persons.update(found)  # a person near two junctions counts once
            key = self._ped_key
            self._ped_cols = np.fromiter(
                (col for v in persons.values()
                 for col in key.get((v[VAR_ROAD_ID], v[VAR_NEXT_EDGE]), ())),
                dtype=np.intp,
            )

    def observation(self, t_s: float) -> Observation:
        """Aggregate the last :meth:`read` into the reused :class:`Observation` (``[I, G]``)."""
        obs = self.obs
        obs.t_s = t_s
        n = self._n_cols
        queue = np.bincount(self._in_col, weights=self._halting[self._in_lane], minlength=n)
        down = np.bincount(self._out_col, weights=self._halting[self._out_lane], minlength=n)
        approach = np.bincount(self._in_col, weights=self._vehicles[self._in_lane], minlength=n)
        if len(self._ped_cols):
            waiting = np.bincount(self._ped_cols, minlength=n).astype(np.float64)
            queue += waiting
            approach += waiting
        gap = obs.gap_s.reshape(-1)
        gap.fill(NO_DETECTION_S)
        if len(self._gap_col):
            np.minimum.at(gap, self._gap_col, self._loop_since[self._gap_loop])
        obs.queue_veh.reshape(-1)[:] = queue
        obs.approach_veh.reshape(-1)[:] = approach
        obs.downstream_queue_veh.reshape(-1)[:] = down
        demand = obs.demand.reshape(-1)
        np.greater(queue, 0.0, out=demand)
        demand |= gap < CALL_WINDOW_S
        return obs
