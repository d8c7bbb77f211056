"""GreenFlow for BlueLights: green for an emergency vehicle with lights and siren on.

For an emergency vehicle with a verified request (``app``: a signed SREM whose ticket
allows the emergency class; a CAM alone never asks, see :mod:`ivri.gateway.ingest`) and
its status (position on its route, speed, lights and siren) it requests green for the vehicle's signal group with its estimated arrival at the stop line.
Requests start far out (``range_m``, 1 km by default: in Dutch practice requests may come
minutes before the stop line), so that the arbiter can plan the switch: it keeps
conflicting groups from starting once they could still delay the vehicle, ends the running
conflicting greens (never below their minimum green, with full amber and intergreen) in time
for the queue in front of the vehicle to leave, holds the green until the vehicle has passed
(its request ends when it is past the stop line or has turned away), and then serves the
groups it held back first (compensation). Several emergency vehicles: earliest arrival
first; a vehicle that stops or never arrives is dropped after the class's time-out.

The approach is cleared, not only the vehicle's own movement: the groups that share a lane
with its group are requested too. A right-turner at the head of a shared straight-and-right
lane would otherwise hold the emergency vehicle behind it at a green straight arrow (seen on
corridor:peak: 96 s of waiting behind a turner at a red right-turn arrow).
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
    ingress_horizons,
    rows_to_requests,
)
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

    An intersection whose config lists emergency ingress rules (``priority`` with kind
    ``emergency``, e.g. imported from a TLCGen file's HD rules) grants GreenFlow only to
    vehicles on those groups.
    """

    name: ClassVar[str] = "greenflow"
    app_code: ClassVar[int] = 1

    def __init__(self, *, range_m: float = 1000.0, min_speed_mps: float = 5.0,
                 siren_only: bool = True) -> None:
        self.range_m = range_m
        self.min_speed_mps = min_speed_mps
        self.siren_only = siren_only

    def reset(self, net: CompiledNetwork) -> None:
        super().reset(net)
        # partners[i, g, k]: group k shares an incoming lane with group g.
        n_i, n_g = net.timing.valid.shape
        partners = np.zeros((n_i, n_g, n_g), dtype=np.bool_)
        for i, x in enumerate(net.config.intersections):
            lanes = [set(sg.lanes) for sg in x.signal_groups]
            for g, lg in enumerate(lanes):
                for k, lk in enumerate(lanes):
                    partners[i, g, k] = k != g and bool(lg & lk)
        self.partners_ = partners
        self.allowed_ = ingress_horizons(net, ("emergency",), 1.0) > 0.0
        if not float(self.range_m) > 0.0:
            raise ConfigError(f"greenflow: range_m must be positive, got {self.range_m}")
        if not float(self.min_speed_mps) > 0.0:
            raise ConfigError(f"greenflow: min_speed_mps must be positive, got {self.min_speed_mps}")

    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        v = obs.v2x
        # Only a verified request asks (``app``): a CAM describes a vehicle, it never requests.
        mask = (v.role == Role.EMERGENCY) & v.app & (v.distance_m <= self.range_m)
        if self.siren_only:
            mask &= v.siren
        if mask.any():  # a vehicle whose movement is known asks only where a rule allows it
            g = np.clip(v.group, 0, self.allowed_.shape[1] - 1)
            mask &= (v.group < 0) | self.allowed_[v.intersection, g]
        eta = v.eta_s(self.min_speed_mps)[mask]
        own = rows_to_requests(mask, v, self.app_code, PriorityClass.EMERGENCY, eta)
        # The groups that share a lane with its group, with the same arrival (one small loop
        # over the emergency vehicles in range: a handful at most).
        extra = []
        for r in range(len(own)):
            i, g = int(own.intersection[r]), int(own.group[r])
            if g < 0 or g >= self.partners_.shape[1]:
                continue  # movement not known yet, or not in the network: no partners
            ks = np.nonzero(self.partners_[i, g])[0]
            if len(ks):
                extra.append(PriorityRequests(
                    key=(own.key[r] & ~np.int64(0xFF)) | (np.int64(64) + ks.astype(np.int64)),
                    intersection=np.full(len(ks), i), group=ks,
                    cls=np.full(len(ks), int(PriorityClass.EMERGENCY)), eta_s=np.full(len(ks), own.eta_s[r])))
        return PriorityRequests.concat([own, *extra]) if extra else own
