"""Crosswalk: slow crossers with the app get a longer walk and clearance time.

A pedestrian who pressed the button and carries the app tells the intersection that they
walk slowly. The standard clearance (the intergreen from the walk signal to every
conflicting stream) is sized for 1.2 m/s from the far side of the crossing (see
:mod:`ivri.sumo.network`). For a slow crosser the walk green is held

* while they wait at the kerb and the walk signal is green (so it does not end just as they
  step off), and
* while they are on the crossing and the rest of it, at ``slow_speed_mps``, takes longer
  than the shortest intergreen from the walk signal to a conflicting stream, less a margin.

So green plus clearance together cover the whole crossing at the slow speed, and the slow
crosser is off the crossing before any conflicting green starts. The hold ranks above every
other request (a person on the road comes first) and lasts at most one crossing. Without the
app nothing changes: the crossing is as safe as its standard clearance makes it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.state import SignalState
from ivri.errors import ConfigError

from .base import Observation
from .priority import (
    PriorityApplication,
    PriorityClass,
    PriorityRequests,
    request_keys,
)
from .v2x import Role

__all__ = ["SLOW_WALKING_SPEED_MPS", "Crosswalk"]

#: Design walking speed of a slow crosser (walking aid, elderly): 0.6 m/s. Dutch and
#: international design guidance uses 1.0-1.2 m/s for the general population; the slowest
#: walkers that practice designs for walk at 0.5-0.8 m/s.
SLOW_WALKING_SPEED_MPS = 0.6


class Crosswalk(PriorityApplication):
    """Crosswalk: slow crossers with the app are off the crossing before conflicting green.

    Parameters (keyword only):

    ``slow_speed_mps`` (default 0.6 m/s)
        The walking speed the walk and clearance times are sized for.
    ``margin_s`` (default 1.0 s)
        Extra time on top of the remaining crossing time.
    """

    name: ClassVar[str] = "crosswalk"
    app_code: ClassVar[int] = 3

    def __init__(self, *, slow_speed_mps: float = SLOW_WALKING_SPEED_MPS, margin_s: float = 1.0) -> None:
        self.slow_speed_mps = slow_speed_mps
        self.margin_s = margin_s

    def reset(self, net: CompiledNetwork) -> None:
        super().reset(net)
        if not float(self.slow_speed_mps) > 0.0:
            raise ConfigError(f"crosswalk: slow_speed_mps must be positive, got {self.slow_speed_mps}")
        t = net.timing
        foes = t.conflict & t.valid[:, None, :]
        # The clearance a walk signal has: its shortest intergreen to a conflicting stream.
        self.clearance_s_ = np.where(foes, t.intergreen_s, np.inf).min(axis=2)

    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        v = obs.v2x
        n_g = self.clearance_s_.shape[1]
        # A movement that is not known yet (-1) or not in the network gives no request.
        slow_user = (v.role == Role.PEDESTRIAN) & v.app & v.slow & (v.group >= 0) & (v.group < n_g)
        g = np.clip(v.group, 0, n_g - 1)
        clearance = self.clearance_s_[v.intersection, g] if len(v) else np.zeros(0)
        remaining_s = v.distance_m / self.slow_speed_mps
        on = slow_user & v.on_crossing & (remaining_s + self.margin_s > clearance)
        kerb = slow_user & ~v.on_crossing
        mask = on | kerb
        cls = np.where(on[mask], int(PriorityClass.SLOW_CROSSER_CLEARING),
                       int(PriorityClass.SLOW_CROSSER_WALK)).astype(np.int8)
        return PriorityRequests(
            key=request_keys(v.token[mask], v.intersection[mask], self.app_code),
            intersection=v.intersection[mask],
            group=v.group[mask],
            cls=cls,
            eta_s=np.zeros(int(mask.sum())),
        )
