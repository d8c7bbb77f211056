"""The live gateway: MQTT in, the engine every tick, SPATEM / SSEM / MAPEM out.

::

    service = GatewayService(load_network_config("docs/gateway-example.toml"),
                             gateway_settings(broker_url="mqtt://127.0.0.1:1883", tick_s=0.5),
                             sites=load_gateway_sites("docs/gateway-example-sites.toml"))
    asyncio.run(service.run())      # until service.stop()

Three asyncio tasks share one event loop:

* the **engine loop** ticks every ``tick_s`` of wall time: V2X rows from the station table
  (:mod:`ivri.gateway.ingest`), an :class:`~ivri.controllers.base.Observation` (demand from
  the messages: there are no detectors in live mode; ``always_demand`` makes every group
  call so that the base controller cycles), the controller, :class:`~ivri.core.engine.SignalCore`
  (monitor on), then SSEMs for requests whose status changed and SPATEM every
  ``spat_every_s`` and at once whenever an aspect or the priority status changed. It never
  waits for the broker or for incoming messages. It does not wait for the tick either when a
  priority request arrives, changes or ends (a verified SREM, a CAM of a station that asks):
  the controller decides the next tick at once (:meth:`GatewayService.decide_now`) and the
  SSEMs and SPATEM that decision changes go out at once; the core still advances at the
  tick's time, on its fixed step, so no minimum green, amber or intergreen is shortened.
* the **MQTT loop** connects (new connections from its :class:`~ivri.gateway.transport.Connector`
  per attempt: aiomqtt, or in memory in tests and co-simulation), publishes
  ``status`` and the retained MAPEM, subscribes to ``cam`` and, on a connection of its own
  (so that a CAM flood does not queue in front of a priority request), to ``srem``; it puts every
  incoming message in a bounded inbox (CAMs: ``inbox_size``; SREMs: one of their own; when
  full the message is dropped and counted in ``dropped["cam_inbox_full"]`` /
  ``["srem_inbox_full"]``): receiving costs a few cheap checks and a list append.
  On a broker loss it retries with exponential backoff (``reconnect_min_s`` doubling up to
  ``reconnect_max_s``) while the engine loop goes on with local control from what it still
  knows: the signal state is never reset. SSEM status changes decided while offline are sent
  on reconnect. The MQTT last will sets ``status`` to ``offline``, as does :meth:`stop`.
* the **ingest loop** drains the inbox in slices of at most ``ingest_slice_s`` and yields to
  the engine loop between slices, so that a flood delays the tick by one slice at most.

Safe state: any exception in a tick (a controller, the V2X rows, a safety violation found by
the core's monitor, a bug) hands every intersection to the local fallback (the base
controller without priority applications; if that fails too, fixed time), publishes
``status`` ``fallback`` and keeps the core running; :attr:`faults` counts them.

Authorised priority only: a CAM never creates or raises a priority request; priority comes
from SREMs signed under an authorisation ticket (:mod:`ivri.gateway.security`,
:mod:`ivri.gateway.tickets`) that allows the class at this intersection, and a request
belongs to the ticket that signed it. ``allow_cam_priority`` (off by default, with a warning
in the log) lets CAMs of emergency vehicles, buses and trucks ask, for closed test sites and
simulation.

Hostile input: work per message is bounded and cheap checks come first (topic, size,
per-login CAM budget, then decode; for SREMs the ticket checks and failed-verification
budgets before any signature is checked, and the signature before the SREM is decoded).
A bad message is counted in :attr:`rejected` (by reason) and logged in one line (at most
one line per reason every ``log_every_s``: a flood must not become a log flood) and never
stops the gateway. Refused SREMs are counted in :attr:`refused` by reason. Logs never carry
station ids, ticket ids or logins.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import numpy as np

from ivri.config import NetworkConfig
from ivri.controllers import APPLICATIONS, FixedTime, PriorityArbiter, make_controller
from ivri.controllers.arbiter import ACTING
from ivri.controllers.base import Controller, Observation
from ivri.controllers.priority import request_keys
from ivri.core.compile import compile_network
from ivri.core.engine import SignalCore
from ivri.engine import Engine
from ivri.errors import ConfigError, SafetyViolation
from ivri.gateway.ingest import (
    APP_BY_ROLE,
    CLASS_BY_REQUESTOR,
    CLASS_RANK,
    ROLE_BY_CLASS,
    PendingRequest,
    StationTable,
    detector_view,
    eta_from_srem,
)
from ivri.gateway.security import RequestVerifier, TokenBuckets, TrustStore
from ivri.gateway.settings import GatewaySettings
from ivri.gateway.site import GatewaySites, SiteTable
from ivri.gateway.spat import SSEM_STATUS, build_mapem, build_spatem, build_ssem
from ivri.gateway.topics import (
    STATUS_FALLBACK,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Codec,
    TopicLayout,
    make_codec,
)
from ivri.gateway.transport import (
    Connector,
    MqttConnector,
    Transport,
    TransportError,
    Will,
    is_memory_url,
    tls_context,
)
from ivri.its import MessageError

__all__ = ["GatewayService"]

log = logging.getLogger("ivri.gateway")

_MAX_OUTBOX = 10_000
_MAX_SPEED_MPS = 70.0       # 252 km/h: faster is not a road user near an intersection
_MAX_JUMP_MPS = 100.0       # position change between two CAMs faster than this: implausible
_CAM_RATE_PER_S = 12.0      # ETSI stations send at most 10 CAMs a second
_CAM_BURST = 5.0            # CAMs bunched by network jitter
_PRIORITY_VEHICLE_ROLES = frozenset({"emergency", "publicTransport"})


class _DecisionCollector:
    """Keeps the last decisions of the arbiter in memory and logs each one (no identities)."""

    def __init__(self, maxlen: int = 1000) -> None:
        self.items: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self.counts: Counter[tuple[str, str]] = Counter()

    def record(self, **fields: Any) -> None:
        self.items.append(fields)
        self.counts[(str(fields.get("priority_class")), str(fields.get("event")))] += 1
        log.info("decision %s", " ".join(f"{k}={v}" for k, v in fields.items()))


class GatewayService:
    """The MQTT gateway of one or more intersections (see the module docstring).

    Counters: :attr:`received` (by topic kind), :attr:`rejected` (malformed input by reason),
    :attr:`refused` (SREMs refused by the verifier, by reason), :attr:`published` (by kind),
    :attr:`dropped` (outgoing messages not sent, by reason); :meth:`stats` returns all.
    ``settings`` (:class:`~ivri.gateway.settings.GatewaySettings`) holds every plain value;
    beside it: ``sites`` (the site models), ``trust_store`` (issuers of authorisation tickets;
    without one every SREM is refused), ``connector`` (the transport; by default MQTT at
    ``settings.broker_url``, over ``tls`` when given), ``on_tick`` (``callable(service)``, run
    after every tick: tests, metrics) and ``decision_log`` (where the arbiter's decisions go).

    Co-simulation hooks (:mod:`ivri.cosim`; all off by default):

    * ``settings.external_clock``: :meth:`run` starts no engine loop; the caller ticks with
      ``await service.tick_once(now_s)``, and message receipt times and expiry use
      :attr:`clock_s` (the caller's clock: simulated seconds) instead of the monotonic clock.
    * ``demand_source``: ``callable() -> Observation`` whose detector fields (``demand``,
      ``gap_s``, ``queue_veh``, ``approach_veh``, ``downstream_queue_veh``, ``exit_blocked``)
      replace the view derived from the messages (there are detectors after all: SUMO's); the
      V2X rows still come from the CAMs / SREMs received.
    """

    def __init__(
        self,
        config: NetworkConfig,
        settings: GatewaySettings | None = None,
        *,
        sites: GatewaySites | None = None,
        trust_store: TrustStore | None = None,
        connector: Connector | None = None,
        tls: ssl.SSLContext | None = None,
        on_tick: Callable[[GatewayService], None] | None = None,
        decision_log: Any = None,
        demand_source: Callable[[], Observation] | None = None,
    ) -> None:
        st = settings if settings is not None else GatewaySettings()
        self.settings = st
        self.config = config
        if connector is None:
            if is_memory_url(st.broker_url):
                raise ConfigError("a memory:// broker needs its connector (MemoryBroker().connector())")
            connector = MqttConnector.from_url(
                st.broker_url, tls=tls if tls is not None else tls_context(False, st.ca_file),
                username=st.username, password=st.password, keepalive_s=st.keepalive_s)
        self.connector = connector
        self.topics = TopicLayout(st.region)
        for x in config.intersections:
            self.topics.topic(x.id, "cam")  # checks the id can be a topic level
        self.net = compile_network(config)
        self.sites = SiteTable(config, sites)
        self.controller_spec = st.controller
        self.engine = Engine(self.net, make_controller(st.controller, **st.controller_params), st.tick_s,
                             monitor=True)
        self.decisions = decision_log if decision_log is not None else _DecisionCollector()
        self.ctl.attach_log(self.decisions)
        self.apps = set(self.ctl.application_names())
        self.codec: Codec = make_codec(st.codec, asn1_dir=st.asn1_dir, max_bytes=st.max_payload_bytes)
        if st.state_dir is not None:
            st.state_dir.mkdir(parents=True, exist_ok=True)
        self.verifier = RequestVerifier(
            trust_store if trust_store is not None else TrustStore(),
            window_s=st.verifier_window_s, max_rate_per_s=st.verifier_rate_per_s, burst=st.verifier_burst,
            failure_rate_per_s=st.failure_rate_per_s, failure_burst=st.failure_burst,
            state_file=None if st.state_dir is None else st.state_dir / "replay-state.json",
            defer_writes=True,  # written off the hot path by _save_replay_state
        )
        self._replay_write: Any = None  # the write in flight (a concurrent future), if any
        self.allow_cam_priority = st.allow_cam_priority
        if self.allow_cam_priority:
            log.warning("allow_cam_priority is on: CAMs of emergency vehicles, buses and trucks get "
                        "priority without a signed request. For closed test sites and simulation only.")
        self.inbox_size = st.inbox_size
        # Small on purpose: under overload a deep queue only makes every message stale
        # (2,000 CAMs are about 0.1 s of work); what does not fit is dropped and counted.
        self.srem_inbox_size = max(100, self.inbox_size // 4)
        self.ingest_slice_s = st.ingest_slice_s
        self._client_cams = TokenBuckets(st.client_cam_rate_per_s, 2.0 * st.client_cam_rate_per_s, 10_000)
        self.tick_s = st.tick_s
        self.spat_every_s = st.spat_every_s
        self.always_demand = self.net.timing.valid.copy() if st.always_demand else None
        self.max_payload_bytes = st.max_payload_bytes
        self.station_ttl_s = st.station_ttl_s
        self.request_ttl_s = st.request_ttl_s
        self.request_grace_s = st.request_grace_s
        self.default_eta_s = st.default_eta_s
        self.srem_bus_lateness_s = st.srem_bus_lateness_s
        self.extension_m = st.extension_m
        self.reconnect_min_s = st.reconnect_min_s
        self.reconnect_max_s = st.reconnect_max_s
        self.client_id = st.client_id
        self.log_every_s = st.log_every_s
        self.on_tick = on_tick
        self.external_clock = st.external_clock
        #: The caller's clock (seconds) with ``external_clock``; see :meth:`tick_once`.
        self.clock_s = 0.0
        self.demand_source = demand_source

        self.table = StationTable(max_slots=st.max_stations, allow_cam_priority=self.allow_cam_priority)
        self.received: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.published: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.status = STATUS_OFFLINE
        #: Faults by kind (exceptions in a tick); each one put the gateway in its safe state.
        self.faults: Counter[str] = Counter()
        self.safe_state = False
        self._fallback_level = 0
        self.connections = 0
        self.ticks = 0
        self.last_tick_s = 0.0  # wall time the last tick took
        self.offline_s = 0.0
        self._offline_since: float | None = None
        self._last_log: dict[str, float] = {}
        self._outbox: asyncio.Queue[tuple[str, bytes, int, bool]] | None = None
        self._client: Transport | None = None
        self._srem_client: Transport | None = None
        self._stopping: asyncio.Event | None = None
        # (parsed topic: intersection id, kind, login; or None), payload, time of receipt
        self._inbox: collections.deque[tuple[tuple[str, str, str] | None, bytes, float]] = collections.deque()  # CAMs
        self._srem_inbox: collections.deque[tuple[tuple[str, str, str] | None, bytes, float]] = collections.deque()
        self._arrivals = 0
        self._inbox_ready: asyncio.Event | None = None
        self._urgent: asyncio.Event | None = None  # a priority input arrived: decide now
        #: Decisions taken before their tick because a priority input arrived (decide_now).
        self.decisions_early = 0
        self._to_clear: set[str] = set()  # input topics holding a retained message
        self._cleared: set[str] = set()   # topics we cleared (their empty message comes back)
        self._next_spat = 0.0
        self._ssem_seq = [0] * self.net.n_intersections
        self._prio_last = np.zeros(self.net.n_intersections, dtype=np.bool_)
        self._zeros = self.net.full(0.0)
        self._mapem = [self._encode_or_none(build_mapem(self.sites, i, self.net.mode))
                       for i in range(self.net.n_intersections)]
        self._app_codes = {name: cls.app_code for name, cls in APPLICATIONS.items()}

    # ------------------------------------------------------------------------------ public

    @property
    def ctl(self) -> Controller:
        """The controller running the intersections now (the fallback after a fault)."""
        return self.engine.controller

    @property
    def core(self) -> SignalCore:
        """The signal-timing core (read it; the engine advances it)."""
        return self.engine.core

    def stats(self) -> dict[str, Any]:
        """All counters, as plain dicts (no identities)."""
        return {
            "received": dict(self.received), "rejected": dict(self.rejected),
            "refused": dict(self.refused), "published": dict(self.published),
            "dropped": dict(self.dropped), "verifier": dict(self.verifier.counts),
            "ticks": self.ticks, "decisions_early": self.decisions_early, "connections": self.connections, "stations": len(self.table),
            "evicted_stations": self.table.evicted, "inbox": len(self._inbox) + len(self._srem_inbox),
            "faults": dict(self.faults), "safe_state": self.safe_state,
            "status": self.status, "core_t_s": self.core.t_s, "offline_s": round(self.offline_s, 3),
        }

    async def run(self) -> None:
        """Run until :meth:`stop`. A fault in a tick puts the gateway in its safe state
        (see the module docstring); it does not end the run."""
        self._stopping = asyncio.Event()
        self._inbox_ready = asyncio.Event()
        self._urgent = asyncio.Event()
        self._outbox = asyncio.Queue(maxsize=_MAX_OUTBOX)
        self._offline_since = time.monotonic()
        # With an external clock the caller ticks (tick_once): the engine task only waits.
        engine = asyncio.create_task(self._stopping.wait() if self.external_clock else self._engine_loop(),
                                     name="ivri-gateway-engine")
        mqtt = asyncio.create_task(self._mqtt_loop(), name="ivri-gateway-mqtt")
        ingest = asyncio.create_task(self._ingest_loop(), name="ivri-gateway-ingest")
        stop = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({engine, mqtt, ingest, stop}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self._stopping.set()
            for task in (engine, ingest, stop):
                task.cancel()
            for task in (engine, ingest):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # The MQTT loop sees _stopping, publishes "offline" and disconnects cleanly.
            try:
                await asyncio.wait_for(mqtt, timeout=3.0)
            except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                mqtt.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await mqtt
            self.status = STATUS_OFFLINE
            if self._replay_write is not None:
                with contextlib.suppress(Exception):
                    await self._replay_write
            self.verifier.replay.close()  # a clean stop: the whole state, marked complete

    def stop(self) -> None:
        """Ask :meth:`run` to finish (publishes ``offline``, disconnects). Safe to call twice."""
        if self._stopping is not None:
            self._stopping.set()

    async def tick_once(self, now_s: float) -> None:
        """One tick at the caller's time ``now_s`` (``external_clock`` mode, e.g. lockstep with
        SUMO): sets :attr:`clock_s`, ticks, and yields once so the SPATEM goes out."""
        self.clock_s = float(now_s)
        self.tick(self.clock_s)
        await asyncio.sleep(0)

    def _now(self) -> float:
        return self.clock_s if self.external_clock else time.monotonic()

    # ----------------------------------------------------------------------------- ingest

    def receive(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Classify one incoming message and put it in its inbox (the MQTT client calls this);
        never raises.

        Only checks that cost next to nothing run here: the topic, a login's CAM budget, a
        login's failed-verification budget for SREMs (a client that sent forgeries is refused
        without decoding anything). SREMs and CAMs have inboxes of their own, and SREMs are
        handled first, so that a CAM flood cannot delay a priority request. A full inbox
        drops the message and counts it: under a flood the gateway keeps what it can handle
        and the engine keeps its period. A retained message is stale by nature (and the broker
        cannot forbid devices to send one): it is refused and cleared.
        """
        self._arrivals += 1
        if retain:
            self.rejected["retained_input"] += 1
            if payload and len(self._to_clear) < _MAX_OUTBOX:
                self._to_clear.add(topic)
                self._clear_retained()
            return
        if not payload:
            if topic in self._cleared:  # our own clear of a retained message, come back
                self._cleared.discard(topic)
            else:
                self.received["empty"] += 1
                self._reject("empty", "message without payload")
            return
        now = self._now()
        # The topic is parsed once, here; the inbox keeps the parts for _handle.
        parsed = self.topics.parse(topic)
        kind, login = ("", "") if parsed is None else (parsed[1], parsed[2])
        if kind == "srem":
            if self.verifier.client_throttled(login, int(now * 1000)):
                self.received["srem"] += 1
                self._refuse("over_failure_rate")
                return
            inbox, limit = self._srem_inbox, self.srem_inbox_size
        else:
            # A device sends one station's CAMs: a few per second.
            if kind == "cam" and login and not self._client_cams.try_take(login, int(now * 1000)):
                self.received["cam"] += 1
                self._reject("cam_over_client_rate", "cams of one login above its budget")
                return
            inbox, limit = self._inbox, self.inbox_size
        if len(inbox) >= limit:
            self.dropped[f"{kind if kind in ('cam', 'srem') else 'other'}_inbox_full"] += 1
            return
        inbox.append((parsed, payload, now))
        if self._inbox_ready is not None and not self._inbox_ready.is_set():
            self._inbox_ready.set()

    def _clear_retained(self) -> None:
        """Delete retained input messages (an empty retained publish) once connected."""
        if self._client is None:
            return
        for topic in self._to_clear:
            if self._enqueue("clear_retained", topic, b"", qos=1, retain=True) and len(self._cleared) < _MAX_OUTBOX:
                self._cleared.add(topic)
        self._to_clear.clear()

    def _read_socket(self, max_packets: int = 100) -> None:
        """Read what the connections hold now, so that reading keeps pace with a flood (see
        :meth:`Transport.pump`): the SREM connection first, up to ``max_packets``; the CAM
        connection up to ``max_packets`` but no more than the CAM inbox has room for (a
        message read only to be dropped costs as much as handling one: paho takes ~30 us, so
        under overload the backlog stays in the broker's bounded queue and the gateway's time
        goes to handling). Messages land in the inboxes via :meth:`receive`."""
        if self._srem_client is not None:
            self._srem_client.pump(max_packets)
        room = min(max_packets, self.inbox_size - len(self._inbox))
        if self._client is not None and room > 0:
            self._client.pump(room)

    async def _ingest_loop(self) -> None:
        assert self._inbox_ready is not None
        srems, cams, clock = self._srem_inbox, self._inbox, time.perf_counter
        while True:
            self._read_socket()
            if not srems and not cams:
                self._inbox_ready.clear()
                await self._inbox_ready.wait()
                continue
            end = clock() + self.ingest_slice_s
            while srems and clock() < end:
                self._handle_safely(*srems.popleft())
            while cams and clock() < end:
                if srems:  # a request came in meanwhile: it goes first
                    break
                for _ in range(32):  # read the clock once per few CAMs
                    if not cams:
                        break
                    self._handle_safely(*cams.popleft())
                self._read_socket(64)
            await asyncio.sleep(0)  # let the engine loop in

    def handle(self, topic: str, payload: bytes, now: float | None = None) -> None:
        """Process one incoming message at once (tests; the ingest loop takes them from the
        inboxes). Never raises."""
        self._handle_safely(self.topics.parse(topic), payload, self._now() if now is None else now)

    def _handle_safely(self, parsed: tuple[str, str, str] | None, payload: bytes, now: float) -> None:
        try:
            self._handle(parsed, payload, now)
        except Exception as exc:  # noqa: BLE001  (last line of defence: input must never crash us)
            # The exception's type only: its text may quote the message (a station id, say).
            self._reject("internal_error", type(exc).__name__)

    def _handle(self, parsed: tuple[str, str, str] | None, payload: bytes, now: float) -> None:
        if parsed is None:
            self._reject("unknown_topic", "topic outside the layout")
            return
        inter_id, kind, login = parsed
        self.received[kind] += 1
        i = self.net.intersection_index.get(inter_id)
        if i is None:
            self._reject("unknown_intersection", f"no intersection {inter_id[:40]!r}")
            return
        if not isinstance(payload, (bytes, bytearray)):
            self._reject("wrong_type", f"payload is {type(payload).__name__}")
            return
        if len(payload) > self.max_payload_bytes:
            self._reject("oversized", f"{kind} payload of {len(payload)} bytes")
            return
        if kind == "cam":
            self._on_cam(i, bytes(payload), now)
        elif kind == "srem":
            self._on_srem(i, bytes(payload), now, login)
        else:
            self._reject("unknown_topic", f"not an input topic: {kind[:20]!r}")

    def _decode(self, data: bytes, kind: str) -> Any:
        try:
            return self.codec.decode(data, kind)
        except MessageError as exc:
            reason = "malformed"
            with contextlib.suppress(Exception):
                self.codec.decode_any(data)
                reason = "wrong_type"  # a valid message, but not of this topic's type
            self._reject(reason, f"{kind}: {exc}")
            return None

    def _on_cam(self, i: int, data: bytes, now: float) -> None:
        cam = self._decode(data, "cam")
        if cam is None:
            return
        pos = cam.reference_position
        if pos.latitude_deg is None or pos.longitude_deg is None:
            self._reject("position_unavailable", "cam without a position")
            return
        if cam.station_type == 15:
            self._reject("not_a_road_user", "cam of a road-side unit")
            return
        if cam.speed != 16383 and cam.speed / 100.0 > _MAX_SPEED_MPS:
            self._reject("implausible_speed", f"cam speed {cam.speed / 100.0:.0f} m/s")
            return
        if not self.sites.in_region(i, pos.latitude / 1e7, pos.longitude / 1e7):
            self._reject("outside_site", "cam position outside the intersection's region")
            return
        why = self.table.put_cam(cam, i, now, rate_per_s=_CAM_RATE_PER_S, burst=_CAM_BURST,
                                 max_jump_mps=_MAX_JUMP_MPS)
        if why is not None:
            self._reject(why, "cam not stored")
            return
        s = self.table.index[(cam.header.station_id, i)]
        if self.table.asks(s):
            self._mark_urgent()  # where a requester is changes the priority decision
        elif not self.allow_cam_priority and (cam.vehicle_role in _PRIORITY_VEHICLE_ROLES
                                              or cam.emergency_container is not None):
            # Stored as a description; its priority claim is refused (only a signed SREM
            # asks; the CAMs of a station with a verified request refine its ETA).
            self._refuse("cam_is_not_a_request")

    def _mark_urgent(self) -> None:
        """A priority request arrived, changed or ended: the engine loop decides at once
        (:meth:`decide_now`) instead of at the next tick."""
        if self._urgent is not None and not self._urgent.is_set():
            self._urgent.set()

    def _on_srem(self, i: int, data: bytes, now: float, login: str) -> None:
        now_ms = int(time.time() * 1000)
        auth = self.verifier.authenticate(data, region=self.topics.region,
                                          intersection_id=self.net.intersection_ids[i],
                                          now_ms=now_ms, client=login)
        if not auth:
            self._refuse(auth.reason.value)  # type: ignore[union-attr]
            return
        assert auth.payload is not None and auth.ticket is not None
        srem = self._decode(auth.payload, "srem")
        if srem is None:
            return
        rtype = srem.requestor.type
        cls = CLASS_BY_REQUESTOR.get(rtype.role) if rtype is not None else None
        if cls is None:
            self._reject("unsupported_role", f"srem requestor role {rtype.role if rtype else None!r}")
            return
        verdict = self.verifier.authorise(auth, cls, now_ms,
                                          station_ids=(srem.header.station_id, srem.requestor.id))
        if not verdict:
            self._refuse(verdict.reason.value)  # type: ignore[union-attr]
            return
        ticket = auth.ticket
        owner = (ticket.issuer, ticket.ticket_id)
        site = self.sites.sites[i]
        station = ticket.station_id
        role = ROLE_BY_CLASS[cls]
        app = APP_BY_ROLE[int(role)]
        acks: list[tuple[PendingRequest, str]] = []
        matched = False
        for pkg in srem.requests:
            r = pkg.request
            if r.id.id != site.its_id or (
                r.id.region is not None and site.its_region is not None and r.id.region != site.its_region
            ):
                continue
            matched = True
            s = self.table.index.get((station, i))
            held = self.table.requests.get(s) if s is not None else None
            if held is not None and held.owner != owner:
                self._refuse("not_request_owner")  # only the ticket that made it may change it
                continue
            if r.request_type == "priorityCancellation":
                if held is not None:
                    self.table.cancel_request(s)  # type: ignore[arg-type]
                    self._mark_urgent()
                continue
            if held is not None and CLASS_RANK[cls] < held.rank:
                self._refuse("downgrade")  # never lower a request's class: cancel it first
                continue
            lane, appr = r.in_bound_lane.lane, r.in_bound_lane.approach
            g = self.sites.group_of_access(site, lane, appr)
            if g < 0:
                self._reject("unknown_lane", "srem in-bound lane/approach not in the site file")
                continue
            eta = None
            if pkg.minute is not None and pkg.second is not None:
                eta = eta_from_srem(pkg.minute, pkg.second, time.time())
                if not -10.0 <= eta <= 3600.0:
                    self._reject("bad_eta", f"srem eta {eta:.0f} s from now")
                    continue
            duration = (pkg.duration or 0) / 1000.0
            s = self.table.slot(station, i)
            if s < 0:
                self._reject("station_table_full", "no slot for a verified request")
                continue
            key = int(request_keys(np.array([self.table.token[s]]), np.array([i]),
                                   self._app_codes[app])[0])
            pending = PendingRequest(
                station_id=station, request_id=r.request_id,
                sequence_number=srem.sequence_number or 0, role=rtype.role,  # type: ignore[union-attr]
                lane=lane, approach=appr if lane is None else None, key=key, app=app,
                owner=owner, rank=CLASS_RANK[cls], client=login,
            )
            new = self.table.put_request(
                s, role=role, group=g, eta_s=eta, duration_s=duration, now=now,
                ttl_s=self.request_ttl_s, grace_s=self.request_grace_s,
                bus_lateness_s=self.srem_bus_lateness_s, pending=pending,
            )
            self._mark_urgent()
            if new:
                pending.last_status = "requested" if app in self.apps else "rejected"
                acks.append((pending, pending.last_status))
        if not matched:
            self._reject("other_intersection", "srem holds no request for this intersection")
        if acks:
            self._send_ssem(i, acks)

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        self._log_limited(f"rejected:{reason}", "rejected %s: %s (%d so far)", reason, detail[:200],
                          self.rejected[reason])

    def _refuse(self, reason: str) -> None:
        self.refused[reason] += 1
        self._log_limited(f"refused:{reason}", "refused: %s (%d so far)", reason, self.refused[reason])

    def _log_limited(self, key: str, fmt: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -math.inf) >= self.log_every_s:
            self._last_log[key] = now
            log.warning(fmt, *args)

    # ----------------------------------------------------------------------------- engine

    async def _engine_loop(self) -> None:
        assert self._urgent is not None
        loop = asyncio.get_running_loop()
        urgent = self._urgent
        next_t = loop.time()
        while True:
            self.tick()
            next_t += self.tick_s
            if next_t - loop.time() < -2 * self.tick_s:  # fell behind (a stall): do not burst to catch up
                next_t = loop.time()
            # Until the next tick: a priority input (see receive / _mark_urgent) has the
            # controller decide at once, and the decision goes out (SSEM, SPATEM) at once; the
            # core advances at the tick's time as always. One decision per tick: an input after
            # it is decided on right after that tick.
            while (delay := next_t - loop.time()) > 0:
                if urgent.is_set() and not self.engine.decided:
                    self.decide_now()
                    continue
                if self.engine.decided:
                    await asyncio.sleep(delay)
                    break
                try:
                    await asyncio.wait_for(urgent.wait(), delay)
                except TimeoutError:
                    break
            await asyncio.sleep(0)

    def tick(self, now: float | None = None) -> None:
        """One engine tick (called by the engine loop; tests may call it directly). Never
        raises: a fault puts the gateway in its safe state and the next tick runs on. The
        controller's decision is the one :meth:`decide_now` made since the last tick, if any."""
        t0 = time.perf_counter()
        now = self._now() if now is None else now
        try:
            self._tick(now)
        except Exception as exc:  # noqa: BLE001  (the lights must keep running, see module doc)
            self._fail_safe(exc)
        self._save_replay_state()
        self.last_tick_s = time.perf_counter() - t0
        if self.on_tick is not None:
            try:
                self.on_tick(self)
            except Exception as exc:  # noqa: BLE001
                self.faults["on_tick"] += 1
                self._log_limited("on_tick", "on_tick callback failed: %s", exc)

    def _save_replay_state(self) -> None:
        """Write the replay state changed since the last write, on a worker thread when an
        event loop runs (a disk write never holds up the engine), at most one write at a time."""
        replay = self.verifier.replay
        if not replay.dirty or (self._replay_write is not None and not self._replay_write.done()):
            return
        snap = replay.snapshot()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            replay.write(snap)
            return
        self._replay_write = loop.run_in_executor(None, replay.write, snap)
        self._replay_write.add_done_callback(self._replay_written)

    def _replay_written(self, fut: Any) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            self.faults["replay_state_write"] += 1
            self._log_limited("replay_state", "replay state not written: %s", fut.exception())

    def decide_now(self, now: float | None = None) -> None:
        """The controller decides the next tick now, on the messages received so far, and the
        SSEMs and SPATEMs its priority decisions change go out at once; the signals change at
        the tick (:meth:`tick`), on the core's fixed step. Does nothing when the next tick is
        decided already. Never raises (a fault: safe state, as in :meth:`tick`)."""
        if self.engine.decided:
            return
        self.decisions_early += 1
        try:
            self._decide(self._now() if now is None else now)
            self._announce(time.time(), None, spat_due=False)
        except Exception as exc:  # noqa: BLE001  (the lights must keep running, see module doc)
            self._fail_safe(exc)

    def _decide(self, now: float) -> None:
        if self._urgent is not None:
            self._urgent.clear()  # every input handled so far is in this decision
        self.table.expire(now, self.station_ttl_s)
        v2x = self.table.observation(self.sites, now, self.default_eta_s)
        blocked = occupied = None
        if self.demand_source is not None:
            det = self.demand_source()
            demand, gap, queue, approach, down, blocked = (det.demand, det.gap_s, det.queue_veh, det.approach_veh,
                                                           det.downstream_queue_veh, det.exit_blocked)
            occupied = det.detector_occupied
        else:
            demand, gap, queue, approach = detector_view(
                v2x, self.net.timing.valid.shape, self.extension_m, self.always_demand)
            down = self._zeros
        obs = Observation(t_s=self.core.t_s + self.tick_s, demand=demand, gap_s=gap,
                          queue_veh=queue, approach_veh=approach, downstream_queue_veh=down,
                          v2x=v2x, exit_blocked=blocked, detector_occupied=occupied)
        self.engine.decide(obs)

    def _tick(self, now: float) -> None:
        unix = time.time()
        if not self.engine.decided:
            self._decide(now)
        changed = self.engine.advance()
        self.ticks += 1
        spat_due = now >= self._next_spat - 1e-6  # tolerance: spat_every_s == tick_s means every tick
        if spat_due:
            self._next_spat = now + self.spat_every_s
        self._announce(unix, changed, spat_due)

    def _announce(self, unix: float, changed: np.ndarray | None, spat_due: bool) -> None:
        """SSEMs for requests whose status changed; SPATEM for every intersection when due,
        else for those whose aspects (``changed``) or priority status changed."""
        self._answer_requests(unix)
        prio = self._priority_active()
        urgent = prio != self._prio_last
        if changed is not None:
            urgent |= changed
        self._prio_last = prio
        if spat_due or urgent.any():
            self._send_spatem(unix, prio, None if spat_due else urgent)

    def _fail_safe(self, exc: Exception) -> None:
        """Hand every intersection to the local fallback: the base controller without priority
        applications, or fixed time if the base controller failed (or there is none)."""
        kind = "safety_violation" if isinstance(exc, SafetyViolation) else type(exc).__name__
        self.faults[kind] += 1
        base = self.ctl.base if isinstance(self.ctl, PriorityArbiter) else None
        if self._fallback_level == 0 and base is not None:
            self.engine.use(base, reset=False)  # its state went on under the arbiter
            self._fallback_level = 1
        elif self._fallback_level < 2:
            self.engine.use(FixedTime(), reset=True)
            self._fallback_level = 2
        self.apps = set()  # no application serves requests now: they are answered "rejected"
        log.error("fault in the engine tick (%s: %s); every intersection runs on the local fallback "
                  "(%s, no priority)", kind, str(exc)[:200], type(self.ctl).__name__)
        if not self.safe_state:
            self.safe_state = True
            self._publish_status()

    def _publish_status(self) -> None:
        status = STATUS_FALLBACK if self.safe_state else STATUS_ONLINE
        for i in range(self.net.n_intersections):
            self._enqueue("status", self._status_topic(i), status.encode(), qos=1, retain=True)

    def _arbiter_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tr = self.ctl.tracked_requests()
        if tr is None:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z
        return tr.keys, tr.status, tr.intersection

    def _answer_requests(self, unix: float) -> None:
        if not self.table.requests:
            return
        keys, status, _ = self._arbiter_rows()
        answers: dict[int, list[tuple[PendingRequest, str]]] = {}
        for s, p in self.table.requests.items():
            if p.app not in self.apps:
                new = "rejected"
            else:
                pos = int(np.searchsorted(keys, p.key))
                if pos < len(keys) and keys[pos] == p.key:
                    new = SSEM_STATUS.get(int(status[pos]), "processing")
                else:
                    new = "requested"
            if new != p.last_status:
                p.last_status = new
            if p.last_status != p.sent_status:  # changed now, or while the broker was away
                answers.setdefault(int(self.table.inter[s]), []).append((p, p.last_status))
        if self._client is None:
            return  # sent on reconnect (see _session)
        for i, items in answers.items():
            self._send_ssem(i, items, unix)

    def _send_ssem(self, i: int, answers: list[tuple[PendingRequest, str]], unix: float | None = None) -> None:
        """SSEMs to each requester's own topic (``ssem/<login>``; ``ssem`` without a login)."""
        unix = time.time() if unix is None else unix
        by_client: dict[str, list[tuple[PendingRequest, str]]] = {}
        for p, status in answers:
            by_client.setdefault(p.client, []).append((p, status))
        for login, items in by_client.items():
            msgs = build_ssem(self.sites, i, items, unix, self._ssem_seq[i], private=bool(login))
            self._ssem_seq[i] = (self._ssem_seq[i] + len(msgs)) % 128
            topic = self.topics.client_topic(self.net.intersection_ids[i], "ssem", login)
            results = [self._enqueue("ssem", topic, self.codec.encode(m), qos=1) for m in msgs]
            if all(results):
                for p, status in items:
                    p.sent_status = status

    def _priority_active(self) -> np.ndarray:
        """bool [I]: a road user's priority request is being served (not compensation)."""
        keys, status, inter = self._arbiter_rows()
        prio = np.zeros(self.net.n_intersections, dtype=np.bool_)
        if len(keys):
            prio[inter[np.isin(status, ACTING) & (keys >= 0)]] = True
        return prio

    def _send_spatem(self, unix: float, prio: np.ndarray, only: np.ndarray | None) -> None:
        ttc = self.core.time_to_change_s()
        for i in range(self.net.n_intersections):
            if only is not None and not only[i]:
                continue
            msg = build_spatem(self.sites, i, self.core.signals.state, ttc.min_s, ttc.max_s,
                               self.net.timing.valid, unix, priority_active=bool(prio[i]),
                               likely_s=ttc.likely_s)
            self._enqueue("spatem", self.topics.topic(self.net.intersection_ids[i], "spatem"),
                          self.codec.encode(msg))

    def _enqueue(self, kind: str, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        """Hand a message to the sender; False (and counted) when offline or the outbox is full."""
        if self._client is None or self._outbox is None:
            self.dropped[f"{kind}_offline"] += 1
            return False
        try:
            self._outbox.put_nowait((topic, payload, qos, retain))
        except asyncio.QueueFull:
            self.dropped[f"{kind}_queue_full"] += 1
            return False
        self.published[kind] += 1
        return True

    def _encode_or_none(self, msg: Any) -> bytes | None:
        return None if msg is None else self.codec.encode(msg)

    # ------------------------------------------------------------------------------- MQTT

    def _status_topic(self, i: int) -> str:
        return self.topics.topic(self.net.intersection_ids[i], "status")

    async def _connect(self, stack: contextlib.AsyncExitStack, i: int | None, suffix: str,
                       receives: bool = False) -> Transport:
        """A connection with the last will of intersection ``i`` (None: no will); ``receives``:
        it subscribes, so messages go to :meth:`receive`. Closed when ``stack`` closes."""
        client = await self.connector.connect(
            client_id=f"{self.client_id}-{suffix}" if self.client_id else None,
            will=None if i is None else Will(self._status_topic(i), STATUS_OFFLINE.encode()),
            on_message=self.receive if receives else None,
            small_receive_buffer=receives,
        )
        stack.push_async_callback(client.aclose)
        return client

    async def _mqtt_loop(self) -> None:
        assert self._stopping is not None
        backoff = self.reconnect_min_s
        while not self._stopping.is_set():
            try:
                await self._session()
                backoff = self.reconnect_min_s
            except TransportError as exc:
                if self._client is not None or self.connections == 0:
                    log.warning("broker %s unavailable (%s); local control goes on, retrying",
                                self.connector.address, exc)
            finally:
                if self._client is not None:
                    self._client = None
                    self._offline_since = time.monotonic()
                self.status = STATUS_OFFLINE
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):  # the backoff is over: try again
                await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
            backoff = min(backoff * 2.0, self.reconnect_max_s)

    async def _session(self) -> None:
        """One connection: status clients, MAPEM, subscriptions, messages until loss or stop."""
        assert self._stopping is not None and self._outbox is not None
        async with contextlib.AsyncExitStack() as stack:
            client = await self._connect(stack, 0, "0", receives=True)
            # SREMs come over a connection of their own: a CAM flood then queues in the broker
            # and the sockets of the CAM connection, not in front of a priority request.
            srem_client = await self._connect(stack, None, "srem", receives=True)
            # One MQTT will per connection: the other intersections get a small status client each.
            extra = [await self._connect(stack, i, str(i)) for i in range(1, self.net.n_intersections)]
            while not self._outbox.empty():  # stale SPATEM/SSEM from before the loss
                self._outbox.get_nowait()
            # Only this gateway's intersections: several gateways can share one broker.
            cam_filters, srem_filters = self.topics.subscriptions(self.net.intersection_ids)
            for f in cam_filters:
                await client.subscribe(f, qos=0)
            for f in srem_filters:
                await srem_client.subscribe(f, qos=0)
            for i in range(self.net.n_intersections):
                if self._mapem[i] is not None:
                    await client.publish(self.topics.topic(self.net.intersection_ids[i], "mapem"),
                                         self._mapem[i], qos=1, retain=True)
                    self.published["mapem"] += 1
            status = STATUS_FALLBACK if self.safe_state else STATUS_ONLINE
            for i, c in enumerate([client, *extra]):
                await c.publish(self._status_topic(i), status.encode(), qos=1, retain=True)
            self.status = STATUS_ONLINE
            self.connections += 1
            if self._offline_since is not None:
                self.offline_s += time.monotonic() - self._offline_since
                self._offline_since = None
            if self.connections > 1:
                log.warning("reconnected to broker %s; MAPEM republished", self.connector.address)
            self._client, self._srem_client = client, srem_client
            self._answer_requests(time.time())  # SSEM status changes decided while offline
            self._clear_retained()
            sender = asyncio.create_task(self._sender(client))
            receiver = asyncio.create_task(self._receiver(client))
            srem_receiver = asyncio.create_task(self._receiver(srem_client))
            stopping = asyncio.create_task(self._stopping.wait())
            tasks = (sender, receiver, srem_receiver, stopping)
            try:
                done, _ = await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._srem_client = None
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError, TransportError):
                        await t
            for t in done:
                if t is not stopping and not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            if self._stopping.is_set():
                self._client = None
                for i, c in enumerate([client, *extra]):
                    with contextlib.suppress(TransportError):
                        await c.publish(self._status_topic(i), STATUS_OFFLINE.encode(), qos=1,
                                        retain=True, timeout=2.0)

    async def _receiver(self, client: Transport) -> None:
        # Messages go to receive() on arrival: the iteration only waits, and raises
        # TransportError when the connection is lost.
        async for _ in client.messages():
            pass

    async def _sender(self, client: Transport) -> None:
        # QoS 0 (SPATEM) is handed to the socket at once; a QoS 1 publish (SSEM) waits for its
        # PUBACK in a task of its own, so that one round trip does not hold up the others.
        assert self._outbox is not None
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                topic, payload, qos, retain = await self._outbox.get()
                if qos == 0:
                    await client.publish(topic, payload, qos=0, retain=retain)
                    continue
                task = asyncio.create_task(client.publish(topic, payload, qos=qos, retain=retain))
                inflight.add(task)
                task.add_done_callback(self._publish_done(inflight))
        finally:
            for task in inflight:
                task.cancel()

    def _publish_done(self, inflight: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            inflight.discard(task)
            if not task.cancelled() and task.exception() is not None:
                self.dropped["publish_error"] += 1
        return done
