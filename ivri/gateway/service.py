"""The live gateway: MQTT in, the engine every tick, SPATEM / SSEM / MAPEM out.

::

    service = GatewayService(load_network_config("docs/gateway-example.toml"), "mqtt://127.0.0.1:1883",
                             sites=load_gateway_sites("docs/gateway-example-sites.toml"))
    asyncio.run(service.run())      # until service.stop()

Two asyncio tasks share one event loop:

* the **engine loop** ticks every ``tick_s`` of wall time: V2X rows from the station table
  (:mod:`ivri.gateway.ingest`), an :class:`~ivri.controllers.base.Observation` (demand from
  the messages: there are no detectors in live mode; ``always_demand`` makes every group
  call so that the base controller cycles), the controller, :class:`~ivri.core.engine.SignalCore`
  (monitor on), then SSEMs for requests whose status changed and SPATEM every
  ``spat_every_s`` and at once whenever an aspect or the priority status changed. It never waits for the broker.
* the **MQTT loop** connects (a new :class:`aiomqtt.Client` context per attempt), publishes
  ``status`` = ``online`` and the retained MAPEM, subscribes to ``cam`` and ``srem`` and
  handles every message synchronously (decode, verify, store: no awaits). On a broker loss
  it retries with exponential backoff (``reconnect_min_s`` doubling up to
  ``reconnect_max_s``) while the engine loop goes on with local vehicle-actuated control
  from what it still knows: the signal state is never reset. The MQTT last will sets
  ``status`` to ``fallback`` (the intersection runs on without the gateway's broker);
  :meth:`stop` publishes ``offline``.

Hostile input: every payload is checked for size, codec and type; a bad one is counted in
:attr:`rejected` (by reason) and logged in one line (at most one line per reason every
``log_every_s``: a flood must not become a log flood) and never stops the gateway. Refused
SREMs (signature, replay, rate, class) are counted in :attr:`refused` by
:class:`~ivri.gateway.security.RefusalReason`. Logs never carry station ids or key ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import aiomqtt
import numpy as np
from pydantic import ValidationError

from ivri.config import NetworkConfig
from ivri.controllers import APPLICATIONS, PriorityArbiter, make_controller
from ivri.controllers.arbiter import ACTING
from ivri.controllers.base import Observation
from ivri.controllers.priority import request_keys
from ivri.core.compile import compile_network
from ivri.core.engine import SignalCore
from ivri.errors import ConfigError
from ivri.gateway.ingest import (
    APP_BY_ROLE,
    CLASS_BY_REQUESTOR,
    ROLE_BY_CLASS,
    PendingRequest,
    StationTable,
    detector_view,
    eta_from_srem,
)
from ivri.gateway.security import RequestVerifier, SignedRequest, TrustStore
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
from ivri.its import DEFAULT_MAX_BYTES, MessageError

__all__ = ["GatewayService", "parse_broker_url"]

log = logging.getLogger("ivri.gateway")

_MAX_OUTBOX = 10_000


def parse_broker_url(url: str) -> tuple[str, int, bool]:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` -> (host, port, tls)."""
    u = urlparse(url if "://" in url else f"mqtt://{url}")
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    tls = u.scheme in ("mqtts", "ssl")
    if not u.hostname:
        raise ConfigError(f"broker URL {url!r} has no host")
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"broker URL {url!r}: bad port") from None
    return u.hostname, port, tls


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
    ``on_tick`` (``callable(service)``) runs after every tick (tests, metrics).

    Co-simulation hooks (:mod:`ivri.sumo.cosim`; all off by default):

    * ``external_clock=True``: :meth:`run` starts no engine loop; the caller ticks with
      ``await service.tick_once(now_s)``, and message receipt times and expiry use
      :attr:`clock_s` (the caller's clock: simulated seconds) instead of the monotonic clock.
    * ``demand_source``: ``callable() -> Observation`` whose detector fields (``demand``,
      ``gap_s``, ``queue_veh``, ``approach_veh``, ``downstream_queue_veh``) replace the view
      derived from the messages (there are detectors after all: SUMO's); the V2X rows
      still come from the CAMs / SREMs received.
    * ``controller_params``: keyword arguments of :func:`~ivri.controllers.make_controller`.
    """

    def __init__(
        self,
        config: NetworkConfig,
        broker_url: str,
        *,
        region: str = "nl",
        controller: str = "actuated+greenflow",
        codec: str = "json",
        trust_store: TrustStore | None = None,
        tick_s: float = 0.5,
        spat_every_s: float = 1.0,
        username: str | None = None,
        password: str | None = None,
        tls: bool | ssl.SSLContext | None = None,
        sites: GatewaySites | None = None,
        always_demand: bool = False,
        asn1_dir: str | None = None,
        max_payload_bytes: int = 16 * 1024,
        station_ttl_s: float = 3.0,
        request_ttl_s: float = 10.0,
        request_grace_s: float = 3.0,
        default_eta_s: float = 10.0,
        srem_bus_lateness_s: float = 600.0,
        extension_m: float = 40.0,
        verifier_window_s: float = 5.0,
        verifier_rate_per_s: float = 2.0,
        verifier_burst: int = 5,
        reconnect_min_s: float = 0.25,
        reconnect_max_s: float = 10.0,
        keepalive_s: int = 10,
        client_id: str | None = None,
        log_every_s: float = 5.0,
        on_tick: Callable[[GatewayService], None] | None = None,
        decision_log: Any = None,
        controller_params: dict[str, Any] | None = None,
        external_clock: bool = False,
        demand_source: Callable[[], Observation] | None = None,
    ) -> None:
        if not (math.isfinite(tick_s) and tick_s > 0):
            raise ConfigError(f"tick_s must be a positive number of seconds, not {tick_s}")
        if not (math.isfinite(spat_every_s) and spat_every_s > 0):
            raise ConfigError(f"spat_every_s must be a positive number of seconds, not {spat_every_s}")
        if not 0 < max_payload_bytes <= DEFAULT_MAX_BYTES:
            raise ConfigError(f"max_payload_bytes must be in 1..{DEFAULT_MAX_BYTES}")
        self.config = config
        self.host, self.port, url_tls = parse_broker_url(broker_url)
        self.tls = url_tls if tls is None else tls
        self.username, self.password = username, password
        self.topics = TopicLayout(region)
        for x in config.intersections:
            self.topics.topic(x.id, "cam")  # checks the id can be a topic level
        self.net = compile_network(config)
        self.sites = SiteTable(config, sites)
        self.controller_spec = controller
        self.ctl = make_controller(controller, **(controller_params or {}))
        self.ctl.reset(self.net)
        self.decisions = decision_log if decision_log is not None else _DecisionCollector()
        if hasattr(self.ctl, "attach_log"):
            self.ctl.attach_log(self.decisions)
        self.apps = {a.name for a in getattr(self.ctl, "applications", ())}
        self.core = SignalCore(self.net, tick_s, monitor=True)
        self.codec: Codec = make_codec(codec, asn1_dir=asn1_dir, max_bytes=max_payload_bytes)
        self.verifier = RequestVerifier(
            trust_store if trust_store is not None else TrustStore(),
            window_s=verifier_window_s, max_rate_per_s=verifier_rate_per_s, burst=verifier_burst,
        )
        self.tick_s = float(tick_s)
        self.spat_every_s = float(spat_every_s)
        self.always_demand = self.net.timing.valid.copy() if always_demand else None
        self.max_payload_bytes = max_payload_bytes
        self.station_ttl_s = station_ttl_s
        self.request_ttl_s = request_ttl_s
        self.request_grace_s = request_grace_s
        self.default_eta_s = default_eta_s
        self.srem_bus_lateness_s = srem_bus_lateness_s
        self.extension_m = extension_m
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.keepalive_s = keepalive_s
        self.client_id = client_id
        self.log_every_s = log_every_s
        self.on_tick = on_tick
        self.external_clock = bool(external_clock)
        #: The caller's clock (seconds) with ``external_clock``; see :meth:`tick_once`.
        self.clock_s = 0.0
        self.demand_source = demand_source

        self.table = StationTable()
        self.received: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.published: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.status = STATUS_OFFLINE
        self.connections = 0
        self.ticks = 0
        self.last_tick_s = 0.0  # wall time the last tick took
        self.offline_s = 0.0
        self._offline_since: float | None = None
        self._last_log: dict[str, float] = {}
        self._outbox: asyncio.Queue[tuple[str, bytes, int, bool]] | None = None
        self._client: aiomqtt.Client | None = None
        self._stopping: asyncio.Event | None = None
        self._next_spat = 0.0
        self._ssem_seq = [0] * self.net.n_intersections
        self._prio_last = np.zeros(self.net.n_intersections, dtype=np.bool_)
        self._request = self.net.full(False, np.bool_)
        self._extend = self.net.full(False, np.bool_)
        self._zeros = self.net.full(0.0)
        self._mapem = [self._encode_or_none(build_mapem(self.sites, i, self.net.mode))
                       for i in range(self.net.n_intersections)]
        self._app_codes = {name: cls.app_code for name, cls in APPLICATIONS.items()}
        handle = self.handle

        class _DispatchQueue(asyncio.Queue):  # type: ignore[type-arg]
            """aiomqtt's incoming queue (its documented ``queue_type`` hook) that handles each
            message synchronously on arrival instead of storing it: no task and no queue
            round trip per message (iterating ``client.messages`` costs two tasks each)."""

            def put_nowait(self, item: aiomqtt.Message) -> None:
                handle(item.topic.value, item.payload)  # type: ignore[arg-type]

        self._dispatch_queue = _DispatchQueue

    # ------------------------------------------------------------------------------ public

    def stats(self) -> dict[str, Any]:
        """All counters, as plain dicts (no identities)."""
        return {
            "received": dict(self.received), "rejected": dict(self.rejected),
            "refused": dict(self.refused), "published": dict(self.published),
            "dropped": dict(self.dropped), "verifier": dict(self.verifier.counts),
            "ticks": self.ticks, "connections": self.connections, "stations": len(self.table),
            "status": self.status, "core_t_s": self.core.t_s, "offline_s": round(self.offline_s, 3),
        }

    async def run(self) -> None:
        """Run until :meth:`stop`. Raises only on a safety violation of the core (a bug)."""
        self._stopping = asyncio.Event()
        self._outbox = asyncio.Queue(maxsize=_MAX_OUTBOX)
        self._offline_since = time.monotonic()
        # With an external clock the caller ticks (tick_once): the engine task only waits.
        engine = asyncio.create_task(self._stopping.wait() if self.external_clock else self._engine_loop(),
                                     name="ivri-gateway-engine")
        mqtt = asyncio.create_task(self._mqtt_loop(), name="ivri-gateway-mqtt")
        stop = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({engine, mqtt, stop}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self._stopping.set()
            for task in (engine, stop):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await engine
            # The MQTT loop sees _stopping, publishes "offline" and disconnects cleanly.
            try:
                await asyncio.wait_for(mqtt, timeout=3.0)
            except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                mqtt.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await mqtt
            self.status = STATUS_OFFLINE

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

    def handle(self, topic: str, payload: bytes, now: float | None = None) -> None:
        """Process one incoming message. Never raises."""
        try:
            self._handle(topic, payload, self._now() if now is None else now)
        except Exception as exc:  # noqa: BLE001  (last line of defence: input must never crash us)
            self._reject("internal_error", f"{type(exc).__name__}: {exc}")

    def _handle(self, topic: str, payload: bytes, now: float) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None:
            self._reject("unknown_topic", "topic outside the layout")
            return
        inter_id, kind = parsed
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
            self._on_srem(i, bytes(payload), now)
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
        if cam.reference_position.latitude_deg is None or cam.reference_position.longitude_deg is None:
            self._reject("position_unavailable", "cam without a position")
            return
        if cam.station_type == 15:
            self._reject("not_a_road_user", "cam of a road-side unit")
            return
        self.table.put_cam(cam, i, now)

    def _on_srem(self, i: int, data: bytes, now: float) -> None:
        now_ms = int(time.time() * 1000)
        try:
            env = SignedRequest.model_validate_json(data)
        except (ValidationError, ValueError):
            # Let the verifier classify it (malformed / unsigned) so that all refusals count there.
            verdict = self.verifier.verify(data, "emergency", now_ms)
            self._refuse(verdict.reason.value if verdict.reason else "malformed")
            return
        srem = self._decode(env.payload, "srem")
        if srem is None:
            return
        rtype = srem.requestor.type
        cls = CLASS_BY_REQUESTOR.get(rtype.role) if rtype is not None else None
        if cls is None:
            self._reject("unsupported_role", f"srem requestor role {rtype.role if rtype else None!r}")
            return
        verdict = self.verifier.verify(env, cls, now_ms)
        if not verdict:
            self._refuse(verdict.reason.value)  # type: ignore[union-attr]
            return
        if verdict.payload != env.payload:  # cannot happen; never act on unverified bytes
            self._refuse("malformed")
            return
        site = self.sites.sites[i]
        station = srem.requestor.id
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
            if r.request_type == "priorityCancellation":
                s = self.table.index.get((station, i))
                if s is not None:
                    self.table.cancel_request(s)
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
            key = int(request_keys(np.array([self.table.token[s]]), np.array([i]),
                                   self._app_codes[app])[0])
            pending = PendingRequest(
                station_id=station, request_id=r.request_id,
                sequence_number=srem.sequence_number or 0, role=rtype.role,  # type: ignore[union-attr]
                lane=lane, approach=appr if lane is None else None, key=key, app=app,
            )
            new = self.table.put_request(
                s, role=role, group=g, eta_s=eta, duration_s=duration, now=now,
                ttl_s=self.request_ttl_s, grace_s=self.request_grace_s,
                bus_lateness_s=self.srem_bus_lateness_s, pending=pending,
            )
            if new:
                status = "requested" if app in self.apps else "rejected"
                pending.last_status = status
                acks.append((pending, status))
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
        self._log_limited(f"refused:{reason}", "refused srem: %s (%d so far)", reason, self.refused[reason])

    def _log_limited(self, key: str, fmt: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -math.inf) >= self.log_every_s:
            self._last_log[key] = now
            log.warning(fmt, *args)

    # ----------------------------------------------------------------------------- engine

    async def _engine_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_t = loop.time()
        while True:
            self.tick()
            next_t += self.tick_s
            delay = next_t - loop.time()
            if delay < -2 * self.tick_s:  # fell behind (a stall): do not burst to catch up
                next_t = loop.time()
                delay = 0.0
            await asyncio.sleep(max(delay, 0.0))

    def tick(self, now: float | None = None) -> None:
        """One engine tick (called by the engine loop; tests may call it directly)."""
        t0 = time.perf_counter()
        now = self._now() if now is None else now
        unix = time.time()
        self.table.expire(now, self.station_ttl_s)
        v2x = self.table.observation(self.sites, now, self.default_eta_s)
        if self.demand_source is not None:
            det = self.demand_source()
            demand, gap, queue, approach, down = (det.demand, det.gap_s, det.queue_veh,
                                                  det.approach_veh, det.downstream_queue_veh)
        else:
            demand, gap, queue, approach = detector_view(
                v2x, self.net.timing.valid.shape, self.extension_m, self.always_demand)
            down = self._zeros
        obs = Observation(t_s=self.core.t_s + self.tick_s, demand=demand, gap_s=gap,
                          queue_veh=queue, approach_veh=approach, downstream_queue_veh=down,
                          v2x=v2x)
        try:
            request = self.ctl.step(obs, self.core.signals)
            extend = self.ctl.extend_green()
            self._request[...] = request
            self._extend[...] = False if extend is None else extend
            self.core.commit(self.ctl.commitment())
        except Exception as exc:  # noqa: BLE001  (keep the lights running on the last request)
            self.rejected["controller_error"] += 1
            self._log_limited("controller", "controller error, keeping the last request: %s", exc)
        changed = self.core.advance(self._request, demand, self._extend)
        self.ticks += 1
        self._answer_requests(unix)
        spat_due = now >= self._next_spat - 1e-6  # tolerance: spat_every_s == tick_s means every tick
        if spat_due:
            self._next_spat = now + self.spat_every_s
        prio = self._priority_active()
        urgent = changed | (prio != self._prio_last)
        self._prio_last = prio
        if spat_due or urgent.any():
            self._send_spatem(unix, prio, None if spat_due else urgent)
        self.last_tick_s = time.perf_counter() - t0
        if self.on_tick is not None:
            self.on_tick(self)

    def _arbiter_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tr = getattr(self.ctl, "tracked_", None)
        if not isinstance(self.ctl, PriorityArbiter) or tr is None:
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
                answers.setdefault(int(self.table.inter[s]), []).append((p, new))
        for i, items in answers.items():
            self._send_ssem(i, items, unix)

    def _send_ssem(self, i: int, answers: list[tuple[PendingRequest, str]], unix: float | None = None) -> None:
        unix = time.time() if unix is None else unix
        msgs = build_ssem(self.sites, i, answers, unix, self._ssem_seq[i])
        self._ssem_seq[i] = (self._ssem_seq[i] + len(msgs)) % 128
        topic = self.topics.topic(self.net.intersection_ids[i], "ssem")
        for m in msgs:
            self._enqueue("ssem", topic, self.codec.encode(m), qos=1)

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

    def _enqueue(self, kind: str, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        if self._client is None or self._outbox is None:
            self.dropped[f"{kind}_offline"] += 1
            return
        try:
            self._outbox.put_nowait((topic, payload, qos, retain))
        except asyncio.QueueFull:
            self.dropped[f"{kind}_queue_full"] += 1
            return
        self.published[kind] += 1

    def _encode_or_none(self, msg: Any) -> bytes | None:
        return None if msg is None else self.codec.encode(msg)

    # ------------------------------------------------------------------------------- MQTT

    def _tls_context(self) -> ssl.SSLContext | None:
        if isinstance(self.tls, ssl.SSLContext):
            return self.tls
        return ssl.create_default_context() if self.tls else None

    def _status_topic(self, i: int) -> str:
        return self.topics.topic(self.net.intersection_ids[i], "status")

    def _client_for(self, i: int, suffix: str) -> aiomqtt.Client:
        ident = f"{self.client_id}-{suffix}" if self.client_id else None
        return aiomqtt.Client(
            self.host, self.port, username=self.username, password=self.password,
            identifier=ident, keepalive=self.keepalive_s, timeout=5.0,
            queue_type=self._dispatch_queue if i == 0 else None,
            will=aiomqtt.Will(self._status_topic(i), STATUS_FALLBACK.encode(), qos=1, retain=True),
            tls_context=self._tls_context(),
        )

    async def _mqtt_loop(self) -> None:
        assert self._stopping is not None
        backoff = self.reconnect_min_s
        while not self._stopping.is_set():
            try:
                await self._session()
                backoff = self.reconnect_min_s
            except aiomqtt.MqttError as exc:
                if self._client is not None or self.connections == 0:
                    log.warning("broker %s:%d unavailable (%s); local control goes on, retrying",
                                self.host, self.port, " ".join(str(exc).split())[:160])
            finally:
                if self._client is not None:
                    self._client = None
                    self._offline_since = time.monotonic()
                self.status = STATUS_FALLBACK if self.connections else STATUS_OFFLINE
            if self._stopping.is_set():
                break
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2.0, self.reconnect_max_s)

    async def _session(self) -> None:
        """One connection: status clients, MAPEM, subscriptions, messages until loss or stop."""
        assert self._stopping is not None and self._outbox is not None
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(self._client_for(0, "0"))
            # One MQTT will per connection: the other intersections get a small status client each.
            extra = [await stack.enter_async_context(self._client_for(i, str(i)))
                     for i in range(1, self.net.n_intersections)]
            while not self._outbox.empty():  # stale SPATEM/SSEM from before the loss
                self._outbox.get_nowait()
            for filt in self.topics.subscriptions():
                await client.subscribe(filt, qos=0)
            for i in range(self.net.n_intersections):
                if self._mapem[i] is not None:
                    await client.publish(self.topics.topic(self.net.intersection_ids[i], "mapem"),
                                         self._mapem[i], qos=1, retain=True)
                    self.published["mapem"] += 1
            for i, c in enumerate([client, *extra]):
                await c.publish(self._status_topic(i), STATUS_ONLINE.encode(), qos=1, retain=True)
            self.status = STATUS_ONLINE
            self.connections += 1
            if self._offline_since is not None:
                self.offline_s += time.monotonic() - self._offline_since
                self._offline_since = None
            if self.connections > 1:
                log.warning("reconnected to broker %s:%d; MAPEM republished", self.host, self.port)
            self._client = client
            sender = asyncio.create_task(self._sender(client))
            receiver = asyncio.create_task(self._receiver(client))
            stopping = asyncio.create_task(self._stopping.wait())
            try:
                done, _ = await asyncio.wait({sender, receiver, stopping},
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (sender, receiver, stopping):
                    t.cancel()
                for t in (sender, receiver, stopping):
                    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                        await t
            for t in done:
                if t is not stopping and not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            if self._stopping.is_set():
                self._client = None
                for i, c in enumerate([client, *extra]):
                    with contextlib.suppress(aiomqtt.MqttError):
                        await c.publish(self._status_topic(i), STATUS_OFFLINE.encode(), qos=1,
                                        retain=True, timeout=2.0)

    async def _receiver(self, client: aiomqtt.Client) -> None:
        # Messages never reach the queue (see _dispatch_queue): the iteration only waits, and
        # raises MqttError when the connection is lost.
        async for _ in client.messages:
            pass

    async def _sender(self, client: aiomqtt.Client) -> None:
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
