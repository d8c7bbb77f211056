"""Vehicle types: what a tripinfo ``vType`` id means (its vClass, emission class and mode).

SUMO's tripinfo names only the vehicle type of a trip. Its vClass (car, bicycle, bus, ...)
and emission class (which fuel it burns) live in the ``<vType>`` elements of the route and
additional files, or are SUMO's built-in defaults. :func:`read_vtypes` collects both, and
:func:`mode_of` folds SUMO's ~30 vClasses into the few modes a traffic engineer reports on.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ivri.errors import ConfigError

__all__ = [
    "DEFAULT_EMISSION_CLASS_BY_VCLASS",
    "DEFAULT_VCLASS",
    "MODES",
    "MOTOR_MODES",
    "SUMO_DEFAULT_VTYPES",
    "UNKNOWN_VTYPE",
    "VTypeInfo",
    "default_emission_class",
    "is_road_motor_vehicle",
    "mode_of",
    "read_vtypes",
]


@dataclass(frozen=True, slots=True)
class VTypeInfo:
    """What the metrics need to know about one SUMO vehicle type.

    ``vclass`` is SUMO's vehicle class (``"passenger"``, ``"bicycle"``...; empty when unknown),
    ``emission_class`` the full SUMO emission class (``"HBEFA4/PC_petrol_Euro-4"``).
    """

    vclass: str
    emission_class: str


# The modes of the KPIs, in the order tables and plots show them.
MODES: tuple[str, ...] = ("car", "truck", "bus", "bicycle", "pedestrian", "emergency", "other")
# Modes whose time loss counts in vehicle-loss hours (plus "other" road motor vehicles, see
# is_road_motor_vehicle).
MOTOR_MODES: frozenset[str] = frozenset({"car", "truck", "bus", "emergency"})

# A <vType> without vClass is a passenger car in SUMO, whatever its id: even a redefined
# DEFAULT_BIKETYPE without vClass becomes "passenger" (checked with libsumo 1.28).
DEFAULT_VCLASS = "passenger"

# The emission class SUMO 1.28 gives a vType that sets a vClass but no emissionClass. Source:
# SUMOVTypeParameter::VClassDefaultValues (src/utils/vehicle/SUMOVTypeParameter.cpp), and read
# back from libsumo 1.28 with vehicletype.getEmissionClass for every vClass.
_SUMO_DEFAULT_EMISSION_CLASS = "HBEFA4/PC_petrol_Euro-4"
DEFAULT_EMISSION_CLASS_BY_VCLASS: dict[str, str] = {
    "pedestrian": "Zero/default",
    "wheelchair": "Zero/default",
    "bicycle": "Zero/default",
    "scooter": "Zero/default",
    "evehicle": "Zero/default",
    "tram": "Zero/default",
    "rail_urban": "Zero/default",
    "subway": "Zero/default",
    "rail_electric": "Zero/default",
    "rail_fast": "Zero/default",
    "rail": "HBEFA3/HDV_D_EU0",
    "ship": "HBEFA3/HDV_D_EU0",
    "moped": "HBEFA4/Moped_le50cc_Euro-2",
    "motorcycle": "HBEFA4/MC_4S_gt250cc_preEuro",
    "truck": "HBEFA4/RT_le7.5t_Euro-VI_A-C",
    "trailer": "HBEFA4/TT_AT_gt34-40t_Euro-VI_A-C",
    "bus": "HBEFA4/UBus_Std_gt15-18t_Euro-VI_A-C",
    "coach": "HBEFA4/Coach_3-Axes_gt18t_Euro-VI_A-C",
    "delivery": "HBEFA4/LCV_diesel_N1-III_Euro-6ab",
    "emergency": "HBEFA4/LCV_diesel_N1-III_Euro-6ab",
}

# SUMO's built-in vehicle types, which a scenario may use without defining them (their vClass
# read back from libsumo 1.28).
SUMO_DEFAULT_VTYPES: dict[str, VTypeInfo] = {
    vtype_id: VTypeInfo(
        vclass, DEFAULT_EMISSION_CLASS_BY_VCLASS.get(vclass, _SUMO_DEFAULT_EMISSION_CLASS)
    )
    for vtype_id, vclass in (
        ("DEFAULT_VEHTYPE", "passenger"),
        ("DEFAULT_PEDTYPE", "pedestrian"),
        ("DEFAULT_BIKETYPE", "bicycle"),
        ("DEFAULT_TAXITYPE", "taxi"),
        ("DEFAULT_RAILTYPE", "rail"),
        ("DEFAULT_CONTAINERTYPE", "container"),
    )
}

# A vType id found in a tripinfo but in no file we were given: mode "other", burning petrol
# (see fuel.fuel_type_of), counted as a road motor vehicle so its delay and fuel are not lost.
UNKNOWN_VTYPE = VTypeInfo(vclass="", emission_class="")

_MODE_BY_VCLASS: dict[str, str] = {
    # Motorcycles and mopeds share the car lanes and the car signal groups at a Dutch
    # intersection, so they report with cars.
    **dict.fromkeys(
        ("passenger", "private", "taxi", "evehicle", "motorcycle", "moped", "hov", "vip"), "car"
    ),
    **dict.fromkeys(("truck", "trailer", "delivery"), "truck"),
    **dict.fromkeys(("bus", "coach"), "bus"),
    # Trams run on rails and have their own signals: "other", not "bus".
    **dict.fromkeys(("emergency", "authority"), "emergency"),
    "bicycle": "bicycle",
    **dict.fromkeys(("pedestrian", "wheelchair"), "pedestrian"),
}

# vClasses of "other" that are still motor vehicles on the road: their time loss counts in
# vehicle-loss hours. Rail, ships, aircraft, drones and non-motorised classes do not.
_OTHER_ROAD_MOTOR_VCLASSES = frozenset({"", "army", "custom1", "custom2", "ignoring"})


def default_emission_class(vclass: str) -> str:
    """The emission class SUMO 1.28 gives a vehicle type of this vClass without emissionClass."""
    return DEFAULT_EMISSION_CLASS_BY_VCLASS.get(vclass, _SUMO_DEFAULT_EMISSION_CLASS)


def mode_of(vclass: str) -> str:
    """Map a SUMO vClass to one of :data:`MODES`.

    passenger, private, taxi, evehicle, motorcycle, moped, hov, vip -> ``car``;
    truck, trailer, delivery -> ``truck``; bus, coach -> ``bus``; bicycle -> ``bicycle``;
    pedestrian, wheelchair -> ``pedestrian``; emergency, authority -> ``emergency``;
    everything else (tram, rail, ship, scooter, army, custom classes, unknown) -> ``other``.
    """
    return _MODE_BY_VCLASS.get(vclass, "other")


def is_road_motor_vehicle(vclass: str) -> bool:
    """True if a vehicle of this vClass counts in vehicle-loss hours and the fuel totals.

    Those are the motor vehicles on the road: cars, trucks, buses, emergency vehicles and the
    motorised "other" classes (army, custom1/2, ignoring, and an unknown type, which we assume
    to be a car-like vehicle rather than drop its delay). Not bicycles, pedestrians, scooters,
    trams, trains, ships, aircraft or drones.
    """
    return mode_of(vclass) in MOTOR_MODES or vclass in _OTHER_ROAD_MOTOR_VCLASSES


def read_vtypes(xml_files: Iterable[Path]) -> dict[str, VTypeInfo]:
    """Collect the vehicle types of SUMO route / additional files, plus SUMO's defaults.

    Every ``<vType>`` element counts, also inside ``<vTypeDistribution>``. A type without
    ``vClass`` is a passenger car and a type without ``emissionClass`` gets SUMO's default
    class for its vClass, as SUMO itself does. A later definition of the same id wins, so a
    file that redefines ``DEFAULT_VEHTYPE`` overrides the built-in one.

    Raises :class:`~ivri.errors.ConfigError` if a file is missing or not well-formed XML.
    """
    vtypes = dict(SUMO_DEFAULT_VTYPES)
    for xml_file in xml_files:
        path = Path(xml_file)
        if not path.is_file():
            raise ConfigError(f"vehicle type file not found: {path}")
        try:
            # iterparse and clear: route files can hold millions of vehicles after the types.
            for _, elem in ET.iterparse(path, events=("end",)):
                if elem.tag == "vType":
                    vtype_id = elem.get("id")
                    if vtype_id:
                        vclass = elem.get("vClass", DEFAULT_VCLASS)
                        emission_class = elem.get("emissionClass") or default_emission_class(vclass)
                        vtypes[vtype_id] = VTypeInfo(vclass, emission_class)
                    elem.clear()
                elif elem.tag in ("vehicle", "trip", "flow", "person", "personFlow", "route"):
                    elem.clear()
        except ET.ParseError as exc:
            raise ConfigError(f"cannot read vehicle types from {path}: {exc}") from exc
    return vtypes
