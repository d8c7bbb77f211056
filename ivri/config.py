"""The user-facing model of intersections: pydantic configs keyed by the user's own ids.

An intersection is a set of signal groups (``"fc02"``, ``"bike_31"``), the pairs of groups that
conflict with the intergreen time each way, the detectors, and the timing limits. It can be
written in TOML, YAML or JSON, or derived from a SUMO network (:mod:`ivri.sumo.network`).
The core never sees these objects: :func:`ivri.core.compile.compile_network` turns them into
arrays.

A file holds one or more intersections::

    [[intersections]]
    id = "J1"

    [[intersections.signal_groups]]
    id = "fc02"
    mode = "motor"
    min_green_s = 6
    max_green_s = 40

    [[intersections.conflicts]]
    between = ["fc02", "fc05"]
    intergreen_s = [5.0, 4.5]    # fc02 ends -> fc05 may start; fc05 ends -> fc02 may start
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ivri.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

__all__ = [
    "ConflictConfig",
    "DetectorConfig",
    "IntersectionConfig",
    "Mode",
    "NetworkConfig",
    "PriorityIngressConfig",
    "SignalGroupConfig",
    "format_validation_error",
    "load_model_file",
    "load_network_config",
    "read_data_file",
]

Mode = Literal["motor", "bicycle", "pedestrian", "bus", "tram"]


class _Strict(BaseModel):
    # A typo in a config key must be an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalGroupConfig(_Strict):
    """One signal group (Dutch: fasecyclus): the lights that always show the same aspect."""

    id: str = Field(min_length=1)
    mode: Mode = "motor"
    amber_s: float = Field(3.0, ge=0.0, le=10.0, description="amber (yellow) time; 0 for pedestrians")
    min_green_s: float = Field(5.0, gt=0.0, le=120.0, description="guaranteed green once started")
    max_green_s: float = Field(40.0, gt=0.0, le=600.0, description="green ends once reached and a conflicting group waits")
    min_red_s: float = Field(1.0, ge=0.0, le=60.0, description="red before green may start again")
    max_wait_s: float = Field(
        120.0, gt=0.0, le=900.0,
        description="anti-starvation: a group waiting this long is served before anything else",
    )
    sumo_links: tuple[int, ...] = Field((), description="SUMO tlLogic link indices of this group")
    lanes: tuple[str, ...] = Field((), description="SUMO incoming lanes (or crossings) of this group")

    @model_validator(mode="after")
    def _green_limits(self) -> SignalGroupConfig:
        if self.min_green_s > self.max_green_s:
            raise ValueError(
                f"signal group {self.id!r}: min_green_s={self.min_green_s} is above "
                f"max_green_s={self.max_green_s}"
            )
        return self


class ConflictConfig(_Strict):
    """Two signal groups that may never be green together, with the intergreen time each way.

    ``intergreen_s[0]`` is the time from the end of green of ``between[0]`` (the start of its
    amber) to the earliest start of green of ``between[1]``; ``intergreen_s[1]`` the other way.
    """

    between: tuple[str, str]
    intergreen_s: tuple[float, float]

    @model_validator(mode="after")
    def _check(self) -> ConflictConfig:
        a, b = self.between
        if a == b:
            raise ValueError(f"conflict between {a!r} and itself")
        if min(self.intergreen_s) < 0.0:
            raise ValueError(f"conflict {a!r}/{b!r}: negative intergreen_s {self.intergreen_s}")
        return self


class DetectorConfig(_Strict):
    """A detector (loop) on a lane that belongs to a signal group."""

    id: str
    group: str
    lane: str
    kind: Literal["stopline", "extension"] = "stopline"
    pos_m: float = Field(-1.0, description="position on the lane; negative counts from the lane end")


class PriorityIngressConfig(_Strict):
    """A priority ingress rule of a signal group (Dutch: prioriteitsingreep, HD-ingreep).

    When an intersection lists rules of a kind, that kind's priority application serves only
    the listed groups (a bus on a group without a bus rule gets no priority there), and a
    rule's ``travel_time_s`` is how far ahead of the stop line (in driving time) the request
    is made; without rules of a kind, the application serves every group with its defaults.
    """

    group: str
    kind: Literal["bus", "tram", "emergency"]
    travel_time_s: float | None = Field(
        None, gt=0.0, le=300.0,
        description="unhindered driving time from the check-in to the stop line (rijtijd ongehinderd)",
    )


class IntersectionConfig(_Strict):
    """One controlled intersection (Dutch: VRI / iVRI)."""

    id: str = Field(min_length=1)
    tls_id: str | None = Field(None, description="the SUMO traffic light that this intersection drives")
    signal_groups: tuple[SignalGroupConfig, ...] = Field(min_length=1)
    conflicts: tuple[ConflictConfig, ...] = ()
    detectors: tuple[DetectorConfig, ...] = ()
    stages: tuple[tuple[str, ...], ...] = Field(
        (),
        description="groups that run together, in cycle order; derived from the conflicts when empty",
    )
    priority: tuple[PriorityIngressConfig, ...] = Field(
        (), description="priority ingress rules per signal group (bus, tram, emergency)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> IntersectionConfig:
        ids = [g.id for g in self.signal_groups]
        seen: set[str] = set()
        for gid in ids:
            if gid in seen:
                raise ValueError(f"intersection {self.id!r}: signal group {gid!r} is defined twice")
            seen.add(gid)
        amber = {g.id: g.amber_s for g in self.signal_groups}
        pairs: set[frozenset[str]] = set()
        for c in self.conflicts:
            for gid in c.between:
                if gid not in seen:
                    raise ValueError(
                        f"intersection {self.id!r}: conflict names unknown signal group {gid!r}"
                    )
            pair = frozenset(c.between)
            if pair in pairs:
                raise ValueError(
                    f"intersection {self.id!r}: conflict {c.between[0]!r}/{c.between[1]!r} is given twice"
                )
            pairs.add(pair)
            for ending, ig in zip(c.between, c.intergreen_s, strict=True):
                # A conflicting green may only start once the ending group's amber is over.
                if ig < amber[ending]:
                    raise ValueError(
                        f"intersection {self.id!r}: intergreen {ig} s after {ending!r} is shorter "
                        f"than its amber {amber[ending]} s"
                    )
        for d in self.detectors:
            if d.group not in seen:
                raise ValueError(
                    f"intersection {self.id!r}: detector {d.id!r} names unknown signal group {d.group!r}"
                )
        for p in self.priority:
            if p.group not in seen:
                raise ValueError(
                    f"intersection {self.id!r}: priority rule names unknown signal group {p.group!r}"
                )
        for k, stage in enumerate(self.stages):
            for gid in stage:
                if gid not in seen:
                    raise ValueError(
                        f"intersection {self.id!r}: stage {k} names unknown signal group {gid!r}"
                    )
            for i, a in enumerate(stage):
                for b in stage[i + 1:]:
                    if frozenset((a, b)) in pairs:
                        raise ValueError(
                            f"intersection {self.id!r}: stage {k} holds conflicting groups {a!r} and {b!r}"
                        )
        return self

    def group_ids(self) -> list[str]:
        """The signal group ids in their defined order (the column order in the core)."""
        return [g.id for g in self.signal_groups]


class NetworkConfig(_Strict):
    """All intersections of a run."""

    intersections: tuple[IntersectionConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> NetworkConfig:
        seen: set[str] = set()
        for x in self.intersections:
            if x.id in seen:
                raise ValueError(f"intersection {x.id!r} is defined twice")
            seen.add(x.id)
        return self


def format_validation_error(err: ValidationError, source: str) -> str:
    """One readable line per problem: where in the file, and what is wrong."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {loc}: {msg}")
    return "; ".join(lines)


def read_data_file(path: str | Path, what: str,
                   formats: tuple[str, ...] = (".toml", ".yaml", ".yml", ".json")) -> Any:
    """The parsed content of a TOML, YAML or JSON file (by its suffix), before validation.

    Raises :class:`ConfigError` naming ``what`` and the file when it is missing, has a format
    not in ``formats`` or cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise ConfigError(f"{what} {path}: unknown format {suffix!r} (use {', '.join(formats)})")
    try:
        text = path.read_text(encoding="utf-8")
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:  # noqa: BLE001  (OS errors and three parsers, each its own type)
        raise ConfigError(f"{what} {path} cannot be parsed: {exc}") from None


def write_data_file(path: str | Path, data: Any, header: str = "") -> None:
    """Write ``data`` as YAML (``.yaml``/``.yml``, with ``header`` as comment lines) or JSON
    (by the suffix), creating the folder; the counterpart of :func:`read_data_file`.

    Raises :class:`ConfigError` naming the file for any other suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
        text += yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    elif suffix == ".json":
        text = json.dumps(data, indent=2)
    else:
        raise ConfigError(f"{path}: use a .yaml or .json file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def load_model_file(path: str | Path, model: type[ModelT], what: str,
                    formats: tuple[str, ...] = (".toml", ".yaml", ".yml", ".json")) -> ModelT:
    """A pydantic ``model`` validated from a file (see :func:`read_data_file`).

    Raises :class:`ConfigError` naming ``what``, the file, the field and the problem.
    """
    data = read_data_file(path, what, formats)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None


def load_network_config(path: str | Path) -> NetworkConfig:
    """Read intersections from a TOML, YAML or JSON file.

    Raises :class:`ConfigError` naming the file, the field and the problem.
    """
    return load_model_file(path, NetworkConfig, "config file")
