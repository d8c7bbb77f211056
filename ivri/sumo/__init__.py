"""The SUMO bridge: libsumo by default, TraCI as an option.

::

    sumocfg.py     read_sumocfg: the scenario's files and times
    connection.py  start_sumo: the one place that imports libsumo / traci (lazily)
    network.py     derive_intersections: signal groups, conflicts, intergreens, stages of any net
    detectors.py   write_detectors: one extension loop per vehicle lane
    observe.py     Observer: subscriptions -> Observation [intersection, group]
    actuate.py     Actuator: signal-group states -> tls state strings, written on change only
    bridge.py      SumoBridge: all of the above for one run

Nothing here imports SUMO's Python packages until it is used, so ``import ivri.sumo`` works
without SUMO installed.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Actuator",
    "Detector",
    "Observer",
    "SumoBridge",
    "SumoConfig",
    "TlsLinkMap",
    "derive_intersections",
    "link_maps_for_configs",
    "read_net",
    "read_sumocfg",
    "start_sumo",
    "sumo_binary",
    "sumo_version",
    "write_detectors",
]

_WHERE = {
    "SumoBridge": "bridge",
    "SumoConfig": "sumocfg",
    "read_sumocfg": "sumocfg",
    "start_sumo": "connection",
    "sumo_version": "connection",
    "sumo_binary": "connection",
    "TlsLinkMap": "network",
    "derive_intersections": "network",
    "link_maps_for_configs": "network",
    "read_net": "network",
    "Detector": "detectors",
    "write_detectors": "detectors",
    "Observer": "observe",
    "Actuator": "actuate",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"ivri.sumo.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'ivri.sumo' has no attribute {name!r}")
