"""Attacks on the live gateway, each over a real broker: every one is refused and counted.

Authorisation attacks run over the shipped broker configuration (``shipped_broker``: the
gateway on the loopback listener, devices over TLS with their own logins); floods and faults
over a plain test broker (``mqtt_broker``), where CAMs may come without a login (a road-side
relay), so that no per-login budget hides what the gateway itself must bound.

pytest-asyncio is not used: each test runs its own event loop with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
from broker import ShippedBroker
from local_broker import LocalBroker, mqtt_publish_packet, raw_mqtt_connect
from pki import Holder, holder, trust_store
from test_gateway_service import CONFLICTS, GROUPS, LANES, M_PER_DEG_LAT, make_gateway, wait_for

from ivri.config import NetworkConfig
from ivri.errors import SafetyViolation
from ivri.gateway.ingest import minute_of_year
from ivri.gateway.service import GatewayService
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
    Srem,
    decode_json,
    encode_json,
)

# Two four-arm intersections 1 km apart, fast timings (short tests).
CENTRES = {"J101": (52.10032, 5.07850), "J102": (52.10032, 5.09317)}
ITS_ID = {"J101": 101, "J102": 102}
NET = NetworkConfig.model_validate({"intersections": [{
    "id": j,
    "signal_groups": [{"id": g, "min_green_s": 2.0, "max_green_s": 6.0, "amber_s": 1.5, "min_red_s": 0.5}
                      for g in GROUPS],
    "conflicts": [{"between": [a, b], "intergreen_s": [2.0, 2.0]} for a, b in CONFLICTS],
} for j in CENTRES]})


def point(j: str, heading_deg: float, back_m: float) -> tuple[float, float]:
    """The point ``back_m`` before the centre of ``j`` for traffic driving ``heading_deg``."""
    lat0, lon0 = CENTRES[j]
    h = math.radians(heading_deg)
    return (lat0 - back_m * math.cos(h) / M_PER_DEG_LAT,
            lon0 - back_m * math.sin(h) / (M_PER_DEG_LAT * math.cos(math.radians(lat0))))


SITES = GatewaySites.model_validate({"sites": [{
    "intersection": j, "its_id": ITS_ID[j], "its_region": 1, "ref_point": list(CENTRES[j]),
    "signal_group_numbers": {g: n for g, (n, _) in GROUPS.items()},
    "approaches": [{"signal_group": g, "stop_line": list(point(j, h, 10.0)), "heading_deg": h,
                    "range_m": 400.0, "lane_ids": LANES[g], "approach_id": k + 1}
                   for k, (g, (_, h)) in enumerate(GROUPS.items())],
} for j in CENTRES]})


def cam(station: int, dist_m: float = 100.0, j: str = "J101", emergency: bool = True) -> bytes:
    lat, lon = point(j, 90.0, 10.0 + dist_m)
    extra: dict[str, Any] = {}
    if emergency:
        extra = {"vehicle_role": "emergency", "emergency_container": EmergencyContainer(
            light_bar_siren_in_use=("lightBarActivated", "sirenActivated"))}
    return encode_json(Cam(
        header=ItsPduHeader(message_id=2, station_id=station),
        generation_delta_time=int(time.time() * 1000) % 65536, station_type=10 if emergency else 5,
        reference_position=ReferencePosition(latitude=round(lat * 1e7), longitude=round(lon * 1e7)),
        heading=900, speed=1500, **extra))


def srem(station: int, *, role: str = "ambulance", j: str = "J101", eta_s: float = 8.0,
         kind: str = "priorityRequest", requestor: int | None = None, request_id: int = 1) -> bytes:
    moy, ms = minute_of_year(time.time() + eta_s)
    return encode_json(Srem(
        header=ItsPduHeader(message_id=9, station_id=station), second=ms % 60000, sequence_number=1,
        requests=(SignalRequestPackage(
            request=SignalRequest(id=IntersectionReferenceID(region=1, id=ITS_ID[j]), request_id=request_id,
                                  request_type=kind, in_bound_lane=IntersectionAccessPoint(lane=1)),
            minute=moy, second=ms, duration=4000),),
        requestor=RequestorDescription(id=station if requestor is None else requestor,
                                       type=RequestorType(role=role)),
    ))


async def run_gateway(url: str, body: Callable[[GatewayService], Awaitable[None]], **kw: Any) -> GatewayService:
    params: dict[str, Any] = {"sites": SITES, "tick_s": 0.1, "spat_every_s": 0.5, "trust_store": trust_store(),
                              "controller": "actuated+greenflow+bus+schwung", "always_demand": True}
    svc = make_gateway(NET, url, **{**params, **kw})
    runner = asyncio.create_task(svc.run())
    try:
        await wait_for(lambda: svc.status == "online" or runner.done(), 5, "the gateway to connect")
        await body(svc)
    finally:
        svc.stop()
        await asyncio.wait_for(runner, 5)
    return svc


def on_shipped(sb: ShippedBroker) -> dict[str, Any]:
    return {"username": "gateway", "password": sb.users["gateway"]}


def device(sb: ShippedBroker, login: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", sb.device_port, username=login, password=sb.users[login],
                          tls_context=sb.tls, timeout=3.0)


def request_of(svc: GatewayService, h: Holder, j: str = "J101") -> Any:
    s = svc.table.index.get((h.station_id, svc.net.intersection_index[j]))
    return None if s is None else svc.table.requests.get(s)


# ---------------------------------------------------------------------- authorisation


def test_cam_only_emergency_gets_no_priority(shipped_broker: ShippedBroker) -> None:
    sb = shipped_broker
    seen_requests: list[int] = []

    async def body(svc: GatewayService) -> None:
        async with device(sb, "amb-7f3a") as amb:
            for k in range(30):  # 3 s of CAMs: an ambulance, lights and siren on, closing in
                await amb.publish("ivri/nl/J101/cam/amb-7f3a", cam(4242, 150.0 - 10 * k))
                await asyncio.sleep(0.1)
            await wait_for(lambda: svc.refused["cam_is_not_a_request"] >= 30, 3, "the CAMs")

    svc = asyncio.run(run_gateway(sb.broker.url, body, **on_shipped(sb),
                                  on_tick=lambda s: seen_requests.append(len(s.ctl.tracked_.keys))))
    assert max(seen_requests) == 0, "a CAM alone made a priority request"
    assert svc.refused["cam_is_not_a_request"] == 30 and svc.published.get("ssem", 0) == 0
    assert not svc.decisions.counts


def test_cancel_and_downgrade_by_another_key_are_refused(shipped_broker: ShippedBroker) -> None:
    sb = shipped_broker
    amb = holder(["emergency"])
    bike = holder(["cyclist_app"])
    clone = holder(["cyclist_app"], station_id=amb.station_id)  # same pseudonym, another ticket

    async def body(svc: GatewayService) -> None:
        async with device(sb, "amb-7f3a") as a, device(sb, "bike-5d11") as b:
            await a.publish("ivri/nl/J101/srem/amb-7f3a", amb.sign(srem(amb.station_id, eta_s=20.0)))
            await wait_for(lambda: request_of(svc, amb) is not None, 3, "the ambulance's request")
            attacks = [
                # the ambulance's id in header and requestor: not the bike ticket's station id
                srem(amb.station_id, role="cyclist", kind="priorityCancellation"),
                srem(amb.station_id, role="cyclist"),
                # its own header, the ambulance as requestor
                srem(bike.station_id, role="cyclist", kind="priorityCancellation", requestor=amb.station_id),
                # asking as an ambulance: the bike's ticket has no such class
                srem(bike.station_id, kind="priorityCancellation"),
            ]
            for payload in attacks:
                await b.publish("ivri/nl/J101/srem/bike-5d11", bike.sign(payload))
            # a ticket with the same station id: the request still belongs to the other ticket
            await b.publish("ivri/nl/J101/srem/bike-5d11",
                            clone.sign(srem(amb.station_id, role="cyclist", kind="priorityCancellation")))
            await b.publish("ivri/nl/J101/srem/bike-5d11", clone.sign(srem(amb.station_id, role="cyclist")))
            await wait_for(lambda: sum(svc.refused.values()) >= 6, 3, "the refusals")
            # the owner itself may not downgrade either (it must cancel first)
            both = holder(["emergency", "cyclist_app"])
            await a.publish("ivri/nl/J101/srem/amb-7f3a", both.sign(srem(both.station_id, eta_s=20.0)))
            await wait_for(lambda: request_of(svc, both) is not None, 3, "a second request")
            await a.publish("ivri/nl/J101/srem/amb-7f3a", both.sign(srem(both.station_id, role="cyclist")))
            await wait_for(lambda: svc.refused["downgrade"] >= 1, 3, "the downgrade refusal")
            held = request_of(svc, amb)
            assert held is not None and held.role == "ambulance" and held.owner[1] == amb.ticket.ticket_id
            assert request_of(svc, both).role == "ambulance"

    svc = asyncio.run(run_gateway(sb.broker.url, body, **on_shipped(sb)))
    assert svc.refused == {"station_id_mismatch": 3, "not_authorised_for_class": 1, "not_request_owner": 2,
                           "downgrade": 1}


def test_bus_ticket_claiming_ambulance_expired_and_wrong_intersection(shipped_broker: ShippedBroker) -> None:
    sb = shipped_broker
    bus = holder(["public_transport"])
    expired = holder(["emergency"], valid_s=(-3600.0, -1.0))
    elsewhere = holder(["emergency"], scope=["nl/J101"])
    forged_issuer = holder(["emergency"], issuer="rogue-root")

    async def body(svc: GatewayService) -> None:
        async with device(sb, "bus-19c2") as d:
            await d.publish("ivri/nl/J101/srem/bus-19c2", bus.sign(srem(bus.station_id, role="ambulance")))
            await d.publish("ivri/nl/J101/srem/bus-19c2", expired.sign(srem(expired.station_id)))
            await d.publish("ivri/nl/J102/srem/bus-19c2", elsewhere.sign(srem(elsewhere.station_id, j="J102")))
            await d.publish("ivri/nl/J101/srem/bus-19c2", forged_issuer.sign(srem(forged_issuer.station_id)))
            await d.publish("ivri/nl/J101/srem/bus-19c2", bus.sign(srem(bus.station_id, role="publicTransport")))
            await wait_for(lambda: svc.verifier.counts["accepted"] >= 1 and sum(svc.refused.values()) >= 4,
                           3, "the verdicts")

    svc = asyncio.run(run_gateway(sb.broker.url, body, **on_shipped(sb)))
    assert svc.refused == {"not_authorised_for_class": 1, "ticket_not_valid_now": 1,
                           "ticket_not_for_intersection": 1, "unknown_issuer": 1}
    assert svc.verifier.counts["accepted"] == 1  # the bus asking as a bus


def test_revoked_ticket_is_refused_without_restart(shipped_broker: ShippedBroker, tmp_path: Path) -> None:
    sb = shipped_broker
    crl = tmp_path / "revoked.txt"
    crl.write_text("")
    amb = holder(["emergency"])

    async def body(svc: GatewayService) -> None:
        async with device(sb, "amb-7f3a") as a:
            await a.publish("ivri/nl/J101/srem/amb-7f3a", amb.sign(srem(amb.station_id)))
            await wait_for(lambda: svc.verifier.counts["accepted"] == 1, 3, "the first request")
            crl.write_text(f"# stolen on 2026-12-03\n{amb.ticket.issuer}/{amb.ticket.ticket_id}\n")
            await a.publish("ivri/nl/J101/srem/amb-7f3a", amb.sign(srem(amb.station_id, request_id=2)))
            await wait_for(lambda: svc.refused["revoked"] == 1, 3, "the revocation")

    svc = asyncio.run(run_gateway(sb.broker.url, body, **on_shipped(sb), trust_store=trust_store(str(crl))))
    assert svc.verifier.counts["accepted"] == 1 and svc.verifier.trust_store.revocations.reloads == 2


def test_replay_at_another_intersection_and_after_restart(shipped_broker: ShippedBroker, tmp_path: Path) -> None:
    sb = shipped_broker
    amb = holder(["emergency"], scope=["nl/*"])
    recorded = amb.sign(srem(amb.station_id, j="J101"))

    async def first(svc: GatewayService) -> None:
        async with device(sb, "mallory") as m:
            await m.publish("ivri/nl/J101/srem/mallory", recorded)
            await wait_for(lambda: svc.verifier.counts["accepted"] == 1, 3, "the genuine request")
            await m.publish("ivri/nl/J102/srem/mallory", recorded)  # played back next door
            await wait_for(lambda: svc.refused["replayed"] == 1, 3, "the replay")

    async def after_restart(svc: GatewayService) -> None:
        async with device(sb, "mallory") as m:
            await m.publish("ivri/nl/J101/srem/mallory", recorded)
            await wait_for(lambda: svc.refused["replayed"] == 1, 3, "the replay after a restart")

    state = tmp_path / "state"
    svc = asyncio.run(run_gateway(sb.broker.url, first, **on_shipped(sb), state_dir=state))
    assert svc.refused == {"replayed": 1}
    svc = asyncio.run(run_gateway(sb.broker.url, after_restart, **on_shipped(sb), state_dir=state))
    assert svc.refused == {"replayed": 1} and svc.verifier.counts["accepted"] == 0


def test_retained_device_messages_have_no_effect(shipped_broker: ShippedBroker) -> None:
    sb = shipped_broker

    async def plant() -> None:
        async with device(sb, "mallory") as m:
            await m.publish("ivri/nl/J101/cam/mallory", cam(666, 50.0), qos=1, retain=True)

    async def body(svc: GatewayService) -> None:
        await wait_for(lambda: svc.rejected["retained_input"] >= 1, 3, "the retained CAM")
        await asyncio.sleep(0.3)

    async def leftovers() -> list[bytes]:
        got: list[bytes] = []
        async with aiomqtt.Client(sb.broker.host, sb.broker.port, username="gateway",
                                  password=sb.users["gateway"], timeout=3.0) as gw:
            await gw.subscribe("ivri/nl/J101/cam/#", qos=1)
            try:
                async with asyncio.timeout(0.8):
                    async for msg in gw.messages:
                        got.append(bytes(msg.payload))  # type: ignore[arg-type]
            except TimeoutError:
                pass
        return got

    asyncio.run(plant())
    svc = asyncio.run(run_gateway(sb.broker.url, body, **on_shipped(sb)))
    assert svc.rejected["retained_input"] == 1 and len(svc.table) == 0
    assert asyncio.run(leftovers()) == []  # the gateway cleared it


# ------------------------------------------------------------------------------ floods


def test_flood_of_fake_station_ids_is_bounded(mqtt_broker: LocalBroker) -> None:
    n, cap = 100_000, 1_000
    template = cam(1, 120.0).decode()
    marker = '"station_id":1}'
    assert template.count(marker) == 1
    packets = [mqtt_publish_packet("ivri/nl/J101/cam", template.replace(marker, f'"station_id":{k + 10}}}').encode())
               for k in range(n)]
    sizes: list[int] = []
    ticks: list[float] = []

    def watch(svc: GatewayService) -> None:
        sizes.append(len(svc.table))
        ticks.append(time.monotonic())

    def flood() -> None:  # a raw publisher in a thread: the flood costs the test little CPU
        sock = raw_mqtt_connect(mqtt_broker.host, mqtt_broker.port, "flood")
        try:
            for k in range(0, n, 500):
                sock.sendall(b"".join(packets[k:k + 500]))
        finally:
            sock.close()

    async def body(svc: GatewayService) -> None:
        await asyncio.to_thread(flood)
        # The broker too drops what a subscriber cannot take (its queue is bounded): wait until
        # nothing more arrives.
        last = -1
        while svc.received["cam"] + svc.dropped["cam_inbox_full"] != last or svc._inbox:
            last = svc.received["cam"] + svc.dropped["cam_inbox_full"]
            await asyncio.sleep(0.5)
        assert svc.received["cam"] > 3 * cap  # the rest was dropped, by the broker or the inbox

    svc = asyncio.run(run_gateway(mqtt_broker.url, body, max_stations=cap, on_tick=watch,
                                  controller="actuated+greenflow"))
    assert max(sizes) <= cap and svc.table.capacity <= cap  # memory bounded by the cap
    assert svc.table.evicted >= svc.received["cam"] - cap
    assert svc.refused["cam_is_not_a_request"] == svc.received["cam"]  # every claim counted
    # The engine kept its 0.1 s period (a loose bound: the machine may be shared).
    assert np.percentile(np.diff(ticks), 95) < 0.2, "the engine tick stalled under the flood"


def test_flood_of_forged_srems_is_bounded_and_counted(shipped_broker: ShippedBroker) -> None:
    sb = shipped_broker
    amb = holder(["emergency"])
    n = 3000
    forged = []
    for k in range(n):  # the ambulance's public ticket, a tampered payload: bad signatures
        env = json.loads(amb.sign(srem(amb.station_id), seq=1000 + k))
        env["timestamp_ms"] += 1
        forged.append(json.dumps(env).encode())

    async def body(svc: GatewayService) -> None:
        async with device(sb, "mallory") as m, device(sb, "amb-7f3a") as a:
            t0 = time.monotonic()
            for k, p in enumerate(forged):
                await m.publish("ivri/nl/J101/srem/mallory", p)
                if k == n // 2:  # the genuine ambulance, mid-flood, on its own login
                    await a.publish("ivri/nl/J101/srem/amb-7f3a", amb.sign(srem(amb.station_id), seq=1))
            await wait_for(lambda: sum(svc.refused.values()) >= n, 20, "the flood to be counted")
            body.elapsed = time.monotonic() - t0  # type: ignore[attr-defined]
            await wait_for(lambda: request_of(svc, amb) is not None, 3, "the genuine request")

    svc = asyncio.run(run_gateway(sb.broker.url, body, **on_shipped(sb)))
    checked = svc.refused["bad_signature"]
    # Signatures checked: the burst plus one per second of flood; the rest refused unchecked.
    assert checked <= 5 + math.ceil(body.elapsed) + 1  # type: ignore[attr-defined]
    assert svc.refused["over_failure_rate"] == n - checked
    assert svc.verifier.counts["accepted"] == 1


# ------------------------------------------------------------------------------ faults


def test_controller_that_raises_falls_back_and_keeps_running(mqtt_broker: LocalBroker) -> None:
    status: list[str] = []

    async def body(svc: GatewayService) -> None:
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as c:
            await c.subscribe("ivri/nl/+/status", qos=1)
            await c.subscribe("ivri/nl/J101/spatem")
            await asyncio.sleep(0.3)
            app = svc.ctl.applications[0]

            def broken(*_: object) -> None:
                raise ZeroDivisionError("a bug in a priority application")

            app.requests = broken  # type: ignore[method-assign]
            ticks = svc.ticks
            spat = []
            async with asyncio.timeout(5):
                async for m in c.messages:
                    if m.topic.value.endswith("/status"):
                        status.append(bytes(m.payload).decode())  # type: ignore[arg-type]
                    else:
                        spat.append(decode_json(bytes(m.payload), "spatem"))  # type: ignore[arg-type]
                    if "fallback" in status and len(spat) >= 10 and svc.ticks > ticks + 20:
                        break

    svc = asyncio.run(run_gateway(mqtt_broker.url, body))
    assert svc.faults == {"ZeroDivisionError": 1}  # once: the fallback has no applications
    assert svc.safe_state and type(svc.ctl).__name__ == "VehicleActuated"
    assert status[0] == "online" and status[-1] == "fallback"  # the retained status says so


def test_safety_violation_falls_back_and_keeps_running(mqtt_broker: LocalBroker) -> None:
    t_core: list[float] = []

    async def body(svc: GatewayService) -> None:
        advance = svc.core.advance
        calls = {"n": 0}

        def violating(*a: Any, **k: Any) -> Any:
            calls["n"] += 1
            out = advance(*a, **k)
            if calls["n"] == 5:
                raise SafetyViolation("conflicting greens at t=0.5 s (injected)")
            return out

        svc.core.advance = violating  # type: ignore[method-assign]
        await wait_for(lambda: svc.ticks >= 20, 5, "ticks after the violation")

    svc = asyncio.run(run_gateway(mqtt_broker.url, body, on_tick=lambda s: t_core.append(s.core.t_s)))
    assert svc.faults == {"safety_violation": 1}
    assert svc.safe_state and type(svc.ctl).__name__ == "VehicleActuated"
    assert t_core[-1] >= 2.0 and all(b > a for a, b in itertools.pairwise(t_core))


def test_ssem_changes_while_offline_are_sent_on_reconnect(mqtt_broker: LocalBroker) -> None:
    bus = holder(["public_transport"])
    got: list[str] = []

    async def listen(ready: asyncio.Event) -> None:
        while True:
            try:
                async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as c:
                    await c.subscribe("ivri/nl/J101/ssem", qos=1)
                    ready.set()
                    async for m in c.messages:
                        ssem = decode_json(bytes(m.payload), "ssem")  # type: ignore[arg-type]
                        got.extend(p.status for p in ssem.status[0].sig_status)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    async def body(svc: GatewayService) -> None:
        ready = asyncio.Event()
        listener = asyncio.create_task(listen(ready))
        await ready.wait()
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as c:
            # A late bus 22 s out: "requested" now; bus priority ranks it 20 s before the stop line.
            payload = srem(bus.station_id, role="publicTransport", eta_s=22.0)
            await c.publish("ivri/nl/J101/srem", bus.sign(payload), qos=1)
        await wait_for(lambda: got == ["requested"], 3, "the first answer")
        mqtt_broker.kill()
        p = request_of(svc, bus)
        await wait_for(lambda: p.last_status != p.sent_status, 6, "a status change while offline")
        changed = p.last_status
        mqtt_broker.start()
        await wait_for(lambda: changed in got[1:], 8, "the change after reconnecting")
        listener.cancel()

    asyncio.run(run_gateway(mqtt_broker.url, body, reconnect_min_s=0.5, controller="actuated+bus"))
