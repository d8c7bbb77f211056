"""Schwung: cyclists with the app ask for green before they reach the stop-line detector.

The app sends the intended movement (signal group) and the arrival time while the cyclist is
still well upstream (``horizon_s``), so that green can be there when the cyclist arrives
instead of after a stop. The arbiter serves it as a conditional request: it ends a
conflicting green only after that green has run a while (the class's ``cut_after_s``), and
gives way to road users who have waited long.
"""

from __future__ import annotations

from typing import ClassVar

from ivri.core.state import SignalState
from ivri.errors import ConfigError

from .base import Observation
from .priority import PriorityApplication, PriorityClass, PriorityRequests, rows_to_requests
from .v2x import Role

__all__ = ["Schwung"]


class Schwung(PriorityApplication):
    """Schwung: an app request from an approaching cyclist brings green early.

    Parameters (keyword only):

    ``horizon_s`` (default 25 s)
        A request is made from this many seconds before the stop line (about 120 m at
        cycling speed: before the usual detection).
    ``min_speed_mps`` (default 2 m/s)
        The arrival estimate assumes at least this speed.
    """

    name: ClassVar[str] = "schwung"
    app_code: ClassVar[int] = 2

    def __init__(self, *, horizon_s: float = 25.0, min_speed_mps: float = 2.0) -> None:
        self.horizon_s = horizon_s
        self.min_speed_mps = min_speed_mps

    def reset(self, net) -> None:
        super().reset(net)
        if not float(self.horizon_s) > 0.0:
            raise ConfigError(f"schwung: horizon_s must be positive, got {self.horizon_s}")

    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        v = obs.v2x
        eta = v.eta_s(self.min_speed_mps)
        mask = (v.role == Role.CYCLIST) & v.app & (eta <= self.horizon_s)
        return rows_to_requests(mask, v, self.app_code, PriorityClass.CYCLIST, eta[mask])
