"""The live gateway over a real MQTT broker: priority, refusals, hostile input, broker loss.

pytest-asyncio is not used: each test runs its own event loop with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self

import aiomqtt
import pytest
from local_broker import LocalBroker
from pki import holder, trust_store

from ivri.config import NetworkConfig
from ivri.gateway.ingest import minute_of_year
from ivri.gateway.security import generate_key_pair, sign_request
from ivri.gateway.service import GatewayService
from ivri.gateway.settings import gateway_settings
from ivri.gateway.site import GatewaySites
from ivri.its import (
    Cam,
    EmergencyContainer,
    IntersectionAccessPoint,
    IntersectionReferenceID,
    ItsPduHeader,
    ReferencePosition,
    RequestorDescription,
    RequestorType,
    SignalRequest,
    SignalRequestPackage,
    Spatem,
    Srem,
    decode_json,
    encode_json,
)

# A fast-cycling four-arm intersection (short greens and intergreens keep tests short).
CENTRE = (52.10032, 5.07850)
M_PER_DEG_LAT = 111195.08
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(CENTRE[0]))
GROUPS = {"fc02": (2, 90.0), "fc05": (5, 180.0), "fc08": (8, 270.0), "fc11": (11, 0.0)}
CONFLICTS = [("fc02", "fc05"), ("fc02", "fc11"), ("fc08", "fc05"), ("fc08", "fc11")]
CONFLICT_NUMBERS = {frozenset((GROUPS[a][0], GROUPS[b][0])) for a, b in CONFLICTS}
LANES = {"fc02": [1, 2], "fc05": [3], "fc08": [5, 6], "fc11": [7]}

NET = NetworkConfig.model_validate({"intersections": [{
    "id": "J101",
    "signal_groups": [
        {"id": g, "min_green_s": 2.0, "max_green_s": 6.0, "amber_s": 1.5, "min_red_s": 0.5}
        for g in GROUPS
    ],
    "conflicts": [{"between": [a, b], "intergreen_s": [2.0, 2.0]} for a, b in CONFLICTS],
}]})


def stop_line(heading_deg: float, back_m: float = 10.0) -> tuple[float, float]:
    """The point ``back_m`` before the centre for traffic driving ``heading_deg``."""
    h = math.radians(heading_deg)
    return (CENTRE[0] - back_m * math.cos(h) / M_PER_DEG_LAT,
            CENTRE[1] - back_m * math.sin(h) / M_PER_DEG_LON)


SITES = GatewaySites.model_validate({"sites": [{
    "intersection": "J101", "its_id": 101, "its_region": 1, "ref_point": list(CENTRE),
    "signal_group_numbers": {g: n for g, (n, _) in GROUPS.items()},
    "approaches": [
        {"signal_group": g, "stop_line": list(stop_line(h)), "heading_deg": h, "range_m": 600.0,
         "lane_ids": LANES[g], "approach_id": k + 1}
        for k, (g, (_, h)) in enumerate(GROUPS.items())
    ],
}]})

AMB = holder(["emergency"])
FORGER_PRIV, _ = generate_key_pair()
ASN1_DIR = Path(os.environ.get("IVRI_ASN1_DIR", Path(__file__).resolve().parents[2] / "shared" / "asn1"))


def emergency_cam(station: int, dist_m: float, heading_deg: float = 90.0, speed_mps: float = 15.0) -> bytes:
    lat, lon = stop_line(heading_deg, 10.0 + dist_m)
    return encode_json(Cam(
        header=ItsPduHeader(message_id=2, station_id=station),
        generation_delta_time=int(time.time() * 1000) % 65536, station_type=10,
        reference_position=ReferencePosition(latitude=round(lat * 1e7), longitude=round(lon * 1e7)),
        heading=round(heading_deg * 10) % 3600, speed=round(speed_mps * 100), vehicle_role="emergency",
        emergency_container=EmergencyContainer(light_bar_siren_in_use=("lightBarActivated", "sirenActivated")),
    ))


def srem_payload(station: int, eta_s: float, lane: int = 1, request_id: int = 1, seq: int = 1,
                 role: str = "emergency") -> bytes:
    moy, ms = minute_of_year(time.time() + eta_s)
    return encode_json(Srem(
        header=ItsPduHeader(message_id=9, station_id=station), second=ms % 60000, sequence_number=seq,
        requests=(SignalRequestPackage(
            request=SignalRequest(id=IntersectionReferenceID(region=1, id=101), request_id=request_id,
                                  request_type="priorityRequest",
                                  in_bound_lane=IntersectionAccessPoint(lane=lane)),
            minute=moy, second=ms, duration=4000,
        ),),
        requestor=RequestorDescription(id=station, type=RequestorType(role=role)),
    ))


def signed(payload: bytes, seq: int) -> bytes:
    return AMB.sign(payload, seq)


class Listener:
    """Collects SPATEM, SSEM and status messages (with receive times) in the background."""

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker
        self.spatem: list[tuple[float, Spatem]] = []
        self.ssem: list[tuple[float, Any]] = []
        self.status: list[str] = []
        self.mapem: list[bytes] = []
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Self:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(ready))
        await asyncio.wait_for(ready.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await self._task

    async def _run(self, ready: asyncio.Event) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.broker.host, self.broker.port) as c:
                    for kind in ("spatem", "ssem", "status", "mapem"):
                        await c.subscribe(f"ivri/nl/J101/{kind}")
                    ready.set()
                    async for m in c.messages:
                        kind = m.topic.value.rsplit("/", 1)[1]
                        payload = bytes(m.payload)  # type: ignore[arg-type]
                        if kind == "spatem":
                            self.spatem.append((time.monotonic(), decode_json(payload, "spatem")))
                        elif kind == "ssem":
                            self.ssem.append((time.monotonic(), decode_json(payload, "ssem")))
                        elif kind == "status":
                            self.status.append(payload.decode())
                        else:
                            self.mapem.append(payload)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)


def green_groups(msg: Spatem) -> set[int]:
    return {s.signal_group for s in msg.intersections[0].states
            if s.state_time_speed[0].event_state == "protected-Movement-Allowed"}


def assert_no_conflicting_greens(spatems: list[tuple[float, Spatem]]) -> None:
    for _, msg in spatems:
        greens = green_groups(msg)
        for pair in CONFLICT_NUMBERS:
            assert not pair <= greens, f"conflicting greens {sorted(pair)} in a SPATEM"


async def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


#: GatewayService's keyword arguments that are objects, not settings.
SERVICE_OBJECTS = ("sites", "trust_store", "connector", "tls", "on_tick", "decision_log", "demand_source")


def make_gateway(config: NetworkConfig, url: str, **kw: Any) -> GatewayService:
    """A gateway from one flat set of keywords: the settings go to :class:`GatewaySettings`
    (an unknown one fails there), the objects beside it."""
    objects = {k: kw.pop(k) for k in SERVICE_OBJECTS if k in kw}
    return GatewayService(config, gateway_settings(broker_url=url, **kw), **objects)


async def with_gateway(broker: LocalBroker, body: Callable[[GatewayService], Awaitable[None]],
                       **kw: Any) -> GatewayService:
    params: dict[str, Any] = {"sites": SITES, "tick_s": 0.1, "spat_every_s": 0.5,
                              "trust_store": trust_store(), "controller": "actuated+greenflow"}
    params.update(kw)
    svc = make_gateway(NET, broker.url, **params)
    runner = asyncio.create_task(svc.run())
    try:
        await wait_for(lambda: svc.status == "online" or runner.done(), 5, "the gateway to connect")
        await body(svc)
    finally:
        svc.stop()
        await asyncio.wait_for(runner, 5)
    return svc


# --------------------------------------------------------------------------------- tests


def test_emergency_vehicle_gets_green_before_arrival(mqtt_broker: LocalBroker) -> None:
    async def body(svc: GatewayService) -> None:
        async with Listener(mqtt_broker) as listener, aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as car:
            # Wait until a group conflicting with the ambulance's (fc02) is green.
            await wait_for(lambda: any(green_groups(m) & {5, 11} for _, m in listener.spatem[-1:]),
                           8, "a conflicting green")
            station, dist, speed, dt = AMB.station_id, 120.0, 15.0, 0.1
            start = time.monotonic()
            arrival = start + dist / speed
            await car.publish("ivri/nl/J101/srem", signed(srem_payload(station, dist / speed), seq=1))
            green_at = None
            while time.monotonic() < arrival:
                d = dist - speed * (time.monotonic() - start)
                await car.publish("ivri/nl/J101/cam", emergency_cam(station, max(d, 0.0)))
                if green_at is None and any(2 in green_groups(m) for t, m in listener.spatem if t >= start):
                    green_at = time.monotonic()
                await asyncio.sleep(dt)
            assert green_at is not None and green_at < arrival, "fc02 was not green before arrival"
            statuses = [p.status for _, m in listener.ssem for p in m.status[0].sig_status
                        if p.requester is not None and p.requester.id == station]
            assert statuses[0] == "requested"
            assert "granted" in statuses
            assert_no_conflicting_greens(listener.spatem)
            assert len(listener.spatem) > 10
            assert listener.mapem, "MAPEM (retained) was not published"

    svc = asyncio.run(with_gateway(mqtt_broker, body, always_demand=True))
    assert svc.refused == {} and svc.rejected == {}
    assert svc.received["cam"] > 50


def test_forged_and_replayed_srems_are_refused(mqtt_broker: LocalBroker) -> None:
    async def body(svc: GatewayService) -> None:
        async with Listener(mqtt_broker) as listener, aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as car:
            me = AMB.station_id
            good = signed(srem_payload(me, 20.0), seq=5)
            await car.publish("ivri/nl/J101/srem", good)
            await car.publish("ivri/nl/J101/srem", good)  # replayed
            # the ambulance's (public) ticket, signed with another key
            forged = sign_request(srem_payload(me, 20.0), FORGER_PRIV, AMB.ticket, int(time.time() * 1000), 9)
            await car.publish("ivri/nl/J101/srem", forged.model_dump_json().encode())
            tampered = json.loads(good)
            tampered["sequence"] = 6  # re-numbered to dodge the replay check: signature breaks
            await car.publish("ivri/nl/J101/srem", json.dumps(tampered).encode())
            stranger = holder(["emergency"], issuer="someone", issuer_key=FORGER_PRIV)
            await car.publish("ivri/nl/J101/srem", stranger.sign(srem_payload(stranger.station_id, 20.0)))
            await car.publish("ivri/nl/J101/srem", srem_payload(me, 20.0))  # unsigned, bare SREM
            await wait_for(lambda: sum(svc.refused.values()) >= 5, 5, "the refusals")
            await wait_for(lambda: len(listener.ssem) >= 1, 5, "the SSEM of the good request")
            n = len(listener.spatem)
            await wait_for(lambda: len(listener.spatem) > n + 2, 5, "SPATEM to go on")
            answered = {p.requester.id for _, m in listener.ssem for p in m.status[0].sig_status}
            assert answered == {AMB.station_id}

    svc = asyncio.run(with_gateway(mqtt_broker, body))
    assert svc.refused["replayed"] == 1
    assert svc.refused["bad_signature"] == 2
    assert svc.refused["unknown_issuer"] == 1
    assert svc.refused["unsigned"] == 1
    assert svc.verifier.counts["accepted"] == 1


def test_malformed_payloads_are_counted_and_spat_continues(mqtt_broker: LocalBroker) -> None:
    async def body(svc: GatewayService) -> None:
        async with Listener(mqtt_broker) as listener, aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as bad:
            await wait_for(lambda: len(listener.spatem) >= 1, 5, "a first SPATEM")
            spat = encode_json(listener.spatem[0][1])
            payloads = {
                "cam": [os.urandom(200), b"", b"{\"type\": \"cam\"}", b"[1,2,3]", b"\xff\xfe{}",
                        spat, b"{" * 5000, b"x" * 20_000],
                "srem": [os.urandom(100), b"{\"payload\": 5}", spat, b"y" * 100_000],
            }
            for kind, items in payloads.items():
                for p in items:
                    await bad.publish(f"ivri/nl/J101/{kind}", p)
            # Another gateway's intersection: not subscribed to, so the broker does not deliver it;
            # handed over anyway (a broker that ignores the filter), it is rejected.
            await bad.publish("ivri/nl/NOPE/cam", emergency_cam(1, 50.0))
            svc.handle("ivri/nl/NOPE/cam", emergency_cam(1, 50.0))
            total = sum(len(v) for v in payloads.values()) + 1
            await wait_for(lambda: sum(svc.rejected.values()) + sum(svc.refused.values()) >= total,
                           5, "every bad payload to be counted")
            n = len(listener.spatem)
            await wait_for(lambda: len(listener.spatem) >= n + 3, 5, "SPATEM to go on")

    svc = asyncio.run(with_gateway(mqtt_broker, body))
    assert svc.rejected["oversized"] == 2
    assert svc.rejected["wrong_type"] >= 1  # a SPATEM on the cam topic
    assert svc.rejected["malformed"] >= 4 and svc.rejected["empty"] == 1
    assert svc.rejected["unknown_intersection"] == 1
    assert svc.refused["malformed"] == 1  # random bytes as an SREM envelope
    assert svc.refused["unsigned"] == 2  # JSON objects without a signature
    assert "internal_error" not in svc.rejected


def test_broker_loss_and_reconnect(mqtt_broker: LocalBroker) -> None:
    async def body(svc: GatewayService) -> None:
        async with Listener(mqtt_broker) as listener:
            await wait_for(lambda: len(listener.spatem) >= 3, 5, "SPATEM")
            assert "online" in listener.status
            ticks, t_before = svc.ticks, svc.core.t_s
            mqtt_broker.kill()
            killed_at = len(history)
            await asyncio.sleep(2.0)
            during = history[killed_at:]
            assert svc.status == "offline"
            assert svc.ticks >= ticks + 15, "the engine stopped while the broker was gone"
            mqtt_broker.start()
            await wait_for(lambda: svc.connections >= 2, 8, "the gateway to reconnect")
            await wait_for(lambda: svc.status == "online", 3, "status online")
            n = len(listener.spatem)
            await wait_for(lambda: len(listener.spatem) >= n + 3, 8, "SPATEM after the restart")
            assert svc.core.t_s >= t_before + 2.0
            # The signal state went on: core time advanced one tick at a time (never reset), and
            # the lights kept changing (local control) while the broker was gone.
            times = [t for t, _ in history]
            assert all(abs(b - a - 0.1) < 1e-6 for a, b in itertools.pairwise(times))
            assert len({st for _, st in during}) >= 2, "the lights froze while the broker was gone"
            assert_no_conflicting_greens(listener.spatem)
        # A new subscriber gets the retained MAPEM and status again (the broker lost them).
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as late:
            await late.subscribe("ivri/nl/J101/mapem")
            await late.subscribe("ivri/nl/J101/status")
            got: dict[str, bytes] = {}
            async with asyncio.timeout(3):
                async for m in late.messages:
                    got[m.topic.value.rsplit("/", 1)[1]] = bytes(m.payload)  # type: ignore[arg-type]
                    if len(got) == 2:
                        break
            assert got["status"] == b"online"
            assert decode_json(got["mapem"], "mapem").intersections[0].id.id == 101

    history: list[tuple[float, bytes]] = []

    def record(svc: GatewayService) -> None:
        history.append((svc.core.t_s, svc.core.signals.state.tobytes()))

    svc = asyncio.run(with_gateway(mqtt_broker, body, always_demand=True, on_tick=record))
    assert svc.connections == 2
    assert svc.offline_s >= 1.5


def test_stop_publishes_offline(mqtt_broker: LocalBroker) -> None:
    async def main() -> list[str]:
        async with Listener(mqtt_broker) as listener:
            await with_gateway(mqtt_broker, lambda svc: asyncio.sleep(0.3))
            await wait_for(lambda: listener.status[-1:] == ["offline"], 3, "status offline")
            return listener.status

    status = asyncio.run(main())
    assert status[0] == "online" and status[-1] == "offline"


@pytest.mark.parametrize("codec", ["uper"])
def test_uper_codec_round_trip(mqtt_broker: LocalBroker, codec: str) -> None:
    asn1 = str(ASN1_DIR)
    if not ASN1_DIR.is_dir():
        pytest.skip("no ASN.1 directory (set IVRI_ASN1_DIR)")
    from ivri.its import UperCodec

    uper = UperCodec(asn1)

    async def body(svc: GatewayService) -> None:
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as c:
            await c.subscribe("ivri/nl/J101/spatem")
            await c.subscribe("ivri/nl/J101/ssem")
            cam = uper.encode(decode_json(emergency_cam(5, 100.0), "cam"))
            await c.publish("ivri/nl/J101/cam", cam)
            srem = uper.encode(decode_json(srem_payload(AMB.station_id, 8.0), "srem"))
            await c.publish("ivri/nl/J101/srem", signed(srem, seq=1))
            kinds: set[str] = set()
            async with asyncio.timeout(5):
                async for m in c.messages:
                    kind = m.topic.value.rsplit("/", 1)[1]
                    uper.decode(bytes(m.payload), kind)  # type: ignore[arg-type]
                    kinds.add(kind)
                    if kinds == {"spatem", "ssem"}:
                        break
            assert svc.received["cam"] == 1 and not svc.rejected

    asyncio.run(with_gateway(mqtt_broker, body, codec=codec, asn1_dir=asn1))


def test_a_priority_decision_goes_out_at_once_and_the_lights_change_on_the_tick() -> None:
    """decide_now: the controller decides on a request as it arrives and the SPATEM showing
    it is produced at once, while the core advances only on its fixed tick."""
    svc = GatewayService(NET, gateway_settings(broker_url="mqtt://127.0.0.1:1", tick_s=0.5, always_demand=True,
                                               allow_cam_priority=True, controller="actuated+greenflow"),
                         sites=SITES)
    for _ in range(4):
        svc.tick(float(_))
    t0, spat0 = svc.core.t_s, svc.dropped["spatem_offline"]  # offline: produced, then dropped
    state0 = svc.core.signals.state.copy()
    svc.handle("ivri/nl/J101/cam", emergency_cam(7, 30.0), now=4.1)
    assert not svc._priority_active().any()  # nothing decided yet
    svc.decide_now(4.1)
    assert svc._priority_active()[0]
    assert svc.dropped["spatem_offline"] == spat0 + 1  # its SPATEM, before the tick
    assert svc.core.t_s == t0 and (svc.core.signals.state == state0).all()  # the lights wait for the tick
    svc.decide_now(4.2)  # one decision per tick
    assert svc.decisions_early == 1 and svc.engine.decided
    svc.tick(4.5)
    assert svc.core.t_s == pytest.approx(t0 + 0.5) and not svc.engine.decided
    assert svc._priority_active()[0]
