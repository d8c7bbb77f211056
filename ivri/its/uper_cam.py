"""A fast UPER reader for the common form of the CAM: the fields the gateway uses, and only them.

A live gateway receives CAMs by the ten thousand a second; asn1tools decodes one in about
100 us (it builds every field of every container as Python objects and checks each
constraint), which caps one core at under 10,000 UPER CAMs a second. Nearly every CAM has the
same shape: the basic container, the vehicle high-frequency container with none of its
optional fields, and now and then the low-frequency container (the vehicle role, the
exterior lights, the path history) and an emergency or public-transport container. For that
shape, :func:`read_cam_fields` reads the bits directly, per EN 302 637-2 v1.4.1 and the
ITS-Container module of the same release (the ASN.1 of :mod:`ivri.its.uper_codec`), in a
few microseconds.

It is strict on what it reads: every constrained integer and enumeration it passes, used or
not, is checked against its range, the padding must be zero and the length exact. Anything
else (an extension present, an optional high-frequency field, an RSU container, another
special-vehicle container, a value out of range, a short or long message) returns None, and
the caller decodes the message with asn1tools, which then accepts it or names what is wrong.
So the result is either what the full decoder would give, or a hand-over to it
(``tests/test_its_uper_cam.py`` checks both on random and mutated messages).
"""

from __future__ import annotations

from typing import Any

from ivri.its.messages import LIGHT_BAR_SIREN_BITS, VEHICLE_ROLES

__all__ = ["read_cam_fields"]

_LAT_OFFSET = 900_000_000
_LON_OFFSET = 1_800_000_000
_CAM_MESSAGE_ID = 2


class _Reader:
    """Big-endian bit reader over a whole message (one Python int: shifts are cheap at CAM size)."""

    __slots__ = ("n", "p", "v")

    def __init__(self, data: bytes) -> None:
        self.v = int.from_bytes(data, "big")
        self.n = len(data) * 8
        self.p = 0

    def bits(self, width: int, most: int | None = None) -> int:
        """The next ``width`` bits as an unsigned int; :class:`_NotFast` past the end or above ``most``."""
        p = self.p + width
        if p > self.n:
            raise _NotFast
        self.p = p
        x = (self.v >> (self.n - p)) & ((1 << width) - 1)
        if most is not None and x > most:
            raise _NotFast
        return x


class _NotFast(Exception):
    """Not the common form (or not valid): the full decoder decides."""


def read_cam_fields(data: bytes) -> dict[str, Any] | None:
    """The fields of the :class:`~ivri.its.messages.Cam` model from UPER ``data``, as the full
    decoder (:class:`~ivri.its.uper_codec.UperCodec`) would give them; None when ``data`` is
    not of the common form (see the module docstring): decode it fully then."""
    try:
        return _read(_Reader(data))
    except _NotFast:
        return None


# The fixed part of every common-form CAM, in order: (name or "", width in bits, largest raw
# value or -1 for "any", raw value required or -1). Up to the end of the high-frequency container
# every field has a fixed width, so the positions are constants.
_FIXED: tuple[tuple[str, int, int, int], ...] = (
    ("protocol_version", 8, -1, -1),
    ("", 8, -1, _CAM_MESSAGE_ID),          # messageID
    ("station_id", 32, -1, -1),
    ("generation_delta_time", 16, -1, -1),
    ("", 1, -1, 0),                        # CamParameters: no extension additions
    ("has_low", 1, -1, -1),                # lowFrequencyContainer present
    ("has_special", 1, -1, -1),            # specialVehicleContainer present
    ("", 1, -1, 0),                        # BasicContainer: no extension additions
    ("station_type", 8, -1, -1),
    ("latitude", 31, 1_800_000_001, -1),   # -900000000..900000001
    ("longitude", 32, 3_600_000_001, -1),  # -1800000000..1800000001
    ("", 12, -1, -1),                      # semiMajorConfidence 0..4095
    ("", 12, -1, -1),                      # semiMinorConfidence 0..4095
    ("", 12, 3601, -1),                    # semiMajorOrientation 0..3601
    ("", 20, 900_001, -1),                 # altitudeValue -100000..800001
    ("", 4, -1, -1),                       # altitudeConfidence: 16 values
    ("", 1, -1, 0),                        # HighFrequencyContainer: not an extension
    ("", 1, -1, 0),                        # ... and the vehicle container, not the RSU one
    ("", 7, -1, 0),                        # none of its seven optional fields
    ("heading", 12, 3601, -1),
    ("", 7, 126, -1),                      # headingConfidence 1..127
    ("speed", 14, -1, -1),
    ("", 7, 126, -1),                      # speedConfidence 1..127
    ("", 2, 2, -1),                        # driveDirection: 3 values
    ("", 10, 1022, -1),                    # vehicleLengthValue 1..1023
    ("", 3, 4, -1),                        # vehicleLengthConfidenceIndication: 5 values
    ("", 6, 61, -1),                       # vehicleWidth 1..62
    ("", 9, 321, -1),                      # longitudinalAccelerationValue -160..161
    ("", 7, 102, -1),                      # AccelerationConfidence 0..102
    ("", 11, 2046, -1),                    # curvatureValue -1023..1023
    ("", 3, -1, -1),                       # curvatureConfidence: 8 values
    ("", 1, -1, 0),                        # curvatureCalculationMode: not an extension value
    ("", 2, 2, -1),                        # curvatureCalculationMode: 3 values
    ("", 16, 65533, -1),                   # yawRateValue -32766..32767
    ("", 4, 8, -1),                        # yawRateConfidence: 9 values
)
_FIXED_BITS = sum(w for _, w, _, _ in _FIXED)


def _layout() -> tuple[int, int, tuple[tuple[int, int, int], ...], dict[str, tuple[int, int]]]:
    """The fixed part as constants for one pass: the mask and value of the bits with a
    required value, (shift, mask, largest) of the range-checked fields, (shift, mask) by name."""
    need_mask = need_value = 0
    ranged: list[tuple[int, int, int]] = []
    named: dict[str, tuple[int, int]] = {}
    end = _FIXED_BITS
    for name, width, most, need in _FIXED:
        end -= width
        mask = (1 << width) - 1
        if need >= 0:
            need_mask |= mask << end
            need_value |= need << end
        if most >= 0:
            ranged.append((end, mask, most))
        if name:
            named[name] = (end, mask)
    return need_mask, need_value, tuple(ranged), named


_NEED_MASK, _NEED_VALUE, _RANGED, _NAMED = _layout()
_NAMED_ITEMS = tuple(_NAMED.items())


def _read(r: _Reader) -> dict[str, Any]:
    if r.n < _FIXED_BITS:
        raise _NotFast
    fixed = r.v >> (r.n - _FIXED_BITS)
    if fixed & _NEED_MASK != _NEED_VALUE:
        raise _NotFast
    for shift, mask, most in _RANGED:
        if (fixed >> shift) & mask > most:
            raise _NotFast
    got = {name: (fixed >> shift) & mask for name, (shift, mask) in _NAMED_ITEMS}
    r.p = _FIXED_BITS
    bits = r.bits
    has_low, has_special = got["has_low"], got["has_special"]
    out: dict[str, Any] = {
        "header": {"protocol_version": got["protocol_version"], "message_id": _CAM_MESSAGE_ID,
                   "station_id": got["station_id"]},
        "generation_delta_time": got["generation_delta_time"],
        "station_type": got["station_type"],
        "reference_position": {"latitude": got["latitude"] - _LAT_OFFSET,
                               "longitude": got["longitude"] - _LON_OFFSET},
        "heading": got["heading"],
        "speed": got["speed"],
    }
    if has_low:
        # LowFrequencyContainer ::= CHOICE { basicVehicleContainerLowFrequency, ... }: no index bits
        if bits(1):
            raise _NotFast
        out["vehicle_role"] = VEHICLE_ROLES[bits(4)]
        bits(8)                          # exteriorLights: BIT STRING (SIZE(8))
        for _ in range(bits(6, 40)):     # pathHistory: SEQUENCE (SIZE(0..40)) OF PathPoint
            has_time = bits(1)
            bits(18)                     # deltaLatitude -131071..131072
            bits(18)                     # deltaLongitude
            bits(15, 25500)              # deltaAltitude -12700..12800
            if has_time:
                if bits(1):
                    raise _NotFast       # PathDeltaTime (1..65535, ...): an extension value
                bits(16, 65534)
    if has_special:
        # SpecialVehicleContainer ::= CHOICE { 7 alternatives, ... }
        if bits(1):
            raise _NotFast
        which = bits(3, 6)
        if which == 5:                   # emergencyContainer
            if bits(2):
                raise _NotFast           # incidentIndication / emergencyPriority present
            lights = bits(2)
            out["emergency_container"] = {"light_bar_siren_in_use": tuple(
                name for k, name in enumerate(LIGHT_BAR_SIREN_BITS) if lights >> (1 - k) & 1)}
        elif which == 0:                 # publicTransportContainer
            if bits(1):
                raise _NotFast           # ptActivation present
            out["public_transport_container"] = {"embarkation_status": bool(bits(1))}
        else:
            raise _NotFast
    # The rest: zero padding to the octet, nothing more.
    rest = r.n - r.p
    if rest >= 8 or (r.v & ((1 << rest) - 1)):
        raise _NotFast
    return out
