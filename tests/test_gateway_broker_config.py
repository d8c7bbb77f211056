"""The shipped broker configuration (deploy/mosquitto), tested as shipped.

mosquitto runs ``deploy/mosquitto/mosquitto.conf`` with only its ports and file paths changed
and the ``acl`` file itself (:func:`broker.shipped_config_copy` checks that every other line is
byte-identical): no anonymous access, TLS only for devices, per-device logins whose ACL
patterns let a device write only its own topics and read only its own SSEMs, and the login as
client id on the public listener.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import aiomqtt
import pytest
from broker import ShippedBroker

TIMEOUT_S = 3.0
T = "ivri/nl/J101"


def device(sb: ShippedBroker, login: str | None, **kw: object) -> aiomqtt.Client:
    """A vehicle or app on the public TLS listener."""
    kw.setdefault("tls_context", sb.tls)
    kw.setdefault("password", sb.users.get(login or ""))
    return aiomqtt.Client("127.0.0.1", sb.device_port, username=login, timeout=TIMEOUT_S, **kw)  # type: ignore[arg-type]


def gateway(sb: ShippedBroker) -> aiomqtt.Client:
    """The gateway on the loopback listener."""
    return aiomqtt.Client(sb.broker.host, sb.broker.port, username="gateway",
                          password=sb.users["gateway"], timeout=TIMEOUT_S)


async def collect(client: aiomqtt.Client, until: bytes) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for m in client.messages:
            got.append((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]
            if m.payload == until:
                return got
    return got


def test_anonymous_and_plaintext_are_refused(shipped_broker: ShippedBroker) -> None:
    sb = shipped_broker

    async def connect(make: Callable[[], aiomqtt.Client]) -> None:
        async with make():
            pass

    anonymous = (lambda: device(sb, None),
                 lambda: aiomqtt.Client(sb.broker.host, sb.broker.port, timeout=TIMEOUT_S))
    for make in anonymous:
        with pytest.raises(aiomqtt.MqttError, match="(?i)not authori[sz]ed"):
            asyncio.run(connect(make))
    with pytest.raises(aiomqtt.MqttError, match="(?i)not authori[sz]ed|bad user name"):
        asyncio.run(connect(lambda: device(sb, "amb-7f3a", password="wrong")))
    # The public listener speaks TLS only: a plaintext MQTT connect gets nowhere.
    with pytest.raises((aiomqtt.MqttError, OSError)):
        asyncio.run(connect(lambda: device(sb, "amb-7f3a", tls_context=None)))
    asyncio.run(connect(lambda: device(sb, "amb-7f3a")))  # the right login over TLS works


def test_device_writes_only_its_own_topics_and_reads_only_its_own_ssem(shipped_broker: ShippedBroker) -> None:
    sb = shipped_broker

    async def scenario() -> tuple[list, list, list]:
        async with gateway(sb) as gw, device(sb, "amb-7f3a") as amb, device(sb, "bus-19c2") as bus:
            await gw.subscribe("ivri/#", qos=1)
            await amb.subscribe(f"{T}/ssem/#", qos=1)      # refused by the ACL (another's too)
            await amb.subscribe(f"{T}/ssem/bus-19c2", qos=1)
            await amb.subscribe(f"{T}/ssem/amb-7f3a", qos=1)
            await bus.subscribe(f"{T}/ssem/bus-19c2", qos=1)
            for topic in (f"{T}/spatem", f"{T}/ssem/bus-19c2", f"{T}/cam/bus-19c2", f"{T}/cam",
                          f"{T}/srem/bus-19c2", f"{T}/status", "ivri/nl/J101/mapem"):
                await amb.publish(topic, b"forged", qos=1)
            await amb.publish(f"{T}/cam/amb-7f3a", b"own cam", qos=1)
            gw_got = await collect(gw, b"own cam")
            await gw.publish(f"{T}/ssem/bus-19c2", b"for bus", qos=1)
            await gw.publish(f"{T}/ssem/amb-7f3a", b"for amb", qos=1)
            bus_got = await collect(bus, b"for bus")
            amb_got = await collect(amb, b"for amb")
            return gw_got, bus_got, amb_got

    gw_got, bus_got, amb_got = asyncio.run(scenario())
    assert gw_got == [(f"{T}/cam/amb-7f3a", b"own cam")]  # every forged write was dropped
    assert bus_got == [(f"{T}/ssem/bus-19c2", b"for bus")]
    assert amb_got == [(f"{T}/ssem/amb-7f3a", b"for amb")]  # not the bus's


def test_login_is_the_client_id_so_no_session_takeover(shipped_broker: ShippedBroker) -> None:
    sb = shipped_broker

    async def scenario() -> list[tuple[str, bytes]]:
        async with gateway(sb) as gw, device(sb, "bus-19c2", identifier="bus-19c2") as bus:
            await bus.subscribe(f"{T}/ssem/bus-19c2", qos=1)
            # mallory connects with the bus's client id: with the login as client id the
            # bus's session is not taken over (mosquitto would otherwise disconnect it).
            async with device(sb, "mallory", identifier="bus-19c2"):
                await gw.publish(f"{T}/ssem/bus-19c2", b"still here", qos=1)
                return await collect(bus, b"still here")

    assert asyncio.run(scenario()) == [(f"{T}/ssem/bus-19c2", b"still here")]


def test_spatem_and_status_are_readable_by_every_device(shipped_broker: ShippedBroker) -> None:
    sb = shipped_broker

    async def scenario() -> list[tuple[str, bytes]]:
        async with gateway(sb) as gw, device(sb, "bike-5d11") as bike:
            await bike.subscribe(f"{T}/spatem", qos=1)
            await bike.subscribe(f"{T}/status", qos=1)
            await gw.publish(f"{T}/status", b"online", qos=1)
            await gw.publish(f"{T}/spatem", b"spat", qos=1)
            return await collect(bike, b"spat")

    assert asyncio.run(scenario()) == [(f"{T}/status", b"online"), (f"{T}/spatem", b"spat")]
    assert isinstance(sb.tls, ssl.SSLContext)
