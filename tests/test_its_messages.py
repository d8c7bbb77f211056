"""The ITS message models: ranges, the consistency rules, and the sample messages in docs/."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ivri.errors import IvriError
from ivri.its import (
    Cam,
    EmergencyContainer,
    IntersectionAccessPoint,
    IntersectionReferenceID,
    IntersectionState,
    ItsPduHeader,
    MessageError,
    MovementEvent,
    MovementState,
    PublicTransportContainer,
    ReferencePosition,
    Spatem,
    Srem,
    decode_json,
    message_type,
)

SAMPLES = Path(__file__).resolve().parents[1] / "docs" / "its-samples"


def _cam(**changes: object) -> Cam:
    fields: dict[str, object] = {
        "header": ItsPduHeader(message_id=2, station_id=7),
        "generation_delta_time": 100,
        "station_type": 5,
        "reference_position": ReferencePosition(latitude=521003200, longitude=50754300),
    }
    fields.update(changes)
    return Cam(**fields)


def test_message_error_is_an_ivri_error_and_a_value_error() -> None:
    assert issubclass(MessageError, IvriError)
    assert issubclass(MessageError, ValueError)


def test_cam_defaults_are_the_unavailable_values() -> None:
    cam = _cam()
    assert (cam.heading, cam.speed, cam.vehicle_role) == (3601, 16383, None)
    assert cam.reference_position.latitude_deg == pytest.approx(52.10032)
    assert ReferencePosition(latitude=900000001, longitude=0).latitude_deg is None


@pytest.mark.parametrize(
    "changes",
    [
        {"generation_delta_time": 65536},
        {"station_type": -1},
        {"heading": 3602},
        {"speed": 16384},
        {"reference_position": {"latitude": 900000002, "longitude": 0}},
        {"header": {"message_id": 2, "station_id": 2**32}},
        {"header": {"message_id": 9, "station_id": 1}},
        {"header": {"protocol_version": 1, "message_id": 2, "station_id": 1}},
        {"vehicle_role": "ambulance"},
        {"colour": "red"},
    ],
)
def test_cam_rejects_out_of_range_and_unknown_fields(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _cam(**changes)


def test_special_container_must_fit_the_role() -> None:
    siren = EmergencyContainer(light_bar_siren_in_use=("sirenActivated",))
    assert _cam(vehicle_role="emergency", emergency_container=siren).emergency_container == siren
    assert _cam(emergency_container=siren).vehicle_role is None  # no low-frequency container
    with pytest.raises(ValidationError, match="vehicle_role 'emergency'"):
        _cam(vehicle_role="default", emergency_container=siren)
    with pytest.raises(ValidationError, match="at most one"):
        _cam(emergency_container=siren,
             public_transport_container=PublicTransportContainer(embarkation_status=False))


def test_road_side_unit_has_no_heading_or_speed() -> None:
    assert _cam(station_type=15).station_type == 15
    with pytest.raises(ValidationError, match="roadSideUnit"):
        _cam(station_type=15, speed=0)


def test_bit_strings_are_normalised_to_bit_order() -> None:
    both = EmergencyContainer(light_bar_siren_in_use=("sirenActivated", "lightBarActivated"))
    assert both.light_bar_siren_in_use == ("lightBarActivated", "sirenActivated")
    assert both.siren_activated and both.light_bar_activated
    assert not EmergencyContainer().siren_activated
    with pytest.raises(ValidationError, match="twice"):
        EmergencyContainer(light_bar_siren_in_use=("sirenActivated", "sirenActivated"))
    with pytest.raises(ValidationError):
        EmergencyContainer(light_bar_siren_in_use=("hornActivated",))


def test_access_point_is_exactly_one_choice() -> None:
    assert IntersectionAccessPoint(approach=3).approach == 3
    for bad in ({}, {"lane": 1, "approach": 2}):
        with pytest.raises(ValidationError, match="exactly one"):
            IntersectionAccessPoint(**bad)
    with pytest.raises(ValidationError):
        IntersectionAccessPoint(approach=16)


def test_signal_group_zero_and_empty_lists_are_rejected() -> None:
    event = MovementEvent(event_state="protected-Movement-Allowed")
    with pytest.raises(ValidationError):
        MovementState(signal_group=0, state_time_speed=(event,))
    with pytest.raises(ValidationError):
        MovementState(signal_group=1, state_time_speed=())
    state = MovementState(signal_group=1, state_time_speed=(event,))
    with pytest.raises(ValidationError):
        Spatem(header=ItsPduHeader(message_id=4, station_id=1), intersections=())
    intersection = IntersectionState(id=IntersectionReferenceID(id=1), revision=0, states=(state,))
    spat = Spatem(header=ItsPduHeader(message_id=4, station_id=1), intersections=(intersection,))
    assert spat.intersections[0].states[0].signal_group == 1


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError):
        _cam().speed = 5  # type: ignore[misc]


def test_message_type_accepts_classes_and_names() -> None:
    assert message_type("SREM") is Srem
    assert message_type(Cam) is Cam
    for bad in ("denm", int):
        with pytest.raises(MessageError, match="unknown message kind"):
            message_type(bad)


def test_sample_emergency_cam_decodes() -> None:
    cam = decode_json((SAMPLES / "cam_emergency.json").read_bytes(), Cam)
    assert isinstance(cam, Cam)
    assert cam.vehicle_role == "emergency"
    assert cam.emergency_container is not None and cam.emergency_container.siren_activated


def test_sample_bus_srem_decodes() -> None:
    srem = decode_json((SAMPLES / "srem_bus.json").read_bytes(), "srem")
    assert isinstance(srem, Srem)
    assert srem.requestor.type is not None and srem.requestor.type.role == "publicTransport"
    assert srem.requests[0].request.request_type == "priorityRequest"
    assert srem.requests[0].request.in_bound_lane.lane == 2
