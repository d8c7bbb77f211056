"""The local MQTT broker and its fixtures: publish/receive, authentication, ACL, restart, TLS."""

from __future__ import annotations

import asyncio
import re
import ssl
from pathlib import Path

import aiomqtt
import pytest
from broker import self_signed_cert
from local_broker import BrokerError, LocalBroker, TlsFiles, find_mosquitto

REPO = Path(__file__).resolve().parents[1]
ACL = REPO / "deploy" / "mosquitto" / "acl"
TOPIC = "ivri/nl-ut/J1"
TIMEOUT_S = 3.0


def client(broker: LocalBroker, user: str | None = None, **kw: object) -> aiomqtt.Client:
    password = broker.users[user] if user and broker.users and "password" not in kw else None
    kw.setdefault("password", password)
    return aiomqtt.Client(broker.host, broker.port, username=user, timeout=TIMEOUT_S, **kw)  # type: ignore[arg-type]


async def exchange(
    broker: LocalBroker,
    publishes: list[tuple[str, bytes]],
    *,
    publisher: str | None = None,
    subscriber: str | None = "gateway",
    until: str,
) -> list[tuple[str, bytes]]:
    """Subscribe to ``ivri/#``, publish in order, collect until a message on ``until`` arrives.

    A broker delivers one client's QoS 1 messages in order, so everything published before
    the ``until`` message that was allowed has arrived by then: no waiting for a timeout.
    """
    received: list[tuple[str, bytes]] = []
    async with client(broker, subscriber) as sub:
        await sub.subscribe("ivri/#", qos=1)
        async with client(broker, publisher) as pub:
            for topic, payload in publishes:
                await pub.publish(topic, payload, qos=1)
        async with asyncio.timeout(TIMEOUT_S):
            async for message in sub.messages:
                received.append((message.topic.value, bytes(message.payload)))  # type: ignore[arg-type]
                if message.topic.value == until:
                    break
    return received


def test_publish_and_receive(mqtt_broker: LocalBroker) -> None:
    assert mqtt_broker.url == f"mqtt://127.0.0.1:{mqtt_broker.port}"
    got = asyncio.run(
        exchange(mqtt_broker, [(f"{TOPIC}/spatem", b"hello")], subscriber=None, until=f"{TOPIC}/spatem")
    )
    assert got == [(f"{TOPIC}/spatem", b"hello")]


def test_wrong_password_is_refused(mqtt_broker_auth: LocalBroker) -> None:
    async def connect() -> None:
        async with client(mqtt_broker_auth, "vehicle", password="wrong"):
            pass

    with pytest.raises(aiomqtt.MqttCodeError) as excinfo:
        asyncio.run(connect())
    assert re.search(r"(?i)not authori|bad user name", str(excinfo.value.rc))
    # the right password works
    own = f"{TOPIC}/cam/vehicle"  # a device writes under its own login (ACL pattern %u)
    asyncio.run(exchange(mqtt_broker_auth, [(own, b"c")], publisher="vehicle", until=own))


def test_acl_vehicle_cannot_publish_spatem(mqtt_broker_auth: LocalBroker) -> None:
    got = asyncio.run(
        exchange(
            mqtt_broker_auth,
            [(f"{TOPIC}/spatem", b"forged"), (f"{TOPIC}/ssem", b"forged"), (f"{TOPIC}/srem", b"no login"),
             (f"{TOPIC}/srem/gateway", b"another's"), (f"{TOPIC}/srem/vehicle", b"request")],
            publisher="vehicle",
            until=f"{TOPIC}/srem/vehicle",
        )
    )
    assert got == [(f"{TOPIC}/srem/vehicle", b"request")]


def test_acl_anonymous_cannot_publish_but_gateway_can(mqtt_broker_auth: LocalBroker) -> None:
    got = asyncio.run(_anonymous_then_gateway(mqtt_broker_auth))
    assert got == [(f"{TOPIC}/spatem", b"green")]


async def _anonymous_then_gateway(broker: LocalBroker) -> list[tuple[str, bytes]]:
    # Anonymous publishes are dropped (the ACL grants anonymous clients nothing); the
    # gateway's spatem then arrives at a vehicle (public signal state).
    received: list[tuple[str, bytes]] = []
    async with client(broker, "vehicle") as reader:
        await reader.subscribe(f"{TOPIC}/spatem", qos=1)
        async with client(broker, None) as anon:
            await anon.publish(f"{TOPIC}/spatem", b"anon", qos=1)
            await anon.publish(f"{TOPIC}/srem", b"anon", qos=1)
        async with client(broker, "gateway") as gw:
            await gw.publish(f"{TOPIC}/spatem", b"green", qos=1)
        async with asyncio.timeout(TIMEOUT_S):
            async for message in reader.messages:
                received.append((message.topic.value, bytes(message.payload)))  # type: ignore[arg-type]
                if message.payload == b"green":
                    break
    return received


def test_restart_keeps_port_and_clients_can_reconnect(mqtt_broker: LocalBroker) -> None:
    port = mqtt_broker.port

    async def scenario() -> list[tuple[str, bytes]]:
        async with client(mqtt_broker) as old:
            await old.subscribe("ivri/#")
            mqtt_broker.restart()
            with pytest.raises(aiomqtt.MqttError):
                async with asyncio.timeout(TIMEOUT_S):
                    async for _ in old.messages:
                        pass
        return await exchange(mqtt_broker, [(f"{TOPIC}/mapem", b"m")], subscriber=None, until=f"{TOPIC}/mapem")

    assert asyncio.run(scenario()) == [(f"{TOPIC}/mapem", b"m")]
    assert mqtt_broker.port == port and mqtt_broker.running
    mqtt_broker.kill()
    assert not mqtt_broker.running
    mqtt_broker.start()
    assert mqtt_broker.running and mqtt_broker.port == port


# ------------------------------------------------------------------------ amqtt fallback


@pytest.mark.parametrize("auth", [False, True])
def test_amqtt_fallback_same_interface(auth: bool) -> None:
    users = {"gateway": "g", "vehicle": "v"} if auth else None
    with LocalBroker(backend="amqtt", users=users, acl_file=ACL if auth else None) as broker:
        assert broker.backend == "amqtt"
        if not auth:
            got = asyncio.run(exchange(broker, [(f"{TOPIC}/cam", b"x")], subscriber=None, until=f"{TOPIC}/cam"))
            assert got == [(f"{TOPIC}/cam", b"x")]
            return
        got = asyncio.run(
            exchange(
                broker,
                [(f"{TOPIC}/spatem", b"forged"), (f"{TOPIC}/srem/gateway", b"another's"),
                 (f"{TOPIC}/srem/vehicle", b"request")],
                publisher="vehicle",
                until=f"{TOPIC}/srem/vehicle",
            )
        )
        assert got == [(f"{TOPIC}/srem/vehicle", b"request")]

        async def wrong() -> None:
            async with client(broker, "vehicle", password="wrong"):
                pass

        with pytest.raises(aiomqtt.MqttError):
            asyncio.run(wrong())


# -------------------------------------------------------------------------- errors, TLS


def test_no_broker_available_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import local_broker as mod

    monkeypatch.setattr(mod, "find_mosquitto", lambda: None)
    monkeypatch.setattr(mod, "_amqtt_available", lambda: False)
    with pytest.raises(BrokerError, match=r"apt-get install -y mosquitto"):
        LocalBroker()
    with pytest.raises(BrokerError, match=r"apt-get install -y mosquitto"):
        LocalBroker(backend="mosquitto")


def test_start_failure_reports_broker_output(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.skip("needs mosquitto")
    broker = LocalBroker(acl_file=tmp_path / "missing-acl", start_timeout_s=3)
    with pytest.raises(BrokerError, match=r"(?s)mosquitto exited.*missing-acl"):
        broker.start()
    broker.close()


def test_tls_listener(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    with LocalBroker(tls=TlsFiles(cert, key)) as broker:
        assert broker.url.startswith("mqtts://")
        context = ssl.create_default_context(cafile=str(cert))

        async def scenario() -> bytes:
            async with client(broker, tls_context=context) as c:
                await c.subscribe("t", qos=1)
                await c.publish("t", b"secret", qos=1)
                async with asyncio.timeout(TIMEOUT_S):
                    async for message in c.messages:
                        return bytes(message.payload)  # type: ignore[arg-type]
            raise AssertionError("no message")

        assert asyncio.run(scenario()) == b"secret"
