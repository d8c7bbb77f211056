"""How the live path moves messages: one small protocol, MQTT (aiomqtt) or in memory.

The gateway (:mod:`ivri.gateway.service`) and the co-simulation (:mod:`ivri.cosim`) never
touch an MQTT client themselves. They ask a :class:`Connector` for connections and talk
through the :class:`Transport` each returns:

* ``await transport.subscribe(filter)``; ``await transport.publish(topic, payload, qos=, retain=)``;
* ``transport.messages()``: an async iterator of :class:`Message`. A connection made with an
  ``on_message`` handler hands every message to the handler as it arrives (no task or
  object per message: cheap under a flood) and its iterator yields nothing; either way the
  iteration ends when the transport is closed and raises :class:`TransportError` when the
  connection is lost;
* ``await transport.aclose()`` (idempotent).

:class:`MqttConnector` is the production one (``mqtt://`` / ``mqtts://`` URLs, last will,
TLS, user name and password). :class:`MemoryBroker` is a broker in the process (topic
filters with ``+`` and ``#``, retained messages, last wills on a lost connection): tests use
it, and so does a co-simulation given ``memory://``. Any transport failure is a
:class:`TransportError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import aiomqtt

from ivri.errors import ConfigError, IvriError

__all__ = [
    "MEMORY_SCHEME", "Connector", "MemoryBroker", "MemoryConnector", "Message", "MqttConnector",
    "Transport", "TransportError", "Will", "connector_for", "is_memory_url", "parse_broker_url",
    "tls_context",
]

#: URL scheme of an in-process broker (``memory://``): no network, for tests and co-simulation.
MEMORY_SCHEME = "memory"
#: Receive buffer of a connection with ``small_receive_buffer`` (about a hundred messages).
SMALL_RCVBUF_BYTES = 32 * 1024
# Linux's TCP_QUICKACK (ACK at once); elsewhere setting TCP_NODELAY again is a harmless no-op.
_QUICKACK = getattr(socket, "TCP_QUICKACK", socket.TCP_NODELAY)

#: ``handler(topic, payload, retain)``: called for every incoming message; must not raise.
Handler = Callable[[str, bytes, bool], None]


class TransportError(IvriError):
    """A connection could not be made, or was lost, or a publish failed."""


@dataclass(frozen=True)
class Message:
    """One incoming message."""

    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True)
class Will:
    """The message the broker publishes when the connection is lost without a goodbye."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class Transport(Protocol):
    """One connection to a broker (see the module docstring)."""

    async def subscribe(self, topic_filter: str, qos: int = 0) -> None:
        """Receive the messages whose topics match ``topic_filter``."""

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False,
                      timeout: float | None = None) -> None:
        """Send one message (QoS 1: returns once the broker has it)."""

    def messages(self) -> AsyncIterator[Message]:
        """The incoming messages (none with an ``on_message`` handler: then it only waits)."""

    def pump(self, max_packets: int) -> None:
        """Read up to ``max_packets`` of what has arrived now, for the handler (keeps pace with
        a flood where the event loop reads one packet per turn); a no-op where there is nothing
        to read ahead."""

    async def aclose(self) -> None:
        """Disconnect cleanly (no last will). Idempotent."""


class Connector(Protocol):
    """Makes connections to one broker."""

    #: Where the connections go, for messages (``host:port``, ``memory``).
    address: str

    async def connect(self, *, client_id: str | None = None, will: Will | None = None,
                      on_message: Handler | None = None, small_receive_buffer: bool = False) -> Transport:
        """A new connection; ``small_receive_buffer`` keeps a flood's backlog in the broker
        (whose queue per client is bounded) rather than in a socket buffer every later
        message waits behind."""

    def expedite(self) -> None:
        """Ask every open connection to acknowledge what it receives at once (lockstep waits
        on round trips); a no-op where that means nothing."""


# ------------------------------------------------------------------------------- settings


def parse_broker_url(url: str) -> tuple[str, int, bool]:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` -> (host, port, tls)."""
    u = urlparse(url if "://" in url else f"mqtt://{url}")
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts:// (or {MEMORY_SCHEME}://)")
    tls = u.scheme in ("mqtts", "ssl")
    if not u.hostname:
        raise ConfigError(f"broker URL {url!r} has no host")
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"broker URL {url!r}: bad port") from None
    return u.hostname, port, tls


def is_memory_url(url: str) -> bool:
    """True for ``memory://``: a broker inside the process."""
    return urlparse(url).scheme == MEMORY_SCHEME


def tls_context(tls: bool | ssl.SSLContext | None, ca_file: str | Path | None = None) -> ssl.SSLContext | None:
    """The TLS context of a connection: ``tls`` itself when it is one; else one that trusts
    ``ca_file`` (a self-signed broker) when given, the system's CAs when ``tls`` is true, and
    None (plain TCP) otherwise. A bad ``ca_file`` raises :class:`ConfigError`."""
    if isinstance(tls, ssl.SSLContext):
        return tls
    if ca_file is not None:
        try:
            return ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"CA file {ca_file}: {exc}") from None
    return ssl.create_default_context() if tls else None


# ------------------------------------------------------------------------------------ MQTT


def _mqtt_error(exc: BaseException, what: str) -> TransportError:
    text = " ".join(str(exc).split())[:160] or type(exc).__name__
    return TransportError(f"{what}: {text}")


class _MqttTransport:
    """A connected :class:`aiomqtt.Client` behind the :class:`Transport` protocol."""

    def __init__(self, connector: MqttConnector, client: aiomqtt.Client, on_message: Handler | None) -> None:
        self._connector = connector
        self._client: aiomqtt.Client | None = client
        self._on_message = on_message
        self.arrivals = 0

    def _deliver(self, topic: str, payload: bytes, retain: bool) -> None:
        self.arrivals += 1
        assert self._on_message is not None
        self._on_message(topic, payload, retain)

    def _paho(self) -> Any:
        return getattr(self._client, "_client", None) if self._client is not None else None

    def socket(self) -> socket.socket | None:
        """The connection's TCP socket (None when closed or unknown)."""
        paho = self._paho()
        try:
            sock = paho.socket() if paho is not None else None
        except Exception:  # noqa: BLE001 - paho internals: no socket is an answer too
            return None
        return sock if isinstance(sock, socket.socket) else None

    async def subscribe(self, topic_filter: str, qos: int = 0) -> None:
        if self._client is None:
            raise TransportError("subscribe on a closed connection")
        try:
            await self._client.subscribe(topic_filter, qos=qos)
        except aiomqtt.MqttError as exc:
            raise _mqtt_error(exc, f"subscribing to {topic_filter}") from None

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False,
                      timeout: float | None = None) -> None:
        if self._client is None:
            raise TransportError("publish on a closed connection")
        try:
            if timeout is None:
                await self._client.publish(topic, payload, qos=qos, retain=retain)
            else:
                await self._client.publish(topic, payload, qos=qos, retain=retain, timeout=timeout)
        except aiomqtt.MqttError as exc:
            raise _mqtt_error(exc, "publish failed") from None

    async def messages(self) -> AsyncIterator[Message]:  # type: ignore[override]
        client = self._client
        if client is None:
            return
        try:
            async for m in client.messages:  # empty with a handler: messages go to _deliver
                yield Message(m.topic.value, bytes(m.payload), bool(m.retain))  # type: ignore[arg-type]
        except aiomqtt.MqttError as exc:
            if self._client is not None:
                raise _mqtt_error(exc, f"connection to {self._connector.address} lost") from None

    def pump(self, max_packets: int) -> None:
        paho = self._paho()
        if paho is None or self._on_message is None:
            return
        with contextlib.suppress(Exception):  # a lost connection: aiomqtt's reader reports it
            for _ in range(max_packets):
                before = self.arrivals
                if paho.loop_read() != 0 or self.arrivals == before:
                    break

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        self._connector.open.discard(self)
        with contextlib.suppress(Exception):
            await client.__aexit__(None, None, None)


class MqttConnector:
    """Connections to an MQTT broker through aiomqtt.

    ``tls``: a context, or True for the system's CAs (``mqtts://``); ``low_latency`` sets
    TCP_NODELAY on every connection and lets :meth:`expedite` ask for immediate ACKs (a
    lockstep co-simulation sends bursts of small messages and waits for the answers).
    """

    def __init__(self, host: str, port: int, *, username: str | None = None, password: str | None = None,
                 tls: ssl.SSLContext | bool | None = None, keepalive_s: int = 10, timeout_s: float = 5.0,
                 low_latency: bool = False) -> None:
        self.host, self.port = host, int(port)
        self.address = f"{host}:{port}"
        self.username, self.password = username, password
        self.tls = tls_context(tls)
        self.keepalive_s = int(keepalive_s)
        self.timeout_s = float(timeout_s)
        self.low_latency = bool(low_latency)
        self.open: set[_MqttTransport] = set()

    @classmethod
    def from_url(cls, url: str, *, tls: ssl.SSLContext | bool | None = None, **kw: Any) -> MqttConnector:
        """From ``mqtt://host:port`` (``mqtts://``: TLS with the system's CAs unless ``tls``)."""
        host, port, url_tls = parse_broker_url(url)
        return cls(host, port, tls=url_tls if tls is None else tls, **kw)

    async def connect(self, *, client_id: str | None = None, will: Will | None = None,
                      on_message: Handler | None = None, small_receive_buffer: bool = False) -> Transport:
        transport: _MqttTransport

        class _Dispatch(asyncio.Queue):  # type: ignore[type-arg]
            """aiomqtt's incoming queue (its documented ``queue_type`` hook) that hands each
            message to the handler on arrival: no task per message (iterating
            ``client.messages`` costs two tasks each)."""

            def put_nowait(self, item: aiomqtt.Message) -> None:
                transport._deliver(item.topic.value, item.payload, item.retain)  # type: ignore[arg-type]

        client = aiomqtt.Client(
            self.host, self.port, username=self.username, password=self.password, identifier=client_id,
            keepalive=self.keepalive_s, timeout=self.timeout_s,
            queue_type=_Dispatch if on_message is not None else None,
            socket_options=((socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF_BYTES),)
            if small_receive_buffer else (),
            will=None if will is None else aiomqtt.Will(will.topic, will.payload, qos=will.qos, retain=will.retain),
            tls_context=self.tls,
        )
        client.pending_calls_threshold = 1_000_000  # bursts of publishes are deliberate (SPaT, CAMs)
        transport = _MqttTransport(self, client, on_message)
        paho = getattr(client, "_client", None)
        if on_message is not None and paho is not None:
            # Straight from paho to the handler: aiomqtt's Message and Topic objects cost about a
            # fifth of the reading time per message under a flood. (The queue_type hook above
            # stays as the fallback should aiomqtt's internals change.)
            deliver = transport._deliver
            paho.on_message = lambda _c, _u, m: deliver(m.topic, m.payload, m.retain)
        try:
            await asyncio.wait_for(client.__aenter__(), self.timeout_s)
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            raise _mqtt_error(exc, f"cannot connect to the MQTT broker {self.address}") from None
        self.open.add(transport)
        if self.low_latency:
            sock = transport.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return transport

    def expedite(self) -> None:
        # Nagle's algorithm holds a burst's tail until the peer ACKs its head, and the peer
        # delays its ACK (40 ms on Linux): receivers that ACK at once keep lockstep fast.
        if not self.low_latency:
            return
        for t in list(self.open):
            sock = t.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


# ---------------------------------------------------------------------------------- memory


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching: ``+`` is one level, a final ``#`` any number (including none)."""
    f, t = topic_filter.split("/"), topic.split("/")
    for k, level in enumerate(f):
        if level == "#":
            return k == len(f) - 1
        if k >= len(t) or (level != "+" and level != t[k]):
            return False
    return len(f) == len(t)


class MemoryBroker:
    """An MQTT-like broker inside the process: subscriptions with ``+`` / ``#``, retained
    messages (an empty retained payload deletes one), last wills on :meth:`drop`. Delivery is
    synchronous and in order: a publish has reached every subscriber when it returns."""

    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self._subs: list[tuple[str, _MemoryTransport]] = []
        self.published = 0

    def connector(self) -> MemoryConnector:
        """A connector whose connections go to this broker."""
        return MemoryConnector(self)

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.published += 1
        if retain:
            if payload:
                self.retained[topic] = payload
            else:
                self.retained.pop(topic, None)
        for f, t in list(self._subs):
            if topic_matches(f, topic):
                t._deliver(Message(topic, payload, False))

    def _subscribe(self, topic_filter: str, t: _MemoryTransport) -> None:
        self._subs.append((topic_filter, t))
        for topic, payload in list(self.retained.items()):
            if topic_matches(topic_filter, topic):
                t._deliver(Message(topic, payload, True))

    def _remove(self, t: _MemoryTransport) -> None:
        self._subs = [(f, s) for f, s in self._subs if s is not t]

    def drop(self, transport: Transport) -> None:
        """Lose ``transport``'s connection (a test of a broker or network failure): its last
        will goes out and its :meth:`~Transport.messages` raises :class:`TransportError`."""
        assert isinstance(transport, _MemoryTransport)
        transport._lost()


class _MemoryTransport:
    def __init__(self, broker: MemoryBroker, will: Will | None, on_message: Handler | None) -> None:
        self._broker = broker
        self._will = will
        self._on_message = on_message
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._closed = False
        self._lost_error: TransportError | None = None

    def _deliver(self, m: Message) -> None:
        if self._on_message is not None:
            self._on_message(m.topic, m.payload, m.retain)
        else:
            self._queue.put_nowait(m)

    def _check(self) -> None:
        if self._lost_error is not None:
            raise self._lost_error
        if self._closed:
            raise TransportError("connection closed")

    async def subscribe(self, topic_filter: str, qos: int = 0) -> None:
        self._check()
        self._broker._subscribe(topic_filter, self)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False,
                      timeout: float | None = None) -> None:
        self._check()
        self._broker._publish(topic, bytes(payload), retain)

    async def messages(self) -> AsyncIterator[Message]:  # type: ignore[override]
        while True:
            m = await self._queue.get()
            if m is None:
                if self._lost_error is not None:
                    raise self._lost_error
                return
            yield m

    def pump(self, max_packets: int) -> None:
        """Nothing to read ahead: delivery is synchronous."""

    def _lost(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lost_error = TransportError("connection to the in-memory broker lost")
        self._broker._remove(self)
        self._queue.put_nowait(None)
        if self._will is not None:
            self._broker._publish(self._will.topic, self._will.payload, self._will.retain)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._broker._remove(self)
        self._queue.put_nowait(None)


class MemoryConnector:
    """Connections to a :class:`MemoryBroker`."""

    address = MEMORY_SCHEME

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker

    async def connect(self, *, client_id: str | None = None, will: Will | None = None,
                      on_message: Handler | None = None, small_receive_buffer: bool = False) -> Transport:
        return _MemoryTransport(self.broker, will, on_message)

    def expedite(self) -> None:
        """Nothing to expedite: delivery is synchronous."""


def connector_for(url: str, **kw: Any) -> Connector:
    """A connector for ``url``: ``memory://`` (a new :class:`MemoryBroker`) or an MQTT URL
    (:meth:`MqttConnector.from_url` with ``kw``)."""
    if is_memory_url(url):
        return MemoryBroker().connector()
    return MqttConnector.from_url(url, **kw)
