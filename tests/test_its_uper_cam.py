"""The fast CAM reader (ivri/its/uper_cam.py) gives what asn1tools gives, or hands over.

Random CAMs are built as asn1tools values over the whole CAM (every container, every
optional field, values across their full ranges) and encoded by asn1tools; each, and
mutations of each (flipped bits, cut or lengthened), is read by both. Wherever the fast reader
answers, the full decoder must give the same message; where the full decoder refuses, the
fast reader must not answer.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ivri.its import MessageError, UperCodec
from ivri.its.messages import VEHICLE_ROLES, Cam
from ivri.its.uper_cam import read_cam_fields
from ivri.its.uper_codec import _cam_from

ASN1_DIR = Path(os.environ.get("IVRI_ASN1_DIR", Path(__file__).resolve().parents[2] / "shared" / "asn1"))


@pytest.fixture(scope="module")
def codec() -> UperCodec:
    if not (ASN1_DIR / "CAM-PDU-Descriptions.asn").is_file():
        pytest.skip(f"ASN.1 modules not found in {ASN1_DIR}")
    return UperCodec(ASN1_DIR)


def _bits(rng: random.Random, n: int) -> tuple[bytes, int]:
    return rng.getrandbits(8 * ((n + 7) // 8)).to_bytes((n + 7) // 8, "big"), n


def random_cam(rng: random.Random) -> dict[str, Any]:
    """An asn1tools value of a CAM; about half in the common form the fast reader takes."""
    common = rng.random() < 0.5
    r = rng.randint
    high: dict[str, Any] = {
        "heading": {"headingValue": r(0, 3601), "headingConfidence": r(1, 127)},
        "speed": {"speedValue": r(0, 16383), "speedConfidence": r(1, 127)},
        "driveDirection": rng.choice(["forward", "backward", "unavailable"]),
        "vehicleLength": {"vehicleLengthValue": r(1, 1023), "vehicleLengthConfidenceIndication": rng.choice(
            ["noTrailerPresent", "trailerPresentWithKnownLength", "trailerPresentWithUnknownLength",
             "trailerPresenceIsUnknown", "unavailable"])},
        "vehicleWidth": r(1, 62),
        "longitudinalAcceleration": {"longitudinalAccelerationValue": r(-160, 161),
                                     "longitudinalAccelerationConfidence": r(0, 102)},
        "curvature": {"curvatureValue": r(-1023, 1023), "curvatureConfidence": rng.choice(
            ["onePerMeter-0-00002", "onePerMeter-0-0001", "onePerMeter-0-0005", "onePerMeter-0-002",
             "onePerMeter-0-01", "onePerMeter-0-1", "outOfRange", "unavailable"])},
        "curvatureCalculationMode": rng.choice(["yawRateUsed", "yawRateNotUsed", "unavailable"]),
        "yawRate": {"yawRateValue": r(-32766, 32767), "yawRateConfidence": rng.choice(
            ["degSec-000-01", "degSec-000-05", "degSec-000-10", "degSec-001-00", "degSec-005-00",
             "degSec-010-00", "degSec-100-00", "outOfRange", "unavailable"])},
    }
    if not common and rng.random() < 0.5:
        high["lanePosition"] = r(-1, 14)
        high["performanceClass"] = r(0, 7)
    params: dict[str, Any] = {
        "basicContainer": {
            "stationType": rng.choice([0, 1, 2, 5, 6, 7, 8, 10, 11, r(0, 255)]),
            "referencePosition": {
                "latitude": r(-900000000, 900000001), "longitude": r(-1800000000, 1800000001),
                "positionConfidenceEllipse": {"semiMajorConfidence": r(0, 4095), "semiMinorConfidence": r(0, 4095),
                                              "semiMajorOrientation": r(0, 3601)},
                "altitude": {"altitudeValue": r(-100000, 800001), "altitudeConfidence": "unavailable"},
            },
        },
        "highFrequencyContainer": ("basicVehicleContainerHighFrequency", high),
    }
    if not common and rng.random() < 0.2:
        params["highFrequencyContainer"] = ("rsuContainerHighFrequency", {})
    role = rng.choice(VEHICLE_ROLES)
    if rng.random() < 0.6:
        path = []
        for _ in range(r(0, 6)):
            point: dict[str, Any] = {"pathPosition": {"deltaLatitude": r(-131071, 131072),
                                                      "deltaLongitude": r(-131071, 131072),
                                                      "deltaAltitude": r(-12700, 12800)}}
            if rng.random() < 0.5:
                point["pathDeltaTime"] = r(1, 65535)
            path.append(point)
        params["lowFrequencyContainer"] = ("basicVehicleContainerLowFrequency", {
            "vehicleRole": role, "exteriorLights": _bits(rng, 8), "pathHistory": path})
    if rng.random() < 0.6:
        kind = rng.choice(["emergencyContainer", "publicTransportContainer"] if common else
                          ["emergencyContainer", "publicTransportContainer", "rescueContainer"])
        if kind == "emergencyContainer":
            special: dict[str, Any] = {"lightBarSirenInUse": _bits(rng, 2)}
            if not common and rng.random() < 0.5:
                special["emergencyPriority"] = _bits(rng, 2)
            if "lowFrequencyContainer" in params:
                params["lowFrequencyContainer"][1]["vehicleRole"] = "emergency"
        elif kind == "publicTransportContainer":
            special = {"embarkationStatus": rng.random() < 0.5}
            if not common and rng.random() < 0.5:
                special["ptActivation"] = {"ptActivationType": r(0, 255), "ptActivationData": rng.randbytes(r(1, 20))}
            if "lowFrequencyContainer" in params:
                params["lowFrequencyContainer"][1]["vehicleRole"] = "publicTransport"
        else:
            special = {"lightBarSirenInUse": _bits(rng, 2)}
        params["specialVehicleContainer"] = (kind, special)
    return {"header": {"protocolVersion": 2, "messageID": 2, "stationID": r(0, 4294967295)},
            "cam": {"generationDeltaTime": r(0, 65535), "camParameters": params}}


def full_decode(codec: UperCodec, data: bytes) -> Cam | None:
    """What asn1tools makes of ``data`` (None: refused), bypassing the fast reader."""
    try:
        return Cam.model_validate(_cam_from(codec._spec.decode("CAM", data, check_constraints=True)))
    except Exception:  # noqa: BLE001  (any refusal of the full decoder)
        return None


def mutations(rng: random.Random, data: bytes) -> list[bytes]:
    out = []
    for _ in range(6):
        b = bytearray(data)
        bit = rng.randrange(len(b) * 8)
        b[bit // 8] ^= 1 << (bit % 8)
        out.append(bytes(b))
    out += [data[:-1], data + b"\x00", data + rng.randbytes(1), data[: rng.randrange(1, len(data))]]
    return out


def test_fast_reader_agrees_with_asn1tools(codec: UperCodec) -> None:
    rng = random.Random(20261203)
    fast = refused = 0  # answered by the fast reader; of those, refused by the model
    for _ in range(1500):
        data = codec._spec.encode("CAM", random_cam(rng), check_constraints=True)
        for m in [data, *mutations(rng, data)]:
            expected = full_decode(codec, m)
            got = read_cam_fields(m)
            if got is None:
                continue
            fast += 1
            try:
                quick = Cam.model_validate(got)
            except ValidationError:  # as the model refuses the full decoder's fields
                quick = None
                refused += 1
            assert quick == expected, m.hex()
    # The fast reader did take a good share (the common form and harmless mutations of it).
    assert fast > 2500 and refused < fast


def test_codec_decode_is_the_same_with_the_fast_reader(codec: UperCodec) -> None:
    rng = random.Random(7)
    for _ in range(300):
        data = codec._spec.encode("CAM", random_cam(rng), check_constraints=True)
        for m in [data, *mutations(rng, data)]:
            expected = full_decode(codec, m)
            if expected is None:
                with pytest.raises(MessageError):
                    codec.decode(m, "cam")
            else:
                assert codec.decode(m, "cam") == expected


def test_common_cams_take_the_fast_path(codec: UperCodec) -> None:
    from ivri.its import EmergencyContainer, ItsPduHeader, ReferencePosition

    cam = Cam(header=ItsPduHeader(message_id=2, station_id=42), generation_delta_time=7, station_type=10,
              reference_position=ReferencePosition(latitude=521003200, longitude=50768896), heading=900,
              speed=1200, vehicle_role="emergency",
              emergency_container=EmergencyContainer(light_bar_siren_in_use=("sirenActivated",)))
    data = codec.encode(cam)
    assert read_cam_fields(data) is not None
    assert codec.decode(data, "cam") == cam
