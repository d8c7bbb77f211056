"""Gateway benchmark: CAM ingestion throughput and message latency over a real broker.

Scenario: the example intersection (docs/gateway-example.toml + gateway-example-sites.toml),
a mosquitto broker on loopback (:class:`ivri.gateway.broker.LocalBroker`), the gateway in its
own process (one core: asyncio, one thread), a load process that simulates ``--vehicles``
cars (default 1,000) each sending ``--rate`` CAMs/s (default 10) over ``--connections``
client connections, and latency probes in the main process:

* SREM -> SSEM: a signed bus SREM (new request, fresh station) every 200 ms; the time until
  its SSEM (the gateway's immediate ``requested`` answer after verification) arrives; then a
  signed cancellation.
* CAM -> SPATEM: a probe ambulance CAM (lights and siren) 30 m before the fc02 stop line,
  then one 20 m past it, alternately; the time until the first SPATEM whose
  ``signalPriorityIsActive`` bit shows the change. This includes the wait for the next
  engine tick (``--tick-s``, 0.1 s here; the gateway's default is 0.5 s).

Throughput is CAMs the gateway decoded and stored per second of the measured window (after a
warm-up), with the gateway's CPU time over the same window (``cpu``: 1.0 = one core busy).
Loads and probes compete for the same cores as the broker and the gateway: on a machine with
few cores the numbers are lower bounds.

    python benchmarks/gateway.py --seconds 20 --codec json,uper
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs"
ASN1 = os.environ.get("IVRI_ASN1_DIR", str(ROOT.parent / "shared" / "asn1"))
CENTRE = (52.10032, 5.07850)
M_LAT = 111195.08
M_LON = M_LAT * math.cos(math.radians(CENTRE[0]))
HEADINGS = (90.0, 180.0, 270.0, 0.0)  # fc02, fc05, fc08, fc11
N_PROBE_KEYS = 10


def _point(heading_deg: float, dist_before_centre_m: float) -> tuple[int, int]:
    h = math.radians(heading_deg)
    lat = CENTRE[0] - dist_before_centre_m * math.cos(h) / M_LAT
    lon = CENTRE[1] - dist_before_centre_m * math.sin(h) / M_LON
    return round(lat * 1e7), round(lon * 1e7)


def _codec(name: str):
    from ivri.gateway.topics import make_codec

    return make_codec(name, asn1_dir=ASN1)


def _cam(station: int, heading: float, dist: float, speed: float, emergency: bool = False):
    from ivri.its import Cam, EmergencyContainer, ItsPduHeader, ReferencePosition

    lat, lon = _point(heading, 10.0 + dist)
    extra: dict[str, Any] = {}
    if emergency:
        extra = {"vehicle_role": "emergency", "emergency_container": EmergencyContainer(
            light_bar_siren_in_use=("lightBarActivated", "sirenActivated"))}
    return Cam(header=ItsPduHeader(message_id=2, station_id=station),
               generation_delta_time=int(time.time() * 1000) % 65536,
               station_type=10 if emergency else 5,
               reference_position=ReferencePosition(latitude=lat, longitude=lon),
               heading=round(heading * 10) % 3600, speed=round(speed * 100), **extra)


# ------------------------------------------------------------------------------ gateway


def gateway_main(url: str, codec: str, tick_s: float, keys_pem: list[str], out: Any, stop: Any) -> None:
    import logging

    from ivri.config import load_network_config
    from ivri.gateway.security import TrustStore, load_public_key_pem
    from ivri.gateway.service import GatewayService
    from ivri.gateway.site import load_gateway_sites

    logging.basicConfig(level=logging.ERROR)
    store = TrustStore()
    for k, pem in enumerate(keys_pem):
        store.add(f"probe-{k}", load_public_key_pem(pem), ["public_transport"])
    last = [0.0]
    tick_ms: list[float] = []

    def on_tick(svc: GatewayService) -> None:
        now = time.monotonic()
        tick_ms.append(svc.last_tick_s * 1000.0)
        if now - last[0] >= 0.5:
            last[0] = now
            st = svc.stats()
            st["tick_ms_max"] = max(tick_ms)
            st["tick_ms_mean"] = sum(tick_ms) / len(tick_ms)
            tick_ms.clear()
            out.put(("stats", now, svc.received["cam"], time.process_time(), st))
        if stop.is_set():
            svc.stop()

    svc = GatewayService(
        load_network_config(DOCS / "gateway-example.toml"), url, codec=codec, asn1_dir=ASN1,
        sites=load_gateway_sites(DOCS / "gateway-example-sites.toml"), trust_store=store,
        controller="actuated+greenflow+bus", tick_s=tick_s, spat_every_s=1.0, on_tick=on_tick,
        always_demand=True,
    )
    asyncio.run(svc.run())
    out.put(("done", time.monotonic(), svc.received["cam"], time.process_time(), svc.stats()))


# --------------------------------------------------------------------------------- load


def load_main(url: str, codec: str, vehicles: int, rate: float, connections: int, ready: Any,
              stop: Any, out: Any) -> None:
    import threading

    from ivri.gateway.broker import mqtt_publish_packet as _publish_packet
    from ivri.gateway.broker import raw_mqtt_connect as _raw_connect
    from ivri.gateway.service import parse_broker_url

    host, port, _ = parse_broker_url(url)
    c = _codec(codec)
    rng = random.Random(1)
    steps = max(int(rate * 2), 2)  # two seconds of driving per vehicle, then it starts over
    topic = "ivri/nl/J101/cam"
    packets: list[list[bytes]] = []
    for v in range(vehicles):
        heading = HEADINGS[v % 4]
        speed = rng.uniform(8.0, 15.0)
        d0 = rng.uniform(60.0, 500.0)
        packets.append([_publish_packet(topic, c.encode(_cam(100_000 + v, heading, d0 - speed * k / rate, speed)))
                        for k in range(steps)])
    counter = [0] * connections

    def conn(n: int, sub: int = 10) -> None:
        # Vehicles send at staggered times: each 1/rate period is cut into `sub` slots, and
        # each slot carries the CAMs of 1/sub of this connection's vehicles.
        share = packets[n::connections]
        batches = [[b"".join(p[k] for p in share[j::sub]) for j in range(sub)] for k in range(steps)]
        sizes = [len(share[j::sub]) for j in range(sub)]
        sock = _raw_connect(host, port, f"ivri-bench-load-{n}")
        period = 1.0 / rate / sub
        t = time.monotonic() + n * period / connections
        k = 0
        try:
            while not stop.is_set():
                step, j = divmod(k, sub)
                sock.sendall(batches[step % steps][j])
                counter[n] += sizes[j]
                k += 1
                t += period
                delay = t - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -1.0:
                    t = time.monotonic()
        finally:
            sock.close()

    threads = [threading.Thread(target=conn, args=(n,), daemon=True) for n in range(connections)]
    for th in threads:
        th.start()
    ready.set()
    while not stop.is_set():
        time.sleep(0.5)
        out.put(("sent", time.monotonic(), sum(counter)))
    for th in threads:
        th.join(5)
    out.put(("sent", time.monotonic(), sum(counter)))


# ------------------------------------------------------------------------------- probes


async def probes(url: str, codec: str, keys: list[Any], seconds: float) -> dict[str, list[float]]:
    import aiomqtt

    from ivri.gateway.ingest import minute_of_year
    from ivri.gateway.security import sign_request
    from ivri.gateway.service import parse_broker_url
    from ivri.its import (
        IntersectionAccessPoint,
        IntersectionReferenceID,
        ItsPduHeader,
        RequestorDescription,
        RequestorType,
        SignalRequest,
        SignalRequestPackage,
        Srem,
    )

    host, port, _ = parse_broker_url(url)
    c = _codec(codec)
    srem_lat: list[float] = []
    spat_lat: list[float] = []
    pending_srem: dict[int, float] = {}
    want_prio: list[Any] = [None, 0.0]  # (wanted bit, since)
    seqs = [0] * len(keys)

    def srem(station: int, cancel: bool) -> bytes:
        moy, ms = minute_of_year(time.time() + 60.0)
        return c.encode(Srem(
            header=ItsPduHeader(message_id=9, station_id=station), second=ms, sequence_number=1,
            requests=(SignalRequestPackage(
                request=SignalRequest(
                    id=IntersectionReferenceID(region=1, id=101), request_id=1,
                    request_type="priorityCancellation" if cancel else "priorityRequest",
                    in_bound_lane=IntersectionAccessPoint(lane=3)),
                minute=moy, second=ms, duration=0),),
            requestor=RequestorDescription(id=station, type=RequestorType(role="publicTransport")),
        ))

    def signed(k: int, payload: bytes) -> bytes:
        seqs[k] += 1
        return sign_request(payload, keys[k], f"probe-{k}", int(time.time() * 1000),
                            seqs[k]).model_dump_json().encode()

    async with aiomqtt.Client(host, port) as client:
        await client.subscribe("ivri/nl/J101/ssem")
        await client.subscribe("ivri/nl/J101/spatem")

        async def receive() -> None:
            async for m in client.messages:
                now = time.monotonic()
                kind = m.topic.value.rsplit("/", 1)[1]
                msg = c.decode(bytes(m.payload), kind)  # type: ignore[arg-type]
                if kind == "ssem":
                    for p in msg.status[0].sig_status:
                        t0 = pending_srem.pop(p.requester.id, None) if p.requester else None
                        if t0 is not None:
                            srem_lat.append(now - t0)
                else:
                    bit = "signalPriorityIsActive" in msg.intersections[0].status
                    if want_prio[0] is not None and bit == want_prio[0]:
                        spat_lat.append(now - want_prio[1])
                        want_prio[0] = None

        rx = asyncio.create_task(receive())
        end = time.monotonic() + seconds
        station = 900_000
        n = 0
        ambulance_in = False
        next_cam = time.monotonic()
        while time.monotonic() < end:
            station += 1
            k = n % len(keys)
            n += 1
            pending_srem[station] = time.monotonic()
            await client.publish("ivri/nl/J101/srem", signed(k, srem(station, False)))
            await asyncio.sleep(0.1)
            await client.publish("ivri/nl/J101/srem", signed(k, srem(station, True)))
            now = time.monotonic()
            if want_prio[0] is None and now >= next_cam:
                ambulance_in = not ambulance_in
                cam = _cam(777_777, 90.0, 30.0 if ambulance_in else -30.0, 15.0, emergency=True)
                want_prio[0], want_prio[1] = ambulance_in, time.monotonic()
                await client.publish("ivri/nl/J101/cam", c.encode(cam))
                next_cam = now + 0.5
            elif want_prio[0] is not None and now - want_prio[1] > 5.0:
                want_prio[0] = None  # lost: try again
            await asyncio.sleep(0.1)
        rx.cancel()
        await asyncio.gather(rx, return_exceptions=True)
    return {"srem_ssem": srem_lat, "cam_spatem": spat_lat}


# --------------------------------------------------------------------------------- main


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))] * 1000.0


def run_codec(codec: str, args: argparse.Namespace) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization

    from ivri.gateway.broker import LocalBroker
    from ivri.gateway.security import generate_key_pair

    ctx = mp.get_context("spawn")
    keys = [generate_key_pair() for _ in range(N_PROBE_KEYS)]
    pems = [pub.public_bytes(serialization.Encoding.PEM,
                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            for _, pub in keys]
    with LocalBroker() as broker:
        gw_out, load_out = ctx.Queue(), ctx.Queue()
        gw_stop, load_stop, load_ready = ctx.Event(), ctx.Event(), ctx.Event()
        gw = ctx.Process(target=gateway_main, args=(broker.url, codec, args.tick_s, pems, gw_out, gw_stop))
        gw.start()
        gw_out.get(timeout=60)  # first stats: it runs
        load = ctx.Process(target=load_main, args=(broker.url, codec, args.vehicles, args.rate,
                                                   args.connections, load_ready, load_stop, load_out))
        load.start()
        load_ready.wait(120)
        time.sleep(args.warmup)

        def latest(q: Any, kind: str) -> tuple:
            item = None
            while True:
                try:
                    got = q.get(timeout=0.05 if item else 5)
                except Exception:  # noqa: BLE001  (queue.Empty)
                    return item
                if got[0] == kind:
                    item = got

        g0, s0 = latest(gw_out, "stats"), latest(load_out, "sent")
        lat = asyncio.run(probes(broker.url, codec, [k for k, _ in keys], args.seconds))
        g1, s1 = latest(gw_out, "stats"), latest(load_out, "sent")
        load_stop.set()
        load.join(30)
        gw_stop.set()
        gw.join(30)
        for p in (load, gw):
            if p.is_alive():
                p.kill()
    window = g1[1] - g0[1]
    return {
        "codec": codec,
        "offered": (s1[2] - s0[2]) / (s1[1] - s0[1]),
        "processed": (g1[2] - g0[2]) / window,
        "cpu": (g1[3] - g0[3]) / window,
        "rejected": sum(g1[4]["rejected"].values()),
        "srem_n": len(lat["srem_ssem"]), "srem_p50": pct(lat["srem_ssem"], 50),
        "srem_p99": pct(lat["srem_ssem"], 99),
        "spat_n": len(lat["cam_spatem"]), "spat_p50": pct(lat["cam_spatem"], 50),
        "spat_p99": pct(lat["cam_spatem"], 99),
        "refused": sum(g1[4]["refused"].values()),
        "tick_ms": (g1[4]["tick_ms_mean"], g1[4]["tick_ms_max"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per codec")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=10.0, help="CAMs per second per vehicle")
    ap.add_argument("--connections", type=int, default=4, help="load client connections")
    ap.add_argument("--tick-s", type=float, default=0.1)
    ap.add_argument("--codec", default="json,uper")
    args = ap.parse_args()
    rows = [run_codec(c.strip(), args) for c in args.codec.split(",") if c.strip()]
    print(f"\ngateway benchmark: {args.vehicles} vehicles x {args.rate:g} CAM/s, "
          f"{args.seconds:g} s window, tick {args.tick_s:g} s, {os.cpu_count()} CPUs, mosquitto on loopback")
    head = (f"{'codec':6} {'offered/s':>10} {'processed/s':>12} {'gw cpu':>7} {'rejected':>8} "
            f"{'SREM->SSEM p50/p99 ms (n)':>27} {'CAM->SPATEM p50/p99 ms (n)':>28}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['codec']:6} {r['offered']:10.0f} {r['processed']:12.0f} {r['cpu']:7.2f} "
              f"{r['rejected']:8d} {r['srem_p50']:11.1f} / {r['srem_p99']:6.1f} ({r['srem_n']:4d}) "
              f"{r['spat_p50']:11.1f} / {r['spat_p99']:6.1f} ({r['spat_n']:4d})")
    for r in rows:
        print(f"{r['codec']}: engine tick {r['tick_ms'][0]:.1f} ms mean, {r['tick_ms'][1]:.1f} ms max "
              f"(last 0.5 s); refused probes {r['refused']}")


if __name__ == "__main__":
    main()
