"""Controllers: the strategies that request green, picked by name.

A run names its controller with a *spec*: one base controller, optionally followed by priority
applications joined with ``+`` (``"actuated"``, later ``"actuated+greenflow"``)::

    from ivri.controllers import make_controller
    ctl = make_controller("actuated", gap_s=2.5)

Registries (adding a strategy is one line in one of them):

* :data:`CONTROLLERS` maps a base controller's name to its class.
* :data:`APPLICATIONS` maps a priority application's name to its class
  (:class:`~.priority.PriorityApplication`). A spec with applications builds a
  :class:`~.arbiter.PriorityArbiter` over the base controller and the applications, which
  ranks their requests by priority class (see :mod:`.priority`).

``"sumo-native"`` (:data:`SUMO_NATIVE`) is a valid *run* choice but not an engine controller:
it means SUMO runs the network's own programs and the engine stays out. So do
``"sumo-actuated"`` and ``"sumo-delay-based"``: SUMO's own programs switched to its actuated
or delay-based type (:data:`SUMO_REFERENCES`, :mod:`ivri.sumo.tls_programs`), the best
control SUMO itself offers on a network. The runner checks for them before it calls
:func:`make_controller`, which raises :class:`~ivri.errors.ConfigError` for them rather than
returning ``None``: an ``Optional`` result would make every other caller check for a
controller that silently is not there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ivri.errors import ConfigError

from .actuated import VehicleActuated
from .arbiter import PriorityArbiter
from .base import Controller, Observation
from .conditional import BusPriority, TruckPriority
from .crosswalk import Crosswalk
from .cv_actuated import ConnectedActuated
from .fixed_time import FixedTime
from .glosa import Glosa, SpeedAdvice
from .greenflow import GreenFlow
from .max_pressure import MaxPressure
from .priority import PriorityApplication, PriorityClass, PriorityRequests
from .rain import RainMode, RainSeries
from .schwung import Schwung
from .v2x import Role, V2XObservation

__all__ = [
    "APPLICATIONS",
    "CONTROLLERS",
    "SUMO_NATIVE",
    "SUMO_REFERENCES",
    "BusPriority",
    "ConnectedActuated",
    "Controller",
    "Crosswalk",
    "FixedTime",
    "Glosa",
    "GreenFlow",
    "MaxPressure",
    "Observation",
    "PriorityApplication",
    "PriorityArbiter",
    "PriorityClass",
    "PriorityRequests",
    "RainMode",
    "RainSeries",
    "Role",
    "Schwung",
    "SpeedAdvice",
    "TruckPriority",
    "V2XObservation",
    "VehicleActuated",
    "available_controllers",
    "describe_controllers",
    "is_sumo_reference",
    "make_controller",
    "parse_spec",
    "validate_run_choice",
]

#: The run choice that lets SUMO run its own traffic-light programs (no engine controller).
SUMO_NATIVE = "sumo-native"
#: Run choices where SUMO controls the lights itself, and the tlLogic ``type`` its programs are
#: switched to (None: as the network ships them).
SUMO_REFERENCES: dict[str, str | None] = {
    SUMO_NATIVE: None,
    "sumo-actuated": "actuated",
    "sumo-delay-based": "delay_based",
}
_REFERENCE_TEXT = {
    SUMO_NATIVE: "SUMO's own traffic-light programs from the network; the engine stays out",
    "sumo-actuated": "SUMO's own programs switched to SUMO's actuated type (gap control on loops "
                     "SUMO places itself); the engine stays out",
    "sumo-delay-based": "SUMO's own programs switched to SUMO's delay-based type (time loss of "
                        "approaching vehicles); the engine stays out",
}

#: Base controllers by name. One line per controller.
CONTROLLERS: dict[str, type[Controller]] = {
    cls.name: cls
    for cls in (
        FixedTime,
        VehicleActuated,
        MaxPressure,
        ConnectedActuated,
    )
}

#: Priority applications by name. One line per application.
APPLICATIONS: dict[str, type[PriorityApplication]] = {
    cls.name: cls
    for cls in (
        GreenFlow,
        Schwung,
        RainMode,
        Crosswalk,
        BusPriority,
        TruckPriority,
        Glosa,
    )
}


def available_controllers() -> list[str]:
    """The base controller names, in registry order (``sumo-native`` is not one of them)."""
    return list(CONTROLLERS)


def _valid_names() -> str:
    return ", ".join([*CONTROLLERS, *SUMO_REFERENCES])


def is_sumo_reference(name: str) -> bool:
    """True for the run choices where SUMO controls the lights itself (``sumo-native``, ...)."""
    return name.strip() in SUMO_REFERENCES


def describe_controllers() -> dict[str, str]:
    """Every run choice with a one-line description (for ``ivri controllers``)."""
    out = {name: _first_line(cls.__doc__) for name, cls in CONTROLLERS.items()}
    out.update({f"+{name}": _first_line(f.__doc__) for name, f in APPLICATIONS.items()})
    out.update(_REFERENCE_TEXT)
    return out


def _first_line(doc: str | None) -> str:
    # reStructuredText literals read as plain words in a terminal table.
    return doc.strip().splitlines()[0].replace("``", "") if doc and doc.strip() else ""


def parse_spec(spec: str) -> tuple[str, tuple[str, ...]]:
    """Split ``"base+app+app"`` into the base name and the application names, all checked.

    Raises :class:`~ivri.errors.ConfigError` (one line, listing the valid names) for an empty
    or unknown name, and for ``sumo-native`` and the other SUMO references, which are no
    engine controllers.
    """
    parts = tuple(p.strip() for p in str(spec).split("+"))
    base, apps = parts[0], parts[1:]
    if base in SUMO_REFERENCES:
        if apps:
            raise ConfigError(
                f"{spec!r}: priority applications need an engine controller, "
                f"not {base!r}; valid: {', '.join(CONTROLLERS)}"
            )
        raise ConfigError(
            f"{base!r} runs SUMO's own programs and is not an engine controller "
            f"(the runner handles it); engine controllers: {', '.join(CONTROLLERS)}"
        )
    if base not in CONTROLLERS:
        raise ConfigError(f"unknown controller {base!r}; valid: {_valid_names()}")
    for app in apps:
        if app not in APPLICATIONS:
            valid = ", ".join(APPLICATIONS) or "none registered yet"
            raise ConfigError(
                f"unknown priority application {app!r} in {spec!r}; valid: {valid}"
            )
    if len(set(apps)) != len(apps):
        raise ConfigError(f"{spec!r} names a priority application twice")
    return base, apps


def make_controller(name: str, **params: Any) -> Controller:
    """Build the controller that ``name`` specifies (see :func:`parse_spec`).

    ``params`` go to the base controller, except that a keyword named after one of the spec's
    applications carries that application's parameters as a dict, and ``arbiter`` the
    arbiter's: ``make_controller("actuated+greenflow", gap_s=2.5, greenflow={"range_m": 300})``.
    With applications the result is a :class:`PriorityArbiter`. A parameter that a part
    does not take raises :class:`~ivri.errors.ConfigError`.
    """
    base, apps = parse_spec(name)
    app_params = {a: dict(params.pop(a, None) or {}) for a in apps}
    arbiter_params = dict(params.pop("arbiter", None) or {})
    for key in list(params):
        if key in APPLICATIONS:
            raise ConfigError(f"parameters for {key!r} given, but {name!r} does not use it")
    controller = _build(base, CONTROLLERS[base], params)
    if not apps:
        if arbiter_params:
            raise ConfigError(f"arbiter parameters given, but {name!r} has no priority application")
        return controller
    applications = tuple(_build(a, APPLICATIONS[a], app_params[a]) for a in apps)
    return _build("arbiter", PriorityArbiter,
                  {"base": controller, "applications": applications, **arbiter_params})


def _build(name: str, factory: Callable[..., Any], params: dict[str, Any]) -> Any:
    try:
        inspect.signature(factory).bind(**params)
    except TypeError as exc:
        # A misspelt parameter must fail loudly, in the same one-line form as a wrong name.
        raise ConfigError(f"controller {name!r}: {exc}") from None
    return factory(**params)


def validate_run_choice(name: str) -> str:
    """Return ``name`` if ``ivri run --controller`` accepts it (the SUMO references included).

    Raises :class:`~ivri.errors.ConfigError` with the valid names otherwise.
    """
    if is_sumo_reference(name):
        return name.strip()
    parse_spec(name)
    return name
