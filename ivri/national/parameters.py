"""The parameters of the national extrapolation: one TOML file, validated with pydantic.

Each parameter has a value, a range ``[low, high]`` for the Monte Carlo, a unit, a
distribution and a *source*. A parameter without a source, or whose range excludes its value,
is an error that names it (:class:`~ivri.errors.ConfigError`, one line).

The file's layout (see the bundled ``parameters.toml``)::

    [day_types]                       # day type -> scenario variant that represents it
    weekday_peak = "peak"
    [parameters.national.intersections]
    value = 5500
    low = 5000
    high = 6000
    unit = "..."
    source = "..."
    distribution = "triangular"       # or "uniform", "fixed"

A parameter's name is its dotted path under ``[parameters]``. An optional ``[profiles]``
section (24-hour demand profiles per kind of day, :mod:`ivri.national.profiles`) sets the
values of the ``day_hours.*`` parameters.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ivri.errors import ConfigError

__all__ = [
    "DEFAULT_PARAMETERS",
    "REQUIRED",
    "Parameter",
    "ParameterSet",
    "load_parameters",
    "parse_parameters",
]

#: Name of the bundled parameter file (package data of ``ivri.national``).
DEFAULT_PARAMETERS = "parameters.toml"

#: Parameters every file must define (day_hours.* and day_scale.* per day type, and
#: type_share.* per simulated type, are checked against the run, see :meth:`ParameterSet.require`).
REQUIRED = (
    "national.intersections",
    "national.rollout_share",
    "weather.rain_hour_share",
    "weather.rain_mm_h",
    "equipped.emergency",
    "equipped.bus",
    "equipped.truck",
    "equipped.cyclist",
    "equipped.slow_pedestrian",
    "equipped.car",
    "emergency.passages_per_intersection_year",
    "baseline.fixed_time_share",
    "fuel.density_petrol_g_per_l",
    "fuel.density_diesel_g_per_l",
    "fuel.idle_l_per_h",
    "fuel.fleet_factor",
    "calibration.emergency_low_per_h",
    "calibration.emergency_high_per_h",
    "calibration.bus_line_share",
    "baseline.kar_checkin_m",
    "baseline.kar_approach_speed_mps",
    "ivri.emergency_range_m",
    "ivri.bus_horizon_s",
    "webster.saturation_pcu_h_lane",
    "webster.max_cycle_s",
    "reference.g40_vehicle_loss_hours",
    "reference.g40_fuel_litres",
)


class Parameter(BaseModel):
    """One number of the extrapolation with its range and source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float
    low: float
    high: float
    source: str = Field(min_length=1)
    unit: str = ""
    distribution: Literal["triangular", "uniform", "fixed"] = "triangular"

    @model_validator(mode="after")
    def _range_holds_value(self) -> Parameter:
        if not self.source.strip():
            raise ValueError("source is empty: every parameter needs a source (or 'assumption')")
        if not self.low <= self.value <= self.high:
            raise ValueError(f"range [{self.low:g}, {self.high:g}] excludes value {self.value:g}")
        if self.distribution == "fixed" and self.low != self.high:
            raise ValueError("a fixed parameter needs low == value == high")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws from the parameter's distribution."""
        if self.distribution == "fixed" or self.low == self.high:
            return np.full(n, self.value)
        if self.distribution == "uniform":
            return rng.uniform(self.low, self.high, n)
        return rng.triangular(self.low, self.value, self.high, n)


class ParameterSet(BaseModel):
    """All parameters of one file, by dotted name, and the day-type mapping."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day_types: dict[str, str]
    parameters: dict[str, Parameter]
    path: str = ""
    #: The [profiles] section as read (None when the file has none).
    profiles: dict[str, Any] | None = None

    def __getitem__(self, name: str) -> Parameter:
        try:
            return self.parameters[name]
        except KeyError:
            raise ConfigError(f"parameter {name!r} is missing from {self.path or 'the parameter file'}") from None

    def value(self, name: str) -> float:
        return self[name].value

    def values(self) -> dict[str, float]:
        """Every parameter at its central value."""
        return {k: p.value for k, p in self.parameters.items()}

    def require(self, names: list[str] | tuple[str, ...]) -> None:
        """Raise one error naming the first missing parameter."""
        for name in names:
            self[name]

    def uncertain(self) -> list[str]:
        """Names of the parameters that the Monte Carlo varies (range wider than a point)."""
        return [k for k, p in self.parameters.items()
                if p.distribution != "fixed" and p.low < p.high and not k.startswith("reference.")]

    def digest(self) -> str:
        """A short hash of the parameters' content (for the report and the cache notes)."""
        data = json.dumps(self.model_dump(exclude={"path"}), sort_keys=True).encode()
        return hashlib.sha256(data).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "digest": self.digest(), "day_types": dict(self.day_types),
                "profiles": self.profiles,
                "parameters": {k: p.model_dump() for k, p in self.parameters.items()}}


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf tables (those with a ``value`` key) by dotted name."""
    out: dict[str, Any] = {}
    for key, item in table.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if not isinstance(item, Mapping):
            raise ConfigError(f"parameter {name!r}: expected a table with value, low, high, source")
        if "value" in item:
            out[name] = item
        else:
            out.update(_flatten(item, name))
    return out


def parse_parameters(data: Mapping[str, Any], path: str = "") -> ParameterSet:
    """Validate parsed TOML; errors name the parameter and the problem in one line."""
    where = f" in {path}" if path else ""
    unknown = set(data) - {"day_types", "parameters", "profiles"}
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}{where}; expected [day_types], [parameters] "
                          "and optionally [profiles]")
    raw_days = data.get("day_types")
    if not isinstance(raw_days, Mapping) or not raw_days:
        raise ConfigError(f"[day_types] is missing or empty{where}")
    params: dict[str, Parameter] = {}
    for name, item in _flatten(data.get("parameters") or {}).items():
        if "source" not in item:
            raise ConfigError(f"parameter {name!r}{where}: no source given (write the source, or 'assumption')")
        try:
            params[name] = Parameter.model_validate(dict(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"parameter {name!r}{where}: {loc + ': ' if loc else ''}{msg}") from None
    profiles = None
    if "profiles" in data:
        from ivri.national.profiles import hours_by_day_type, parse_profiles

        prof = parse_profiles(data["profiles"], where)
        profiles = prof.model_dump()
        for day, hours in hours_by_day_type(prof).items():
            old = params.get(f"day_hours.{day}")
            if old is None or day not in raw_days:
                continue
            # The profile sets the value; the range keeps its relative width around it.
            k = hours / old.value if old.value else 1.0
            params[f"day_hours.{day}"] = Parameter(
                value=hours, low=old.low * k, high=old.high * k, unit=old.unit, distribution=old.distribution,
                source=f"from the 24-hour profiles ([profiles]: {prof.source})")
    pset = ParameterSet(day_types={str(k): str(v) for k, v in raw_days.items()}, parameters=params, path=path,
                        profiles=profiles)
    pset.require(REQUIRED)
    for day in pset.day_types:
        pset.require([f"day_hours.{day}", f"day_scale.{day}"])
    return pset


def load_parameters(path: Path | None = None) -> ParameterSet:
    """Load and validate a parameter file (the bundled one when ``path`` is None)."""
    if path is None:
        text = resources.files("ivri.national").joinpath(DEFAULT_PARAMETERS).read_text(encoding="utf-8")
        label = f"ivri/national/{DEFAULT_PARAMETERS}"
    else:
        if not Path(path).is_file():
            raise ConfigError(f"parameter file {path} does not exist")
        text = Path(path).read_text(encoding="utf-8")
        label = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"parameter file {label} is not valid TOML: {exc}") from None
    return parse_parameters(data, label)
