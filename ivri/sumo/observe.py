"""Read SUMO once per tick and fill the controllers' :class:`Observation`.

:class:`Observer` reads, once per object and in sorted id order (with libsumo through its
direct getters, over TraCI through subscriptions made at start; see "Cost" below):

* every E1 loop of :mod:`ivri.sumo.detectors` (stop-line, extension and exit loops) to
  ``LAST_STEP_TIME_SINCE_DETECTION``, which is 0 while a vehicle is over the loop:
  occupancy and gap in one value, and ``LAST_STEP_MEAN_SPEED`` (-1 with no vehicle): a
  vehicle that stands over an exit loop for :data:`EXIT_BLOCKED_S` blocks that exit;
* every approach lane of a group (its stop-line lanes and the lanes upstream of them
  through unsignalised nodes, :meth:`~ivri.sumo.network.TlsLinkMap.approach_lanes`) and
  every outgoing lane (each lane once, however many intersections
  and groups it serves, and whether it is incoming for one and outgoing for another) to
  ``LAST_STEP_VEHICLE_HALTING_NUMBER`` (queue, demand, downstream queue) and
  ``LAST_STEP_VEHICLE_NUMBER`` (approach); only the halting number, and only the incoming
  lanes, for a run under SUMO's own programs;
* every junction with a signalised crossing to a *context* subscription of the persons
  within its outline (plus 5 m) with their ``VAR_ROAD_ID`` and ``VAR_NEXT_EDGE``. A person
  on a walking area whose next edge is a crossing wants to cross it: that is the push
  button. (libsumo 1.28 has no per-crossing waiting count; lane person counts cannot tell
  a person who waits to cross from one who walks round the corner; the context
  subscription needs no per-person call and sees only persons near the junction.)

Cost. A subscribed object costs SUMO time inside every step: it computes each variable,
wraps it in a ``shared_ptr`` result, stores it in a map that it clears again next step, and
libsumo converts the whole map to Python dicts on ``getAllSubscriptionResults()``. Profiled
on grid:peak (py-spy --native, ``ivri run -c actuated``, libsumo): serving the subscriptions
took 22 % of the run's samples and reading them 11 %, against 33 % for SUMO's own step;
one variable alone, the loops' mean speed (a scan of the vehicles on the loop), 6 %. In
process, a direct getter computes one value on request, so with libsumo the observer reads
lanes and loops with ``np.fromiter(map(getter, ids))`` (:class:`_Getters`: the getter runs in
C for every id, no Python bytecode per object) and asks for the mean speed only of the exit
loops that are occupied at that moment (the only ones whose speed is used). That took the
CPU time of the grid:peak run from 2.8x to 1.9x plain ``sumo``. Over a TraCI socket every
getter is a round trip, so there :meth:`Observer.read` makes one ``getAllSubscriptionResults()``
call per domain and copies each variable with one ``np.fromiter`` over the result dicts
(:class:`_Domain`). Persons are always read through the context subscription (one call).
:meth:`Observer.observation` then aggregates them to ``[intersection, group]`` in one numba
kernel over precomputed (object, column) index pairs, into the reused Observation:

* ``demand``: a halting vehicle on an incoming lane (this includes the vehicle waiting at
  the stop line), a vehicle over or past a loop within the last :data:`CALL_WINDOW_S` (it
  is between the extension loop and the stop line), or a person waiting to cross;
* ``detector_occupied``: a vehicle was over one of the group's loops (stop line or
  extension) during the last step;
* ``gap_s``: the shortest time since a vehicle was over a loop of the group's lanes, its
  stop-line loops counted :data:`STOPLINE_GAP_LAG_S` later where it has extension loops
  (:func:`_gap_pairs` says why);
* ``queue_veh``: halting vehicles on the group's incoming lanes (a lane shared by several
  groups counts for each), persons waiting for pedestrian groups;
* ``approach_veh``: vehicles on the group's incoming lanes (persons waiting, for pedestrians);
* ``downstream_queue_veh``: halting vehicles on the lanes the group feeds;
* ``exit_blocked``: at least half of the group's exit loops have had a vehicle standing
  over them for :data:`EXIT_BLOCKED_S`. Where an exit lane is the stop-line lane of a
  controlled group (two lights close together), a vehicle that stands there at red is no
  spillback: it counts only once that group has been green long enough for the queue's
  start-up wave to reach the loop (:data:`START_WAVE_S_PER_M`). Half, not all: a through group usually has a turn
  into another exit too, and the through vehicles that wait for the blocked exit hold up
  the turning ones behind them; a group with most of its exits free still moves traffic.

It also sums, per intersection, the halting vehicles on its approach lanes times the step
length (``queue_veh_s``), the per-intersection delay measure of a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np

from ivri.controllers.base import NO_DETECTION_S, Observation
from ivri.core.compile import CompiledNetwork
from ivri.core.idx import GREEN
from ivri.core.jit import njit
from ivri.sumo.connection import SumoConnection
from ivri.sumo.detectors import Detector
from ivri.sumo.network import TlsLinkMap

__all__ = ["Observer"]

# TraCI variable ids (traci.constants), fixed by the protocol; kept here so that importing
# this module does not import traci (tests/test_sumo_network.py checks them against traci's table).
LAST_STEP_VEHICLE_NUMBER = 0x10
LAST_STEP_MEAN_SPEED = 0x11
LAST_STEP_TIME_SINCE_DETECTION = 0x16
LAST_STEP_VEHICLE_HALTING_NUMBER = 0x14
VAR_ROAD_ID = 0x50
VAR_NEXT_EDGE = 0xC1
VAR_TYPE = 0x4F
VAR_LANEPOSITION = 0x56
VAR_ANGLE = 0x43
CMD_GET_PERSON_VARIABLE = 0xAE
#: A vehicle that passed the extension loop this recently calls for green: 40 m at 5 m/s (a
#: cyclist) takes 8 s, after which a vehicle held by red is halting and calls through the queue.
CALL_WINDOW_S = 10.0
#: How much later a stop-line loop's detection counts in the gap of a group that also has
#: extension loops: a gap time 1 s shorter at the koplus (Dutch practice: 1-2 s against 3 s).
STOPLINE_GAP_LAG_S = 1.0
#: A vehicle over an exit loop slower than this [m/s] stands (SUMO's halting speed is 0.1).
EXIT_STANDING_MPS = 1.0
#: An exit counts as blocked once a vehicle has stood over its loop this long [s]: a queue
#: that starts to move again, stop-and-go traffic, or a car that brakes behind a turning one
#: does not block it. Measured on a real 21-light network (vehicle-loss hours, seed 42): 2 s
#: 108.5, 6 s 99.8, 10 s 105.2 (exits ignored: 91.0); the spillback test network blocks
#: its exit with a downstream red for tens of seconds, seen at any of these.
EXIT_BLOCKED_S = 6.0
#: How fast the start-up wave of a queue travels back [s per metre of queue] (about 4 m/s).
START_WAVE_S_PER_M = 0.25
#: Persons this far outside a junction's outline are still seen by its context subscription.
PERSON_RANGE_MARGIN_M = 5.0

_ROAD_NEXT = itemgetter(VAR_ROAD_ID, VAR_NEXT_EDGE)


def _gap_pairs(loops: Sequence[Detector], loop_pos: dict[str, int],
               n_g: int) -> list[tuple[int, int, float]]:
    """(loop, column, lag) triples whose time since detection, plus the lag, makes a group's gap.

    Every vehicle passes the extension loop and then, about 3 s later at 50 km/h, the
    stop-line loop: counting both alike halves the time between detections, so a stream with
    6 s headways never gapped out at a 3 s gap time. Dutch practice gives the stop-line loop
    ("koplus") a shorter gap time than the extension loop for this reason; here its time since
    detection counts :data:`STOPLINE_GAP_LAG_S` longer where the group has extension loops.
    It still extends a discharging queue (headways of 2 s) that the extension loop does not
    reach. Where a group has no extension loop (short lanes), its stop-line loops count as is.
    """
    ext_cols = {i * n_g + g for d in loops if d.kind == "extension" for i, g in d.targets}
    return [(loop_pos[d.id], i * n_g + g,
             STOPLINE_GAP_LAG_S if d.kind == "stopline" and i * n_g + g in ext_cols else 0.0)
            for d in loops if d.kind != "exit" for i, g in d.targets]


@njit
def _aggregate(halting: np.ndarray, vehicles: np.ndarray, loop_since: np.ndarray, ped_cols: np.ndarray,
               in_lane: np.ndarray, in_col: np.ndarray, out_lane: np.ndarray, out_col: np.ndarray,
               gap_loop: np.ndarray, gap_col: np.ndarray, gap_lag: np.ndarray, call_window_s: float, step_s: float,
               queue: np.ndarray, approach: np.ndarray, down: np.ndarray, gap: np.ndarray,
               demand: np.ndarray, occupied: np.ndarray) -> None:  # pragma: no cover - numba
    """Fill the flat ``[I*G]`` observation arrays in place from this step's per-object values."""
    queue[:] = 0.0
    approach[:] = 0.0
    down[:] = 0.0
    gap[:] = NO_DETECTION_S
    occupied[:] = False
    for k in range(in_lane.shape[0]):
        lane, c = in_lane[k], in_col[k]
        queue[c] += halting[lane]
        approach[c] += vehicles[lane]
    for k in range(out_lane.shape[0]):
        down[out_col[k]] += halting[out_lane[k]]
    for k in range(gap_loop.shape[0]):
        v = loop_since[gap_loop[k]]
        c = gap_col[k]
        gap[c] = min(gap[c], v + gap_lag[k])
        if v < step_s:  # 0 while a vehicle is over the loop; a vehicle at speed passes within a step
            occupied[c] = True
    for c in ped_cols:
        queue[c] += 1.0
        approach[c] += 1.0
    for c in range(queue.shape[0]):
        demand[c] = queue[c] > 0.0 or gap[c] < call_window_s


@njit
def _exit_blocked(standing_s: np.ndarray, blocked_after_s: float, exit_loop: np.ndarray, exit_col: np.ndarray,
                  n_exits: np.ndarray, down_loop: np.ndarray, down_col: np.ndarray, controlled: np.ndarray,
                  wave_s: np.ndarray, shown: np.ndarray, green_for_s: np.ndarray, dt_s: float,
                  standing: np.ndarray, released: np.ndarray, n_blocked: np.ndarray,
                  out: np.ndarray) -> None:  # pragma: no cover - numba
    """Fill ``out`` (bool flat ``[I*G]``): at least half of a group's exit loops are blocked.

    A loop is blocked when a vehicle has stood over it for ``blocked_after_s``; a loop on the
    stop-line lane of a controlled group (``controlled``) only once that group has been green
    (``shown``, flat int8; empty when unknown) for the loop's ``wave_s``. ``green_for_s`` is
    the time each group has shown green, updated here; ``standing``, ``released`` and
    ``n_blocked`` are scratch arrays."""
    for k in range(standing_s.shape[0]):
        standing[k] = standing_s[k] >= blocked_after_s
    if shown.shape[0] > 0 and down_loop.shape[0] > 0:
        for c in range(green_for_s.shape[0]):
            green_for_s[c] = green_for_s[c] + dt_s if shown[c] == GREEN else 0.0
        released[:] = False
        for k in range(down_loop.shape[0]):
            if green_for_s[down_col[k]] >= wave_s[down_loop[k]]:
                released[down_loop[k]] = True
        for k in range(standing.shape[0]):
            standing[k] = standing[k] and (not controlled[k] or released[k])
    n_blocked[:] = 0
    for k in range(exit_loop.shape[0]):
        if standing[exit_loop[k]]:
            n_blocked[exit_col[k]] += 1
    for c in range(out.shape[0]):
        out[c] = n_exits[c] > 0 and 2 * n_blocked[c] >= n_exits[c]


class _Domain:
    """Objects of one domain subscribed to the same variables, read into one array per variable.

    Objects are subscribed in sorted id order. libsumo returns ``getAllSubscriptionResults()``
    sorted by id (a ``std::map``), TraCI in subscription order: the same order either way.
    Each tick checks that the results hold exactly these ids in this order (one tuple
    comparison in C, about 3 us for 200 ids) and then copies each variable with one
    ``np.fromiter(map(itemgetter(var), results))``: no Python bytecode per object. Any other
    layout (someone else subscribed objects of the same domain) is read by id.
    """

    def __init__(self, ids: Iterable[str], variables: Sequence[int]) -> None:
        self.ids = tuple(sorted(set(ids)))
        self.vars = tuple(variables)
        self._get = [itemgetter(v) for v in self.vars]

    def __len__(self) -> int:
        return len(self.ids)

    def subscribe(self, domain: Any) -> None:
        for k in self.ids:
            domain.subscribe(k, list(self.vars))

    def read(self, res: dict[str, dict[int, Any]]) -> list[np.ndarray]:
        """One float array per variable, in ``self.ids`` order."""
        rows: Iterable[dict[int, Any]] = (
            res.values() if len(res) == len(self.ids) and tuple(res) == self.ids
            else [res[k] for k in self.ids]
        )
        return [np.fromiter(map(get, rows), dtype=np.float64, count=len(self.ids)) for get in self._get]


class _Getters:
    """The same objects and variables as :class:`_Domain`, read with libsumo's direct getters.

    One ``np.fromiter(map(getter, ids))`` per variable: the getter runs in C for every id,
    with no Python bytecode per object. In-process (libsumo), a direct getter computes one
    value on request, where a subscription makes SUMO compute, store in a map of
    ``shared_ptr`` results, clear again and convert to Python dicts every value of every
    subscribed object every step (see the module docstring for the figures).
    """

    def __init__(self, ids: Iterable[str], getters: Sequence[Callable[[str], float]]) -> None:
        self.ids = tuple(sorted(set(ids)))
        self._getters = tuple(getters)

    def __len__(self) -> int:
        return len(self.ids)

    def read(self) -> list[np.ndarray]:
        """One float array per getter, in ``self.ids`` order."""
        n = len(self.ids)
        return [np.fromiter(map(get, self.ids), dtype=np.float64, count=n) for get in self._getters]


class Observer:
    """Subscriptions made once, read once per tick, aggregated into one reused Observation.

    ``lanes_only=True`` subscribes only the incoming lanes, for the per-intersection queue
    measure of a run under SUMO's own programs (no detectors there). ``direct=True`` (libsumo
    only) reads lanes and loops with direct getters instead of subscriptions, the cheaper path
    in-process; over a TraCI socket every getter is a round trip, and subscriptions are cheaper.
    Both give the same values.
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
        person_details: bool = False,
        direct: bool = False,
    ) -> None:
        self.conn = conn
        self.direct = direct
        # V2X emulation (ivri.sumo.v2x) reads the same person context subscription, with the
        # type, position on the crossing and heading too: one subscription per junction, as
        # TraCI keeps only the last one.
        self.person_vars = [VAR_ROAD_ID, VAR_NEXT_EDGE] + (
            [VAR_TYPE, VAR_LANEPOSITION, VAR_ANGLE] if person_details else [])
        #: This tick's persons near signalised crossings: {id: {variable: value}} (in memory only).
        self.persons: dict[str, dict[int, Any]] = {}
        self.net = net
        self.dt_s = float(dt_s)
        self.lanes_only = lanes_only
        n_i, n_g = net.timing.valid.shape
        self._n_i = n_i

        # --- lanes: incoming (queue, approach, stats) and outgoing (downstream queue) ----------
        in_pairs: list[tuple[str, int]] = []
        out_pairs: list[tuple[str, int]] = []
        stat_pairs: set[tuple[str, int]] = set()
        for i, lm in enumerate(link_maps):
            for g in range(lm.n_groups):
                for lane in lm.approach_lanes(g):
                    in_pairs.append((lane, i * n_g + g))
                    stat_pairs.add((lane, i))
                if not lanes_only:
                    out_pairs.extend((lane, i * n_g + g) for lane in lm.out_lanes[g])
        lane_vars = ((LAST_STEP_VEHICLE_HALTING_NUMBER,) if lanes_only
                     else (LAST_STEP_VEHICLE_HALTING_NUMBER, LAST_STEP_VEHICLE_NUMBER))
        self._lanes = _Domain([a for a, _ in in_pairs + out_pairs], lane_vars)
        self.lane_ids = self._lanes.ids
        lane_getters = {LAST_STEP_VEHICLE_HALTING_NUMBER: conn.lane.getLastStepHaltingNumber,
                        LAST_STEP_VEHICLE_NUMBER: conn.lane.getLastStepVehicleNumber}
        self._lane_getters = _Getters(self.lane_ids, [lane_getters[v] for v in lane_vars])
        pos = {lane: k for k, lane in enumerate(self.lane_ids)}
        self._in_lane, self._in_col = self._split([(pos[a], c) for a, c in in_pairs if not lanes_only])
        self._out_lane, self._out_col = self._split([(pos[a], c) for a, c in out_pairs])
        self._stat_lane, self._stat_i = self._split(sorted((pos[a], i) for a, i in stat_pairs))
        self._halting = np.zeros(len(self.lane_ids))
        self._vehicles = np.zeros(len(self.lane_ids))
        self._halting_s = np.zeros(len(self.lane_ids))  # per lane, summed every step (cheap)

        # --- detectors: one domain for every loop (its time since detection and mean speed) --
        loops = [d for d in detectors if d.kind in ("stopline", "extension", "exit")] if not lanes_only else []
        self._loops = _Domain([d.id for d in loops], (LAST_STEP_TIME_SINCE_DETECTION, LAST_STEP_MEAN_SPEED))
        self.loop_ids = self._loops.ids
        # Direct reads: the time since detection of every loop; the mean speed (a scan of the
        # vehicles on the loop inside SUMO) only of the exit loops that are occupied now, the
        # only loops whose speed anything reads (see read()).
        self._loop_getters = _Getters(self.loop_ids, [conn.inductionloop.getTimeSinceDetection])
        self._loop_speed = conn.inductionloop.getLastStepMeanSpeed
        if len(self.loop_ids) != len(loops):
            raise ValueError("Observer: two detectors share an id")
        loop_pos = {d: k for k, d in enumerate(self.loop_ids)}
        gap_pairs = _gap_pairs(loops, loop_pos, n_g)
        self._gap_loop, self._gap_col = self._split([(k, c) for k, c, _ in gap_pairs])
        self._gap_lag = np.array([lag for _, _, lag in gap_pairs], dtype=np.float64)
        self._loop_since = np.full(len(loops), NO_DETECTION_S)
        # Exit loops: a vehicle standing over one blocks that exit.
        self._exit_loop, self._exit_col = self._split(
            [(loop_pos[d.id], i * n_g + g) for d in loops if d.kind == "exit" for i, g in d.targets])
        self._n_exits = np.bincount(self._exit_col, minlength=n_i * n_g)
        self._standing_s = np.zeros(len(loops))
        self._exit_idx = np.unique(self._exit_loop)
        self._speed = np.full(len(loops), np.inf)
        # An exit lane that is the stop-line lane of a controlled group: a vehicle standing at
        # its red is no spillback. It blocks once that group has been green long enough for
        # the start-up wave to reach the loop and the vehicle still stands.
        feeds: dict[str, list[int]] = {}
        for i, lm in enumerate(link_maps):
            for g in range(lm.n_groups):
                for lane in lm.in_lanes[g]:
                    feeds.setdefault(lane, []).append(i * n_g + g)
        exit_dets = [d for d in loops if d.kind == "exit"]
        self._down_loop, self._down_col = self._split(
            [(loop_pos[d.id], c) for d in exit_dets for c in feeds.get(d.lane, ())])
        self._controlled = np.zeros(len(loops), dtype=bool)
        self._controlled[self._down_loop] = True
        self._wave_s = np.zeros(len(loops))
        for d in exit_dets:
            if d.lane in feeds:
                ahead_m = max(float(conn.lane.getLength(d.lane)) - d.pos_m, 0.0)
                self._wave_s[loop_pos[d.id]] = EXIT_BLOCKED_S + START_WAVE_S_PER_M * ahead_m
        self._green_for_s = np.zeros(n_i * n_g)
        self._standing = np.zeros(len(loops), dtype=np.bool_)
        self._released = np.zeros(len(loops), dtype=np.bool_)
        self._n_blocked = np.zeros(n_i * n_g, dtype=np.int64)
        self._no_shown = np.zeros(0, dtype=np.int8)

        # --- pedestrians: (walking area, crossing) -> columns -----------------------------------
        self._ped_key: dict[tuple[str, str], list[int]] = {}
        ped_junctions: set[str] = set()
        if not lanes_only:
            for i, lm in enumerate(link_maps):
                for g in range(lm.n_groups):
                    for crossing in lm.crossings[g]:
                        for wa in lm.waiting_areas[g]:
                            self._ped_key.setdefault((wa, crossing), []).append(i * n_g + g)
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
        if not self.direct:
            self._loops.subscribe(c.inductionloop)
            self._lanes.subscribe(c.lane)
        for j in self.person_junctions:
            cx, cy = c.junction.getPosition(j)
            shape = c.junction.getShape(j) or [(cx, cy)]
            radius = max(float(np.hypot(x - cx, y - cy)) for x, y in shape) + PERSON_RANGE_MARGIN_M
            c.junction.subscribeContext(j, CMD_GET_PERSON_VARIABLE, radius, self.person_vars)

    @property
    def crossing_calls(self) -> dict[tuple[str, str], list[int]]:
        """(walking area, crossing) -> the flat ``[I, G]`` columns a person there calls:
        someone on that walking area whose next edge is that crossing wants to cross."""
        return self._ped_key

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
            values = (self._lane_getters.read() if self.direct
                      else self._lanes.read(c.lane.getAllSubscriptionResults()))
            self._halting = values[0]
            self._halting_s += self._halting
            if self.lanes_only:
                return
            self._vehicles = values[1]
        if self.lanes_only:
            return
        if self.loop_ids:
            if self.direct:
                (since,) = self._loop_getters.read()
                speed = self._speed
                occupied = self._exit_idx[since[self._exit_idx] <= 0.0]
                if len(occupied):
                    # Only the exit loops with a vehicle over them now, a handful per step; a
                    # speed read earlier stays unused while its loop is free (since > 0).
                    speed[occupied] = np.fromiter(
                        map(self._loop_speed, map(self.loop_ids.__getitem__, occupied.tolist())),
                        dtype=np.float64, count=len(occupied))
            else:
                since, speed = self._loops.read(c.inductionloop.getAllSubscriptionResults())
            self._loop_since = since
            if len(self._exit_loop):
                # Occupied (no time since detection) and no vehicle passed at speed: a vehicle
                # that stays on the loop all step reads a mean speed of -1.
                standing = (since <= 0.0) & (speed < EXIT_STANDING_MPS)
                self._standing_s = np.where(standing, self._standing_s + self.dt_s, 0.0)
        if self.person_junctions:
            # A person near two junctions counts once (one dict); then (road, next edge) of each
            # person -> the columns it calls. All iteration happens in C.
            found = c.junction.getAllContextSubscriptionResults().values()
            persons = dict(chain.from_iterable(map(dict.items, found)))
            self.persons = persons
            calls = map(self._ped_key.get, map(_ROAD_NEXT, persons.values()), repeat(()))
            self._ped_cols = np.fromiter(chain.from_iterable(calls), dtype=np.intp)

    def observation(self, t_s: float, shown: np.ndarray | None = None) -> Observation:
        """Aggregate the last :meth:`read` into the reused :class:`Observation` (``[I, G]``).

        ``shown`` (int8 ``[I, G]``, the states SUMO showed during the last step) tells which
        exits stand at a red of a controlled group (no spillback); without it every vehicle
        standing over an exit loop for :data:`EXIT_BLOCKED_S` blocks its exit."""
        obs = self.obs
        obs.t_s = t_s
        _aggregate(self._halting, self._vehicles, self._loop_since, self._ped_cols,
                   self._in_lane, self._in_col, self._out_lane, self._out_col,
                   self._gap_loop, self._gap_col, self._gap_lag, CALL_WINDOW_S, self.dt_s,
                   obs.queue_veh.reshape(-1), obs.approach_veh.reshape(-1),
                   obs.downstream_queue_veh.reshape(-1), obs.gap_s.reshape(-1), obs.demand.reshape(-1),
                   obs.detector_occupied.reshape(-1))
        if obs.exit_blocked is not None:
            _exit_blocked(self._standing_s, EXIT_BLOCKED_S, self._exit_loop, self._exit_col, self._n_exits,
                          self._down_loop, self._down_col, self._controlled, self._wave_s,
                          self._no_shown if shown is None else shown.reshape(-1), self._green_for_s,
                          self.dt_s, self._standing, self._released, self._n_blocked,
                          obs.exit_blocked.reshape(-1))
        return obs
