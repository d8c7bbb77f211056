"""Read a SUMO tripinfo file into numpy arrays, one row per trip, without any ids.

What SUMO 1.28 writes (units from the SUMO TripInfo documentation and checked on 1.28 runs):

- ``<tripinfo>`` per vehicle: ``depart``, ``departDelay``, ``arrival``, ``duration``,
  ``timeLoss``, ``waitingTime`` in s; ``routeLength`` in m; ``waitingCount`` (the number of
  times the speed dropped to <= 0.1 m/s, i.e. stops); ``vType``; ``vaporized``.
  With ``--tripinfo-output.write-unfinished`` a vehicle still driving at the end gets
  ``arrival="-1.00"`` and the values so far; with ``--tripinfo-output.write-undeparted`` a
  vehicle still waiting to enter gets ``depart="-1"`` and ``departDelay`` = end - wanted depart.
- ``<emissions>`` child (emissions device): ``CO2_abs``, ``NOx_abs``, ``fuel_abs`` ... in **mg**,
  ``electricity_abs`` in **Wh** (fuel in ml only with ``--emissions.volumetric-fuel``, which
  we refuse, see :func:`read_tripinfo`).
- ``<personinfo>`` per person with ``type`` and stages; a ``<walk>`` has ``duration``,
  ``timeLoss``, ``waitingTime`` in s and ``routeLength`` in m (``arrival="-1"`` and
  ``routeLength="-1"`` when the walk had not ended).

Privacy by design: vehicle and person ids are never read into the result; only the vehicle
and person *type* ids (chosen by the scenario author, shared by many trips) are kept.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ivri.errors import ConfigError, SimulationError
from ivri.timefmt import parse_time_s

__all__ = ["PersonWalks", "TripInfo", "VehicleTrips", "read_tripinfo"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# The header comment SUMO writes holds the run's options; fuel in ml would break every litre.
_HEADER_BYTES = 1 << 16
_VOLUMETRIC_FUEL_ON = re.compile(
    r'<emissions\.volumetric-fuel\s+value="(true|1|yes|on)"', re.IGNORECASE
)
_SUMO_VERSION = re.compile(r"by Eclipse SUMO sumo (?:Version )?v?([0-9][^\s]*)")


@dataclass(frozen=True)
class VehicleTrips:
    """One row per ``<tripinfo>``: arrived, unfinished and undeparted vehicles alike.

    ``vtype_index`` indexes ``vtype_ids``. Times in s, lengths in m, emissions in mg,
    electricity in Wh. ``has_emissions`` is False where SUMO wrote no ``<emissions>`` (no
    emissions device), and the emission columns are 0 there.
    """

    vtype_ids: tuple[str, ...]
    vtype_index: IntArray
    departed: BoolArray
    arrived: BoolArray
    #: SUMO's ``depart`` (when the vehicle entered; -1 for one still waiting to enter)
    depart_s: FloatArray
    depart_delay_s: FloatArray
    duration_s: FloatArray
    route_length_m: FloatArray
    time_loss_s: FloatArray
    waiting_time_s: FloatArray
    waiting_count: IntArray
    has_emissions: BoolArray
    fuel_mg: FloatArray
    co2_mg: FloatArray
    nox_mg: FloatArray
    electricity_wh: FloatArray

    def __len__(self) -> int:
        return len(self.vtype_index)


@dataclass(frozen=True)
class PersonWalks:
    """One row per ``<personinfo>``, summed over its ``<walk>`` stages.

    ``type_index`` indexes ``type_ids``. ``walk_route_length_m`` is NaN where a walk had not
    ended (SUMO writes -1). ``arrived`` is True when every walk stage ended. Persons without
    walk stages (only rides) have ``walk_stages == 0``.
    """

    type_ids: tuple[str, ...]
    type_index: IntArray
    walk_stages: IntArray
    arrived: BoolArray
    walk_duration_s: FloatArray
    walk_time_loss_s: FloatArray
    walk_waiting_s: FloatArray
    walk_route_length_m: FloatArray

    def __len__(self) -> int:
        return len(self.type_index)


@dataclass(frozen=True)
class TripInfo:
    """A parsed tripinfo file: vehicles, persons, and the SUMO version that wrote it."""

    vehicles: VehicleTrips
    persons: PersonWalks
    sumo_version: str | None


def _read_header(path: Path) -> str:
    with path.open("rb") as f:
        return f.read(_HEADER_BYTES).decode("utf-8", errors="replace")


def read_tripinfo(path: Path) -> TripInfo:
    """Parse a SUMO tripinfo XML file into :class:`TripInfo` arrays.

    Streams the file with ``iterparse`` and clears every element once read, so memory stays
    flat for millions of trips. Raises :class:`~ivri.errors.SimulationError` if the file is
    missing or truncated (SUMO stopped before closing it), and
    :class:`~ivri.errors.ConfigError` if the run used ``--emissions.volumetric-fuel`` (fuel in
    ml instead of mg; use :func:`ivri.metrics.sumo_output_options`).
    """
    path = Path(path)
    if not path.is_file():
        raise SimulationError(f"tripinfo file not found: {path} (did SUMO run with it?)")
    header = _read_header(path)
    if _VOLUMETRIC_FUEL_ON.search(header):
        raise ConfigError(
            f"{path} was written with --emissions.volumetric-fuel (fuel in ml); ivri expects "
            "fuel_abs in mg: run SUMO with ivri.metrics.sumo_output_options()"
        )
    version_match = _SUMO_VERSION.search(header)
    sumo_version = version_match.group(1) if version_match else None

    vtype_lookup: dict[str, int] = {}
    # Typed arrays, not lists: 8 bytes a value instead of ~32 for a boxed Python float.
    v_vtype = array("q")
    v_departed = array("b")
    v_depart = array("d")
    v_arrived = array("b")
    v_depart_delay = array("d")
    v_duration = array("d")
    v_length = array("d")
    v_time_loss = array("d")
    v_waiting = array("d")
    v_waiting_count = array("q")
    v_has_em = array("b")
    v_fuel = array("d")
    v_co2 = array("d")
    v_nox = array("d")
    v_elec = array("d")

    ptype_lookup: dict[str, int] = {}
    p_type = array("q")
    p_stages = array("q")
    p_arrived = array("b")
    p_duration = array("d")
    p_time_loss = array("d")
    p_waiting = array("d")
    p_length = array("d")

    emissions: dict[str, str] | None = None
    # Walk sums of the person being read: stages, all ended, duration, loss, waiting, length.
    walk_stages = 0
    walks_ended = True
    walk_duration = walk_loss = walk_waiting = walk_length = 0.0

    root: ET.Element | None = None
    try:
        for event, elem in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                if root is None:
                    root = elem
                continue
            tag = elem.tag
            if tag == "emissions":
                emissions = dict(elem.attrib)
            elif tag == "tripinfo":
                a = elem.attrib
                vtype = a.get("vType", "")
                v_vtype.append(vtype_lookup.setdefault(vtype, len(vtype_lookup)))
                depart_s = parse_time_s(a.get("depart", "-1"))
                v_departed.append(depart_s >= 0.0)
                v_depart.append(depart_s)
                # A vehicle removed early (collision, teleport, TraCI) has an arrival time but
                # a non-empty `vaporized`; it did not complete its trip.
                v_arrived.append(
                    parse_time_s(a.get("arrival", "-1")) >= 0.0 and not a.get("vaporized", "")
                )
                v_depart_delay.append(parse_time_s(a.get("departDelay", "0")))
                v_duration.append(parse_time_s(a.get("duration", "0")))
                v_length.append(max(float(a.get("routeLength", "0")), 0.0))
                v_time_loss.append(parse_time_s(a.get("timeLoss", "0")))
                v_waiting.append(parse_time_s(a.get("waitingTime", "0")))
                v_waiting_count.append(int(a.get("waitingCount", "0")))
                if emissions is None:
                    v_has_em.append(False)
                    v_fuel.append(0.0)
                    v_co2.append(0.0)
                    v_nox.append(0.0)
                    v_elec.append(0.0)
                else:
                    v_has_em.append(True)
                    v_fuel.append(float(emissions.get("fuel_abs", "0")))
                    v_co2.append(float(emissions.get("CO2_abs", "0")))
                    v_nox.append(float(emissions.get("NOx_abs", "0")))
                    v_elec.append(float(emissions.get("electricity_abs", "0")))
                emissions = None
                elem.clear()
                root.clear()  # type: ignore[union-attr]  # root is set by the first event
            elif tag == "walk":
                a = elem.attrib
                walk_stages += 1
                walks_ended = walks_ended and parse_time_s(a.get("arrival", "-1")) >= 0.0
                walk_duration += max(parse_time_s(a.get("duration", "0")), 0.0)
                walk_loss += max(parse_time_s(a.get("timeLoss", "0")), 0.0)
                walk_waiting += max(parse_time_s(a.get("waitingTime", "0")), 0.0)
                length_m = float(a.get("routeLength", "-1"))
                walk_length += length_m if length_m >= 0.0 else np.nan
            elif tag == "personinfo":
                ptype = elem.get("type", "")
                p_type.append(ptype_lookup.setdefault(ptype, len(ptype_lookup)))
                p_stages.append(walk_stages)
                p_arrived.append(walks_ended and walk_stages > 0)
                p_duration.append(walk_duration)
                p_time_loss.append(walk_loss)
                p_waiting.append(walk_waiting)
                p_length.append(walk_length if walk_stages > 0 else np.nan)
                walk_stages = 0
                walks_ended = True
                walk_duration = walk_loss = walk_waiting = walk_length = 0.0
                elem.clear()
                root.clear()  # type: ignore[union-attr]
            elif tag == "containerinfo":
                elem.clear()
                root.clear()  # type: ignore[union-attr]
    except ET.ParseError as exc:
        raise SimulationError(
            f"cannot read tripinfo {path}: {exc} (a truncated file means SUMO did not finish)"
        ) from exc

    def f64(values: array[float]) -> FloatArray:
        return np.array(values, dtype=np.float64)

    def i64(values: array[int]) -> IntArray:
        return np.array(values, dtype=np.int64)

    def boolean(values: array[int]) -> BoolArray:
        return np.array(values, dtype=np.bool_)

    vehicles = VehicleTrips(
        vtype_ids=tuple(vtype_lookup),
        vtype_index=i64(v_vtype),
        departed=boolean(v_departed),
        arrived=boolean(v_arrived),
        depart_s=f64(v_depart),
        depart_delay_s=f64(v_depart_delay),
        duration_s=f64(v_duration),
        route_length_m=f64(v_length),
        time_loss_s=f64(v_time_loss),
        waiting_time_s=f64(v_waiting),
        waiting_count=i64(v_waiting_count),
        has_emissions=boolean(v_has_em),
        fuel_mg=f64(v_fuel),
        co2_mg=f64(v_co2),
        nox_mg=f64(v_nox),
        electricity_wh=f64(v_elec),
    )
    persons = PersonWalks(
        type_ids=tuple(ptype_lookup),
        type_index=i64(p_type),
        walk_stages=i64(p_stages),
        arrived=boolean(p_arrived),
        walk_duration_s=f64(p_duration),
        walk_time_loss_s=f64(p_time_loss),
        walk_waiting_s=f64(p_waiting),
        walk_route_length_m=f64(p_length),
    )
    return TripInfo(vehicles=vehicles, persons=persons, sumo_version=sumo_version)
