"""Co-simulation: SUMO's connected vehicles talk MQTT to the live gateway, which drives SUMO's lights.

::

    ivri run corridor:short -c actuated+greenflow --v2x mqtt://127.0.0.1:1883

closes the loop SUMO -> MQTT -> gateway -> MQTT -> SUMO:

* **Site file from the network** (:func:`build_sites`): per controlled intersection its ITS id
  (position + 1), the SignalGroupID of each group (position + 1) and one approach per
  incoming lane: the stop line (end of the lane's shape), the direction of travel (its last
  segment), a range of the lane's length plus :data:`RANGE_MARGIN_M` (so that a vehicle
  before the upstream intersection does not match) and the heading tolerance. A lane shared
  by several groups goes to the group of its straight movement (else the group with most
  of its links): a CAM tells where a vehicle is, not where it turns. Pedestrian groups have
  no approach. Coordinates: the network's own projection when it has one
  (``net.hasGeoProj()``), else a local equirectangular mapping of network x/y (metres,
  x east, y north) around :data:`REF_LAT_LON` (52.0 N, 5.0 E); both sides (site file and
  CAMs) use the same :class:`GeoMapping`.
* **CAMs**: every ``cam_period_s`` of simulated time (0.5 s by default; at most once per
  SUMO step) each equipped vehicle of the :class:`~ivri.sumo.v2x.V2XEmulator` (every
  emergency vehicle, bus and truck, the cyclists with the app; ``--share``) publishes a CAM
  (:func:`ivri.its.encode_json`) with position, heading, speed, station type and role
  (emergency: ``vehicleRole`` emergency, light bar and siren on; bus: publicTransport) to
  ``ivri/<region>/<intersection>/cam`` of every intersection it approaches (the gateway's own
  approach matching, run on the SUMO side too: CAMs that the gateway would ignore are not
  sent, which halves the traffic on the corridor). Station ids are per-run random
  pseudonyms, never SUMO ids; they stay in memory only.
  SREMs (app requests) are not sent: the gateway sees app users only through their CAMs.
* **Transport**: both sides talk through one :class:`~ivri.gateway.transport.Connector`: MQTT
  for ``mqtt://`` / ``mqtts://`` URLs, or a :class:`~ivri.gateway.transport.MemoryBroker` in
  the process for ``memory://`` (no broker to run; the messages are the same bytes).
* **Gateway**: a :class:`~ivri.gateway.service.GatewayService` in this process, in
  ``external_clock`` mode: it ticks once per SUMO step (lockstep) at the simulated time,
  with ``spat_every_s`` = the step, so every tick publishes one SPATEM per intersection.
  Its demand comes from SUMO's detectors through the service's ``demand_source`` hook
  (the bridge's :class:`~ivri.controllers.base.Observation`): the gateway has no detectors,
  and demand from CAMs alone would starve the unequipped majority, while ``always_demand``
  would turn vehicle-actuated control into a fixed cycle; with the hook the base
  controller sees exactly what it sees in an in-process run, and only the V2X rows
  (priority) travel over MQTT. The core's conflict monitor runs in the gateway.
* **Loop**, all in the calling thread: one asyncio event loop is kept and driven between
  SUMO steps (``run_until_complete`` per step; no thread): publish the step's CAMs, wait
  until the gateway has received them, ``tick_once``, wait for the SPATEM of that tick of
  every intersection, map its movement states back to RED / GREEN / AMBER per group
  (protected/permissive-Movement-Allowed -> GREEN, protected/permissive-clearance ->
  AMBER, anything else RED) and return the state for :meth:`SumoBridge.actuate
  <ivri.sumo.bridge.SumoBridge.actuate>` with the intersections that changed. Each wait
  has a timeout (``timeout_s``) that raises :class:`~ivri.errors.SimulationError`.

The default topic region is ``sumo`` (``ivri/sumo/<tls id>/...``) so that a co-simulation
does not mix with live intersections on a shared broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np

from ivri.config import NetworkConfig
from ivri.controllers.base import Observation
from ivri.controllers.v2x import Role
from ivri.core.idx import AMBER, GREEN, RED
from ivri.errors import ConfigError, SimulationError
from ivri.gateway.service import GatewayService
from ivri.gateway.settings import gateway_settings
from ivri.gateway.site import EARTH_RADIUS_M, GatewaySites
from ivri.gateway.transport import (
    Connector,
    Transport,
    TransportError,
    connector_for,
    is_memory_url,
    parse_broker_url,
)
from ivri.its import (
    Cam,
    EmergencyContainer,
    ItsPduHeader,
    ReferencePosition,
    decode_json,
    encode_json,
)
from ivri.sumo.network import TlsLinkMap

__all__ = ["DEFAULT_REGION", "REF_LAT_LON", "CoSimulation", "GeoMapping", "build_sites", "check_broker"]

#: Reference point of the local mapping for networks without a geo-reference (lat, lon).
REF_LAT_LON = (52.0, 5.0)
#: Topic region of co-simulations: ``ivri/sumo/<intersection>/...``.
DEFAULT_REGION = "sumo"
#: An approach's range: the incoming lane's length plus this.
RANGE_MARGIN_M = 10.0
HEADING_TOLERANCE_DEG = 35.0

_STATE_OF_PHASE = {
    "protected-Movement-Allowed": GREEN, "permissive-Movement-Allowed": GREEN,
    "protected-clearance": AMBER, "permissive-clearance": AMBER,
}
# Role -> (StationType, vehicleRole)
_CAM_ROLE: dict[int, tuple[int, str | None]] = {
    int(Role.EMERGENCY): (10, "emergency"), int(Role.BUS): (6, "publicTransport"),
    int(Role.TRUCK): (8, None), int(Role.CYCLIST): (2, None), int(Role.CAR): (5, None),
    int(Role.PEDESTRIAN): (1, None),
}
_SIREN = EmergencyContainer(light_bar_siren_in_use=("lightBarActivated", "sirenActivated"))


class GeoMapping:
    """Network x/y (m) -> WGS84 lat/lon (degrees), vectorised.

    The network's projection when it has one; else equirectangular around ``ref``
    (x east, y north, metres; accurate to centimetres over a few kilometres).
    """

    def __init__(self, sumo_net: Any = None, ref: tuple[float, float] = REF_LAT_LON) -> None:
        self.ref = ref
        self._net = sumo_net if sumo_net is not None and _has_geo(sumo_net) else None
        self.projected = self._net is not None
        self._k_lat = math.degrees(1.0 / EARTH_RADIUS_M)
        self._k_lon = self._k_lat / math.cos(math.radians(ref[0]))

    def to_latlon(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if self._net is None:
            return self.ref[0] + y * self._k_lat, self.ref[1] + x * self._k_lon
        ll = [self._net.convertXY2LonLat(float(a), float(b)) for a, b in zip(x.ravel(), y.ravel(), strict=True)]
        lon = np.array([p[0] for p in ll], np.float64).reshape(x.shape)
        lat = np.array([p[1] for p in ll], np.float64).reshape(x.shape)
        return lat, lon


def _has_geo(sumo_net: Any) -> bool:
    try:
        if not sumo_net.hasGeoProj():
            return False
        sumo_net.convertXY2LonLat(0.0, 0.0)  # needs pyproj
        return True
    except Exception:  # noqa: BLE001 - sumolib raises plain Exceptions here
        return False


def check_broker(url: str, timeout_s: float = 3.0) -> None:
    """Raise a one-line :class:`ConfigError` when ``url`` is not an MQTT URL or nothing
    listens there (a TCP connect, no MQTT session); ``memory://`` is always there."""
    if is_memory_url(url):
        return
    host, port, _ = parse_broker_url(url)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"MQTT broker {host}:{port} ({url}) is not reachable ({reason}); "
                          f"start one, e.g. `mosquitto -p {port}`") from None


def _lane_group(lane: Any, lm: TlsLinkMap, candidates: list[int]) -> int:
    """The group a lane's vehicles most likely use: its straight movement's, else its most common."""
    votes: Counter[int] = Counter()
    for c in lane.getOutgoing():
        k = c.getTLLinkIndex()
        if c.getTLSID() != lm.tls_id or not 0 <= k < lm.n_links:
            continue
        g = int(lm.group_of_link[k])
        if g in candidates:
            votes[g] += 1
            if c.getDirection() == "s":
                return g
    return votes.most_common(1)[0][0] if votes else candidates[0]


def build_sites(config: NetworkConfig, link_maps: Sequence[TlsLinkMap], sumo_net: Any,
                geo: GeoMapping, *, tolerance_deg: float = HEADING_TOLERANCE_DEG) -> GatewaySites:
    """The gateway's site models of the network's controlled intersections (see the module docstring)."""
    sites = []
    for i, (x, lm) in enumerate(zip(config.intersections, link_maps, strict=True)):
        groups = x.group_ids()
        if len(groups) > 255:
            raise ConfigError(f"intersection {x.id!r}: more than 255 signal groups for SignalGroupIDs")
        by_lane: dict[str, list[int]] = {}
        for g, lanes in enumerate(lm.in_lanes):
            for ln in lanes:
                by_lane.setdefault(ln, []).append(g)
        approaches = []
        for n, (lane_id, cands) in enumerate(by_lane.items(), start=1):
            if n > 255:
                raise ConfigError(f"intersection {x.id!r}: more than 255 incoming lanes for MAPEM lane ids")
            lane = sumo_net.getLane(lane_id)
            shape = lane.getShape()
            (x0, y0), (x1, y1) = shape[-2], shape[-1]
            heading = math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360.0
            lat, lon = geo.to_latlon(np.array([x1]), np.array([y1]))
            approaches.append({
                "signal_group": groups[_lane_group(lane, lm, cands)],
                "stop_line": (float(lat[0]), float(lon[0])), "heading_deg": heading,
                "heading_tolerance_deg": tolerance_deg,
                "range_m": min(max(float(lane.getLength()) + RANGE_MARGIN_M, 30.0), 3000.0),
                "lane_ids": (n,),
            })
        ref = None
        coords = [sumo_net.getNode(j).getCoord() for j in lm.junctions if sumo_net.hasNode(j)]
        if coords:
            lat, lon = geo.to_latlon(np.array([np.mean([c[0] for c in coords])]),
                                     np.array([np.mean([c[1] for c in coords])]))
            ref = (float(lat[0]), float(lon[0]))
        sites.append({
            "intersection": x.id, "its_id": i + 1, "ref_point": ref,
            "signal_group_numbers": {gid: k + 1 for k, gid in enumerate(groups)},
            "approaches": approaches,
        })
    return GatewaySites.model_validate({"sites": sites})


class CoSimulation:
    """The SUMO side of a co-simulation, and the gateway it talks to (see the module docstring).

    ``bridge`` is a started :class:`~ivri.sumo.bridge.SumoBridge` made with
    ``v2x=V2XOptions(positions=True, ...)``; ``config`` the network config of its intersections
    (derived from the network when None); ``broker_url`` ``mqtt://...`` or ``memory://``, or
    ``connector`` a transport of the caller's. Use as a context manager, or :meth:`start`
    then :meth:`exchange` once per step and :meth:`close`.
    """

    def __init__(
        self,
        bridge: Any,
        broker_url: str,
        *,
        controller: str = "actuated+greenflow",
        controller_params: dict[str, Any] | None = None,
        config: NetworkConfig | None = None,
        region: str = DEFAULT_REGION,
        cam_period_s: float = 0.5,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        decision_log: Any = None,
        connector: Connector | None = None,
    ) -> None:
        if bridge.compiled is None or bridge.v2x is None or bridge.actuator is None:
            raise SimulationError("co-simulation needs a started SumoBridge with control and V2X emulation")
        if not (math.isfinite(cam_period_s) and cam_period_s > 0):
            raise ConfigError(f"cam_period_s must be positive, not {cam_period_s}")
        settings = gateway_settings(
            broker_url=broker_url, region=region, controller=controller,
            controller_params=controller_params or {}, tick_s=bridge.dt_s, spat_every_s=bridge.dt_s,
            external_clock=True, client_id=f"ivri-cosim-gw-{secrets.token_hex(4)}",
            # SUMO's equipped vehicles send CAMs only: in the simulation, the CAM of an
            # equipped emergency vehicle, bus or truck stands in for its signed request.
            allow_cam_priority=True,
        )
        self.url = broker_url
        # Lockstep sends bursts of small messages and waits for the answers: low latency.
        self.connector = connector if connector is not None else connector_for(
            broker_url, low_latency=True, timeout_s=connect_timeout_s)
        self.bridge = bridge
        self.net = bridge.compiled
        sumo_net = bridge.sumo_net
        if config is None:
            from ivri.sumo.network import derive_intersections

            configs, _ = derive_intersections(sumo_net, program_id=bridge.program_id)
            config = NetworkConfig(intersections=tuple(configs))
        if tuple(x.id for x in config.intersections) != self.net.intersection_ids or tuple(
                tuple(x.group_ids()) for x in config.intersections) != self.net.group_ids:
            raise SimulationError("co-simulation: the gateway's intersections differ from the bridge's")
        self.geo = GeoMapping(sumo_net)
        self.sites = build_sites(config, bridge.link_maps, sumo_net, self.geo)
        self.cam_period_s = float(cam_period_s)
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self._obs: Observation | None = None
        self.gateway = GatewayService(config, settings, sites=self.sites, connector=self.connector,
                                      demand_source=self._demand, decision_log=decision_log)
        n_i, n_g = self.net.timing.valid.shape
        self.topics = self.gateway.topics
        self._site_table = self.gateway.sites
        self._cam_topic = [self.topics.topic(x, "cam") for x in self.net.intersection_ids]
        self._inter_of_topic = {self.topics.topic(x, "spatem"): i for i, x in enumerate(self.net.intersection_ids)}
        self._col_of_number = [{int(s.numbers[g]): g for g in range(n_g) if self.net.timing.valid[i, g]}
                               for i, s in enumerate(self.gateway.sites.sites)]
        # Reach of each intersection: farthest stop line from its centre plus its range.
        self._centre = np.zeros((n_i, 2))
        self._reach = np.zeros(n_i)
        for i, lm in enumerate(bridge.link_maps):
            ends = [sumo_net.getLane(ln).getShape()[-1] for lanes in lm.in_lanes for ln in lanes]
            lens = [sumo_net.getLane(ln).getLength() for lanes in lm.in_lanes for ln in lanes]
            if ends:
                c = np.mean(np.array(ends), axis=0)
                self._centre[i] = c
                self._reach[i] = max(math.dist(c, e) + ln + RANGE_MARGIN_M for e, ln in zip(ends, lens, strict=True))
        self.state = np.full((n_i, n_g), RED, dtype=np.int8)
        self._applied = self.state.copy()
        self._spat_count = np.zeros(n_i, dtype=np.int64)
        self._spat_state: list[np.ndarray] = [self.state[i].copy() for i in range(n_i)]
        self._spat_target = 0
        self._pseudonym: dict[str, int] = {}
        self._used: set[int] = set()
        self._next_cam_s = -math.inf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gw_task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._client: Transport | None = None
        self._conflict = self.net.timing.conflict & self.net.timing.valid[:, None, :] & self.net.timing.valid[:, :, None]
        # Counters (no identities).
        self.ticks = 0
        self.cams_sent = 0
        self.spatem_received = 0
        self.spatem_bad = 0
        self.conflicting_greens = 0
        self.tls_changes = 0
        self.exchange_s = 0.0
        self.max_exchange_s = 0.0

    # ------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Check the broker, start the gateway and the vehicles' MQTT client, wait until both are up."""
        check_broker(self.url, self.connect_timeout_s)
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._start())
        except BaseException:
            self.close()
            raise

    async def _start(self) -> None:
        self._gw_task = asyncio.create_task(self.gateway.run(), name="ivri-cosim-gateway")
        try:
            self._client = await self.connector.connect(client_id=f"ivri-cosim-veh-{secrets.token_hex(4)}",
                                                        on_message=self._on_message)
            await self._client.subscribe(f"{self.topics.root}/{self.topics.region}/+/spatem", qos=0)
        except TransportError as exc:
            self._client = None
            raise SimulationError(f"co-simulation: {exc}") from None
        self._watch = asyncio.create_task(self._watch_client(self._client))
        await self._wait(lambda: self.gateway.status == "online", self.connect_timeout_s,
                         f"the gateway to connect to {self.url}")

    async def _watch_client(self, client: Transport) -> None:
        async for _ in client.messages():  # messages go to _on_message; this only waits
            pass

    def close(self) -> None:
        """Stop the gateway (it publishes ``offline``) and disconnect. Idempotent."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            loop.run_until_complete(self._close())
        finally:
            loop.close()

    async def _close(self) -> None:
        self.gateway.stop()
        if self._gw_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._gw_task, 5.0)
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, TransportError):
                await self._watch
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------- per step

    def exchange(self, t_s: float, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """One lockstep tick: CAMs out, the gateway ticks, its SPATEM back.

        Returns the signal state (``int8 [I, G]``, the core's codes) and the intersections
        whose state changed since the last call (for :meth:`SumoBridge.actuate`).
        """
        if self._loop is None:
            raise SimulationError("co-simulation is not running: call start() first")
        started = time.perf_counter()
        self._obs = obs
        cams = self._cams(t_s) if t_s >= self._next_cam_s - 1e-9 else []
        if cams:
            self._next_cam_s = t_s + self.cam_period_s
        self._loop.run_until_complete(self._exchange(t_s, cams))
        changed = (self.state != self._applied).any(axis=1)
        if changed.any():
            self._applied[...] = self.state
            self.tls_changes += int(changed.sum())
            green = self.state == GREEN
            self.conflicting_greens += int((self._conflict & green[:, :, None] & green[:, None, :]).any(axis=(1, 2)).sum())
        dt = time.perf_counter() - started
        self.exchange_s += dt
        self.max_exchange_s = max(self.max_exchange_s, dt)
        return self.state, changed

    async def _exchange(self, t_s: float, cams: list[tuple[str, bytes]]) -> None:
        gw = self.gateway
        if gw.status != "online" or self._client is None:
            raise SimulationError(f"co-simulation at t={t_s:g} s: the gateway lost the broker {self.url}")
        gw.clock_s = t_s
        if cams:
            target = gw.received["cam"] + len(cams)
            try:  # all at once: paho writes them in one go instead of one loop turn each
                await asyncio.gather(*(self._client.publish(topic, payload, qos=0) for topic, payload in cams))
            except TransportError as exc:
                raise SimulationError(f"co-simulation at t={t_s:g} s: publishing CAMs failed: {exc}") from None
            self.cams_sent += len(cams)
            await self._wait(lambda: gw.received["cam"] >= target, self.timeout_s,
                             f"the gateway to receive the CAMs of t={t_s:g} s")
        self.ticks += 1
        self._spat_target = self.ticks
        await gw.tick_once(t_s)
        await self._wait(lambda: bool((self._spat_count >= self._spat_target).all()), self.timeout_s,
                         f"the SPATEM of t={t_s:g} s from the gateway (broker {self.url})")
        for i in range(len(self._spat_state)):
            self.state[i] = self._spat_state[i]

    async def _wait(self, cond: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not cond():
            if self._gw_task is not None and self._gw_task.done():
                exc = self._gw_task.exception() if not self._gw_task.cancelled() else None
                raise SimulationError(f"co-simulation: the gateway stopped while waiting for {what}"
                                      + (f": {exc}" if exc else "")) from exc
            if time.monotonic() > deadline:
                raise SimulationError(f"co-simulation: timed out after {timeout_s:g} s waiting for {what}")
            self.connector.expedite()
            await asyncio.sleep(0.0002)

    def _on_message(self, topic: str, payload: bytes, retain: bool = False) -> None:
        i = self._inter_of_topic.get(topic)
        if i is None:
            return
        try:
            msg = decode_json(bytes(payload), "spatem")
            cols = self._col_of_number[i]
            row = np.full(self.state.shape[1], RED, dtype=np.int8)
            for s in msg.intersections[0].states:
                g = cols.get(s.signal_group)
                if g is not None:
                    row[g] = _STATE_OF_PHASE.get(s.state_time_speed[0].event_state, RED)
        except Exception:  # noqa: BLE001 - a foreign or broken message: count it, keep the last state
            self.spatem_bad += 1
            return
        self._spat_state[i] = row
        self._spat_count[i] += 1
        self.spatem_received += 1

    def _cams(self, t_s: float) -> list[tuple[str, bytes]]:
        emu = self.bridge.v2x
        ids, role, x, y, angle, speed = emu.kinematics()
        live = set(ids)
        for vid in [v for v in self._pseudonym if v not in live]:  # left the network: forget
            self._used.discard(self._pseudonym.pop(vid))
        if not ids:
            return []
        d = np.hypot(x[:, None] - self._centre[None, :, 0], y[:, None] - self._centre[None, :, 1])
        near = d <= self._reach[None, :]
        if not near.any():
            return []
        lat, lon = self.geo.to_latlon(x, y)
        # Only to the intersections the vehicle approaches (the gateway would ignore the rest;
        # this keeps the message count down where intersections are close together).
        for i in np.flatnonzero(near.any(axis=0)):
            rows = np.flatnonzero(near[:, i])
            group, _ = self._site_table.match(np.full(len(rows), i, np.int64), lat[rows], lon[rows], angle[rows])
            near[rows, i] = group >= 0
        gdt = round(t_s * 1000.0) % 65536
        out: list[tuple[str, bytes]] = []
        for k in np.flatnonzero(near.any(axis=1)):
            st_type, v_role = _CAM_ROLE.get(int(role[k]), (0, None))
            cam = Cam(
                header=ItsPduHeader(message_id=2, station_id=self._station(ids[k])),
                generation_delta_time=gdt, station_type=st_type,
                reference_position=ReferencePosition(latitude=round(float(lat[k]) * 1e7),
                                                     longitude=round(float(lon[k]) * 1e7)),
                heading=round(float(angle[k]) * 10.0) % 3600, speed=min(round(float(speed[k]) * 100.0), 16382),
                vehicle_role=v_role, emergency_container=_SIREN if v_role == "emergency" else None,
            )
            payload = encode_json(cam)
            out.extend((self._cam_topic[i], payload) for i in np.flatnonzero(near[k]))
        return out

    def _station(self, vid: str) -> int:
        sid = self._pseudonym.get(vid)
        if sid is None:
            sid = secrets.randbelow(4294967295) + 1
            while sid in self._used:
                sid = secrets.randbelow(4294967295) + 1
            self._pseudonym[vid] = sid
            self._used.add(sid)
        return sid

    def _demand(self) -> Observation:
        if self._obs is None:
            return Observation.empty(self.net)
        return self._obs

    # ------------------------------------------------------------------------------ stats

    def stats(self) -> dict[str, Any]:
        """Counters of the SUMO side and of the gateway (no identities)."""
        return {
            "broker": self.connector.address, "region": self.gateway.topics.region,
            "geo": "network projection" if self.geo.projected else
                   f"local equirectangular around {self.geo.ref[0]} N {self.geo.ref[1]} E",
            "ticks": self.ticks, "cams_sent": self.cams_sent, "spatem_received": self.spatem_received,
            "spatem_bad": self.spatem_bad, "tls_changes": self.tls_changes,
            "conflicting_greens": self.conflicting_greens,
            "approaches": sum(len(s.approaches) for s in self.sites.sites),
            "mean_exchange_ms": round(1000.0 * self.exchange_s / max(self.ticks, 1), 3),
            "max_exchange_ms": round(1000.0 * self.max_exchange_s, 3),
            "gateway": self.gateway.stats(),
        }
