"""Schwung: cyclists with the app ask for green before they reach the stop-line detector.

The app sends the intended movement (signal group) and the arrival time while the cyclist is
still well upstream (``horizon_s``), so that green can be there when the cyclist arrives
instead of after a stop. As Dutch cyclist apps do, it is early detection and nothing more:
the arbiter places an early call for the group in the base controller (class CYCLIST,
``precall``), which serves it in its own order at a real gap; no green is shortened or cut
for it. A cyclist class set up to cut greens (``rules``) is weighed by the net-benefit rule
like every other conditional class (:mod:`.arbiter`).
"""

from __future__ import annotations

from typing import ClassVar

from ivri.core.compile import CompiledNetwork
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

    def reset(self, net: CompiledNetwork) -> None:
        super().reset(net)
        if not float(self.horizon_s) > 0.0:
            raise ConfigError(f"schwung: horizon_s must be positive, got {self.horizon_s}")

    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        v = obs.v2x
        eta = v.eta_s(self.min_speed_mps)
        mask = (v.role == Role.CYCLIST) & v.app & (eta <= self.horizon_s)
        return rows_to_requests(mask, v, self.app_code, PriorityClass.CYCLIST, eta[mask])
