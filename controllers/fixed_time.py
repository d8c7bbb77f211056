"""Fixed-time control: every stage in turn, each with a fixed green, in a fixed cycle.

The baseline every benchmark shows. Per intersection the plan is computed once (at
:meth:`FixedTime.reset`); per tick the controller only looks up where in its cycle each
intersection is, for all intersections in one vectorised numpy pass.

The plan of one intersection, stage ``k`` in cycle order (``CompiledNetwork.stages``)::

    slot k  = transition_k + green_k
    cycle   = sum of all slots
    transition_k = max intergreen from the groups that end (in stage k-1, not in k)
                   into the groups that start (in k, not in k-1)

During slot ``k`` the controller requests the groups of stage ``k``. The core ends the groups
of stage ``k-1`` at the start of the slot and starts those of ``k`` once their intergreens
have passed, i.e. ``transition_k`` later, so every group of stage ``k`` shows ``green_k`` of
green (less a tick lost to rounding when an intergreen is not a whole number of ticks). The
cycle is exact whatever the tick: the plan runs on the clock, not on events. ``offset_s`` is the
time in the cycle at which the green of stage 0 starts (the coordination reference).

Group-based ends. ``transition_k`` is set by the ending group with the longest clearance
(often a pedestrian crossing: 10-16 s). A group with a shorter clearance into the starting
groups need not stop as early: as in a Dutch group-based plan, it keeps its green into slot
``k`` for ``transition_k - its own intergreen`` more (at most up to its max green), so its
clearance ends just as stage ``k`` starts. The cycle and the starts of green do not change;
the motor groups beside a wide crossing simply get the seconds the crossing's clearance
would otherwise waste. ``green_s`` is thus the green of each stage's binding group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.idx import GREEN, MODE_CODES
from ivri.core.state import SignalState
from ivri.errors import ConfigError

from ._common import EPS_S, check_observation, transition_s
from .base import Controller, Observation

__all__ = ["FixedTime"]


class FixedTime(Controller):
    """Fixed-time plan: the stages in cycle order, a fixed green each, an optional offset.

    Parameters (keyword only, stored unchanged):

    ``green_s`` (default 20 s)
        Green time of every stage. 20 s is a common urban value: with two to four stages and
        5-6 s intergreens it gives cycles of 50-100 s, the range Dutch fixed-time plans use.
    ``offset_s`` (default 0)
        Time in the cycle at which stage 0 of an intersection turns green, for coordination
        (green waves). One number for all intersections, a sequence in intersection order,
        or a mapping from intersection id to offset (missing ids: 0).
    ``min_green_by_mode_s`` (default None)
        Per-mode minimum of a stage's green, e.g. ``{"pedestrian": 8.0, "bicycle": 10.0}``:
        a stage is green at least as long as the largest minimum of the modes in it.
    ``stage_green_s`` (default None)
        A green time per stage for named intersections, ``{"J1": [30.0, 15.0]}``; overrides
        ``green_s`` there.

    Every stage's green is first capped at the smallest ``max_green_s`` of its groups (the
    core would end a longer green at max green as soon as a conflicting group calls, and the
    plan would then stutter), and then raised to the largest ``min_green_s`` of its groups and
    the per-mode minimum (the core never ends a green earlier; a hard floor wins).

    Attributes after :meth:`reset`: ``cycle_s_`` (float ``[I]``), ``green_s_`` and
    ``transition_s_`` (float ``[I, S]``, 0 for padding stages), ``extra_green_s_`` (float
    ``[I, S, G]``: how long into slot ``k`` an ending group of stage ``k-1`` stays green),
    ``request_`` (the bool ``[I, G]`` array that :meth:`step` returns, reused every tick).
    """

    name: ClassVar[str] = "fixed-time"

    def __init__(
        self,
        *,
        green_s: float = 20.0,
        offset_s: float | Sequence[float] | Mapping[str, float] = 0.0,
        min_green_by_mode_s: Mapping[str, float] | None = None,
        stage_green_s: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.green_s = green_s
        self.offset_s = offset_s
        self.min_green_by_mode_s = min_green_by_mode_s
        self.stage_green_s = stage_green_s

    # -- plan -------------------------------------------------------------------------------

    def _offsets(self, net: CompiledNetwork) -> np.ndarray:
        n_i = net.n_intersections
        off = self.offset_s
        if isinstance(off, Mapping):
            unknown = sorted(set(off) - set(net.intersection_ids))
            if unknown:
                raise ConfigError(
                    f"fixed-time: offset_s names unknown intersections {unknown}; "
                    f"known: {list(net.intersection_ids)}"
                )
            return np.array([float(off.get(x, 0.0)) for x in net.intersection_ids])
        if isinstance(off, (int, float)):
            return np.full(n_i, float(off))
        values = np.asarray(off, dtype=np.float64)
        if values.shape != (n_i,):
            raise ConfigError(
                f"fixed-time: offset_s has {values.size} values for {n_i} intersections"
            )
        return values

    def _base_greens(self, net: CompiledNetwork, i: int, n_s: int) -> np.ndarray:
        per_stage = (self.stage_green_s or {}).get(net.intersection_ids[i])
        if per_stage is None:
            return np.full(n_s, float(self.green_s))
        greens = np.asarray(per_stage, dtype=np.float64)
        if greens.shape != (n_s,):
            raise ConfigError(
                f"fixed-time: stage_green_s[{net.intersection_ids[i]!r}] has {greens.size} "
                f"values for {n_s} stages"
            )
        return greens

    def _mode_minimum(self, net: CompiledNetwork) -> np.ndarray:
        """float ``[I, G]``: the per-mode minimum stage green of every group (0 if none)."""
        out = np.zeros(net.mode.shape)
        for mode, value in (self.min_green_by_mode_s or {}).items():
            if mode not in MODE_CODES:
                raise ConfigError(
                    f"fixed-time: min_green_by_mode_s names unknown mode {mode!r}; "
                    f"known: {sorted(MODE_CODES)}"
                )
            out[net.mode == MODE_CODES[mode]] = float(value)
        return out

    def reset(self, net: CompiledNetwork) -> None:
        """Compute every intersection's plan (loops here run once, not per tick)."""
        super().reset(net)
        if not float(self.green_s) > 0.0:
            raise ConfigError(f"fixed-time: green_s must be positive, got {self.green_s}")
        for ids, greens in (self.stage_green_s or {}).items():
            if ids not in net.intersection_index:
                raise ConfigError(f"fixed-time: stage_green_s names unknown intersection {ids!r}")
            if min(greens, default=1.0) <= 0.0:
                raise ConfigError(f"fixed-time: stage_green_s[{ids!r}] must be positive")
        t = net.timing
        n_i, n_s_max, _ = net.stages.shape
        mode_min = self._mode_minimum(net)
        green = np.zeros((n_i, n_s_max))
        trans = np.zeros((n_i, n_s_max))
        extra = np.zeros(net.stages.shape)
        for i in range(n_i):
            n_s = int(net.n_stages[i])
            green[i, :n_s] = self._base_greens(net, i, n_s)
            for k in range(n_s):
                groups = net.stages[i, k] & t.valid[i]
                if groups.any():
                    green[i, k] = min(green[i, k], t.max_green_s[i, groups].min())
                    green[i, k] = max(
                        green[i, k], t.min_green_s[i, groups].max(), mode_min[i, groups].max()
                    )
            for k in range(n_s):
                groups = net.stages[i, k] & t.valid[i]
                prev_k = (k - 1) % n_s
                prev = net.stages[i, prev_k] & t.valid[i]
                ending, starting = prev & ~groups, groups & ~prev
                trans[i, k] = transition_s(t, i, ending, starting)
                for g in np.flatnonzero(ending):
                    own = transition_s(t, i, np.arange(ending.size) == g, starting)
                    extra[i, k, g] = max(
                        0.0, min(trans[i, k] - own, t.max_green_s[i, g] - green[i, prev_k])
                    )
        slot = trans + green
        self.green_s_ = green
        self.transition_s_ = trans
        self.cycle_s_ = slot.sum(axis=1)
        # End of each slot within the cycle; padding stages never end, so they are never chosen.
        n_stages = net.n_stages[:, None]
        self.slot_end_s_ = np.where(
            np.arange(n_s_max)[None, :] < n_stages, np.cumsum(slot, axis=1), np.inf
        )
        self.slot_start_s_ = np.cumsum(slot, axis=1) - slot
        self.extra_green_s_ = extra
        # The cycle clock starts at the start of slot 0, transition_0 before stage 0's green.
        self.shift_s_ = trans[:, 0] - self._offsets(net)
        self.stages_ = np.ascontiguousarray(net.stages, dtype=np.bool_)
        self.rows_ = np.arange(n_i)
        self.last_stage_ = np.maximum(net.n_stages.astype(np.int64) - 1, 0)
        self.stage_ = np.zeros(n_i, dtype=np.int64)
        self.phase_s_ = np.zeros(n_i)
        self.pos_s_ = np.zeros(n_i)
        self.request_ = net.full(False, np.bool_)

    # -- per tick ---------------------------------------------------------------------------

    def step(self, obs: Observation, signals: SignalState) -> np.ndarray:
        """Request the groups of the stage whose slot contains ``obs.t_s``, everywhere at once.

        Plus the ending groups of the previous stage that still have extra green, if they are
        green: a group that is not green (the all-red start) is never started for it.
        """
        # The detectors do not matter here, but a wrong network must not pass unnoticed.
        check_observation(obs, self.request_.shape, self.name)
        # EPS before the modulo: a slot boundary that float rounding puts a hair later still
        # switches on its own tick, and a phase a hair below the cycle wraps to 0.
        np.mod(obs.t_s + self.shift_s_ + EPS_S, self.cycle_s_, out=self.phase_s_)
        np.sum(self.slot_end_s_ <= self.phase_s_[:, None], axis=1, out=self.stage_)
        # np.mod may round up to the cycle itself; that is the start of slot 0, not a stage S.
        np.minimum(self.stage_, self.last_stage_, out=self.stage_)
        k = self.stage_
        np.subtract(self.phase_s_, self.slot_start_s_[self.rows_, k], out=self.pos_s_)
        np.logical_or(
            self.stages_[self.rows_, k],
            (self.pos_s_[:, None] < self.extra_green_s_[self.rows_, k]) & (signals.state == GREEN),
            out=self.request_,
        )
        return self.request_
