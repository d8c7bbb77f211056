"""MQTT topic layout and payload codecs of the gateway.

Topic layout (one subtree per intersection)::

    ivri/<region>/<intersection_id>/cam/<login>    in   CAM (vehicles, apps)
    ivri/<region>/<intersection_id>/srem/<login>   in   signed SREM: a SignedRequest JSON
                                                        envelope (ivri.gateway.security) whose
                                                        payload is the SREM in the gateway's codec
    ivri/<region>/<intersection_id>/ssem/<login>   out  SSEM: the answers to <login>'s SREMs
    ivri/<region>/<intersection_id>/spatem         out  SPATEM: signal phase and timing
    ivri/<region>/<intersection_id>/mapem          out  MAPEM: topology (retained)
    ivri/<region>/<intersection_id>/status         out  "online" / "fallback" / "offline"
                                                        (retained; "offline" is the MQTT last will)

``<login>`` is the MQTT user name of the sending device. The shipped broker ACL
(``deploy/mosquitto/acl``) lets a device write only under its own login (``%u``) and read
only its own ``ssem/<login>``, so the gateway knows which login sent what (for per-client
budgets) and an SSEM reaches only its requester. Brokers without logins (tests, a trusted
road-side relay) may use ``cam`` / ``srem`` without the last level; their SSEMs then go to
``ssem``, which carries no lane (see :func:`ivri.gateway.spat.build_ssem`).

``<region>`` is a free label (default ``nl``); ``<intersection_id>`` is the ``id`` of the
intersection in the network config (``[[intersections]] id = "J101"``). The payload codec is
one per gateway: JSON (default, :func:`ivri.its.encode_json`) or UPER (``--codec uper``);
the SignedRequest envelope of an SREM is JSON in both cases (its payload is base64).

Status: ``online`` (connected; the controller with its priority applications runs),
``fallback`` (the engine hit an error and runs the local fallback: no priority),
``offline`` (the gateway is gone: the last will, or a clean stop).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivri.errors import ConfigError
from ivri.its import DEFAULT_MAX_BYTES, Message, MessageError, decode_json, encode_json

__all__ = [
    "IN_KINDS",
    "OUT_KINDS",
    "STATUS_FALLBACK",
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "Codec",
    "TopicLayout",
    "make_codec",
]

IN_KINDS = ("cam", "srem")
OUT_KINDS = ("ssem", "spatem", "mapem", "status")
STATUS_ONLINE = "online"       # connected, receiving and controlling with V2X input
STATUS_FALLBACK = "fallback"   # safe state: the local fallback controller runs, no priority
STATUS_OFFLINE = "offline"     # the last will (and a clean stop): the gateway is gone
_SEGMENT = re.compile(r"^[^/+#\x00]{1,64}$")

CodecName = Literal["json", "uper"]


@dataclass(frozen=True)
class TopicLayout:
    """Builds and parses the gateway's topics for one region."""

    region: str = "nl"
    root: str = "ivri"

    def __post_init__(self) -> None:
        for name, value in (("region", self.region), ("root", self.root)):
            if not _SEGMENT.match(value):
                raise ConfigError(f"topic {name} {value!r} must be 1-64 characters without / + #")

    def topic(self, intersection_id: str, kind: str) -> str:
        """``ivri/<region>/<intersection_id>/<kind>``."""
        if not _SEGMENT.match(intersection_id):
            raise ConfigError(
                f"intersection id {intersection_id!r} cannot be a topic level (no / + #, 1-64 chars)"
            )
        return f"{self.root}/{self.region}/{intersection_id}/{kind}"

    def subscriptions(self, intersection_ids: Sequence[str] | None = None) -> list[list[str]]:
        """The filters the gateway subscribes to: the CAM filters, then the SREM filters.

        ``kind/#`` matches both ``kind`` and ``kind/<login>``. Without ``intersection_ids``,
        one filter per kind for every intersection of the region; with them, one per given
        intersection, so that several gateways behind one broker each receive only the
        messages of the intersections they own (partitioned by topic).
        """
        if intersection_ids is None:
            return [[f"{self.root}/{self.region}/+/{kind}/#"] for kind in IN_KINDS]
        return [[f"{self.topic(x, kind)}/#" for x in intersection_ids] for kind in IN_KINDS]

    def client_topic(self, intersection_id: str, kind: str, login: str) -> str:
        """``ivri/<region>/<intersection_id>/<kind>/<login>`` (``.../<kind>`` for login "")."""
        base = self.topic(intersection_id, kind)
        return f"{base}/{login}" if login else base

    def parse(self, topic: str) -> tuple[str, str, str] | None:
        """``(intersection_id, kind, login)`` of an incoming topic (login "" when absent),
        or None if it is not ours."""
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != self.root or parts[1] != self.region:
            return None
        login = parts[4] if len(parts) == 5 else ""
        if len(parts) == 5 and not _SEGMENT.match(login):
            return None
        return parts[2], parts[3], login


class Codec:
    """Encode / decode ITS messages in one wire format; errors are :class:`MessageError`."""

    name: str = "json"

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes

    def encode(self, msg: Message) -> bytes:
        return encode_json(msg)

    def decode(self, data: bytes, kind: str) -> Message:
        return decode_json(data, kind, max_bytes=self.max_bytes)

    def decode_any(self, data: bytes) -> Message:
        """Decode a message of any type (to tell a wrong type from garbage)."""
        return decode_json(data, None, max_bytes=self.max_bytes)


class _UperCodec(Codec):
    name = "uper"

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, asn1_dir: str | Path | None = None) -> None:
        super().__init__(max_bytes)
        from ivri.its import UperCodec

        self._codec = UperCodec(asn1_dir)

    def encode(self, msg: Message) -> bytes:
        return self._codec.encode(msg)

    def decode(self, data: bytes, kind: str) -> Message:
        if len(data) > self.max_bytes:
            raise MessageError(f"UPER message is {len(data)} bytes, more than the limit of {self.max_bytes}")
        return self._codec.decode(data, kind)

    def decode_any(self, data: bytes) -> Message:
        return self._codec.decode(data, None)


def make_codec(name: str, *, asn1_dir: str | Path | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES) -> Codec:
    """The codec called ``name`` (``json`` or ``uper``); UPER needs the ASN.1 directory."""
    if name == "json":
        return Codec(max_bytes)
    if name == "uper":
        return _UperCodec(max_bytes, asn1_dir)
    raise ConfigError(f"unknown codec {name!r}; use json or uper")
