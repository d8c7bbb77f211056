"""The JSON and UPER codecs: round trips, fuzzing, clear errors, and a known CAM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivri.errors import ConfigError
from ivri.its import (
    ASN1_DIR_ENV,
    MESSAGE_TYPES,
    Cam,
    Connection,
    EmergencyContainer,
    GenericLane,
    IntersectionAccessPoint,
    IntersectionGeometry,
    IntersectionReferenceID,
    IntersectionState,
    ItsPduHeader,
    Mapem,
    MessageError,
    MovementEvent,
    MovementState,
    NodeXY,
    Position3D,
    PtActivation,
    PublicTransportContainer,
    ReferencePosition,
    RequestorDescription,
    RequestorType,
    SignalRequest,
    SignalRequesterInfo,
    SignalRequestPackage,
    SignalStatus,
    SignalStatusPackage,
    Spatem,
    Srem,
    Ssem,
    TimeChangeDetails,
    UperCodec,
    decode_json,
    encode_json,
)
from ivri.its.messages import (
    BASIC_VEHICLE_ROLES,
    INTERSECTION_STATUS_BITS,
    LANE_DIRECTION_BITS,
    LANE_TYPES,
    LIGHT_BAR_SIREN_BITS,
    MOVEMENT_PHASE_STATES,
    PRIORITIZATION_RESPONSE_STATUSES,
    PRIORITY_REQUEST_TYPES,
    VEHICLE_ROLES,
    VEHICLE_TYPES,
)

ASN1_DIR = Path(__file__).resolve().parents[2] / "shared" / "asn1"
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGE_CLASSES = tuple(MESSAGE_TYPES.values())


@pytest.fixture(scope="module")
def codec() -> UperCodec:
    if not (ASN1_DIR / "CAM-PDU-Descriptions.asn").is_file():
        pytest.skip(f"ASN.1 modules not found in {ASN1_DIR}")
    return UperCodec(ASN1_DIR)


# --- strategies ------------------------------------------------------------------------------


def ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


def bits(names: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(names), unique=True).map(tuple)


def tuples(strategy: st.SearchStrategy, lo: int, hi: int) -> st.SearchStrategy[tuple]:
    return st.lists(strategy, min_size=lo, max_size=hi).map(tuple)


def headers(message_id: int) -> st.SearchStrategy[ItsPduHeader]:
    return st.builds(ItsPduHeader, message_id=st.just(message_id), station_id=ints(0, 2**32 - 1))


minutes = ints(0, 527040)
dseconds = ints(0, 65535)
msg_counts = ints(0, 127)
time_marks = ints(0, 36001)
signal_groups = ints(1, 255)
ref_ids = st.builds(IntersectionReferenceID, region=optional(ints(0, 65535)), id=ints(0, 65535))
access_points = st.one_of(
    st.builds(IntersectionAccessPoint, lane=ints(0, 255)),
    st.builds(IntersectionAccessPoint, approach=ints(0, 15)),
    st.builds(IntersectionAccessPoint, connection=ints(0, 255)),
)
latitudes = ints(-900000000, 900000001)
longitudes = ints(-1800000000, 1800000001)


@st.composite
def cams(draw: st.DrawFn) -> Cam:
    station_type = draw(ints(0, 255))
    rsu = station_type == 15
    special = draw(st.sampled_from(["none", "emergency", "publicTransport"]))
    if special == "none":
        role = draw(optional(st.sampled_from(VEHICLE_ROLES)))
    else:
        role = draw(st.sampled_from([None, special]))
    emergency = public_transport = None
    if special == "emergency":
        emergency = EmergencyContainer(light_bar_siren_in_use=draw(bits(LIGHT_BAR_SIREN_BITS)))
    elif special == "publicTransport":
        activation = draw(optional(st.builds(
            PtActivation, pt_activation_type=ints(0, 255),
            pt_activation_data=st.binary(min_size=1, max_size=20).map(bytes.hex),
        )))
        public_transport = PublicTransportContainer(
            embarkation_status=draw(st.booleans()), pt_activation=activation
        )
    return Cam(
        header=draw(headers(2)),
        generation_delta_time=draw(ints(0, 65535)),
        station_type=station_type,
        reference_position=ReferencePosition(latitude=draw(latitudes), longitude=draw(longitudes)),
        heading=3601 if rsu else draw(ints(0, 3601)),
        speed=16383 if rsu else draw(ints(0, 16383)),
        vehicle_role=role,
        emergency_container=emergency,
        public_transport_container=public_transport,
    )


srems = st.builds(
    Srem,
    header=headers(9),
    time_stamp=optional(minutes),
    second=dseconds,
    sequence_number=optional(msg_counts),
    requests=tuples(st.builds(
        SignalRequestPackage,
        request=st.builds(
            SignalRequest, id=ref_ids, request_id=ints(0, 255),
            request_type=st.sampled_from(PRIORITY_REQUEST_TYPES),
            in_bound_lane=access_points, out_bound_lane=optional(access_points),
        ),
        minute=optional(minutes), second=optional(dseconds), duration=optional(dseconds),
    ), 0, 3),
    requestor=st.builds(
        RequestorDescription, id=ints(0, 2**32 - 1),
        type=optional(st.builds(RequestorType, role=st.sampled_from(BASIC_VEHICLE_ROLES),
                                hpms_type=optional(st.sampled_from(VEHICLE_TYPES)))),
    ),
)

ssems = st.builds(
    Ssem,
    header=headers(10),
    time_stamp=optional(minutes),
    second=dseconds,
    sequence_number=optional(msg_counts),
    status=tuples(st.builds(
        SignalStatus, sequence_number=msg_counts, id=ref_ids,
        sig_status=tuples(st.builds(
            SignalStatusPackage,
            requester=optional(st.builds(
                SignalRequesterInfo, id=ints(0, 2**32 - 1), request=ints(0, 255),
                sequence_number=msg_counts, role=optional(st.sampled_from(BASIC_VEHICLE_ROLES)),
            )),
            inbound_on=access_points,
            status=st.sampled_from(PRIORITIZATION_RESPONSE_STATUSES),
        ), 1, 3),
    ), 1, 3),
)

spatems = st.builds(
    Spatem,
    header=headers(4),
    time_stamp=optional(minutes),
    intersections=tuples(st.builds(
        IntersectionState, id=ref_ids, revision=msg_counts,
        status=bits(INTERSECTION_STATUS_BITS), moy=optional(minutes), time_stamp=optional(dseconds),
        states=tuples(st.builds(
            MovementState, signal_group=signal_groups,
            state_time_speed=tuples(st.builds(
                MovementEvent, event_state=st.sampled_from(MOVEMENT_PHASE_STATES),
                timing=optional(st.builds(
                    TimeChangeDetails, min_end_time=time_marks,
                    max_end_time=optional(time_marks), likely_time=optional(time_marks),
                )),
            ), 1, 3),
        ), 1, 4),
    ), 1, 2),
)

offsets = st.one_of(ints(-512, 511), ints(-32768, 32767))
mapems = st.builds(
    Mapem,
    header=headers(5),
    msg_issue_revision=msg_counts,
    intersections=tuples(st.builds(
        IntersectionGeometry, id=ref_ids, revision=msg_counts,
        ref_point=st.builds(Position3D, lat=latitudes, long=longitudes),
        lane_width=optional(ints(0, 32767)),
        lane_set=tuples(st.builds(
            GenericLane, lane_id=ints(0, 255),
            ingress_approach=optional(ints(0, 15)), egress_approach=optional(ints(0, 15)),
            directional_use=bits(LANE_DIRECTION_BITS), lane_type=st.sampled_from(LANE_TYPES),
            node_list=tuples(st.builds(NodeXY, x=offsets, y=offsets), 2, 5),
            connects_to=tuples(st.builds(Connection, connecting_lane=ints(0, 255),
                                         signal_group=optional(signal_groups)), 0, 3),
        ), 1, 3),
    ), 0, 2),
)

messages = st.one_of(cams(), srems, ssems, spatems, mapems)
STRATEGIES = {"cam": cams(), "srem": srems, "ssem": ssems, "spatem": spatems, "mapem": mapems}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _is_message(result: object) -> bool:
    return isinstance(result, MESSAGE_CLASSES)


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_json_round_trip(kind: str) -> None:
    @SETTINGS
    @given(STRATEGIES[kind])
    def check(msg: object) -> None:
        data = encode_json(msg)  # type: ignore[arg-type]
        assert decode_json(data) == msg
        assert decode_json(data, kind) == msg
        assert json.loads(data)["type"] == kind

    check()


@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_uper_round_trip(kind: str, codec: UperCodec) -> None:
    @SETTINGS
    @given(STRATEGIES[kind])
    def check(msg: object) -> None:
        data = codec.encode(msg)  # type: ignore[arg-type]
        assert data[:2] == bytes([2, type(msg).MESSAGE_ID])
        assert codec.decode(data) == msg
        assert codec.decode(data, kind) == msg

    check()


# --- fuzzing: only MessageError or a valid message ---------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_json_decoder_survives_random_bytes(data: bytes) -> None:
    try:
        assert _is_message(decode_json(data))
    except MessageError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(json_values, st.sampled_from([None, *MESSAGE_TYPES]))
def test_json_decoder_survives_random_json(value: object, kind: str | None) -> None:
    for candidate in (value, {"type": kind, "message": value}):
        try:
            assert _is_message(decode_json(json.dumps(candidate).encode()))
        except MessageError as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(messages, st.data())
def test_json_decoder_survives_mutated_messages(msg: object, data: st.DataObject) -> None:
    text = encode_json(msg)  # type: ignore[arg-type]
    at = data.draw(st.integers(0, len(text) - 1))
    mutated = text[:at] + data.draw(st.binary(min_size=1, max_size=3)) + text[at + 1:]
    try:
        assert _is_message(decode_json(mutated))
    except MessageError as exc:
        assert "\n" not in str(exc)


def test_json_rejects_oversized_input() -> None:
    with pytest.raises(MessageError, match="more than the limit of 65536"):
        decode_json(b" " * (64 * 1024 + 1))
    with pytest.raises(MessageError, match="limit of 10"):
        decode_json(b'{"type": "cam"}', max_bytes=10)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "Invalid JSON"),
        (b'{"type": "denm", "message": {}}', "does not match"),
        (b'{"type": "cam", "message": {"header": "x"}}', "cam.message.header"),
        ("{}", "must be bytes"),
    ],
)
def test_json_errors_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode_json(data)


def test_json_rejects_strings_for_numbers_and_the_wrong_kind(codec: UperCodec) -> None:
    sample = json.loads(encode_json(_emergency_cam()))
    sample["message"]["speed"] = "1389"
    with pytest.raises(MessageError, match="speed"):
        decode_json(json.dumps(sample).encode())
    with pytest.raises(MessageError, match="type"):
        decode_json(encode_json(_emergency_cam()), Srem)


def _fuzz_uper(codec: UperCodec, data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except MessageError as exc:
        assert "\n" not in str(exc)
    else:
        assert _is_message(msg)
        codec.encode(msg)  # whatever decodes is a valid model, so it encodes again


@FUZZ
@given(st.binary(max_size=200))
def test_uper_decoder_survives_random_bytes(codec: UperCodec, data: bytes) -> None:
    _fuzz_uper(codec, data)


@FUZZ
@given(st.sampled_from([2, 4, 5, 9, 10]), st.binary(max_size=200))
def test_uper_decoder_survives_random_bodies(
    codec: UperCodec, message_id: int, body: bytes
) -> None:
    _fuzz_uper(codec, bytes([2, message_id]) + body)


@FUZZ
@given(messages, st.data())
def test_uper_decoder_survives_mutated_messages(
    codec: UperCodec, msg: object, data: st.DataObject
) -> None:
    encoded = codec.encode(msg)  # type: ignore[arg-type]
    at = data.draw(st.integers(2, len(encoded) - 1))
    mutated = encoded[:at] + bytes([data.draw(st.integers(0, 255))]) + encoded[at + 1:]
    _fuzz_uper(codec, data.draw(st.sampled_from([mutated, encoded[:at]])))


def test_uper_errors_say_why(codec: UperCodec) -> None:
    with pytest.raises(MessageError, match="too short"):
        codec.decode(b"\x02")
    with pytest.raises(MessageError, match="messageID 1 is not"):
        codec.decode(b"\x02\x01\x00\x00")
    with pytest.raises(MessageError, match="expected a SREM, got a CAM"):
        codec.decode(codec.encode(_emergency_cam()), Srem)
    with pytest.raises(MessageError, match="CAM: cannot decode"):
        codec.decode(b"\x02\x02\x00")
    with pytest.raises(MessageError, match="must be bytes"):
        codec.decode("0202")  # type: ignore[arg-type]


# --- configuration of the ASN.1 directory ----------------------------------------------------


def test_uper_codec_without_a_directory_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ASN1_DIR_ENV, raising=False)
    with pytest.raises(ConfigError, match="set IVRI_ASN1_DIR or pass --asn1-dir") as info:
        UperCodec()
    assert "CAM-PDU-Descriptions.asn" in str(info.value)


def test_uper_codec_names_the_missing_files(tmp_path: Path) -> None:
    (tmp_path / "ITS-Container.asn").write_text("")
    with pytest.raises(ConfigError, match="lacks CAM-PDU-Descriptions.asn") as info:
        UperCodec(tmp_path)
    assert "IVRI_ASN1_DIR" in str(info.value)


def test_uper_codec_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, codec: UperCodec
) -> None:
    monkeypatch.setenv(ASN1_DIR_ENV, str(ASN1_DIR))
    assert UperCodec().asn1_dir == codec.asn1_dir


# --- known answers ---------------------------------------------------------------------------


def _emergency_cam() -> Cam:
    return Cam(
        header=ItsPduHeader(message_id=2, station_id=1001),
        generation_delta_time=12345,
        station_type=10,  # specialVehicles
        reference_position=ReferencePosition(latitude=507766120, longitude=61072380),
        heading=900,  # east
        speed=1389,  # 13.89 m/s = 50 km/h
        vehicle_role="emergency",
        emergency_container=EmergencyContainer(
            light_bar_siren_in_use=("lightBarActivated", "sirenActivated")
        ),
    )


def test_known_emergency_cam_in_both_codecs(codec: UperCodec) -> None:
    cam = _emergency_cam()
    for decoded in (codec.decode(codec.encode(cam)), decode_json(encode_json(cam))):
        assert isinstance(decoded, Cam)
        assert decoded.header.station_id == 1001
        assert decoded.station_type == 10
        assert decoded.reference_position.latitude_deg == pytest.approx(50.776612)
        assert decoded.reference_position.longitude_deg == pytest.approx(6.107238)
        assert (decoded.heading, decoded.speed) == (900, 1389)
        assert decoded.vehicle_role == "emergency"
        assert decoded.emergency_container is not None
        assert decoded.emergency_container.siren_activated
        assert decoded.emergency_container.light_bar_activated


def test_decodes_the_reference_cam_of_check_asn1(codec: UperCodec) -> None:
    # The emergency CAM of check_asn1.py next to the ASN.1 modules, encoded there by asn1tools and
    # cross-checked byte for byte with pycrate; it carries confidences, altitude, vehicle size
    # and emergencyPriority, which the model drops.
    data = bytes.fromhex(
        "0202000003e9303960aa7d19cd0dddb6bf80c80a0708395f8c00384122b6e303609a8333ffe1fffa0c0002bc"
    )
    assert codec.decode(data, "cam") == _emergency_cam()
