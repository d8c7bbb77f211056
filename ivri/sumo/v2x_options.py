"""The options of the V2X emulation (:mod:`ivri.sumo.v2x`), one validated model.

:class:`~ivri.sumo.bridge.SumoBridge` takes a :class:`V2XOptions` (or a mapping it validates
at once), so that a misspelt option or a share outside 0..1 is a
:class:`~ivri.errors.ConfigError` naming the field before SUMO starts. Kept apart from the
emulator, which loads traci.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ivri.config import format_validation_error
from ivri.errors import ConfigError

__all__ = ["DEFAULT_SHARES", "V2XOptions", "v2x_options"]

#: Share of each kind of road user that is equipped, by default: every emergency vehicle,
#: bus and truck has an on-board unit; a fifth of the cyclists use the Schwung app; half of
#: the slow walkers carry the Crosswalk app (so that one run has slow crossers with and
#: without it); cars send nothing.
DEFAULT_SHARES: dict[str, float] = {
    "emergency": 1.0,
    "bus": 1.0,
    "truck": 1.0,
    "cyclist": 0.2,
    "slow_pedestrian": 0.5,
    "car": 0.0,
}


class V2XOptions(BaseModel):
    """How connected road users are emulated from a SUMO run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Overrides of :data:`DEFAULT_SHARES` (share of each kind that is equipped, 0..1).
    shares: dict[str, float] = Field(default_factory=dict)
    #: Road users farther than this from their next traffic light are not seen [m].
    range_m: float = Field(1000.0, gt=0.0, allow_inf_nan=False)
    #: How often an equipped vehicle sends a CAM [s] (0: every SUMO step).
    cam_period_s: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    #: Also read the equipped vehicles' positions and angles (the co-simulation's CAMs).
    positions: bool = False

    @field_validator("shares")
    @classmethod
    def _known_shares(cls, shares: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(shares) - set(DEFAULT_SHARES))
        if unknown:
            raise ValueError(f"unknown V2X share(s) {unknown}; valid: {', '.join(DEFAULT_SHARES)}")
        bad = {k: v for k, v in shares.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"shares must be between 0 and 1, got {bad}")
        return shares


def v2x_options(options: V2XOptions | Mapping[str, Any]) -> V2XOptions:
    """``options`` as a :class:`V2XOptions`, or a :class:`ConfigError` naming every bad field."""
    if isinstance(options, V2XOptions):
        return options
    try:
        return V2XOptions(**dict(options))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "V2X option")) from None
