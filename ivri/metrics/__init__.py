"""Metrics of a SUMO run: vehicle-loss hours, fuel, emissions, stops and delay per mode.

The flow of one run::

    opts = sumo_output_options(out_dir)            # add to the SUMO command line
    ...run SUMO...
    vtypes = read_vtypes([routes_file, additional_file])
    kpis = compute_kpis(tripinfo_path(out_dir), vtypes)
    health = compute_health(statistics_path(out_dir), summary_path(out_dir), begin_s, end_s)
    record = {"scenario": ..., "controller": ..., "seed": ..., "sumo_version": ...,
              "wall_time_s": ..., **kpis.to_dict(), "health": health.to_dict()}

and for a comparison of runs: :func:`write_kpis_json`, :func:`kpi_table`,
:func:`plot_comparison`.
"""

from ivri.metrics.fuel import (
    FUEL_DENSITY_G_PER_L,
    FUEL_TYPES,
    fuel_density_g_per_l,
    fuel_mg_to_litres,
    fuel_type_of,
)
from ivri.metrics.health import Health, compute_health, gridlock_line
from ivri.metrics.kpis import Kpis, ModeKpis, compute_kpis
from ivri.metrics.report import kpi_table, plot_comparison, read_kpis_json, write_kpis_json
from ivri.metrics.sumo_outputs import (
    statistics_path,
    summary_path,
    sumo_output_options,
    tripinfo_path,
)
from ivri.metrics.tripinfo import PersonWalks, TripInfo, VehicleTrips, read_tripinfo
from ivri.metrics.vtypes import (
    MODES,
    SUMO_DEFAULT_VTYPES,
    VTypeInfo,
    default_emission_class,
    is_road_motor_vehicle,
    mode_of,
    read_vtypes,
)

__all__ = [
    "FUEL_DENSITY_G_PER_L",
    "FUEL_TYPES",
    "MODES",
    "SUMO_DEFAULT_VTYPES",
    "Health",
    "Kpis",
    "ModeKpis",
    "PersonWalks",
    "TripInfo",
    "VTypeInfo",
    "VehicleTrips",
    "compute_health",
    "compute_kpis",
    "default_emission_class",
    "fuel_density_g_per_l",
    "fuel_mg_to_litres",
    "fuel_type_of",
    "gridlock_line",
    "is_road_motor_vehicle",
    "kpi_table",
    "mode_of",
    "plot_comparison",
    "read_kpis_json",
    "read_tripinfo",
    "read_vtypes",
    "statistics_path",
    "summary_path",
    "sumo_output_options",
    "tripinfo_path",
    "write_kpis_json",
]
