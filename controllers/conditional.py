"""Conditional priority for buses and trucks: within budgets, never above emergency vehicles.

* :class:`BusPriority`: a bus that runs late (its delay against the timetable is at least
  ``late_after_s``) asks for green ``horizon_s`` before the stop line. Served as class
  PUBLIC_TRANSPORT: it may end a conflicting green that has run a while and keep one from
  starting, within a budget of grants per hour and intersection.
* :class:`TruckPriority`: a truck approaching a green at speed asks to keep that green until it
  has passed, so that a heavy vehicle does not have to brake hard for an amber, or stop
  (class FREIGHT: an extension only, never a pre-emption; budgeted).

Both act only on rows with a verified request (``app``: the on-board unit's signed SREM);
a CAM alone describes a vehicle and never asks. Both give way to emergency vehicles and slow crossers (higher classes), and to road users
who have waited long (the class rules' ``others_wait_s``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.state import SignalState

from .base import Observation
from .priority import (
    PriorityApplication,
    PriorityClass,
    PriorityRequests,
    ingress_horizons,
    rows_to_requests,
)
from .v2x import Role

__all__ = ["BusPriority", "TruckPriority"]


class BusPriority(PriorityApplication):
    """Conditional bus priority: late buses get green early, within a budget.

    Parameters (keyword only): ``late_after_s`` (default 30 s: a bus at least this late
    against its timetable asks; 0: every bus), ``schedule_slack_s`` (default 60 s: the
    timetable's running-time reserve over free flow; see below), ``horizon_s`` (default 20 s
    before the stop line), ``min_speed_mps`` (default 3 m/s, for the arrival estimate).

    Lateness is against the timetable, not against free flow: a timetable plans a bus's
    running time with a reserve for signals and traffic, and a bus that uses that reserve is
    on time. ``lateness_s`` of the V2X rows is the delay over free flow when the SUMO emulation
    fills it (its time loss so far), so the timetable is free flow plus ``schedule_slack_s``;
    from the gateway (the CAM's public-transport punctuality, already against the timetable)
    use ``schedule_slack_s=0``.

    An intersection whose config lists bus or tram ingress rules (``priority``, e.g. imported
    from a TLCGen file) gives priority only on those groups, each with its own horizon: the
    rule's ``travel_time_s`` where given, else ``horizon_s``.
    """

    name: ClassVar[str] = "bus"
    app_code: ClassVar[int] = 5

    def __init__(self, *, late_after_s: float = 30.0, schedule_slack_s: float = 60.0,
                 horizon_s: float = 20.0, min_speed_mps: float = 3.0) -> None:
        self.late_after_s = late_after_s
        self.schedule_slack_s = schedule_slack_s
        self.horizon_s = horizon_s
        self.min_speed_mps = min_speed_mps

    def reset(self, net: CompiledNetwork) -> None:
        super().reset(net)
        self.horizon_ = ingress_horizons(net, ("bus", "tram"), float(self.horizon_s))

    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        v = obs.v2x
        eta = v.eta_s(self.min_speed_mps)
        # Per-group horizons (0 where the intersection's rules leave a group out); a bus
        # whose movement is not known yet gets the default.
        g = np.clip(v.group, 0, self.horizon_.shape[1] - 1)
        horizon = np.where(v.group >= 0, self.horizon_[v.intersection, g], float(self.horizon_s))
        late = v.lateness_s - self.schedule_slack_s >= self.late_after_s
        mask = (v.role == Role.BUS) & v.app & late & (eta <= horizon)
        return rows_to_requests(mask, v, self.app_code, PriorityClass.PUBLIC_TRANSPORT, eta[mask])


class TruckPriority(PriorityApplication):
    """Truck priority: a green is held for a truck approaching it at speed, within a budget.

    Parameters (keyword only): ``min_speed_mps`` (default 8.3 m/s = 30 km/h: slower trucks
    can stop comfortably), ``horizon_s`` (default 8 s: the dilemma zone of a heavy vehicle).
    """

    name: ClassVar[str] = "truck"
    app_code: ClassVar[int] = 6

    def __init__(self, *, min_speed_mps: float = 30.0 / 3.6, horizon_s: float = 8.0) -> None:
        self.min_speed_mps = min_speed_mps
        self.horizon_s = horizon_s

    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        v = obs.v2x
        eta = v.eta_s(1.0)
        mask = (v.role == Role.TRUCK) & v.app & (v.speed_mps >= self.min_speed_mps) & (eta <= self.horizon_s)
        return rows_to_requests(mask, v, self.app_code, PriorityClass.FREIGHT, eta[mask])
