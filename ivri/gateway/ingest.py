"""From CAMs and SREMs to the V2X rows the priority applications read.

One slot per (station, intersection) in struct-of-array tables, written in place by each
message (a few scalar stores: the per-message cost stays small at 10,000+ CAMs/s) and turned
into a :class:`~ivri.controllers.v2x.V2XObservation` once per tick with numpy (the approach
matching of :class:`~ivri.gateway.site.SiteTable` runs vectorised over all slots).

* CAM -> position, heading, speed, role: ``vehicle_role`` emergency with the light bar *and*
  the siren on -> ``Role.EMERGENCY``, ``siren``; station type bus (6) or tram (11), or
  ``vehicle_role`` publicTransport -> ``Role.BUS``; cyclist (2) / pedestrian (1) / trucks
  (7, 8) likewise. A CAM *describes*, it never requests: its row has ``app=False``, and the
  priority applications act only on rows with ``app=True`` (a verified request). A CAM
  from the station of a verified request refines that request's distance and speed (the
  ETA), never its role, class or lifetime. ``allow_cam_priority`` (off by default; closed
  test sites and simulation only) lets CAM rows of emergency vehicles, buses and trucks ask.
* verified SREM -> ``app=True``, the signal group of its in-bound lane (or approach), and
  its ETA (``minute`` + ``second``; without them the CAM's distance and speed, or
  ``default_eta_s``). A bus with a verified request counts as ``srem_bus_lateness_s`` late:
  its on-board unit asks only when it runs late, as in Dutch KAR practice. A request
  belongs to the ticket that signed it (:attr:`PendingRequest.owner`): only that ticket may
  update or cancel it, and an update never lowers its class.
* Bounds: at most ``max_slots`` slots; when full, the slots with the fewest and oldest CAMs
  and no request are evicted (a flood of made-up station ids cannot grow the table or push
  out a request). A station's CAMs above its rate (a token bucket) and CAMs that jump faster
  than ``max_jump_mps`` are refused (see :meth:`StationTable.put_cam`).
* A slot expires ``station_ttl_s`` after its last CAM (the station left the area) and its
  request at the ETA plus the requested duration plus ``request_grace_s`` (or
  ``request_ttl_s`` after the last SREM when there is no ETA).

Privacy: station ids live only in :attr:`StationTable.index` and the per-request SSEM
bookkeeping, in memory, for as long as the slot lives. Rows carry a per-run token instead.
Nothing here logs.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import numpy as np

from ivri.controllers.base import NO_DETECTION_S
from ivri.controllers.v2x import Role, V2XObservation
from ivri.geo import distance_m
from ivri.its import Cam

__all__ = [
    "APP_BY_ROLE",
    "CLASS_BY_REQUESTOR",
    "CLASS_RANK",
    "ROLE_BY_CLASS",
    "PendingRequest",
    "StationTable",
    "detector_view",
    "eta_from_srem",
    "minute_of_year",
]

#: SREM requestor role (DSRC BasicVehicleRole) -> priority class the key must hold.
CLASS_BY_REQUESTOR: dict[str, str] = {
    "emergency": "emergency", "police": "emergency", "fire": "emergency",
    "ambulance": "emergency", "roadRescue": "emergency",
    "publicTransport": "public_transport", "transit": "public_transport",
    "truck": "freight",
    "cyclist": "cyclist_app",
    "pedestrian": "pedestrian_app",
}
ROLE_BY_CLASS: dict[str, Role] = {
    "emergency": Role.EMERGENCY, "public_transport": Role.BUS, "freight": Role.TRUCK,
    "cyclist_app": Role.CYCLIST, "pedestrian_app": Role.PEDESTRIAN,
}
#: The priority application that serves a role's requests (its app_code keys the request).
APP_BY_ROLE: dict[int, str] = {
    int(Role.EMERGENCY): "greenflow", int(Role.BUS): "bus", int(Role.TRUCK): "truck",
    int(Role.CYCLIST): "schwung", int(Role.PEDESTRIAN): "crosswalk",
}
_NOMINAL_SPEED = {  # m/s, for rows known only from an SREM's ETA
    int(Role.CAR): 10.0, int(Role.EMERGENCY): 15.0, int(Role.BUS): 10.0, int(Role.TRUCK): 10.0,
    int(Role.CYCLIST): 5.0, int(Role.PEDESTRIAN): 1.2,
}
_CAM_PRIORITY_ROLES = np.array([int(Role.EMERGENCY), int(Role.BUS), int(Role.TRUCK)])
_CAM_PRIORITY_ROLE_SET = frozenset(_CAM_PRIORITY_ROLES.tolist())
_GNSS_NOISE_M = 20.0
_STATION_ROLE = {1: Role.PEDESTRIAN, 2: Role.CYCLIST, 6: Role.BUS, 7: Role.TRUCK, 8: Role.TRUCK,
                 11: Role.BUS}


def minute_of_year(unix_s: float) -> tuple[int, int]:
    """(MinuteOfTheYear, DSecond in ms) of a Unix time, UTC."""
    import datetime as dt

    t = dt.datetime.fromtimestamp(unix_s, dt.UTC)
    start = dt.datetime(t.year, 1, 1, tzinfo=dt.UTC)
    s = (t - start).total_seconds()
    minute = int(s // 60)
    return minute, round((s - minute * 60) * 1000) % 60000


def eta_from_srem(minute: int, second_ms: int, now_unix_s: float) -> float:
    """Seconds from now to (minute of year, ms), handling the turn of the year."""
    now_min, now_ms = minute_of_year(now_unix_s)
    eta = (minute - now_min) * 60.0 + (second_ms - now_ms) / 1000.0
    year_s = 366 * 86400.0
    if eta < -year_s / 2:
        eta += year_s
    elif eta > year_s / 2:
        eta -= year_s
    return eta


#: Rank of the ticket's priority classes (an update may not lower a request's rank).
CLASS_RANK: dict[str, int] = {"emergency": 5, "pedestrian_app": 4, "public_transport": 3,
                              "freight": 2, "cyclist_app": 1}


@dataclass
class PendingRequest:
    """What an SSEM needs to answer one SREM request, and who owns it (in memory only)."""

    station_id: int
    request_id: int
    sequence_number: int
    role: str                 # the requestor's BasicVehicleRole
    lane: int | None
    approach: int | None
    key: int                  # the arbiter's request key
    app: str                  # the application that should serve it
    owner: tuple[str, str] = ("", "")  # (issuer, ticket id) of the ticket that signed it
    rank: int = 0             # CLASS_RANK of its priority class
    client: str = ""          # the MQTT login it came from ("" if unknown): its SSEM topic
    last_status: str = ""     # the latest status decided for it
    sent_status: str = ""     # the latest status handed to the broker in an SSEM


class StationTable:
    """Slots of stations near intersections (struct of arrays, grown by doubling)."""

    _FLOAT = ("lat", "lon", "heading", "speed", "lateness", "last_cam", "req_eta_at",
              "req_until", "cam_eta", "cam_tokens")
    _INT = ("inter", "token", "req_group", "station", "cams")
    _SMALL = ("role",)
    _BOOL = ("active", "has_cam", "siren", "has_req", "slow")

    def __init__(self, capacity: int = 1024, *, max_slots: int = 10_000,
                 allow_cam_priority: bool = False) -> None:
        if max_slots < 1:
            raise ValueError("max_slots must be at least 1")
        self.max_slots = max_slots
        self.allow_cam_priority = allow_cam_priority
        self.evicted = 0
        self.capacity = 0
        capacity = min(capacity, max_slots)
        for name in self._FLOAT:
            setattr(self, name, np.zeros(0))
        for name in self._INT:
            setattr(self, name, np.zeros(0, dtype=np.int64))
        for name in self._SMALL:
            setattr(self, name, np.zeros(0, dtype=np.int8))
        for name in self._BOOL:
            setattr(self, name, np.zeros(0, dtype=np.bool_))
        self._grow(capacity)
        self.index: dict[tuple[int, int], int] = {}   # (station id, intersection) -> slot
        self.requests: dict[int, PendingRequest] = {}  # slot -> its SREM request
        self._tokens: dict[int, list[int]] = {}        # station id -> [token, slot count]
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        self._next_token = secrets.randbits(30) + 1

    # -- slots -----------------------------------------------------------------------------

    def _grow(self, capacity: int) -> None:
        old = self.capacity
        for name in (*self._FLOAT, *self._INT, *self._SMALL, *self._BOOL):
            a = getattr(self, name)
            b = np.zeros(capacity, dtype=a.dtype)
            b[:old] = a
            setattr(self, name, b)
        self.capacity = capacity
        if old:
            self._free.extend(range(capacity - 1, old - 1, -1))

    def slot(self, station_id: int, inter: int) -> int:
        """The slot of a station at an intersection, created (empty) when new; -1 when the
        table is full of requests (slots without a request are evicted to make room)."""
        key = (station_id, inter)
        s = self.index.get(key)
        if s is not None:
            return s
        if not self._free:
            if self.capacity < self.max_slots:
                self._grow(min(self.capacity * 2, self.max_slots))
            elif not self._evict():
                return -1
        s = self._free.pop()
        self.index[key] = s
        tok = self._tokens.get(station_id)
        if tok is None:
            tok = self._tokens[station_id] = [self._next_token, 0]
            self._next_token += 1
        tok[1] += 1
        self.active[s] = True
        self.inter[s] = inter
        self.station[s] = station_id
        self.token[s] = tok[0]
        self.has_cam[s] = False
        self.has_req[s] = False
        self.siren[s] = False
        self.slow[s] = False
        self.cams[s] = 0
        self.cam_tokens[s] = math.inf  # a full bucket, whatever its size
        self.last_cam[s] = -math.inf
        self.role[s] = Role.CAR
        self.heading[s] = math.nan
        self.speed[s] = 0.0
        self.lateness[s] = 0.0
        self.req_group[s] = -1
        return s

    def _release(self, s: int) -> None:
        self._drop(s, int(self.station[s]))

    def _evict(self) -> bool:
        """Free the slots (a sixteenth of the table) with the fewest and oldest CAMs and no request."""
        cand = np.nonzero(self.active & ~self.has_req)[0]
        if len(cand) == 0:
            return False
        k = max(1, self.max_slots // 16)
        # Stations seen a few times outrank one-off ids (a flood of made-up ids goes first).
        order = np.lexsort((self.last_cam[cand], np.minimum(self.cams[cand], 3)))
        for s in cand[order[:k]].tolist():
            self._release(s)
        self.evicted += min(k, len(cand))
        return True

    def _drop(self, s: int, station_id: int) -> None:
        del self.index[(station_id, int(self.inter[s]))]
        self.requests.pop(s, None)
        tok = self._tokens[station_id]
        tok[1] -= 1
        if tok[1] == 0:
            del self._tokens[station_id]
        self.active[s] = False
        self.has_cam[s] = False
        self.has_req[s] = False
        self._free.append(s)

    def __len__(self) -> int:
        return len(self.index)

    # -- messages --------------------------------------------------------------------------

    def put_cam(self, cam: Cam, inter: int, now: float, *, rate_per_s: float = math.inf,
                burst: float = 5.0, max_jump_mps: float = math.inf) -> str | None:
        """Store a decoded CAM (the caller has checked the position and the site region).

        Returns None when stored, else why not: ``cam_over_rate`` (the station's token bucket
        of ``rate_per_s`` and ``burst`` CAMs is empty: ETSI stations send at most 10 a
        second, a burst allows for network jitter), ``implausible_jump`` (moved faster than
        ``max_jump_mps`` since its last CAM, by more than GNSS noise), ``station_table_full``.
        """
        s = self.slot(cam.header.station_id, inter)
        if s < 0:
            return "station_table_full"
        pos = cam.reference_position
        lat, lon = pos.latitude / 1e7, pos.longitude / 1e7
        if self.has_cam[s]:
            dt = now - self.last_cam[s]
            tokens = min(burst, self.cam_tokens[s] + max(dt, 0.0) * rate_per_s)
            if tokens < 1.0:
                return "cam_over_rate"
            self.cam_tokens[s] = tokens - 1.0
            moved = distance_m((self.lat[s], self.lon[s]), (lat, lon))
            if moved > _GNSS_NOISE_M and moved > max_jump_mps * max(dt, 0.0):
                return "implausible_jump"
        else:
            self.cam_tokens[s] = burst - 1.0
        self.lat[s] = lat
        self.lon[s] = lon
        self.heading[s] = math.nan if cam.heading >= 3600 else cam.heading / 10.0
        self.speed[s] = 0.0 if cam.speed == 16383 else cam.speed / 100.0
        self.last_cam[s] = now
        self.cams[s] += 1
        self.has_cam[s] = True
        if not self.has_req[s]:
            role = _STATION_ROLE.get(cam.station_type, Role.CAR)
            siren = False
            if cam.vehicle_role == "emergency" or cam.emergency_container is not None:
                role = Role.EMERGENCY
                ec = cam.emergency_container
                siren = ec is not None and ec.light_bar_activated and ec.siren_activated
            elif cam.vehicle_role == "publicTransport" or cam.public_transport_container is not None:
                role = Role.BUS
            self.role[s] = role
            self.siren[s] = siren
        return None

    def asks(self, s: int) -> bool:
        """Slot ``s`` carries a priority request: a verified one, or (``allow_cam_priority``)
        the CAMs of an emergency vehicle, bus or truck. A message that changes such a slot
        changes what the priority applications decide."""
        return bool(self.has_req[s]) or (self.allow_cam_priority and int(self.role[s]) in _CAM_PRIORITY_ROLE_SET)

    def put_request(self, s: int, *, role: Role, group: int, eta_s: float | None,
                    duration_s: float, now: float, ttl_s: float, grace_s: float,
                    bus_lateness_s: float, pending: PendingRequest) -> bool:
        """Store a verified SREM request in slot ``s``. True if it is a new request."""
        old = self.requests.get(s)
        new = old is None or old.request_id != pending.request_id or old.key != pending.key
        if not new:
            pending.last_status = old.last_status
            pending.sent_status = old.sent_status
        self.requests[s] = pending
        self.has_req[s] = True
        self.role[s] = role
        self.siren[s] = role == Role.EMERGENCY  # a verified emergency request: lights and siren
        self.slow[s] = role == Role.PEDESTRIAN
        self.lateness[s] = bus_lateness_s if role == Role.BUS else 0.0
        self.req_group[s] = group
        if eta_s is None:
            self.req_eta_at[s] = math.nan
            self.req_until[s] = now + ttl_s
        else:
            self.req_eta_at[s] = now + eta_s
            self.req_until[s] = max(now + eta_s + duration_s + grace_s, now + grace_s)
        return new

    def cancel_request(self, s: int) -> None:
        self.requests.pop(s, None)
        self.has_req[s] = False
        self.req_group[s] = -1
        self.siren[s] = False
        if not self.has_cam[s]:
            self._release(s)

    # -- per tick --------------------------------------------------------------------------

    def expire(self, now: float, station_ttl_s: float) -> int:
        """Drop requests past their time and slots with neither a fresh CAM nor a request."""
        act = self.active
        req_over = act & self.has_req & (self.req_until < now)
        for s in np.nonzero(req_over)[0]:
            self.requests.pop(int(s), None)
        self.has_req[req_over] = False
        self.req_group[req_over] = -1
        cam_old = act & self.has_cam & (now - self.last_cam > station_ttl_s)
        self.has_cam[cam_old] = False
        gone = act & ~self.has_cam & ~self.has_req
        if not gone.any():
            return 0
        slots = np.nonzero(gone)[0].tolist()
        for s in slots:
            self._release(s)
        return len(slots)

    def observation(self, sites, now: float, default_eta_s: float) -> V2XObservation:
        """The V2X rows of this tick: every slot that belongs to an approach or has a request."""
        idx = np.nonzero(self.active)[0]
        if len(idx) == 0:
            return V2XObservation.empty()
        has_cam = self.has_cam[idx]
        has_req = self.has_req[idx]
        cam_group, cam_dist = sites.match(self.inter[idx], self.lat[idx], self.lon[idx],
                                          np.where(has_cam, self.heading[idx], np.nan))
        cam_group = np.where(has_cam, cam_group, -1)
        role = self.role[idx]
        speed = self.speed[idx]
        req_group = self.req_group[idx]
        group = np.where(has_req & (req_group >= 0), req_group, cam_group)
        nominal = np.array([_NOMINAL_SPEED.get(int(r), 10.0) for r in range(6)])[role]
        eta = self.req_eta_at[idx] - now
        eta = np.where(np.isnan(eta), default_eta_s, np.maximum(eta, 0.0))
        use_cam = has_cam & (cam_group == group) & np.isfinite(cam_dist)
        row_speed = np.where(use_cam | (has_cam & (speed > 1.0)), speed, nominal)
        dist = np.where(use_cam, cam_dist, eta * np.maximum(row_speed, 1.0))
        keep = (group >= 0) & (use_cam | has_req)
        sel = idx[keep]
        app = self.has_req[sel]
        if self.allow_cam_priority:  # closed test sites only: a CAM may ask (see module doc)
            app = app | np.isin(role[keep], _CAM_PRIORITY_ROLES)
        return V2XObservation(
            token=self.token[sel], intersection=self.inter[sel], group=group[keep],
            distance_m=dist[keep], speed_mps=row_speed[keep], role=role[keep],
            siren=self.siren[sel], app=app, slow=self.slow[sel],
            on_crossing=np.zeros(len(sel), dtype=np.bool_), lateness_s=self.lateness[sel],
        )


def detector_view(v2x: V2XObservation, shape: tuple[int, int], extension_m: float,
                  always_demand: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Demand, gap, queue and approach counts per group from the V2X rows (no detectors).

    A group is called when a row belongs to it; a moving road user within ``extension_m`` of
    the stop line stands in for an extension-detector occupation (gap 0 s); slow ones near
    the stop line are queued.
    """
    demand = np.zeros(shape, dtype=np.bool_)
    gap = np.full(shape, NO_DETECTION_S)
    queue = np.zeros(shape)
    approach = np.zeros(shape)
    if len(v2x):
        i, g = v2x.intersection, v2x.group
        demand[i, g] = True
        np.add.at(approach, (i, g), 1.0)
        near = v2x.distance_m <= extension_m
        moving = near & (v2x.speed_mps > 1.0)
        gap[i[moving], g[moving]] = 0.0
        halted = near & ~moving
        np.add.at(queue, (i[halted], g[halted]), 1.0)
    if always_demand is not None:
        demand |= always_demand
    return demand, gap, queue, approach

