"""The KPIs of one SUMO run: vehicle-loss hours, fuel, emissions, stops, delay per mode.

Definitions (DESIGN.md, Metrics):

- **Vehicle-loss hours** (voertuigverliesuren): over road motor vehicles (cars, trucks, buses,
  emergency and other motorised vehicles, see :func:`~ivri.metrics.vtypes.is_road_motor_vehicle`)
  the sum of tripinfo ``timeLoss`` plus ``departDelay``, in hours, including vehicles still
  driving or still waiting to enter at the end. ``timeLoss`` alone would flatter a jammed
  network, where vehicles queue outside it and lose time only as depart delay, so both parts
  are also reported apart (``time_loss_hours``, ``depart_delay_hours``).
  ``timeLoss`` is measured against each vehicle's own desired speed, not the fixed reference
  speed Rijkswaterstaat uses (100 km/h on motorways): say so when comparing.
- **Fuel**: SUMO's emissions device (``fuel_abs`` in mg), converted to litres with the density
  of each vehicle type's fuel (:mod:`ivri.metrics.fuel`). ``fuel_litres`` counts petrol and
  diesel; gas (CNG, LNG) counts only in ``fuel_kg``; electricity in ``electricity_kwh``.
- **Stops**: tripinfo ``waitingCount``, the number of times a vehicle's speed dropped to
  <= 0.1 m/s. SUMO counts no stops for walking persons, so pedestrian ``stops`` is ``None``.
- **Pedestrians**: the ``<walk>`` stages of each ``<personinfo>``, summed per person.

Totals (fuel, CO2, NOx, stops, loss hours) cover road motor vehicles; ``by_mode`` covers every
mode, including bicycles, pedestrians and "other" (trams, trains...). Means are ``None`` where
no trip qualifies, so the JSON stays strict (no NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from ivri.metrics.fuel import FUEL_DENSITY_G_PER_L, FUEL_DIESEL, FUEL_PETROL, fuel_type_of
from ivri.metrics.tripinfo import TripInfo, read_tripinfo
from ivri.metrics.vtypes import (
    MODES,
    SUMO_DEFAULT_VTYPES,
    UNKNOWN_VTYPE,
    VTypeInfo,
    is_road_motor_vehicle,
    mode_of,
)

__all__ = ["Kpis", "ModeKpis", "compute_kpis"]

_S_PER_H = 3600.0
_MG_PER_KG = 1e6
_MG_PER_G = 1e3
_WH_PER_KWH = 1e3
_M_PER_KM = 1e3

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class _Frozen(BaseModel):
    # Results are facts of a finished run: immutable, and a typo in a field name is an error.
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ModeKpis(_Frozen):
    """KPIs of one mode. Sums over all its trips; means as documented per field."""

    trips: int
    """tripinfo records: arrived + unfinished + undeparted (persons: those with a walk)"""
    arrived: int
    unfinished: int
    """entered the network but had not arrived (or were removed) at the end"""
    undeparted: int
    """still waiting to enter the network at the end"""
    time_loss_s: float
    depart_delay_s: float
    waiting_s: float
    stops: int | None
    """sum of waitingCount; None for pedestrians (SUMO counts no walking stops)"""
    distance_km: float
    fuel_litres: float
    co2_kg: float
    nox_kg: float
    mean_time_loss_s: float | None
    """mean timeLoss over trips that entered the network"""
    mean_delay_s: float | None
    """mean of timeLoss + departDelay over all trips: the honest per-trip delay"""
    mean_travel_time_s: float | None
    """mean duration over arrived trips"""
    mean_waiting_s: float | None
    """mean waitingTime (speed <= 0.1 m/s) over trips that entered the network"""
    mean_stops: float | None
    """mean waitingCount over trips that entered the network"""


class Kpis(_Frozen):
    """The KPIs of one run. Field names carry their units."""

    vehicle_loss_hours: float
    """time_loss_hours + depart_delay_hours of road motor vehicles"""
    time_loss_hours: float
    depart_delay_hours: float
    depart_delay_share: float | None = None
    """depart_delay_hours / vehicle_loss_hours: the part lost waiting to enter (None without loss)"""
    fuel_litres: float
    """petrol + diesel of road motor vehicles"""
    fuel_petrol_litres: float
    fuel_diesel_litres: float
    fuel_kg: float
    """mass of all fuels of road motor vehicles, gas (CNG, LNG) included"""
    electricity_kwh: float
    co2_kg: float
    nox_kg: float
    stops: int
    """sum of waitingCount of road motor vehicles"""
    motor_trips: int
    motor_trips_without_emissions: int
    """road motor vehicles that drove without an emissions device: their fuel is missing"""
    emergency_time_lost_s: float
    """sum of timeLoss of emergency vehicles"""
    emergency_mean_time_lost_s: float | None
    emergency_stops: int
    by_mode: dict[str, ModeKpis]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (``by_mode`` as nested dicts), ready for JSON."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; ignores extra keys of a run record (scenario, ...)."""
        return cls.model_validate({name: data[name] for name in cls.model_fields})


def _mean(values: FloatArray) -> float | None:
    return float(values.mean()) if values.size else None


class _Rows:
    """Vehicles and walking persons as one table of equal-length columns."""

    def __init__(self, trips: TripInfo, vtypes: Mapping[str, VTypeInfo]) -> None:
        v = trips.vehicles
        infos = [
            vtypes.get(vtype_id) or SUMO_DEFAULT_VTYPES.get(vtype_id) or UNKNOWN_VTYPE
            for vtype_id in v.vtype_ids
        ]
        # Per vehicle type first, then spread to trips by index: no Python loop over trips.
        type_mode = np.array([MODES.index(mode_of(i.vclass)) for i in infos], dtype=np.int64)
        type_motor = np.array([is_road_motor_vehicle(i.vclass) for i in infos], dtype=np.bool_)
        type_fuel = [fuel_type_of(i.emission_class) for i in infos]
        type_density = np.array(
            [FUEL_DENSITY_G_PER_L.get(f, np.nan) for f in type_fuel], dtype=np.float64
        )
        type_petrol = np.array([f == FUEL_PETROL for f in type_fuel], dtype=np.bool_)
        type_diesel = np.array([f == FUEL_DIESEL for f in type_fuel], dtype=np.bool_)
        idx = v.vtype_index

        density = type_density[idx]
        liquid = np.isfinite(density)
        litres = np.zeros(len(v), dtype=np.float64)
        litres[liquid] = v.fuel_mg[liquid] / (density[liquid] * _MG_PER_G)

        p = trips.persons
        walking = p.walk_stages > 0
        n_walkers = int(walking.sum())
        zeros = np.zeros(n_walkers, dtype=np.float64)
        nans = np.full(n_walkers, np.nan)

        def cat(vehicle_values: npt.NDArray[Any], person_values: npt.NDArray[Any]) -> Any:
            return np.concatenate([vehicle_values, person_values])

        self.mode = cat(type_mode[idx], np.full(n_walkers, MODES.index("pedestrian")))
        self.motor = cat(type_motor[idx], np.zeros(n_walkers, dtype=np.bool_))
        self.departed = cat(v.departed, np.ones(n_walkers, dtype=np.bool_))
        self.arrived = cat(v.arrived, p.arrived[walking])
        self.time_loss_s = cat(v.time_loss_s, p.walk_time_loss_s[walking])
        self.depart_delay_s = cat(v.depart_delay_s, zeros)
        self.duration_s = cat(v.duration_s, p.walk_duration_s[walking])
        self.waiting_s = cat(v.waiting_time_s, p.walk_waiting_s[walking])
        self.stops = cat(v.waiting_count.astype(np.float64), nans)
        self.distance_m = cat(v.route_length_m, p.walk_route_length_m[walking])
        self.litres = cat(litres, zeros)
        self.petrol_litres = cat(np.where(type_petrol[idx], litres, 0.0), zeros)
        self.diesel_litres = cat(np.where(type_diesel[idx], litres, 0.0), zeros)
        self.fuel_mg = cat(v.fuel_mg, zeros)
        self.co2_mg = cat(v.co2_mg, zeros)
        self.nox_mg = cat(v.nox_mg, zeros)
        self.electricity_wh = cat(v.electricity_wh, zeros)
        self.has_emissions = cat(v.has_emissions, np.ones(n_walkers, dtype=np.bool_))

    def mode_kpis(self, mask: BoolArray) -> ModeKpis:
        departed = mask & self.departed
        arrived = mask & self.arrived
        stops = self.stops[mask]
        stops_known = not np.isnan(stops).any()
        return ModeKpis(
            trips=int(mask.sum()),
            arrived=int(arrived.sum()),
            unfinished=int((departed & ~self.arrived).sum()),
            undeparted=int((mask & ~self.departed).sum()),
            time_loss_s=float(self.time_loss_s[mask].sum()),
            depart_delay_s=float(self.depart_delay_s[mask].sum()),
            waiting_s=float(self.waiting_s[mask].sum()),
            stops=int(stops.sum()) if stops_known else None,
            distance_km=float(np.nansum(self.distance_m[mask]) / _M_PER_KM),
            fuel_litres=float(self.litres[mask].sum()),
            co2_kg=float(self.co2_mg[mask].sum() / _MG_PER_KG),
            nox_kg=float(self.nox_mg[mask].sum() / _MG_PER_KG),
            mean_time_loss_s=_mean(self.time_loss_s[departed]),
            mean_delay_s=_mean(self.time_loss_s[mask] + self.depart_delay_s[mask]),
            mean_travel_time_s=_mean(self.duration_s[arrived]),
            mean_waiting_s=_mean(self.waiting_s[departed]),
            mean_stops=_mean(self.stops[departed]) if stops_known else None,
        )


def compute_kpis(tripinfo: Path | TripInfo, vtypes: Mapping[str, VTypeInfo]) -> Kpis:
    """Compute the :class:`Kpis` of one run from its tripinfo file (or a parsed one).

    ``vtypes`` maps vType ids to their vClass and emission class (:func:`read_vtypes`);
    SUMO's default types are known even if missing from it. A vType id found in neither is
    counted as mode "other", a road motor vehicle burning petrol: never a crash, never lost.
    """
    trips = tripinfo if isinstance(tripinfo, TripInfo) else read_tripinfo(tripinfo)
    rows = _Rows(trips, vtypes)
    motor = rows.motor
    time_loss_h = float(rows.time_loss_s[motor].sum() / _S_PER_H)
    depart_delay_h = float(rows.depart_delay_s[motor].sum() / _S_PER_H)
    emergency = (rows.mode == MODES.index("emergency")) & rows.departed
    return Kpis(
        vehicle_loss_hours=time_loss_h + depart_delay_h,
        time_loss_hours=time_loss_h,
        depart_delay_hours=depart_delay_h,
        depart_delay_share=(depart_delay_h / (time_loss_h + depart_delay_h)
                            if time_loss_h + depart_delay_h > 0 else None),
        fuel_litres=float(rows.litres[motor].sum()),
        fuel_petrol_litres=float(rows.petrol_litres[motor].sum()),
        fuel_diesel_litres=float(rows.diesel_litres[motor].sum()),
        fuel_kg=float(rows.fuel_mg[motor].sum() / _MG_PER_KG),
        electricity_kwh=float(rows.electricity_wh[motor].sum() / _WH_PER_KWH),
        co2_kg=float(rows.co2_mg[motor].sum() / _MG_PER_KG),
        nox_kg=float(rows.nox_mg[motor].sum() / _MG_PER_KG),
        stops=int(rows.stops[motor].sum()),
        motor_trips=int(motor.sum()),
        motor_trips_without_emissions=int((motor & rows.departed & ~rows.has_emissions).sum()),
        emergency_time_lost_s=float(rows.time_loss_s[emergency].sum()),
        emergency_mean_time_lost_s=_mean(rows.time_loss_s[emergency]),
        emergency_stops=int(rows.stops[emergency].sum()),
        by_mode={mode: rows.mode_kpis(rows.mode == i) for i, mode in enumerate(MODES)},
    )
