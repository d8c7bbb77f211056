"""UPER codec for the ITS message models, built on asn1tools and the ETSI/ISO ASN.1 modules.

The ASN.1 modules are not shipped with ivri (the ISO ones are not ours to redistribute). They are
read from a directory given to :class:`UperCodec`, or from the environment variable
``IVRI_ASN1_DIR``. Compiling them takes a second or two, so the compiled specification is cached
per directory for the life of the process.

Encoding fills every mandatory ASN.1 field the models do not carry with its "unavailable" value
(or zeros for attribute bit strings). Decoding keeps only the modelled fields. CAMs of the
common form are read by :mod:`ivri.its.uper_cam` (the same result, some twenty times faster);
every other message, and any CAM it does not take, by asn1tools. Any bytes that are
not a valid message of a supported form raise :class:`MessageError`, never anything else.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import asn1tools
from pydantic import ValidationError

from ivri.errors import ConfigError
from ivri.its.errors import MessageError
from ivri.its.json_codec import format_error
from ivri.its.messages import (
    INTERSECTION_STATUS_BITS,
    LANE_DIRECTION_BITS,
    LIGHT_BAR_SIREN_BITS,
    MESSAGE_TYPES,
    ROAD_SIDE_UNIT,
    Cam,
    IntersectionAccessPoint,
    IntersectionReferenceID,
    Mapem,
    Message,
    Spatem,
    Srem,
    Ssem,
    message_type,
)
from ivri.its.uper_cam import read_cam_fields

__all__ = ["ASN1_DIR_ENV", "ASN1_FILES", "UperCodec"]

ASN1_DIR_ENV = "IVRI_ASN1_DIR"
# The eight modules of the "Release 1" set: CAM EN 302 637-2 v1.4.1, TS 103 301 v2.1.1, ISO 19091.
ASN1_FILES = (
    "ITS-Container.asn",
    "CAM-PDU-Descriptions.asn",
    "ISO24534-3_ElectronicRegistrationIdentificationVehicleDataModule-patched.asn",
    "ISO-TS-19091-addgrp-C-2018-patched.asn",
    "SPATEM-PDU-Descriptions.asn",
    "MAPEM-PDU-Descriptions.asn",
    "SREM-PDU-Descriptions.asn",
    "SSEM-PDU-Descriptions.asn",
)

_BY_MESSAGE_ID = {m.MESSAGE_ID: m for m in MESSAGE_TYPES.values()}
# Smallest node offset alternative first: (name, largest magnitude it holds).
_NODE_XY = (
    ("node-XY1", 512), ("node-XY2", 1024), ("node-XY3", 2048),
    ("node-XY4", 4096), ("node-XY5", 8192), ("node-XY6", 32768),
)
# Size in bits of the type-specific attribute bit string of each lane type.
_LANE_TYPE_BITS = {
    "vehicle": 8, "crosswalk": 16, "bikeLane": 16, "sidewalk": 16, "median": 16,
    "striping": 16, "trackedVehicle": 16, "parking": 16,
}


class _Unsupported(Exception):
    """A valid ASN.1 value that the models cannot represent (e.g. a VehicleID entityID)."""


def _resolve_dir(asn1_dir: Path | str | None) -> Path:
    if asn1_dir is None:
        asn1_dir = os.environ.get(ASN1_DIR_ENV) or None
    hint = (
        f"set {ASN1_DIR_ENV} or pass --asn1-dir to the directory with CAM-PDU-Descriptions.asn, "
        "ITS-Container.asn and the other ETSI/ISO modules (the README next to them says where they come from)"
    )
    if asn1_dir is None:
        raise ConfigError(f"no ASN.1 directory: {hint}")
    path = Path(asn1_dir).expanduser().resolve()
    missing = [f for f in ASN1_FILES if not (path / f).is_file()]
    if missing:
        raise ConfigError(f"ASN.1 directory {path} lacks {', '.join(missing)}: {hint}")
    return path


@lru_cache(maxsize=8)
def _compile(path: Path) -> Any:
    try:
        return asn1tools.compile_files([str(path / f) for f in ASN1_FILES], "uper")
    except Exception as exc:  # asn1tools raises several types for a bad module
        raise ConfigError(f"cannot compile the ASN.1 modules in {path}: {exc}") from exc


# --- small value helpers -----------------------------------------------------------------------


def _bits(names: tuple[str, ...], all_names: tuple[str, ...], size: int) -> tuple[bytes, int]:
    # Named bit 0 is the most significant bit of the first octet.
    octets = (size + 7) // 8
    value = 0
    for name in names:
        value |= 1 << (octets * 8 - 1 - all_names.index(name))
    return value.to_bytes(octets, "big"), size


def _bit_names(value: tuple[bytes, int], all_names: tuple[str, ...]) -> tuple[str, ...]:
    data, size = value
    return tuple(
        all_names[i] for i in range(min(size, len(all_names))) if data[i // 8] >> (7 - i % 8) & 1
    )


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        d[key] = value


def _header(msg: Message) -> dict[str, int]:
    h = msg.header
    return {"protocolVersion": h.protocol_version, "messageID": h.message_id,
            "stationID": h.station_id}


def _header_from(value: dict[str, int]) -> dict[str, int]:
    return {"protocol_version": value["protocolVersion"], "message_id": value["messageID"],
            "station_id": value["stationID"]}


def _ref_id(ref: IntersectionReferenceID) -> dict[str, int]:
    d = {"id": ref.id}
    _put(d, "region", ref.region)
    return d


def _ref_id_from(value: dict[str, int]) -> dict[str, int | None]:
    return {"region": value.get("region"), "id": value["id"]}


def _access(point: IntersectionAccessPoint) -> tuple[str, int]:
    if point.lane is not None:
        return "lane", point.lane
    if point.approach is not None:
        return "approach", point.approach
    return "connection", point.connection  # type: ignore[return-value]


def _access_from(value: tuple[str, int]) -> dict[str, int]:
    name, number = value
    if name not in ("lane", "approach", "connection"):
        raise _Unsupported(f"IntersectionAccessPoint alternative {name!r}")
    return {name: number}


def _station_from(vehicle_id: tuple[str, Any]) -> int:
    name, value = vehicle_id
    if name != "stationID":
        raise _Unsupported(f"VehicleID alternative {name!r} (only stationID)")
    return value


# --- CAM ---------------------------------------------------------------------------------------


def _cam_to(m: Cam) -> dict[str, Any]:
    rp = m.reference_position
    basic = {
        "stationType": m.station_type,
        "referencePosition": {
            "latitude": rp.latitude,
            "longitude": rp.longitude,
            "positionConfidenceEllipse": {  # unavailable
                "semiMajorConfidence": 4095, "semiMinorConfidence": 4095,
                "semiMajorOrientation": 3601,
            },
            "altitude": {"altitudeValue": 800001, "altitudeConfidence": "unavailable"},
        },
    }
    if m.station_type == ROAD_SIDE_UNIT:
        high: tuple[str, dict[str, Any]] = ("rsuContainerHighFrequency", {})
    else:
        high = ("basicVehicleContainerHighFrequency", {
            "heading": {"headingValue": m.heading, "headingConfidence": 127},
            "speed": {"speedValue": m.speed, "speedConfidence": 127},
            "driveDirection": "unavailable",
            "vehicleLength": {"vehicleLengthValue": 1023,
                              "vehicleLengthConfidenceIndication": "unavailable"},
            "vehicleWidth": 62,
            "longitudinalAcceleration": {"longitudinalAccelerationValue": 161,
                                         "longitudinalAccelerationConfidence": 102},
            "curvature": {"curvatureValue": 1023, "curvatureConfidence": "unavailable"},
            "curvatureCalculationMode": "unavailable",
            "yawRate": {"yawRateValue": 32767, "yawRateConfidence": "unavailable"},
        })
    params: dict[str, Any] = {"basicContainer": basic, "highFrequencyContainer": high}
    if m.vehicle_role is not None:
        params["lowFrequencyContainer"] = ("basicVehicleContainerLowFrequency", {
            "vehicleRole": m.vehicle_role, "exteriorLights": (b"\x00", 8), "pathHistory": [],
        })
    if m.emergency_container is not None:
        params["specialVehicleContainer"] = ("emergencyContainer", {
            "lightBarSirenInUse": _bits(
                m.emergency_container.light_bar_siren_in_use, LIGHT_BAR_SIREN_BITS, 2
            ),
        })
    elif m.public_transport_container is not None:
        pt = m.public_transport_container
        container: dict[str, Any] = {"embarkationStatus": pt.embarkation_status}
        if pt.pt_activation is not None:
            container["ptActivation"] = {
                "ptActivationType": pt.pt_activation.pt_activation_type,
                "ptActivationData": bytes.fromhex(pt.pt_activation.pt_activation_data),
            }
        params["specialVehicleContainer"] = ("publicTransportContainer", container)
    return {"header": _header(m), "cam": {"generationDeltaTime": m.generation_delta_time,
                                          "camParameters": params}}


def _cam_from(v: dict[str, Any]) -> dict[str, Any]:
    params = v["cam"]["camParameters"]
    basic = params["basicContainer"]
    out: dict[str, Any] = {
        "header": _header_from(v["header"]),
        "generation_delta_time": v["cam"]["generationDeltaTime"],
        "station_type": basic["stationType"],
        "reference_position": {"latitude": basic["referencePosition"]["latitude"],
                               "longitude": basic["referencePosition"]["longitude"]},
    }
    name, high = params["highFrequencyContainer"]
    if name == "basicVehicleContainerHighFrequency":
        out["heading"] = high["heading"]["headingValue"]
        out["speed"] = high["speed"]["speedValue"]
    if "lowFrequencyContainer" in params:
        name, low = params["lowFrequencyContainer"]
        if name == "basicVehicleContainerLowFrequency":
            out["vehicle_role"] = low["vehicleRole"]
    name, special = params.get("specialVehicleContainer", (None, None))
    if name == "emergencyContainer":
        out["emergency_container"] = {
            "light_bar_siren_in_use": _bit_names(
                special["lightBarSirenInUse"], LIGHT_BAR_SIREN_BITS
            ),
        }
    elif name == "publicTransportContainer":
        pt: dict[str, Any] = {"embarkation_status": special["embarkationStatus"]}
        if "ptActivation" in special:
            pt["pt_activation"] = {
                "pt_activation_type": special["ptActivation"]["ptActivationType"],
                "pt_activation_data": special["ptActivation"]["ptActivationData"].hex(),
            }
        out["public_transport_container"] = pt
    return out


# --- SREM --------------------------------------------------------------------------------------


def _srem_to(m: Srem) -> dict[str, Any]:
    srm: dict[str, Any] = {"second": m.second}
    _put(srm, "timeStamp", m.time_stamp)
    _put(srm, "sequenceNumber", m.sequence_number)
    if m.requests:
        requests = []
        for p in m.requests:
            r = p.request
            request: dict[str, Any] = {"id": _ref_id(r.id), "requestID": r.request_id,
                                       "requestType": r.request_type,
                                       "inBoundLane": _access(r.in_bound_lane)}
            if r.out_bound_lane is not None:
                request["outBoundLane"] = _access(r.out_bound_lane)
            package: dict[str, Any] = {"request": request}
            _put(package, "minute", p.minute)
            _put(package, "second", p.second)
            _put(package, "duration", p.duration)
            requests.append(package)
        srm["requests"] = requests
    requestor: dict[str, Any] = {"id": ("stationID", m.requestor.id)}
    if m.requestor.type is not None:
        requestor["type"] = {"role": m.requestor.type.role}
        _put(requestor["type"], "hpmsType", m.requestor.type.hpms_type)
    srm["requestor"] = requestor
    return {"header": _header(m), "srm": srm}


def _srem_from(v: dict[str, Any]) -> dict[str, Any]:
    srm = v["srm"]
    requests = []
    for p in srm.get("requests", ()):
        r = p["request"]
        requests.append({
            "request": {
                "id": _ref_id_from(r["id"]),
                "request_id": r["requestID"],
                "request_type": r["requestType"],
                "in_bound_lane": _access_from(r["inBoundLane"]),
                "out_bound_lane": _access_from(r["outBoundLane"]) if "outBoundLane" in r else None,
            },
            "minute": p.get("minute"),
            "second": p.get("second"),
            "duration": p.get("duration"),
        })
    requestor = srm["requestor"]
    rtype = requestor.get("type")
    return {
        "header": _header_from(v["header"]),
        "time_stamp": srm.get("timeStamp"),
        "second": srm["second"],
        "sequence_number": srm.get("sequenceNumber"),
        "requests": requests,
        "requestor": {
            "id": _station_from(requestor["id"]),
            "type": None if rtype is None else {
                "role": rtype["role"], "hpms_type": rtype.get("hpmsType"),
            },
        },
    }


# --- SSEM --------------------------------------------------------------------------------------


def _ssem_to(m: Ssem) -> dict[str, Any]:
    ssm: dict[str, Any] = {"second": m.second}
    _put(ssm, "timeStamp", m.time_stamp)
    _put(ssm, "sequenceNumber", m.sequence_number)
    status = []
    for s in m.status:
        packages = []
        for p in s.sig_status:
            package: dict[str, Any] = {"inboundOn": _access(p.inbound_on), "status": p.status}
            if p.requester is not None:
                q = p.requester
                package["requester"] = {"id": ("stationID", q.id), "request": q.request,
                                        "sequenceNumber": q.sequence_number}
                _put(package["requester"], "role", q.role)
            packages.append(package)
        status.append({"sequenceNumber": s.sequence_number, "id": _ref_id(s.id),
                       "sigStatus": packages})
    ssm["status"] = status
    return {"header": _header(m), "ssm": ssm}


def _ssem_from(v: dict[str, Any]) -> dict[str, Any]:
    ssm = v["ssm"]
    status = []
    for s in ssm["status"]:
        packages = []
        for p in s["sigStatus"]:
            q = p.get("requester")
            packages.append({
                "requester": None if q is None else {
                    "id": _station_from(q["id"]), "request": q["request"],
                    "sequence_number": q["sequenceNumber"], "role": q.get("role"),
                },
                "inbound_on": _access_from(p["inboundOn"]),
                "status": p["status"],
            })
        status.append({"sequence_number": s["sequenceNumber"], "id": _ref_id_from(s["id"]),
                       "sig_status": packages})
    return {
        "header": _header_from(v["header"]),
        "time_stamp": ssm.get("timeStamp"),
        "second": ssm["second"],
        "sequence_number": ssm.get("sequenceNumber"),
        "status": status,
    }


# --- SPATEM ------------------------------------------------------------------------------------


def _spatem_to(m: Spatem) -> dict[str, Any]:
    intersections = []
    for i in m.intersections:
        states = []
        for s in i.states:
            events = []
            for e in s.state_time_speed:
                event: dict[str, Any] = {"eventState": e.event_state}
                if e.timing is not None:
                    event["timing"] = {"minEndTime": e.timing.min_end_time}
                    _put(event["timing"], "maxEndTime", e.timing.max_end_time)
                    _put(event["timing"], "likelyTime", e.timing.likely_time)
                events.append(event)
            states.append({"signalGroup": s.signal_group, "state-time-speed": events})
        state: dict[str, Any] = {"id": _ref_id(i.id), "revision": i.revision,
                                 "status": _bits(i.status, INTERSECTION_STATUS_BITS, 16),
                                 "states": states}
        _put(state, "moy", i.moy)
        _put(state, "timeStamp", i.time_stamp)
        intersections.append(state)
    spat: dict[str, Any] = {"intersections": intersections}
    _put(spat, "timeStamp", m.time_stamp)
    return {"header": _header(m), "spat": spat}


def _spatem_from(v: dict[str, Any]) -> dict[str, Any]:
    spat = v["spat"]
    intersections = []
    for i in spat["intersections"]:
        states = []
        for s in i["states"]:
            events = []
            for e in s["state-time-speed"]:
                t = e.get("timing")
                events.append({"event_state": e["eventState"], "timing": None if t is None else {
                    "min_end_time": t["minEndTime"], "max_end_time": t.get("maxEndTime"),
                    "likely_time": t.get("likelyTime"),
                }})
            states.append({"signal_group": s["signalGroup"], "state_time_speed": events})
        intersections.append({
            "id": _ref_id_from(i["id"]), "revision": i["revision"],
            "status": _bit_names(i["status"], INTERSECTION_STATUS_BITS),
            "moy": i.get("moy"), "time_stamp": i.get("timeStamp"), "states": states,
        })
    return {"header": _header_from(v["header"]), "time_stamp": spat.get("timeStamp"),
            "intersections": intersections}


# --- MAPEM -------------------------------------------------------------------------------------


def _node(x: int, y: int) -> dict[str, Any]:
    for name, limit in _NODE_XY:
        if -limit <= x < limit and -limit <= y < limit:
            return {"delta": (name, {"x": x, "y": y})}
    raise MessageError(f"node offset ({x}, {y}) cm is out of range")  # unreachable: model limits


def _mapem_to(m: Mapem) -> dict[str, Any]:
    intersections = []
    for g in m.intersections:
        lanes = []
        for lane in g.lane_set:
            value: dict[str, Any] = {
                "laneID": lane.lane_id,
                "laneAttributes": {
                    "directionalUse": _bits(lane.directional_use, LANE_DIRECTION_BITS, 2),
                    "sharedWith": (b"\x00\x00", 10),
                    "laneType": (lane.lane_type, (bytes(_LANE_TYPE_BITS[lane.lane_type] // 8),
                                                  _LANE_TYPE_BITS[lane.lane_type])),
                },
                "nodeList": ("nodes", [_node(n.x, n.y) for n in lane.node_list]),
            }
            _put(value, "ingressApproach", lane.ingress_approach)
            _put(value, "egressApproach", lane.egress_approach)
            if lane.connects_to:
                connections = []
                for c in lane.connects_to:
                    connection: dict[str, Any] = {"connectingLane": {"lane": c.connecting_lane}}
                    _put(connection, "signalGroup", c.signal_group)
                    connections.append(connection)
                value["connectsTo"] = connections
            lanes.append(value)
        geometry: dict[str, Any] = {"id": _ref_id(g.id), "revision": g.revision,
                                    "refPoint": {"lat": g.ref_point.lat, "long": g.ref_point.long},
                                    "laneSet": lanes}
        _put(geometry, "laneWidth", g.lane_width)
        intersections.append(geometry)
    body: dict[str, Any] = {"msgIssueRevision": m.msg_issue_revision}
    if intersections:
        body["intersections"] = intersections
    return {"header": _header(m), "map": body}


def _mapem_from(v: dict[str, Any]) -> dict[str, Any]:
    body = v["map"]
    intersections = []
    for g in body.get("intersections", ()):
        lanes = []
        for lane in g["laneSet"]:
            kind, nodes = lane["nodeList"]
            if kind != "nodes":
                raise _Unsupported(f"NodeListXY alternative {kind!r}")
            node_list = []
            for n in nodes:
                name, delta = n["delta"]
                if not name.startswith("node-XY"):
                    raise _Unsupported(f"NodeOffsetPointXY alternative {name!r}")
                node_list.append({"x": delta["x"], "y": delta["y"]})
            attributes = lane["laneAttributes"]
            lanes.append({
                "lane_id": lane["laneID"],
                "ingress_approach": lane.get("ingressApproach"),
                "egress_approach": lane.get("egressApproach"),
                "directional_use": _bit_names(attributes["directionalUse"], LANE_DIRECTION_BITS),
                "lane_type": attributes["laneType"][0],
                "node_list": node_list,
                "connects_to": [
                    {"connecting_lane": c["connectingLane"]["lane"],
                     "signal_group": c.get("signalGroup")}
                    for c in lane.get("connectsTo", ())
                ],
            })
        intersections.append({
            "id": _ref_id_from(g["id"]), "revision": g["revision"],
            "ref_point": {"lat": g["refPoint"]["lat"], "long": g["refPoint"]["long"]},
            "lane_width": g.get("laneWidth"), "lane_set": lanes,
        })
    return {"header": _header_from(v["header"]), "msg_issue_revision": body["msgIssueRevision"],
            "intersections": intersections}


_TO = {Cam: _cam_to, Srem: _srem_to, Ssem: _ssem_to, Spatem: _spatem_to, Mapem: _mapem_to}
_FROM = {
    Cam: _cam_from, Srem: _srem_from, Ssem: _ssem_from, Spatem: _spatem_from, Mapem: _mapem_from,
}


class UperCodec:
    """Encode and decode the message models as UPER, the ITS-G5 / C-V2X wire format.

    ``asn1_dir`` is the directory with the ASN.1 modules (:data:`ASN1_FILES`); when ``None`` the
    environment variable ``IVRI_ASN1_DIR`` names it. A missing directory or file raises
    :class:`~ivri.errors.ConfigError` that says what to set.
    """

    def __init__(self, asn1_dir: Path | str | None = None) -> None:
        self.asn1_dir = _resolve_dir(asn1_dir)
        self._spec = _compile(self.asn1_dir)

    def encode(self, msg: Message) -> bytes:
        """``msg`` as UPER bytes."""
        kind = type(msg)
        if kind not in _TO:
            raise MessageError(f"cannot encode {kind.__name__} as an ITS message")
        try:
            return self._spec.encode(kind.PDU, _TO[kind](msg), check_constraints=True)
        except MessageError:
            raise
        except Exception as exc:  # the models keep values in range, so this is not expected
            raise MessageError(f"{kind.PDU}: cannot encode: {' '.join(str(exc).split())}") from exc

    def decode(self, data: bytes, kind: type | str | None = None) -> Message:
        """Parse UPER bytes into a message model.

        ``kind`` makes any other message type an error; ``None`` takes the type from the
        header's messageID. Raises :class:`MessageError` on any bad input.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise MessageError(f"UPER message must be bytes, not {type(data).__name__}")
        data = bytes(data)
        if len(data) < 2:
            raise MessageError(f"UPER message is {len(data)} bytes, too short for a PDU header")
        # ItsPduHeader opens every PDU with two whole octets: protocolVersion, messageID.
        if data[1] not in _BY_MESSAGE_ID:
            raise MessageError(f"messageID {data[1]} is not one of CAM, SPATEM, MAPEM, SREM, SSEM")
        found = _BY_MESSAGE_ID[data[1]]
        if kind is not None and message_type(kind) is not found:
            wanted = message_type(kind).PDU
            raise MessageError(f"expected a {wanted}, got a {found.PDU} (messageID {data[1]})")
        if found is Cam:  # the message that comes by the ten thousand: its common form, read fast
            quick = read_cam_fields(data)
            if quick is not None:
                try:
                    return Cam.model_validate(quick)
                except ValidationError as exc:
                    raise MessageError(format_error(exc, found.PDU)) from None
        try:
            value = self._spec.decode(found.PDU, data, check_constraints=True)
            fields = _FROM[found](value)
        except _Unsupported as exc:
            raise MessageError(f"{found.PDU}: unsupported {exc}") from None
        except Exception as exc:  # noqa: BLE001 - asn1tools raises DecodeError, IndexError, ValueError, ...
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise MessageError(f"{found.PDU}: cannot decode: {reason}") from None
        try:
            return found.model_validate(fields)
        except ValidationError as exc:
            raise MessageError(format_error(exc, found.PDU)) from None
