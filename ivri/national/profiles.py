"""24-hour demand profiles per day type, and the hours per year they give each simulated day type.

The parameter file may carry a ``[profiles]`` section: per kind of day (``weekday``,
``weekend``) the number of such days a year and 24 hourly weights relative to the busiest
hour of a weekday (1.0), with a source. The hours of the year are then sorted into the day
types of the estimate by their weight::

    weekday hour, weight >= peak_min           -> weekday_peak      (the :peak variant)
    weekday hour, night_max <= weight < peak_min -> weekday_offpeak (the :offpeak variant)
    weekend hour, weight >= night_max          -> weekend
    any hour,     weight <  night_max          -> night

and the ``day_hours.*`` parameters take those hours as their values (their ranges keep their
relative width). Without a ``[profiles]`` section the ``day_hours.*`` values of the file hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ivri.errors import ConfigError

__all__ = ["DayProfile", "Profiles", "hours_by_day_type", "parse_profiles"]

DAY_TYPE_RULES = ("weekday_peak", "weekday_offpeak", "weekend", "night")


class DayProfile(BaseModel):
    """One kind of day: how many a year, and the weight of each hour (0-23)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days_per_year: float = Field(gt=0, le=366)
    weights: tuple[float, ...]

    @field_validator("weights")
    @classmethod
    def _24_non_negative(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 24:
            raise ValueError(f"24 hourly weights are needed, got {len(v)}")
        if min(v) < 0:
            raise ValueError("hourly weights must be >= 0")
        return v


class Profiles(BaseModel):
    """The ``[profiles]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1)
    peak_min: float = 0.75
    night_max: float = 0.25
    weekday: DayProfile
    weekend: DayProfile


def parse_profiles(data: Mapping[str, Any], where: str = "") -> Profiles:
    """Validate the ``[profiles]`` section; errors name the field."""
    try:
        return Profiles.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"[profiles]{where}: {loc}: {str(err['msg']).removeprefix('Value error, ')}") from None


def hours_by_day_type(p: Profiles) -> dict[str, float]:
    """Hours per year of each day type of the estimate (see the module docstring)."""
    out = dict.fromkeys(DAY_TYPE_RULES, 0.0)
    for w in p.weekday.weights:
        key = "weekday_peak" if w >= p.peak_min else ("weekday_offpeak" if w >= p.night_max else "night")
        out[key] += p.weekday.days_per_year
    for w in p.weekend.weights:
        out["weekend" if w >= p.night_max else "night"] += p.weekend.days_per_year
    return out
