"""Connected-vehicle actuated control: the loops of vehicle-actuated control, plus what the
connected vehicles say about themselves beyond the loops.

Vehicle-actuated control (:mod:`.actuated`) knows only what passed its loops: it ends a green at
the first gap even when a platoon is 100 m away, and calls a group only once the first vehicle
stands at the stop line. Connected vehicles send their position and speed (CAMs; the V2X
emulation and the MQTT gateway both deliver them as :class:`~.v2x.V2XObservation` rows), so
this controller predicts their arrivals at the stop line and feeds the unchanged actuated
kernel a richer picture:

* **call early**: a group is called as soon as a connected vehicle will reach its stop line
  within ``call_horizon_s``, before the first vehicle reaches the stop-line loop;
* **extend for a platoon**: a green group counts as "traffic still coming" (no gap) while a
  connected vehicle will reach its stop line within ``extend_horizon_s``, up to its maximum
  green (the core's limit);
* **end when nobody is coming**: with a known equipped share of at least ``end_share``, a
  green whose loops show a gap of ``short_gap_s`` and towards which no connected vehicle is
  coming within ``extend_horizon_s`` gaps out at once instead of after the full gap.

It also commits (:mod:`ivri.core.forecast`) to the green it extends for a platoon: the green
lasts until the last connected vehicle of the platoon has arrived (at most to its maximum
green), so SPaT can promise it and GLOSA can tell approaching drivers they will make it.

With no connected vehicle rows (0 % equipped) it is exactly ``actuated``: the observation
passes through untouched and nothing is committed. Stale CAMs (``--cam-period``) make the
positions older than they are: vehicles are closer than they say, so calls come a little
late and extensions end a little early; nothing worse than the loops alone.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import ClassVar

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.forecast import Commitment, no_commitment
from ivri.core.idx import GREEN
from ivri.core.state import SignalState
from ivri.errors import ConfigError

from ._common import check_observation
from .actuated import VehicleActuated
from .base import NO_DETECTION_S, Observation
from .v2x import Role

__all__ = ["ConnectedActuated", "predicted_arrivals"]

#: The roles whose CAMs describe motor traffic that the signal groups serve.
_MOTOR_ROLES = (int(Role.CAR), int(Role.TRUCK), int(Role.BUS), int(Role.EMERGENCY))


def predicted_arrivals(obs: Observation, shape: tuple[int, int], min_speed_mps: float,
                       horizon_s: float, chain_gap_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per group (float64 ``[I, G]``, seconds from now): the first arrival of a connected motor
    vehicle within ``horizon_s`` (inf: none), and the last arrival of the platoon that starts
    within ``chain_gap_s`` and whose successive arrivals are at most ``chain_gap_s`` apart
    (-inf: none). Array work only: one sort of the rows.
    """
    n_i, n_g = shape
    v = obs.v2x
    first = np.full(n_i * n_g, math.inf)
    last = np.full(n_i * n_g, -math.inf)
    ok = (np.isin(v.role, _MOTOR_ROLES) & (v.group >= 0) & (v.group < n_g)
          & (v.intersection >= 0) & (v.intersection < n_i))
    if not ok.any():
        return first.reshape(shape), last.reshape(shape)
    eta = v.eta_s(min_speed_mps)[ok]
    flat = (v.intersection[ok] * n_g + v.group[ok]).astype(np.int64)
    near = eta <= horizon_s
    np.minimum.at(first, flat[near], eta[near])
    order = np.lexsort((eta, flat))
    f, e = flat[order], eta[order]
    row = np.arange(len(e))
    group_start = np.concatenate(([True], f[1:] != f[:-1]))
    gap_break = ~group_start & (np.diff(e, prepend=0.0) > chain_gap_s)
    breaks = np.cumsum(gap_break)
    start_row = np.maximum.accumulate(np.where(group_start, row, 0))
    in_platoon = (breaks == breaks[start_row]) & (e[start_row] <= chain_gap_s)
    np.maximum.at(last, f[in_platoon], e[in_platoon])
    return first.reshape(shape), last.reshape(shape)


class ConnectedActuated(VehicleActuated):
    """Connected-vehicle actuated: calls early, extends for platoons the loops cannot see yet.

    Parameters (keyword only, stored unchanged): those of ``actuated`` and

    ``call_horizon_s`` (default 10 s)
        A connected vehicle this many seconds from the stop line calls its group.
    ``extend_horizon_s`` (default 3 s)
        A green extends while a connected vehicle will arrive within this time: the gap
        (``gap_s``) a loop at the stop line would see. Measured on crossing:peak (first half
        hour, seeds 42-44, 25 % equipped): 5 s held greens for single vehicles while the
        conflicting queues waited (-3 % vehicle-loss hours against actuated), 3 s gave -9 %.
    ``end_share`` (default 0.6), ``share`` (default None: estimated)
        The equipped share of motor vehicles: given by the operator, or estimated on line as
        the halting connected vehicles over the halting vehicles the detectors count (an
        exponential average over ``share_window_s``, default 300 s). From ``end_share`` on, a
        green ends as soon as its loops show a gap of ``short_gap_s`` (default 1.5 s) and no
        connected vehicle is coming: the vehicles that send nothing are then few.
    ``min_speed_mps`` (default 2 m/s)
        Floor of the arrival estimate (a slow or stopped vehicle still arrives).
    """

    name: ClassVar[str] = "cv-actuated"

    def __init__(
        self,
        *,
        gap_s: float = 3.0,
        min_stage_s: float = 0.0,
        extend_along: bool = True,
        alternative: bool = True,
        extend_on_queue: bool = True,
        exit_aware: bool = True,
        call_horizon_s: float = 10.0,
        extend_horizon_s: float = 3.0,
        share: float | None = None,
        end_share: float = 0.6,
        short_gap_s: float = 1.5,
        share_window_s: float = 300.0,
        min_speed_mps: float = 2.0,
    ) -> None:
        super().__init__(gap_s=gap_s, min_stage_s=min_stage_s, extend_along=extend_along,
                         alternative=alternative, extend_on_queue=extend_on_queue, exit_aware=exit_aware)
        self.call_horizon_s = call_horizon_s
        self.extend_horizon_s = extend_horizon_s
        self.share = share
        self.end_share = end_share
        self.short_gap_s = short_gap_s
        self.share_window_s = share_window_s
        self.min_speed_mps = min_speed_mps

    #: The runner turns the V2X emulation on for this controller (it reads CAM rows).
    uses_v2x: ClassVar[bool] = True

    def reset(self, net: CompiledNetwork) -> None:
        super().reset(net)
        for name in ("call_horizon_s", "extend_horizon_s", "short_gap_s", "share_window_s", "min_speed_mps"):
            if not float(getattr(self, name)) > 0.0:
                raise ConfigError(f"cv-actuated: {name} must be positive, got {getattr(self, name)}")
        if self.share is not None and not 0.0 <= float(self.share) <= 1.0:
            raise ConfigError(f"cv-actuated: share must be between 0 and 1, got {self.share}")
        # Halting connected vehicles and halting vehicles, exponentially averaged.
        self.halting_cv_ = 0.0
        self.halting_all_ = 0.0
        self.last_t_s_ = math.nan
        self.demand_ = net.full(False, np.bool_)
        self.gap_ = net.full(0.0)
        self.commit_ = no_commitment(self.request_.shape)
        self.has_commit_ = False
        self.valid_ = net.timing.valid
        self.max_green_s_ = net.timing.max_green_s

    def step(self, obs: Observation, signals: SignalState) -> np.ndarray:
        """Actuated control on the loops plus the connected vehicles' predicted arrivals."""
        self.has_commit_ = False
        check_observation(obs, self.request_.shape, self.name)
        self._learn_share(obs)
        if len(obs.v2x) == 0:
            return super().step(obs, signals)
        shape = self.request_.shape
        horizon = max(float(self.call_horizon_s), float(self.extend_horizon_s))
        first, last = predicted_arrivals(obs, shape, float(self.min_speed_mps), horizon,
                                         float(self.extend_horizon_s))
        green = signals.state == GREEN
        coming = self.valid_ & (first <= float(self.extend_horizon_s))
        np.logical_or(obs.demand, self.valid_ & ~green & (first <= float(self.call_horizon_s)), out=self.demand_)
        np.copyto(self.gap_, obs.gap_s)
        self.gap_[green & coming] = 0.0
        if self.share_estimate() >= float(self.end_share):
            nobody = green & ~coming & (obs.gap_s >= float(self.short_gap_s)) & (obs.queue_veh <= 0.0)
            self.gap_[nobody] = NO_DETECTION_S
        request = super().step(replace(obs, demand=self.demand_, gap_s=self.gap_), signals)
        # Commit to the green that is extended for a platoon: until its last connected
        # vehicle has arrived, within the maximum green.
        hold = green & request & coming & np.isfinite(last)
        self.commit_.min_end_s[...] = -math.inf
        if hold.any():
            end_cap = obs.t_s - signals.elapsed_s + self.max_green_s_
            self.commit_.min_end_s[hold] = np.minimum(obs.t_s + last[hold], end_cap[hold])
            self.has_commit_ = True
        return request

    def _learn_share(self, obs: Observation) -> None:
        dt = 0.0 if math.isnan(self.last_t_s_) else max(obs.t_s - self.last_t_s_, 0.0)
        self.last_t_s_ = obs.t_s
        keep = math.exp(-dt / float(self.share_window_s))
        v = obs.v2x
        cv = float(np.count_nonzero(np.isin(v.role, _MOTOR_ROLES) & (v.speed_mps < 0.1) & (v.group >= 0)))
        self.halting_cv_ = keep * self.halting_cv_ + cv
        self.halting_all_ = keep * self.halting_all_ + float(obs.queue_veh[self.valid_].sum())

    def share_estimate(self) -> float:
        """The equipped share: the ``share`` parameter, or the on-line estimate (0 until seen)."""
        if self.share is not None:
            return float(self.share)
        return min(self.halting_cv_ / self.halting_all_, 1.0) if self.halting_all_ > 0.0 else 0.0

    def commitment(self) -> Commitment | None:
        """The greens held for an arriving platoon (see the module docstring), or None."""
        return self.commit_ if self.has_commit_ else None
