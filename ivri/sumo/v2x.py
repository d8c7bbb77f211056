"""V2X emulation: the connected road users of a SUMO run, as the priority applications see them.

A configurable share of each kind of road user is *equipped* (an on-board unit, or the
app): emergency vehicles, buses and trucks send CAM-like status, cyclists with the Schwung
app send requests with their movement and arrival, slow pedestrians with the Crosswalk app
announce themselves at the crossing. Each tick :class:`V2XEmulator` turns them into one
:class:`~ivri.controllers.v2x.V2XObservation`, the same rows the MQTT gateway makes from
real CAMs and SREMs.

How it reads SUMO (measured on corridor:peak, 3000 steps: SUMO alone 2.4 s):

* Vehicles: a junction *context* subscription of every vehicle within 300 m of the five
  junctions, with only the vehicle type, costs 3.9 s (and 5.3 s with position and speed):
  SUMO builds a result for every vehicle around, equipped or not, every step. Instead the
  emulator subscribes to the departures (one subscription), decides at departure whether a
  vehicle is equipped (one type lookup per departing vehicle, not per tick), and subscribes
  only the equipped ones to speed, time loss and ``VAR_NEXT_TLS`` (the next traffic light on
  its route, the link index it will use and the distance to it: intersection, signal group
  and distance in one value). Per tick, one ``getAllSubscriptionResults()``.
* Pedestrians: the person context subscription of the :class:`~ivri.sumo.observe.Observer`
  (persons within each junction with a signalised crossing), extended with type, position on
  the crossing and heading.

Who is equipped is a deterministic function of the seed and the SUMO id
(:func:`equipped_mask`), so that treatment and baseline runs with the same seed have the
same app users, and their trips can be picked out of the tripinfo afterwards.

The safety KPIs (emergency vehicles passing at red, persons caught on a crossing) are counted
by :class:`ivri.sumo.safety.SafetyWatch` with or without emulation; the emulator hands it the
emergency vehicles it reads anyway (:attr:`V2XEmulator.emergency_now`) and who carries the
Crosswalk app (:attr:`V2XEmulator.person_app_now`). Identities stay in memory; only counts
leave this module.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import itemgetter
from typing import Any

import numpy as np

# TraCI's variable ids, from SUMO's own table (importing this module loads traci; the bridge
# imports it only when V2X emulation is on).
from traci.constants import (
    VAR_ARRIVED_VEHICLES_IDS,
    VAR_DEPARTED_VEHICLES_IDS,
    VAR_NEXT_TLS,
    VAR_POSITION,
    VAR_SPEED,
    VAR_TIMELOSS,
)

from ivri.controllers.v2x import Role, V2XObservation
from ivri.core.compile import CompiledNetwork
from ivri.errors import ConfigError
from ivri.sumo.network import TlsLinkMap
from ivri.sumo.observe import (
    VAR_ANGLE,
    VAR_LANEPOSITION,
    Observer,
)
from ivri.sumo.safety import Crossings, StopLines
from ivri.sumo.v2x_options import DEFAULT_SHARES

__all__ = ["DEFAULT_SHARES", "V2XEmulator", "V2XStats", "equipped_mask"]

#: The equipped road users whose on-board unit or app sends a (verified) request: ``app``.
#: Priority comes only from a request, never from a CAM (see ivri.gateway.ingest).
_REQUESTING = (Role.EMERGENCY, Role.BUS, Role.TRUCK, Role.CYCLIST)

_ROLE_OF_VCLASS: dict[str, Role] = {
    "emergency": Role.EMERGENCY,
    "bus": Role.BUS,
    "coach": Role.BUS,
    "truck": Role.TRUCK,
    "trailer": Role.TRUCK,
    "bicycle": Role.CYCLIST,
    "passenger": Role.CAR,
    "taxi": Role.CAR,
    "delivery": Role.CAR,
}
_SHARE_OF_ROLE = {Role.EMERGENCY: "emergency", Role.BUS: "bus", Role.TRUCK: "truck",
                  Role.CYCLIST: "cyclist", Role.CAR: "car"}

_POS, _ANGLE = itemgetter(VAR_LANEPOSITION), itemgetter(VAR_ANGLE)
_SPEED, _TIMELOSS, _NEXT_TLS_VALUE = itemgetter(VAR_SPEED), itemgetter(VAR_TIMELOSS), itemgetter(VAR_NEXT_TLS)

def equipped_mask(ids: Iterable[str], share: float, seed: int, kind: str) -> np.ndarray:
    """bool per id: equipped with probability ``share``, the same for the same seed and id."""
    ids = list(ids)
    if share >= 1.0 or share <= 0.0:
        return np.full(len(ids), share >= 1.0, dtype=np.bool_)
    out = [
        int.from_bytes(hashlib.blake2b(f"{seed}:{kind}:{i}".encode(), digest_size=8).digest(), "little")
        / 2.0**64 < share
        for i in ids
    ]
    return np.asarray(out, dtype=np.bool_)


@dataclass
class V2XStats:
    """What the emulator counted over a run (no identities)."""

    equipped: dict[str, int]
    advice_commands: int = 0             # speed advice set or changed (GLOSA, apply_advice)
    advice_releases: int = 0             # advice ended: the vehicle drives on its own again
    advice_starts: int = 0               # a vehicle without advice got one

    def to_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()}


class V2XEmulator:
    """Connected road users of a SUMO run, read each tick (see the module docstring).

    Parameters: ``conn`` (libsumo or traci), ``net`` and ``link_maps`` of the run, the
    run's ``observer`` (made with ``person_details=True``), ``sumo_net`` (the sumolib network,
    for the crossings' geometry), ``shares`` (overrides of :data:`DEFAULT_SHARES`),
    ``range_m`` (vehicles farther from their next stop line are not reported) and ``seed``.
    ``positions=True`` also subscribes the equipped vehicles to position and angle, for
    :meth:`kinematics` (the co-simulation's CAMs, :mod:`ivri.cosim`).
    ``cam_period_s`` is how often a vehicle sends a CAM: the applications see the vehicles as
    they were at their last CAM (0, the default: every step; ETSI's CAM rate is 1-10 Hz).
    """

    def __init__(
        self,
        conn: Any,
        net: CompiledNetwork,
        link_maps: Sequence[TlsLinkMap],
        observer: Observer,
        sumo_net: Any,
        *,
        shares: dict[str, float] | None = None,
        range_m: float = 1000.0,
        seed: int = 0,
        positions: bool = False,
        cam_period_s: float = 0.0,
        crossings: Crossings | None = None,
    ) -> None:
        unknown = set(shares or {}) - set(DEFAULT_SHARES)
        if unknown:
            raise ConfigError(f"unknown V2X share(s) {sorted(unknown)}; valid: {', '.join(DEFAULT_SHARES)}")
        self.conn = conn
        self.net = net
        self.observer = observer
        self.shares = {**DEFAULT_SHARES, **(shares or {})}
        self.range_m = float(range_m)
        if not float(cam_period_s) >= 0.0:
            raise ConfigError(f"V2X emulation: cam_period_s must be >= 0, got {cam_period_s}")
        self.cam_period_s = float(cam_period_s)
        self._cam_at_s = -math.inf
        self._vehicles = V2XObservation.empty()
        self.seed = int(seed)
        self._vars = [VAR_SPEED, VAR_TIMELOSS, VAR_NEXT_TLS] + ([VAR_POSITION, VAR_ANGLE] if positions else [])
        self._last: dict[str, Any] = {}
        self._n_g = net.timing.valid.shape[1]
        self.stop_lines = StopLines(link_maps)
        self.crossings = crossings if crossings is not None else Crossings(conn, link_maps, observer, sumo_net)
        self._tokens: dict[str, int] = {}
        self._roles: dict[str, int] = {}
        self._vid_of_token: dict[int, str] = {}  # in memory only, for apply_advice
        self._adv_tok = np.zeros(0, np.int64)    # advice in force (sorted by token)
        self._adv_v = np.zeros(0, np.float64)
        self._next_token = 1
        self._person_app: dict[str, bool] = {}
        self._person_token: dict[str, int] = {}
        #: Emergency vehicles near a controlled stop line in the last read, ``{token:
        #: (intersection, group, distance_m)}``, and which persons near the crossings (in the
        #: order of ``crossings.classify``) carry the Crosswalk app: for the safety KPIs
        #: (:class:`ivri.sumo.safety.SafetyWatch`).
        self.emergency_now: dict[int, tuple[int, int, float]] = {}
        self.person_app_now = np.zeros(0, np.bool_)
        self.stats = V2XStats(equipped=dict.fromkeys(DEFAULT_SHARES, 0))
        self.obs = V2XObservation.empty()
        #: With ``track_equipped`` (the GUI sets it), every road user that becomes equipped is
        #: appended to ``equipped_new`` as (SUMO id, role, is a person) for the caller to take.
        self.track_equipped = False
        self.equipped_new: list[tuple[str, int, bool]] = []
        conn.simulation.subscribe([VAR_DEPARTED_VEHICLES_IDS, VAR_ARRIVED_VEHICLES_IDS])

    # --- vehicles --------------------------------------------------------------------------

    def _on_departures(self, departed: Sequence[str], arrived: Sequence[str]) -> None:
        veh = self.conn.vehicle
        for vid in departed:
            role = _ROLE_OF_VCLASS.get(veh.getVehicleClass(vid))
            if role is None:
                continue
            kind = _SHARE_OF_ROLE[role]
            if not equipped_mask([vid], self.shares[kind], self.seed, kind)[0]:
                continue
            veh.subscribe(vid, self._vars)
            self._tokens[vid] = self._next_token
            self._roles[vid] = int(role)
            self._vid_of_token[self._next_token] = vid
            self._next_token += 1
            self.stats.equipped[kind] += 1
            if self.track_equipped:
                self.equipped_new.append((vid, int(role), False))
        for vid in arrived:
            self._vid_of_token.pop(self._tokens.get(vid, 0), None)
            self._tokens.pop(vid, None)
            self._roles.pop(vid, None)

    def _vehicle_rows(self, t_s: float, state: np.ndarray) -> V2XObservation:
        res = self._last = self.conn.vehicle.getAllSubscriptionResults()
        ids = list(res)
        vals = list(res.values())
        n = len(ids)
        if n == 0:
            self.emergency_now = {}
            return V2XObservation.empty()
        speed = np.fromiter(map(_SPEED, vals), np.float64, n)
        timeloss = np.fromiter(map(_TIMELOSS, vals), np.float64, n)
        inter, group, dist, ours = self.stop_lines.locate(list(map(_NEXT_TLS_VALUE, vals)))
        role = np.fromiter(map(self._roles.get, ids, repeat(int(Role.CAR))), np.int8, n)
        token = np.fromiter(map(self._tokens.get, ids, repeat(0)), np.int64, n)
        m = ours & (dist <= self.range_m)  # near a controlled stop line
        ev = m & (role == Role.EMERGENCY)
        self.emergency_now = dict(zip(token[ev].tolist(), zip(inter[ev].tolist(), group[ev].tolist(),
                                                              dist[ev].tolist(), strict=True), strict=True))
        return V2XObservation(
            token=token[m], intersection=inter[m], group=group[m], distance_m=dist[m],
            speed_mps=speed[m], role=role[m], siren=role[m] == Role.EMERGENCY,
            app=np.isin(role[m], _REQUESTING), slow=np.zeros(int(m.sum()), np.bool_),
            on_crossing=np.zeros(int(m.sum()), np.bool_),
            # A bus's delay against its timetable: its time loss so far (the bundled buses run
            # to a timetable of free flow plus dwell times).
            lateness_s=np.where(role[m] == Role.BUS, timeloss[m], 0.0),
        )

    # --- pedestrians -----------------------------------------------------------------------

    def _person_rows(self) -> V2XObservation:
        """Slow crossers with the app (at the kerb or on the crossing). Array work over the
        persons near the crossings; Python only for the rare events (a new app user)."""
        near = self.crossings.classify(self.observer.persons)
        ids, vals, slow, k, kerb = near.ids, near.values, near.slow, near.k, near.kerb
        n = len(ids)
        if n == 0:
            self.person_app_now = np.zeros(0, np.bool_)
            return V2XObservation.empty()
        on = k >= 0
        cross = self.crossings
        ci, cg = cross.cross_i[np.maximum(k, 0)], cross.cross_g[np.maximum(k, 0)]
        close = slow & (on | (kerb >= 0))
        if close.any():
            new = set(compress(ids, close)) - self._person_app.keys()
            if new:
                new_ids = sorted(new)
                eq = equipped_mask(new_ids, self.shares["slow_pedestrian"], self.seed, "slow_pedestrian")
                self._person_app.update(zip(new_ids, eq.tolist(), strict=True))
                self.stats.equipped["slow_pedestrian"] += int(eq.sum())
                if self.track_equipped:
                    self.equipped_new.extend((p, int(Role.PEDESTRIAN), True) for p in compress(new_ids, eq))
        app = close & np.fromiter(map(self._person_app.get, ids, repeat(False)), np.bool_, n)
        self.person_app_now = app
        if len(self._person_app) > 20000:  # forget persons long gone (memory stays bounded)
            self._person_app = {p: self._person_app[p] for p in ids if p in self._person_app}
            self._person_token = {p: self._person_token[p] for p in ids if p in self._person_token}

        sel = app & (on | (kerb >= 0))
        m = int(sel.sum())
        if m == 0:
            return V2XObservation.empty()
        pos = np.fromiter(map(_POS, vals), np.float64, n)[sel]
        angle = np.fromiter(map(_ANGLE, vals), np.float64, n)[sel]
        on_s, k_s, kerb_s = on[sel], k[sel], kerb[sel]
        length, heading = cross.length_m[np.maximum(k_s, 0)], cross.heading_deg[np.maximum(k_s, 0)]
        ahead = np.cos(np.radians(angle - heading)) >= 0.0
        return V2XObservation(
            token=np.fromiter(map(self._ptoken, compress(ids, sel)), np.int64, m),
            intersection=np.where(on_s, ci[sel], kerb_s // self._n_g),
            group=np.where(on_s, cg[sel], kerb_s % self._n_g),
            distance_m=np.where(on_s, np.maximum(np.where(ahead, length - pos, pos), 0.0), 0.0),
            speed_mps=np.zeros(m), role=np.full(m, int(Role.PEDESTRIAN)), siren=np.zeros(m, np.bool_),
            app=np.ones(m, np.bool_), slow=np.ones(m, np.bool_), on_crossing=on_s,
            lateness_s=np.zeros(m),
        )

    def _ptoken(self, pid: str) -> int:
        tok = self._person_token.get(pid)
        if tok is None:
            tok = self._person_token[pid] = self._next_token
            self._next_token += 1
        return tok

    def kinematics(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Equipped vehicles of the last :meth:`read` (made with ``positions=True``): SUMO ids,
        role (int8), x and y (m, network coordinates), angle (degrees clockwise from north)
        and speed (m/s). The ids stay with the caller (who must not publish them)."""
        ids = [v for v, r in self._last.items() if VAR_POSITION in r and v in self._roles]
        vals = [self._last[v] for v in ids]
        n = len(ids)
        xy = np.array([v[VAR_POSITION] for v in vals], np.float64).reshape(n, 2)
        return (ids, np.fromiter(map(self._roles.__getitem__, ids), np.int8, n), xy[:, 0], xy[:, 1],
                np.fromiter(map(_ANGLE, vals), np.float64, n), np.fromiter(map(_SPEED, vals), np.float64, n))

    def vehicle_id(self, token: int) -> str | None:
        """The SUMO id of the equipped vehicle with ``token`` (None: a person, or gone). For
        the GUI only: the id stays in memory and is never written to a result."""
        return self._vid_of_token.get(int(token))

    def apply_advice(self, token: np.ndarray, speed_mps: np.ndarray, tol_mps: float = 0.3) -> int:
        """Make the equipped vehicles follow speed advice (GLOSA); returns the TraCI calls.

        ``token`` / ``speed_mps``: the advice in force now (one row per advised vehicle; a
        vehicle not listed has none). Only changes reach SUMO: a new advice or one that moved
        by more than ``tol_mps`` is set with ``vehicle.setSpeed`` (SUMO's default speed mode
        still keeps safe gaps and stops at red), an advice that ended is released with
        ``setSpeed(id, -1)``. Array work against the last advice; Python only per change.
        """
        tok = np.asarray(token, np.int64)
        order = np.argsort(tok, kind="stable")
        tok, v = tok[order], np.asarray(speed_mps, np.float64)[order]
        old_t, old_v = self._adv_tok, self._adv_v
        pos = np.minimum(np.searchsorted(old_t, tok), max(len(old_t) - 1, 0))
        known = (old_t[pos] == tok) if len(old_t) else np.zeros(len(tok), np.bool_)
        prev = old_v[pos] if len(old_t) else v
        changed = ~known | (np.abs(v - prev) > tol_mps)
        ended = ~np.isin(old_t, tok, assume_unique=True)
        veh, calls = self.conn.vehicle, 0
        for t, speed in zip(tok[changed].tolist(), v[changed].tolist(), strict=True):
            vid = self._vid_of_token.get(t)
            if vid is not None:
                veh.setSpeed(vid, speed)
                calls += 1
        for t in old_t[ended].tolist():
            vid = self._vid_of_token.get(t)
            if vid is not None:  # arrived vehicles (tokens dropped in read) need no release
                veh.setSpeed(vid, -1.0)
                calls += 1
        self.stats.advice_commands += int(changed.sum())
        self.stats.advice_starts += int((~known).sum())
        self.stats.advice_releases += int(ended.sum())
        self._adv_tok, self._adv_v = tok, np.where(changed, v, prev)
        return calls

    # --- per tick ---------------------------------------------------------------------------

    def read(self, t_s: float, state: np.ndarray) -> V2XObservation:
        """This tick's connected road users; ``state`` is the core's signal state (``[I, G]``)."""
        sim = self.conn.simulation.getSubscriptionResults()
        self._on_departures(sim.get(VAR_DEPARTED_VEHICLES_IDS, ()), sim.get(VAR_ARRIVED_VEHICLES_IDS, ()))
        # The measurements (emergency passages) need every step; what the applications see
        # of the vehicles is their last CAM, sent every cam_period_s (0: every step).
        vehicles = self._vehicle_rows(t_s, state)
        if t_s - self._cam_at_s >= self.cam_period_s - 1e-9:
            self._vehicles, self._cam_at_s = vehicles, t_s
        vehicles = self._vehicles
        people = self._person_rows()
        self.obs = V2XObservation.concat([vehicles, people]) if len(people) else vehicles
        return self.obs
