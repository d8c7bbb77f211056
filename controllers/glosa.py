"""GLOSA: speed advice from the signal timing (SPaT), and time-to-green for cyclists.

An information service, not a priority application in the strict sense: it never asks for
green (:meth:`Glosa.requests` returns no rows) and never touches the lights. Each tick it
reads the connected road users (the :class:`~.v2x.V2XObservation` rows) and, once the core
has advanced, the core's SPaT (:meth:`ivri.core.engine.SignalCore.time_to_change_s`, the same
``minEndTime`` / ``maxEndTime`` the gateway broadcasts), and advises a speed to every equipped
car, truck or bus that would otherwise reach a red stop line too early::

    v = distance / time_to_green        clipped to [min_speed, cruising speed]

so that it arrives as the light turns green instead of stopping and starting again. Cyclists
with the app see the time to green (the same computation, their own minimum speed); a share
of them (``cyclist_share``) follows it.

Advice only within the committed window. The core's SPaT is a committed forecast
(:mod:`ivri.core.forecast`): ``min_s`` is a start of green that cannot come sooner (minimum
red, every intergreen, the minimum green of a running conflicting green, and what the
controller has committed to, e.g. a green that ``cv-actuated`` holds for a platoon). By
default (``latest_weight`` 0) a red group's time to green is exactly that committed earliest
start, or the controller's committed likely time where it gave one: a vehicle is never slowed
to arrive later than the green can come, so the advice cannot add delay to it or to the
vehicles behind it, which is what advice built on a guessed start under vehicle-actuated
control did (corridor:peak: +2.5 vehicle-hours). ``latest_weight`` > 0 moves the target
towards the latest end of the conflicting greens (``max_s``), outside what is committed.
An amber group: the rest of its amber, a conflicting stage and the intergreens back. The
advice is refreshed every tick, and a vehicle whose light turns green is released at once.

Who is advised (all array work, no loop over road users):

* role CAR, TRUCK or BUS (never EMERGENCY, never pedestrians), or CYCLIST when followed;
* within ``range_m`` of the stop line and farther than ``min_distance_m``;
* its group shows red or amber;
* at its present speed it would arrive before the estimated green (it would stop), or it
  was advised last tick (the advice continues while it still saves a stop: no flapping);
* the advised speed is below its cruising speed (its speed when first advised, at most
  ``max_speed_mps``) by ``hysteresis_mps`` at the start.

A green group gets no advice: the road user keeps its speed (whether it can pass or not;
the core's amber and red protect it). The output is :class:`SpeedAdvice`, collected by
:meth:`~.arbiter.PriorityArbiter.advice` and applied by the SUMO bridge
(:meth:`ivri.sumo.bridge.SumoBridge.apply_advice`). Tokens are in-memory pseudonyms; nothing
here is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.idx import AMBER, GREEN, RED
from ivri.core.state import SignalState

from ._rows import Rows
from .base import Observation
from .priority import PriorityApplication, PriorityRequests
from .v2x import Role, V2XObservation

__all__ = ["GLOSA_CAR_SHARE", "Glosa", "SpeedAdvice", "time_to_green_s"]

#: Share of cars equipped for GLOSA when a run with ``glosa`` names no car share: the
#: runner sets the V2X emulator's ``car`` share (default 0.0) to this.
GLOSA_CAR_SHARE = 0.2

_ADVISED_ROLES = (Role.CAR, Role.TRUCK, Role.BUS)


@dataclass
class SpeedAdvice(Rows):
    """Active speed advice, one row per advised road user (arrays of length N).

    ``token``      int64: the road user's in-memory pseudonym (:class:`~.v2x.V2XObservation`)
    ``speed_mps``  float64: the advised speed; a road user not listed has no advice (drives
                   as it likes: keep your speed)
    """

    token: np.ndarray
    speed_mps: np.ndarray

    DTYPES: ClassVar[dict[str, type]] = {"token": np.int64, "speed_mps": np.float64}


def time_to_green_s(net: CompiledNetwork, signals: SignalState, spat: Any,
                    latest_weight: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Estimated seconds until each group shows green and the spread of that estimate.

    Returns ``(ttg, spread)`` (float64 ``[I, G]``; 0 where green): the estimate lies
    ``latest_weight`` of the way from the earliest to the latest start, ``spread`` is latest
    minus earliest. ``spat`` is the core's :class:`~ivri.core.engine.TimeToChange`
    (``min_s``, ``max_s``) for ``signals``. See the module docstring.
    """
    t = net.timing
    st = signals.state
    valid = t.valid
    conflict = t.conflict & valid[:, None, :] & valid[:, :, None]        # [I, G, K]
    green = (st == GREEN) & valid
    switch_kg = np.maximum(np.swapaxes(t.intergreen_s, 1, 2), t.amber_s[:, None, :])  # [I, G, K]: k -> g
    # A red group: at the earliest the core's bound; at the latest when the running
    # conflicting greens k have run to their latest end, plus the switch to it.
    latest_k = np.minimum(spat.max_s, np.maximum(t.max_green_s - signals.elapsed_s, spat.min_s))
    lo = spat.min_s
    hi = np.maximum(lo, np.where(conflict & green[:, None, :], latest_k[:, None, :] + switch_kg, 0.0).max(axis=2))
    # An amber group: the rest of its amber, one conflicting stage, the switch back.
    amber = st == AMBER
    lo_stage = np.where(conflict, t.min_green_s[:, None, :] + switch_kg, 0.0).max(axis=2)
    hi_stage = np.where(conflict, t.max_green_s[:, None, :] + switch_kg, 0.0).max(axis=2)
    lo = np.where(amber, spat.min_s + lo_stage, lo)
    hi = np.where(amber, spat.min_s + hi_stage, hi)
    off = (st == GREEN) | ~valid
    # No green in sight (the core gives no bound: lo is infinite): no window either, rather
    # than inf - inf.
    with np.errstate(invalid="ignore"):
        width = np.where(np.isinf(lo), 0.0, hi - lo)
    ttg = lo + latest_weight * width
    likely = getattr(spat, "likely_s", None)
    if likely is not None:
        # The controller's committed likely start, where it gave one (inside [min_s, max_s]).
        ttg = np.where((st == RED) & np.isfinite(likely), np.maximum(likely, lo), ttg)
    ttg = np.where(off, 0.0, ttg)
    return ttg, np.where(off, 0.0, width)


def _followers(token: np.ndarray, share: float) -> np.ndarray:
    """bool per token: this road user follows the advice (deterministic, ``share`` of them)."""
    if share >= 1.0 or share <= 0.0:
        return np.full(len(token), share >= 1.0, dtype=np.bool_)
    h = (token.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)
    return h.astype(np.float64) / 2.0**53 < share


class Glosa(PriorityApplication):
    """Speed advice from SPaT time-to-green (GLOSA), and time-to-green for cyclists.

    Parameters (keyword only): ``range_m`` (default 300 m), ``min_speed_mps`` (15 km/h: no
    slower advice for motor vehicles), ``max_speed_mps`` (50 km/h: cap of the cruising
    speed), ``cyclist_share`` (share of the cyclists with the app who follow their time to
    green, default 0.5), ``cyclist_min_speed_mps`` (10 km/h), ``latest_weight`` (0.0: the
    committed earliest start; see :func:`time_to_green_s`), ``queue_headway_s`` (1.0 s per
    vehicle queued at the stop line: arrive when it has started to move),
    ``min_distance_m`` (10 m: closer, no new advice), ``hysteresis_mps`` (0.5 m/s),
    ``max_spread_s`` (default inf: off; e.g. 5 s: no advice while the latest start of the
    green is more than this after the earliest; measured on crossing:peak, seeds 42/1/2, it
    made runs worse, so it is off).

    It requests no priority; :meth:`advice` returns the speed advice of the last tick.
    """

    name: ClassVar[str] = "glosa"
    app_code: ClassVar[int] = 7

    def __init__(
        self,
        *,
        range_m: float = 300.0,
        min_speed_mps: float = 15.0 / 3.6,
        max_speed_mps: float = 50.0 / 3.6,
        cyclist_share: float = 0.5,
        cyclist_min_speed_mps: float = 10.0 / 3.6,
        latest_weight: float = 0.0,
        queue_headway_s: float = 1.0,
        min_distance_m: float = 10.0,
        hysteresis_mps: float = 0.5,
        max_spread_s: float = float("inf"),
    ) -> None:
        self.range_m = range_m
        self.min_speed_mps = min_speed_mps
        self.max_speed_mps = max_speed_mps
        self.cyclist_share = cyclist_share
        self.cyclist_min_speed_mps = cyclist_min_speed_mps
        self.latest_weight = latest_weight
        self.queue_headway_s = queue_headway_s
        self.min_distance_m = min_distance_m
        self.hysteresis_mps = hysteresis_mps
        self.max_spread_s = max_spread_s

    def reset(self, net: CompiledNetwork) -> None:
        super().reset(net)
        self.v2x_ = V2XObservation.empty()
        self.queue_veh_ = net.full(0.0)
        self.advised_token_ = np.zeros(0, np.int64)   # sorted: advised last tick
        self.cruise_mps_ = np.zeros(0, np.float64)    # their speed when first advised
        self.last_ = SpeedAdvice.empty()

    def v2x_shares(self) -> dict[str, float]:
        """GLOSA advises equipped cars: :data:`GLOSA_CAR_SHARE` of them unless a run says."""
        return {"car": GLOSA_CAR_SHARE}

    def gives_advice(self) -> bool:
        """Speed advice every tick."""
        return True

    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        """No priority: only remember this tick's road users for :meth:`advice`."""
        self.v2x_ = obs.v2x
        np.copyto(self.queue_veh_, obs.queue_veh)
        return PriorityRequests.empty()

    def advice(self, signals: SignalState, spat: Any) -> SpeedAdvice:
        """The speed advice for the road users of the last :meth:`requests` call, given the
        core's state and SPaT (``spat``: :class:`~ivri.core.engine.TimeToChange`) after it
        advanced."""
        v = self.v2x_
        n = len(v)
        if n == 0:
            return self._keep(SpeedAdvice.empty(), np.zeros(0, np.int64), np.zeros(0))
        motor = np.isin(v.role, _ADVISED_ROLES)
        cyclist = (v.role == Role.CYCLIST) & _followers(v.token, self.cyclist_share)
        n_i, n_g = signals.state.shape
        ok = ((motor | cyclist) & (v.group >= 0) & (v.group < n_g) & (v.intersection >= 0)
              & (v.intersection < n_i) & (v.distance_m <= self.range_m))
        idx = np.nonzero(ok)[0]
        if len(idx) == 0:
            return self._keep(SpeedAdvice.empty(), np.zeros(0, np.int64), np.zeros(0))
        i, g = v.intersection[idx], v.group[idx]
        state = signals.state[i, g]
        stopping = ((state == RED) | (state == AMBER)) & self.net_.timing.valid[i, g]
        ttg, spread = time_to_green_s(self.net_, signals, spat, self.latest_weight)
        ttg, sure = ttg[i, g], spread[i, g] <= self.max_spread_s
        target_s = ttg + self.queue_veh_[i, g] * self.queue_headway_s
        d, speed, tok = v.distance_m[idx], v.speed_mps[idx], v.token[idx]
        floor = np.where(cyclist[idx], self.cyclist_min_speed_mps, self.min_speed_mps)
        advised = np.maximum(d / np.maximum(target_s, 1e-3), floor)
        # Advised last tick: its cruising speed then; otherwise its speed now (capped).
        pos = np.searchsorted(self.advised_token_, tok)
        pos_c = np.minimum(pos, max(len(self.advised_token_) - 1, 0))
        was = ((pos < len(self.advised_token_)) & (self.advised_token_[pos_c] == tok)
               if len(self.advised_token_) else np.zeros(len(tok), np.bool_))
        cruise = np.where(was, self.cruise_mps_[pos_c] if len(self.cruise_mps_) else 0.0,
                          np.minimum(speed, self.max_speed_mps))
        start = (~was & (d > self.min_distance_m) & (speed >= floor)
                 & (advised < cruise - self.hysteresis_mps))
        keep = was & (advised < cruise)
        sel = stopping & sure & (start | keep)
        return self._keep(SpeedAdvice(tok[sel], advised[sel]), tok[sel], cruise[sel])

    def _keep(self, adv: SpeedAdvice, tok: np.ndarray, cruise: np.ndarray) -> SpeedAdvice:
        order = np.argsort(tok, kind="stable")
        self.advised_token_ = tok[order]
        self.cruise_mps_ = cruise[order]
        self.last_ = adv
        return adv
