"""The live path's plumbing: settings that name their typos, and the in-memory transport that
the gateway runs on in tests and in a ``memory://`` co-simulation."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from broker import self_signed_cert
from test_cli import assert_clean_error, ivri
from test_gateway_service import NET, SITES, make_gateway, wait_for

from ivri.errors import ConfigError
from ivri.gateway.settings import GatewaySettings, gateway_settings
from ivri.gateway.transport import (
    MemoryBroker,
    Message,
    TransportError,
    Will,
    connector_for,
    tls_context,
    topic_matches,
)
from ivri.sumo.v2x_options import V2XOptions, v2x_options

REPO = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------- settings


def test_a_misspelt_gateway_setting_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"gateway setting: tick_ss: Extra inputs are not permitted"):
        gateway_settings(tick_ss=0.5)


def test_bad_gateway_values_name_every_field_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        gateway_settings(tick_s=-1.0, codec="xml", broker_url="http://x", controller="actuatd")
    text = str(err.value)
    for field in ("tick_s", "codec", "broker_url", "controller"):
        assert f"gateway setting: {field}:" in text, text
    assert "unknown controller 'actuatd'" in text and "scheme must be mqtt://" in text


def test_gateway_settings_are_frozen_and_their_defaults_run() -> None:
    s = GatewaySettings()
    assert s.broker_url == "mqtt://127.0.0.1:1883" and s.tick_s == 0.5
    with pytest.raises(ValueError):
        s.tick_s = 1.0  # type: ignore[misc]
    assert "password" not in repr(gateway_settings(username="u", password="secret"))


def test_a_misspelt_v2x_option_names_the_field_before_sumo_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"V2X option: cam_perod_s: Extra inputs"):
        v2x_options({"cam_perod_s": 1.0})
    with pytest.raises(ConfigError, match=r"shares: .*unknown V2X share\(s\) \['lorry'\]"):
        v2x_options({"shares": {"lorry": 0.5}})
    with pytest.raises(ConfigError, match=r"shares: .*between 0 and 1"):
        v2x_options({"shares": {"car": 1.5}})
    assert v2x_options({"positions": True}) == V2XOptions(positions=True)
    from ivri.sumo.bridge import SumoBridge

    # The bridge checks its options when it is made: SUMO is never started.
    with pytest.raises(ConfigError, match="range_mm"):
        SumoBridge(REPO / "missing.sumocfg", out_dir=tmp_path, v2x={"range_mm": 10.0})


def test_the_gateway_command_refuses_a_bad_setting_in_one_line() -> None:
    result = ivri("gateway", "--config", str(REPO / "docs" / "gateway-example.toml"), "--tick", "-1")
    assert_clean_error(result, "tick_s")


def test_one_tls_context_for_every_caller(tmp_path: Path) -> None:
    assert tls_context(False) is None and isinstance(tls_context(True), ssl.SSLContext)
    ctx = ssl.create_default_context()
    assert tls_context(ctx) is ctx
    cert, _ = self_signed_cert(tmp_path)
    trusting = tls_context(False, cert)  # a CA file turns TLS on, trusting that CA
    assert isinstance(trusting, ssl.SSLContext) and trusting.cert_store_stats()["x509_ca"] == 1
    with pytest.raises(ConfigError, match="CA file"):
        tls_context(False, tmp_path / "missing.pem")


# ------------------------------------------------------------------------------- memory


@pytest.mark.parametrize(("flt", "topic", "hit"), [
    ("ivri/nl/+/cam/#", "ivri/nl/J1/cam", True),
    ("ivri/nl/+/cam/#", "ivri/nl/J1/cam/dev-7", True),
    ("ivri/nl/+/cam/#", "ivri/nl/J1/srem", False),
    ("ivri/+/J1/spatem", "ivri/nl/J1/spatem/x", False),
    ("#", "a/b", True),
    ("a/b", "a/b", True),
    ("a/b", "a", False),
])
def test_topic_filters_match_as_in_mqtt(flt: str, topic: str, hit: bool) -> None:
    assert topic_matches(flt, topic) is hit


def test_memory_transport_delivers_retains_and_sends_the_will() -> None:
    async def main() -> list[Message]:
        broker = MemoryBroker()
        conn = broker.connector()
        got: list[tuple[str, bytes, bool]] = []
        pub = await conn.connect(will=Will("s/status", b"offline"))
        await pub.publish("s/map", b"mapem", qos=1, retain=True)
        push = await conn.connect(on_message=lambda t, p, r: got.append((t, p, r)))
        await push.subscribe("s/#")
        assert got == [("s/map", b"mapem", True)]  # the retained message on subscribe
        pull = await conn.connect()
        await pull.subscribe("s/+")
        await pub.publish("s/spat", b"1")
        await pub.publish("other/spat", b"2")  # no subscriber
        assert got[-1] == ("s/spat", b"1", False)
        await pub.publish("s/map", b"", retain=True)  # clears the retained message
        assert "s/map" not in broker.retained
        broker.drop(pub)  # connection lost: the will goes out
        assert got[-1] == ("s/status", b"offline", False)
        with pytest.raises(TransportError):
            await pub.publish("s/x", b"")
        await pull.aclose()
        await pull.aclose()  # idempotent
        return [m async for m in pull.messages()]

    pulled = asyncio.run(main())
    assert pulled == [Message("s/map", b"mapem", True), Message("s/spat", b"1"), Message("s/map", b""),
                      Message("s/status", b"offline")]


def test_a_lost_memory_connection_ends_its_messages_with_an_error() -> None:
    async def main() -> None:
        broker = MemoryBroker()
        t = await broker.connector().connect()
        broker.drop(t)
        with pytest.raises(TransportError, match="lost"):
            async for _ in t.messages():
                pass

    asyncio.run(main())


def test_the_gateway_runs_on_the_memory_transport() -> None:
    """No broker process: the gateway goes online, publishes its status and MAPEM (retained),
    SPATEM every tick, and says ``offline`` when stopped."""
    broker = MemoryBroker()
    seen: list[tuple[str, bytes, bool]] = []

    async def main() -> None:
        watcher = await broker.connector().connect(on_message=lambda t, p, r: seen.append((t, p, r)))
        await watcher.subscribe("ivri/nl/#")
        svc = make_gateway(NET, "memory://", sites=SITES, tick_s=0.1, spat_every_s=0.1,
                           connector=broker.connector())
        runner = asyncio.create_task(svc.run())
        await wait_for(lambda: svc.status == "online", 5, "the gateway to go online")
        await wait_for(lambda: svc.published["spatem"] >= 5, 5, "SPATEM")
        svc.stop()
        await asyncio.wait_for(runner, 5)

    asyncio.run(main())
    topics = [t for t, _, _ in seen]
    x = NET.intersections[0].id
    assert f"ivri/nl/{x}/spatem" in topics
    assert broker.retained[f"ivri/nl/{x}/status"] == b"offline"
    assert f"ivri/nl/{x}/mapem" in broker.retained


def test_memory_urls_need_no_broker_and_mqtt_urls_are_checked() -> None:
    assert connector_for("memory://").address == "memory"
    assert connector_for("mqtt://127.0.0.1:1999").address == "127.0.0.1:1999"
    with pytest.raises(ConfigError, match="scheme"):
        connector_for("http://127.0.0.1")
    with pytest.raises(ConfigError, match="connector"):
        make_gateway(NET, "memory://", sites=SITES)


def test_gateways_share_a_broker_partitioned_by_intersection() -> None:
    """Scale-out: two gateways on one broker, each owning one intersection, each receive the
    messages of their own intersection only (nothing to reject, nothing handled twice)."""
    from test_gateway_service import emergency_cam

    from ivri.gateway.site import GatewaySites

    broker = MemoryBroker()
    x0, s0 = NET.intersections[0], SITES.sites[0]
    net2 = NET.model_copy(update={"intersections": (x0.model_copy(update={"id": "J102"}),)})
    sites2 = GatewaySites(sites=(s0.model_copy(update={"intersection": "J102", "its_id": 102}),))

    async def main() -> tuple[object, object]:
        a = make_gateway(NET, "memory://", sites=SITES, tick_s=0.1, connector=broker.connector())
        b = make_gateway(net2, "memory://", sites=sites2, tick_s=0.1, connector=broker.connector())
        runners = [asyncio.create_task(g.run()) for g in (a, b)]
        await wait_for(lambda: a.status == "online" and b.status == "online", 5, "both gateways online")
        car = await broker.connector().connect()
        for k in range(3):
            await car.publish("ivri/nl/J101/cam", emergency_cam(100 + k, 80.0))
        await car.publish("ivri/nl/J102/cam", emergency_cam(200, 80.0))
        await wait_for(lambda: a.received["cam"] == 3 and b.received["cam"] == 1, 5, "the CAMs")
        await asyncio.sleep(0.2)
        for g in (a, b):
            g.stop()
        await asyncio.wait_for(asyncio.gather(*runners), 5)
        return a, b

    a, b = asyncio.run(main())
    assert a.received["cam"] == 3 and b.received["cam"] == 1  # type: ignore[attr-defined]
    assert "unknown_intersection" not in a.rejected and "unknown_intersection" not in b.rejected  # type: ignore[attr-defined]
