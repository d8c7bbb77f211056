"""Pydantic models of the ETSI ITS messages the engine uses: CAM, SREM, SSEM, SPATEM, MAPEM.

Only the fields the engine reads are modelled. The codecs (:mod:`ivri.its.json_codec`,
:mod:`ivri.its.uper_codec`) fill every other mandatory ASN.1 field with its "unavailable" value
and drop unknown optional ones when decoding.

Standards: CAM is ETSI EN 302 637-2 v1.4.1 with the Common Data Dictionary TS 102 894-2 v1.3.1
(``ITS-Container``); SPATEM, MAPEM, SREM and SSEM are ETSI TS 103 301 v2.1.1 with the ISO TS
19091:2018 ``DSRC`` types (SPAT, MapData, SignalRequestMessage, SignalStatusMessage).

Mapping to the ASN.1 (one rule, few exceptions):

* field names are the ASN.1 names in snake_case (``generationDeltaTime`` ->
  ``generation_delta_time``, ``state-time-speed`` -> ``state_time_speed``, ``long`` stays ``long``);
* each message model is the PDU's ``header`` plus the fields of its body (``cam``, ``srm``,
  ``ssm``, ``spat``, ``map``) lifted one level; :class:`Cam` also lifts the CAM containers
  (``heading`` is ``headingValue``, ``speed`` is ``speedValue``, ``vehicle_role`` is the
  low-frequency container, ``emergency_container`` / ``public_transport_container`` are the
  special-vehicle container alternatives);
* ENUMERATED values are the ASN.1 names as strings (``"protected-Movement-Allowed"``);
  INTEGERs with named numbers stay integers (``station_type=10`` is specialVehicles);
* BIT STRINGs are tuples of the names of the set bits, kept in bit order
  (``("lightBarActivated", "sirenActivated")``);
* SEQUENCE OF is a tuple; an OPTIONAL SEQUENCE OF is an empty tuple when absent;
* units are the ASN.1 units, as integers, so that both codecs round-trip exactly: positions in
  0.1 microdegree, heading in 0.1 degree, speed in 0.01 m/s, node offsets in cm, TimeMark in
  0.1 s within the hour, DSecond in ms within the minute.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ivri.its.errors import MessageError

__all__ = [
    "BASIC_VEHICLE_ROLES",
    "INTERSECTION_STATUS_BITS",
    "LANE_DIRECTION_BITS",
    "LANE_TYPES",
    "LIGHT_BAR_SIREN_BITS",
    "MESSAGE_TYPES",
    "MOVEMENT_PHASE_STATES",
    "PRIORITIZATION_RESPONSE_STATUSES",
    "PRIORITY_REQUEST_TYPES",
    "ROAD_SIDE_UNIT",
    "VEHICLE_ROLES",
    "VEHICLE_TYPES",
    "Cam",
    "Connection",
    "EmergencyContainer",
    "GenericLane",
    "IntersectionAccessPoint",
    "IntersectionGeometry",
    "IntersectionReferenceID",
    "IntersectionState",
    "ItsPduHeader",
    "Mapem",
    "Message",
    "MovementEvent",
    "MovementState",
    "NodeXY",
    "Position3D",
    "PtActivation",
    "PublicTransportContainer",
    "ReferencePosition",
    "RequestorDescription",
    "RequestorType",
    "SignalRequest",
    "SignalRequestPackage",
    "SignalRequesterInfo",
    "SignalStatus",
    "SignalStatusPackage",
    "Spatem",
    "Srem",
    "Ssem",
    "TimeChangeDetails",
    "message_type",
]

# --- enumerations (ASN.1 names, in the order of their numbers) -------------------------------

VEHICLE_ROLES = (  # ITS-Container VehicleRole
    "default", "publicTransport", "specialTransport", "dangerousGoods", "roadWork", "rescue",
    "emergency", "safetyCar", "agriculture", "commercial", "military", "roadOperator", "taxi",
    "reserved1", "reserved2", "reserved3",
)
BASIC_VEHICLE_ROLES = (  # DSRC BasicVehicleRole
    "basicVehicle", "publicTransport", "specialTransport", "dangerousGoods", "roadWork",
    "roadRescue", "emergency", "safetyCar", "none-unknown", "truck", "motorcycle",
    "roadSideSource", "police", "fire", "ambulance", "dot", "transit", "slowMoving", "stopNgo",
    "cyclist", "pedestrian", "nonMotorized", "military",
)
VEHICLE_TYPES = (  # DSRC VehicleType (RequestorType.hpmsType)
    "none", "unknown", "special", "moto", "car", "carOther", "bus", "axleCnt2", "axleCnt3",
    "axleCnt4", "axleCnt4Trailer", "axleCnt5Trailer", "axleCnt6Trailer", "axleCnt5MultiTrailer",
    "axleCnt6MultiTrailer", "axleCnt7MultiTrailer",
)
PRIORITY_REQUEST_TYPES = (
    "priorityRequestTypeReserved", "priorityRequest", "priorityRequestUpdate",
    "priorityCancellation",
)
PRIORITIZATION_RESPONSE_STATUSES = (
    "unknown", "requested", "processing", "watchOtherTraffic", "granted", "rejected",
    "maxPresence", "reserviceLocked",
)
MOVEMENT_PHASE_STATES = (
    "unavailable", "dark", "stop-Then-Proceed", "stop-And-Remain", "pre-Movement",
    "permissive-Movement-Allowed", "protected-Movement-Allowed", "permissive-clearance",
    "protected-clearance", "caution-Conflicting-Traffic",
)
LANE_TYPES = (  # DSRC LaneTypeAttributes alternatives
    "vehicle", "crosswalk", "bikeLane", "sidewalk", "median", "striping", "trackedVehicle",
    "parking",
)

# --- named bits of the BIT STRINGs (bit 0 first) ---------------------------------------------

LIGHT_BAR_SIREN_BITS = ("lightBarActivated", "sirenActivated")  # LightBarSirenInUse, SIZE(2)
LANE_DIRECTION_BITS = ("ingressPath", "egressPath")  # LaneDirection, SIZE(2)
INTERSECTION_STATUS_BITS = (  # IntersectionStatusObject, SIZE(16); bits 14 and 15 are unnamed
    "manualControlIsEnabled", "stopTimeIsActivated", "failureFlash", "preemptIsActive",
    "signalPriorityIsActive", "fixedTimeOperation", "trafficDependentOperation",
    "standbyOperation", "failureMode", "off", "recentMAPmessageUpdate",
    "recentChangeInMAPassignedLanesIDsUsed", "noValidMAPisAvailableAtThisTime",
    "noValidSPATisAvailableAtThisTime",
)

ROAD_SIDE_UNIT = 15  # StationType roadSideUnit: sends the RSU high-frequency container
HEADING_UNAVAILABLE = 3601
SPEED_UNAVAILABLE = 16383

VehicleRole = Literal[VEHICLE_ROLES]  # type: ignore[valid-type]
BasicVehicleRole = Literal[BASIC_VEHICLE_ROLES]  # type: ignore[valid-type]
VehicleType = Literal[VEHICLE_TYPES]  # type: ignore[valid-type]
PriorityRequestType = Literal[PRIORITY_REQUEST_TYPES]  # type: ignore[valid-type]
PrioritizationResponseStatus = Literal[PRIORITIZATION_RESPONSE_STATUSES]  # type: ignore[valid-type]
MovementPhaseState = Literal[MOVEMENT_PHASE_STATES]  # type: ignore[valid-type]
LaneType = Literal[LANE_TYPES]  # type: ignore[valid-type]


def _bit_names(names: tuple[str, ...]) -> object:
    """A BIT STRING as the tuple of its set bits' names, normalised to bit order.

    Normalising makes equal bit strings equal models, whatever order the names came in.
    """
    order = {name: i for i, name in enumerate(names)}

    def canonical(value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a bit name appears twice")
        return tuple(sorted(value, key=order.__getitem__))

    return Annotated[tuple[Literal[names], ...], AfterValidator(canonical)]  # type: ignore[valid-type]


LightBarSirenInUse = _bit_names(LIGHT_BAR_SIREN_BITS)
LaneDirection = _bit_names(LANE_DIRECTION_BITS)
IntersectionStatusObject = _bit_names(INTERSECTION_STATUS_BITS)

# --- common types ----------------------------------------------------------------------------

StationID = Annotated[int, Field(ge=0, le=4294967295)]
Latitude = Annotated[
    int, Field(ge=-900000000, le=900000001, description="0.1 microdegree; 900000001 n/a")
]
Longitude = Annotated[
    int, Field(ge=-1800000000, le=1800000001, description="0.1 microdegree; 1800000001 n/a")
]
MinuteOfTheYear = Annotated[int, Field(ge=0, le=527040, description="minutes since 1 Jan UTC")]
DSecond = Annotated[int, Field(ge=0, le=65535, description="ms in the minute (60000.. leap s)")]
MsgCount = Annotated[int, Field(ge=0, le=127)]
TimeMark = Annotated[int, Field(ge=0, le=36001, description="0.1 s in the UTC hour; 36001 unknown")]
SignalGroupID = Annotated[int, Field(ge=1, le=255, description="0 (unknown) is not accepted")]
LaneID = Annotated[int, Field(ge=0, le=255)]
ApproachID = Annotated[int, Field(ge=0, le=15)]


class _Strict(BaseModel):
    # A misspelt field must be an error, and a received message must never change.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItsPduHeader(_Strict):
    """The ITS PDU header every message starts with (ITS-Container ``ItsPduHeader``)."""

    protocol_version: Literal[2] = Field(2, description="2 = CAM v1.4.1 / TS 103 301 release 1")
    message_id: int = Field(ge=0, le=255, description="cam(2) spatem(4) mapem(5) srem(9) ssem(10)")
    station_id: StationID


class _Message(_Strict):
    MESSAGE_ID: ClassVar[int]
    KIND: ClassVar[str]  # the JSON envelope's "type"
    PDU: ClassVar[str]  # the ASN.1 top-level type

    header: ItsPduHeader

    @model_validator(mode="after")
    def _message_id(self) -> _Message:
        if self.header.message_id != self.MESSAGE_ID:
            raise ValueError(
                f"header.message_id is {self.header.message_id}, a {self.PDU} has {self.MESSAGE_ID}"
            )
        return self


# --- CAM -------------------------------------------------------------------------------------


class ReferencePosition(_Strict):
    """WGS84 position of the sender's reference point, in 0.1 microdegree (as in the ASN.1)."""

    latitude: Latitude
    longitude: Longitude

    @property
    def latitude_deg(self) -> float | None:
        return None if self.latitude == 900000001 else self.latitude / 1e7

    @property
    def longitude_deg(self) -> float | None:
        return None if self.longitude == 1800000001 else self.longitude / 1e7


class EmergencyContainer(_Strict):
    """Special-vehicle container of an emergency vehicle: is it using blue lights and siren?"""

    light_bar_siren_in_use: LightBarSirenInUse = ()  # type: ignore[valid-type]

    @property
    def light_bar_activated(self) -> bool:
        return "lightBarActivated" in self.light_bar_siren_in_use

    @property
    def siren_activated(self) -> bool:
        return "sirenActivated" in self.light_bar_siren_in_use


class PtActivation(_Strict):
    """Public-transport activation data (e.g. a KAR/VDV message) for the traffic light."""

    pt_activation_type: int = Field(ge=0, le=255, description="0 undefined, 1 R09.16, 2 VDV 50149")
    pt_activation_data: str = Field(
        pattern=r"^([0-9a-f]{2}){1,20}$", description="1..20 octets as lowercase hex"
    )


class PublicTransportContainer(_Strict):
    """Special-vehicle container of a bus or tram."""

    embarkation_status: bool = Field(description="passengers are boarding or alighting")
    pt_activation: PtActivation | None = None


class Cam(_Message):
    """Cooperative Awareness Message: where a station is, how fast it goes, and its role."""

    MESSAGE_ID: ClassVar[int] = 2
    KIND: ClassVar[str] = "cam"
    PDU: ClassVar[str] = "CAM"

    generation_delta_time: int = Field(ge=0, le=65535, description="ms, TimestampIts mod 65536")
    station_type: int = Field(
        ge=0, le=255,
        description="0 unknown, 1 pedestrian, 2 cyclist, 5 passengerCar, 6 bus, 7 lightTruck, "
        "8 heavyTruck, 10 specialVehicles, 11 tram, 15 roadSideUnit",
    )
    reference_position: ReferencePosition
    heading: int = Field(
        HEADING_UNAVAILABLE, ge=0, le=3601,
        description="0.1 degree clockwise from north; 3601 = unavailable",
    )
    speed: int = Field(
        SPEED_UNAVAILABLE, ge=0, le=16383, description="0.01 m/s; 16383 = unavailable"
    )
    vehicle_role: VehicleRole | None = Field(  # type: ignore[valid-type]
        None, description="None: this CAM has no low-frequency container"
    )
    emergency_container: EmergencyContainer | None = None
    public_transport_container: PublicTransportContainer | None = None

    @model_validator(mode="after")
    def _containers(self) -> Cam:
        # A CAM holds at most one special-vehicle container (a CHOICE), and it must fit the role.
        if self.emergency_container is not None and self.public_transport_container is not None:
            raise ValueError("a CAM has at most one special-vehicle container")
        role = self.vehicle_role
        if self.emergency_container is not None and role not in (None, "emergency"):
            raise ValueError(f"emergency_container needs vehicle_role 'emergency', not {role!r}")
        if self.public_transport_container is not None and role not in (None, "publicTransport"):
            raise ValueError(
                f"public_transport_container needs vehicle_role 'publicTransport', not {role!r}"
            )
        if self.station_type == ROAD_SIDE_UNIT and (
            self.heading != HEADING_UNAVAILABLE or self.speed != SPEED_UNAVAILABLE
        ):
            raise ValueError("a roadSideUnit (station_type 15) CAM carries no heading or speed")
        return self


# --- shared DSRC types -----------------------------------------------------------------------


class IntersectionReferenceID(_Strict):
    """An intersection: its id, unique within the road regulator's region."""

    region: int | None = Field(None, ge=0, le=65535, description="RoadRegulatorID")
    id: int = Field(ge=0, le=65535)


class IntersectionAccessPoint(_Strict):
    """Where a vehicle enters or leaves: a lane, an approach or a connection (a CHOICE).

    Exactly one of the three is set.
    """

    lane: LaneID | None = None
    approach: ApproachID | None = None
    connection: int | None = Field(None, ge=0, le=255, description="LaneConnectionID")

    @model_validator(mode="after")
    def _one(self) -> IntersectionAccessPoint:
        if (self.lane is None) + (self.approach is None) + (self.connection is None) != 2:
            raise ValueError("set exactly one of lane, approach, connection")
        return self


class Position3D(_Strict):
    """A WGS84 point in 0.1 microdegree (elevation not modelled)."""

    lat: Latitude
    long: Longitude


# --- SREM ------------------------------------------------------------------------------------


class SignalRequest(_Strict):
    """One request for service at one intersection."""

    id: IntersectionReferenceID
    request_id: int = Field(ge=0, le=255)
    request_type: PriorityRequestType  # type: ignore[valid-type]
    in_bound_lane: IntersectionAccessPoint
    out_bound_lane: IntersectionAccessPoint | None = None


class SignalRequestPackage(_Strict):
    """A request plus when the vehicle expects to arrive (ETA) and how long it needs."""

    request: SignalRequest
    minute: MinuteOfTheYear | None = Field(None, description="ETA, minute of the year")
    second: DSecond | None = Field(None, description="ETA, ms within that minute")
    duration: DSecond | None = Field(None, description="ms the service is needed")


class RequestorType(_Strict):
    """What kind of vehicle asks."""

    role: BasicVehicleRole  # type: ignore[valid-type]
    hpms_type: VehicleType | None = None  # type: ignore[valid-type]


class RequestorDescription(_Strict):
    """Who asks. ``id`` is the VehicleID alternative ``stationID`` (entityID is not supported)."""

    id: StationID
    type: RequestorType | None = None


class Srem(_Message):
    """Signal Request Extended Message: a vehicle asks intersections for priority."""

    MESSAGE_ID: ClassVar[int] = 9
    KIND: ClassVar[str] = "srem"
    PDU: ClassVar[str] = "SREM"

    time_stamp: MinuteOfTheYear | None = None
    second: DSecond
    sequence_number: MsgCount | None = None
    requests: tuple[SignalRequestPackage, ...] = Field((), max_length=32)
    requestor: RequestorDescription


# --- SSEM ------------------------------------------------------------------------------------


class SignalRequesterInfo(_Strict):
    """The request being answered: who sent it, its id and sequence number."""

    id: StationID
    request: int = Field(ge=0, le=255, description="RequestID")
    sequence_number: MsgCount
    role: BasicVehicleRole | None = None  # type: ignore[valid-type]


class SignalStatusPackage(_Strict):
    """The answer to one request."""

    requester: SignalRequesterInfo | None = None
    inbound_on: IntersectionAccessPoint
    status: PrioritizationResponseStatus  # type: ignore[valid-type]


class SignalStatus(_Strict):
    """The answers of one intersection."""

    sequence_number: MsgCount
    id: IntersectionReferenceID
    sig_status: tuple[SignalStatusPackage, ...] = Field(min_length=1, max_length=32)


class Ssem(_Message):
    """Signal Status Extended Message: the intersection's answers to priority requests."""

    MESSAGE_ID: ClassVar[int] = 10
    KIND: ClassVar[str] = "ssem"
    PDU: ClassVar[str] = "SSEM"

    time_stamp: MinuteOfTheYear | None = None
    second: DSecond
    sequence_number: MsgCount | None = None
    status: tuple[SignalStatus, ...] = Field(min_length=1, max_length=32)


# --- SPATEM ----------------------------------------------------------------------------------


class TimeChangeDetails(_Strict):
    """When the current phase will end (each a TimeMark: 0.1 s within the hour, 36001 unknown)."""

    min_end_time: TimeMark
    max_end_time: TimeMark | None = None
    likely_time: TimeMark | None = None


class MovementEvent(_Strict):
    """One phase of a signal group, now or announced."""

    event_state: MovementPhaseState  # type: ignore[valid-type]
    timing: TimeChangeDetails | None = None


class MovementState(_Strict):
    """A signal group's current and coming phases."""

    signal_group: SignalGroupID
    state_time_speed: tuple[MovementEvent, ...] = Field(min_length=1, max_length=16)


class IntersectionState(_Strict):
    """The signal state of one intersection."""

    id: IntersectionReferenceID
    revision: MsgCount
    status: IntersectionStatusObject = ()  # type: ignore[valid-type]
    moy: MinuteOfTheYear | None = None
    time_stamp: DSecond | None = None
    states: tuple[MovementState, ...] = Field(min_length=1, max_length=255)


class Spatem(_Message):
    """Signal Phase and Timing Extended Message."""

    MESSAGE_ID: ClassVar[int] = 4
    KIND: ClassVar[str] = "spatem"
    PDU: ClassVar[str] = "SPATEM"

    time_stamp: MinuteOfTheYear | None = None
    intersections: tuple[IntersectionState, ...] = Field(min_length=1, max_length=32)


# --- MAPEM -----------------------------------------------------------------------------------


class NodeXY(_Strict):
    """A lane node: offset in cm east (x) and north (y) of the previous node.

    The first node of a lane is relative to the intersection's ``ref_point``. The UPER codec picks
    the smallest ``node-XY1..6`` alternative that holds the offset.
    """

    x: int = Field(ge=-32768, le=32767)
    y: int = Field(ge=-32768, le=32767)


class Connection(_Strict):
    """A lane this lane leads to, and the signal group that controls the movement.

    ``connecting_lane`` is ``connectingLane.lane`` (the maneuver is not modelled).
    """

    connecting_lane: LaneID
    signal_group: SignalGroupID | None = None


class GenericLane(_Strict):
    """One lane of an intersection.

    ``directional_use`` and ``lane_type`` are ``laneAttributes.directionalUse`` and the
    alternative chosen in ``laneAttributes.laneType``; the type-specific attribute bits and
    ``sharedWith`` are not modelled (sent as zeros).
    """

    lane_id: LaneID
    ingress_approach: ApproachID | None = None
    egress_approach: ApproachID | None = None
    directional_use: LaneDirection = ()  # type: ignore[valid-type]
    lane_type: LaneType  # type: ignore[valid-type]
    node_list: tuple[NodeXY, ...] = Field(min_length=2, max_length=63)
    connects_to: tuple[Connection, ...] = Field((), max_length=16)


class IntersectionGeometry(_Strict):
    """The lane layout of one intersection."""

    id: IntersectionReferenceID
    revision: MsgCount
    ref_point: Position3D
    lane_width: int | None = Field(None, ge=0, le=32767, description="cm, default for all lanes")
    lane_set: tuple[GenericLane, ...] = Field(min_length=1, max_length=255)


class Mapem(_Message):
    """Map Extended Message: the topology of intersections."""

    MESSAGE_ID: ClassVar[int] = 5
    KIND: ClassVar[str] = "mapem"
    PDU: ClassVar[str] = "MAPEM"

    msg_issue_revision: MsgCount
    intersections: tuple[IntersectionGeometry, ...] = Field((), max_length=32)


Message = Cam | Srem | Ssem | Spatem | Mapem

MESSAGE_TYPES: dict[str, type[Message]] = {m.KIND: m for m in (Cam, Srem, Ssem, Spatem, Mapem)}


def message_type(kind: type | str) -> type[Message]:
    """The model class for ``kind``: a model class, or a name like ``"cam"`` / ``"SPATEM"``."""
    if isinstance(kind, type) and kind in MESSAGE_TYPES.values():
        return kind
    if isinstance(kind, str) and kind.lower() in MESSAGE_TYPES:
        return MESSAGE_TYPES[kind.lower()]
    raise MessageError(f"unknown message kind {kind!r}; use one of {', '.join(MESSAGE_TYPES)}")
