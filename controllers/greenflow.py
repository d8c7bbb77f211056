"""GreenFlow for BlueLights: green for an emergency vehicle with lights and siren on.

From the vehicle's CAM-like status (position on its route, speed, lights and siren) it
requests green for the vehicle's signal group with its estimated arrival at the stop line.
Requests start far out (``range_m``, 1 km by default: in Dutch practice requests may come
minutes before the stop line), so that the arbiter can plan the switch: it keeps
conflicting groups from starting once they could still delay the vehicle, ends the running
conflicting greens (never below their minimum green, with full amber and intergreen) in time
for the queue in front of the vehicle to leave, holds the green until the vehicle has passed
(its request ends when it is past the stop line or has turned away), and then serves the
groups it held back first (compensation). Several emergency vehicles: earliest arrival
first; a vehicle that stops or never arrives is dropped after the class's time-out.
"""

from __future__ import annotations

from typing import ClassVar

from ivri.core.state import SignalState
from ivri.errors import ConfigError

from .base import Observation
from .priority import PriorityApplication, PriorityClass, PriorityRequests, rows_to_requests
from .v2x import Role

__all__ = ["GreenFlow"]


class GreenFlow(PriorityApplication):
    """GreenFlow for BlueLights: emergency vehicles arrive at green, conflicting greens end early.

    Parameters (keyword only):

    ``range_m`` (default 1000 m)
        Requests are made from this distance to the stop line.
    ``min_speed_mps`` (default 5 m/s)
        The arrival estimate assumes at least this speed: an emergency vehicle held up in
        a queue moves on as soon as the queue does.
    ``siren_only`` (default True)
        Only vehicles with lights and siren on ask for priority (a CAM's
        ``lightBarSirenInUse``); False: every emergency vehicle.
    """

    name: ClassVar[str] = "greenflow"
    app_code: ClassVar[int] = 1

    def __init__(self, *, range_m: float = 1000.0, min_speed_mps: float = 5.0,
                 siren_only: bool = True) -> None:
        self.range_m = range_m
        self.min_speed_mps = min_speed_mps
        self.siren_only = siren_only

    def reset(self, net) -> None:
        super().reset(net)
        if not float(self.range_m) > 0.0:
            raise ConfigError(f"greenflow: range_m must be positive, got {self.range_m}")
        if not float(self.min_speed_mps) > 0.0:
            raise ConfigError(f"greenflow: min_speed_mps must be positive, got {self.min_speed_mps}")

    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        v = obs.v2x
        mask = (v.role == Role.EMERGENCY) & (v.distance_m <= self.range_m)
        if self.siren_only:
            mask &= v.siren
        eta = v.eta_s(self.min_speed_mps)[mask]
        return rows_to_requests(mask, v, self.app_code, PriorityClass.EMERGENCY, eta)
