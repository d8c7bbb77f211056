"""Max-pressure control (Varaiya 2013): serve the stage whose queues push hardest.

Each stage ``s`` has the pressure of its groups::

    pressure_s = sum over groups g in s of (weight[g] - downstream_queue_veh[g])

where a group's weight is what it has to move: its halting queue (``queue_veh``), and, while
its green discharges (a vehicle passed its loops within ``gap_s``), every vehicle on its
approach (``approach_veh``): a queue that moves halts no more, yet it is still there to pass,
and counting only halting vehicles would cut every green in the middle of its discharge.
Varaiya weighs each movement with its saturation flow; ivri has no saturation flows per
group, so every group weighs 1 (a lane-count weight is folded into the counts, which sum over
the group's lanes). A group whose downstream lanes are full has low or negative pressure, so
the controller does not send traffic into a blocked exit: the property that makes
max-pressure stable in networks. A queue on short exit lanes is small even when they are
full, so a group whose exits are blocked (``exit_blocked``: a vehicle stands just past the
junction on at least half of the lanes its straight links feed) adds no pressure and is not
requested: its green would move (next to) nobody.

Switching costs an intergreen. While the running stage discharges, another stage wins only
when its pressure exceeds the running stage's by what the switch loses: ``lost_veh_per_s``
times the intergreen from the running stage's green groups into the new stage's, but never
more than the running stage's own pressure (it cannot pass more vehicles than it has, so a
trickle is cheap to cut). A running stage that no longer discharges (nothing passed its loops
for ``gap_s``) pays nothing: its green moves nobody, and the first stage with more pressure,
or an equal one with someone calling, takes over at once (the gap-out of max-pressure).

Ties, in order: more road users in the detection zones (``approach_veh``: traffic about to
arrive, so at low flow, when no one queues yet, the controller turns to where traffic
comes), then the longest-waiting calling group (``demand``: a push button with no queue
count; stages take turns), then the running stage (no switch, no lost intergreen, for
nothing), then the lowest stage index. So when all stages are zero everywhere, the running
stage stays.

Which groups of the chosen stage are requested: motor groups that call or are green already
(so a green is not cut by a short lull in detection and then restarted). A pedestrian or
bicycle group is requested while it calls, but while a group outside the stage waits it
starts only once per stage, and stays green only while its own traffic flows or its
clearance into the waiting groups is no longer than that of the stage's green motor groups.
A crossing's clearance (10-16 s over a wide road) is often twice a car's: a crossing green
restarted late in the stage, or kept to its end, holds the next stage back by the
difference. Measured on the bundled crossing (seed 42), these rules and the switching
penalty took max-pressure from 33.6 to 11.4 vehicle-loss hours: the time from the end of one
stage's motor green to the start of the next had been 15-16 s, against 6-7 s under actuated.

Decision times. The controller decides once the requested groups of the running stage have
all been green together for ``period_s`` and for their minimum greens, and from then on every
tick (the switching penalty, not a fixed period, keeps the stage from flapping). Two
exceptions decide at once: when the core is about to end a green of the running stage at max
green (a conflicting group calls), and when a waiting caller is overdue.

Max green. The core ends a green at its ``max_green_s`` when a conflicting group calls; a
controller that keeps requesting it would see it stutter (end, and start again after its
amber and minimum red). So at a decision a stage is not eligible when one of its green groups
would pass its max green before the next decision while a conflicting group calls; the best
eligible stage wins, even with less pressure. When no stage is eligible, the running one stays
and the core cuts what it must.

Per tick the whole network is one call of :func:`max_pressure_kernel`.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np

from ivri.core.compile import CompiledNetwork, Timing
from ivri.core.idx import GREEN
from ivri.core.jit import njit
from ivri.core.state import SignalState
from ivri.errors import ConfigError

from ._common import (
    EPS_S,
    TickClock,
    check_observation,
    clearance_covered,
    contiguous_timing,
    slow_mode_mask,
)
from .base import Controller, Observation

__all__ = ["MaxPressure", "PressureState", "max_pressure_kernel"]


class PressureParams(NamedTuple):
    """The controller's parameters in the form the kernel reads them."""

    gap_s: float            # a green group discharges while a vehicle passed its loops this recently
    lost_veh_per_s: float   # vehicles a discharging stage passes per second (the switching penalty)


class PressureState(NamedTuple):
    """What the controller remembers between ticks, per intersection (a numba-friendly struct)."""

    stage: np.ndarray        # int64[I]   the requested stage; -1 before the first decision
    decided_s: np.ndarray    # float64[I] when the requested stage was chosen
    pressure: np.ndarray     # float64[I, S] pressure of every stage at the last decision
    served: np.ndarray       # bool[I, G]  slow-mode groups that have been green in this stage


@njit
def _flows(sig: SignalState, gap_s: np.ndarray, params: PressureParams, i: int, g: int) -> bool:
    """Whether group ``g`` is green and vehicles still pass its loops (the queue discharges)."""
    return sig.state[i, g] == GREEN and gap_s[i, g] < params.gap_s


@njit
def _weight(
    sig: SignalState, queue: np.ndarray, approach: np.ndarray, gap_s: np.ndarray,
    params: PressureParams, i: int, g: int,
) -> float:
    """The vehicles group ``g`` has to move: its halting queue, or, while its green
    discharges, every vehicle on its approach (a moving queue halts no more, yet it is
    still there to pass)."""
    if _flows(sig, gap_s, params, i, g):
        return max(queue[i, g], approach[i, g])
    return queue[i, g]


@njit
def _stage_pressure(
    stages: np.ndarray, sig: SignalState, queue: np.ndarray, approach: np.ndarray,
    downstream: np.ndarray, blocked: np.ndarray, gap_s: np.ndarray, params: PressureParams,
    s: int, i: int,
) -> float:
    """The pressure of stage ``s``: its groups' weights less their downstream queues; a group
    whose exit is blocked adds nothing (its green moves nobody, whatever the queue)."""
    p = 0.0
    for g in range(sig.state.shape[1]):
        if stages[i, s, g] and not blocked[i, g]:
            p += _weight(sig, queue, approach, gap_s, params, i, g) - downstream[i, g]
    return p


@njit
def _discharging(
    timing: Timing, stages: np.ndarray, sig: SignalState, gap_s: np.ndarray,
    blocked: np.ndarray, params: PressureParams, s: int, i: int,
) -> bool:
    """Whether a group of stage ``s`` discharges into a free exit."""
    for g in range(sig.state.shape[1]):
        if stages[i, s, g] and timing.valid[i, g] and not blocked[i, g] and _flows(
            sig, gap_s, params, i, g
        ):
            return True
    return False


@njit
def _transition_s(timing: Timing, stages: np.ndarray, sig: SignalState, cur: int, s: int,
                  i: int) -> float:
    """The intergreen from the green groups of stage ``cur`` that ``s`` does not keep into the
    groups of ``s``: how long nobody moves when the controller switches from ``cur`` to ``s``."""
    n_g = sig.state.shape[1]
    lost = 0.0
    for g in range(n_g):
        if not (sig.state[i, g] == GREEN and stages[i, cur, g] and not stages[i, s, g]):
            continue
        for k in range(n_g):
            if stages[i, s, k] and timing.valid[i, k] and timing.conflict[i, g, k]:
                lost = max(lost, timing.intergreen_s[i, g, k])
    return lost


@njit
def _better(o: bool, p: float, a: float, d: float, cur: bool,
            bo: bool, bp: float, ba: float, bd: float, bcur: bool) -> bool:
    """Lexicographic (overdue, pressure, approach, longest wait, running); a tie is not better."""
    if o != bo:
        return o
    if o and d != bd:
        return d > bd
    if p != bp:
        return p > bp
    if a != ba:
        return a > ba
    if d != bd:
        return d > bd
    return cur and not bcur


@njit
def _decide(
    timing: Timing,
    stages: np.ndarray,
    n_s: int,
    sig: SignalState,
    demand: np.ndarray,
    queue: np.ndarray,
    approach: np.ndarray,
    downstream: np.ndarray,
    blocked: np.ndarray,
    hold_s: np.ndarray,
    gap_s: np.ndarray,
    patience_s: np.ndarray,
    dt_s: float,
    params: PressureParams,
    cur: int,
    pressure: np.ndarray,
    i: int,
) -> int:
    """The stage to request at intersection ``i`` from now on (``cur`` if nothing beats it)."""
    n_g = sig.state.shape[1]
    valid = timing.valid[i]
    # Does the running stage still move traffic? Then a switch costs the vehicles it would
    # have passed during the intergreen, and the winner has to make up for them.
    flowing = cur >= 0 and _discharging(timing, stages, sig, gap_s, blocked, params, cur, i)
    # It cannot pass more than it has: a trickle is cheap to cut.
    p_cur = _stage_pressure(stages, sig, queue, approach, downstream, blocked, gap_s, params,
                            cur, i) if flowing else 0.0
    best = cur
    b_elig = False
    b_over = False
    bp = ba = bd = 0.0
    b_cur = True
    for s in range(n_s):
        row = stages[i, s]
        p = 0.0
        a = 0.0
        d = 0.0
        eligible = True
        for g in range(n_g):
            if not (row[g] and valid[g]):
                continue
            if blocked[i, g]:
                # Its exit is blocked: a green moves nobody, whatever the queue.
                continue
            p += _weight(sig, queue, approach, gap_s, params, i, g) - downstream[i, g]
            a += approach[i, g]
            if demand[i, g]:
                # The longest wait of a calling group: under equal pressure the stages take
                # turns (a count of calling groups would let a small stage lose every tie).
                d = max(d, sig.wait_s[i, g] + dt_s)
            # Would the core cut it at max green before the next decision?
            if (
                eligible
                and sig.state[i, g] == GREEN
                and sig.elapsed_s[i, g] + dt_s + (dt_s if s == cur else hold_s[i, s])
                > timing.max_green_s[i, g] + EPS_S
            ):
                for k in range(n_g):
                    if timing.conflict[i, g, k] and valid[k] and demand[i, k]:
                        eligible = False
                        break
        pressure[i, s] = p
        is_cur = s == cur
        if flowing and not is_cur:
            p -= min(params.lost_veh_per_s * _transition_s(timing, stages, sig, cur, s, i),
                     max(p_cur, 0.0))
        over = d >= patience_s[i] - EPS_S
        if s == 0 or (eligible and not b_elig) or (
            eligible == b_elig and _better(over, p, a, d, is_cur, b_over, bp, ba, bd, b_cur)
        ):
            best, b_elig, b_over, bp, ba, bd, b_cur = s, eligible, over, p, a, d, is_cur
    if not b_elig and cur >= 0:
        return cur
    return best


@njit
def _serves(
    timing: Timing, stages: np.ndarray, along: np.ndarray, sig: SignalState, demand: np.ndarray,
    gap_s: np.ndarray, blocked: np.ndarray, params: PressureParams, served: np.ndarray,
    waiting: bool, s: int, i: int, g: int,
) -> bool:
    """Whether stage ``s`` requests group ``g`` (never when its exit is blocked).

    A motor group: when it calls or is green. A pedestrian or bicycle group (``along``)
    when it calls and, while a group outside the stage waits (``waiting``): to start, only
    for its first green in the stage; to stay green, only while its own traffic flows or its
    clearance costs the next stage nothing (:func:`~._common.clearance_covered`). A crossing green restarted late
    in a stage would hold the next stage back by its whole clearance.
    """
    if not (stages[i, s, g] and timing.valid[i, g]) or blocked[i, g]:
        return False
    if not along[i, g]:
        return demand[i, g] or sig.state[i, g] == GREEN
    if not demand[i, g]:
        return False
    if not waiting:
        return True
    if sig.state[i, g] != GREEN:
        return not served[i, g]
    return _flows(sig, gap_s, params, i, g) or clearance_covered(timing, sig, demand, i, g, stages[i, s], along[i])


@njit
def _cut_now(
    timing: Timing, stages: np.ndarray, sig: SignalState, demand: np.ndarray, dt_s: float,
    cur: int, i: int,
) -> bool:
    """Whether the core ends a green of the running stage at max green on this tick."""
    n_g = sig.state.shape[1]
    for g in range(n_g):
        if not (stages[i, cur, g] and timing.valid[i, g] and sig.state[i, g] == GREEN):
            continue
        if sig.elapsed_s[i, g] + dt_s >= timing.max_green_s[i, g] - EPS_S:
            for k in range(n_g):
                if timing.conflict[i, g, k] and timing.valid[i, k] and demand[i, k]:
                    return True
    return False


@njit
def max_pressure_kernel(
    timing: Timing,
    stages: np.ndarray,
    n_stages: np.ndarray,
    along: np.ndarray,
    hold_s: np.ndarray,
    patience_s: np.ndarray,
    sig: SignalState,
    demand: np.ndarray,
    gap_s: np.ndarray,
    queue: np.ndarray,
    approach: np.ndarray,
    downstream: np.ndarray,
    blocked: np.ndarray,
    t_s: float,
    dt_s: float,
    params: PressureParams,
    st: PressureState,
    request: np.ndarray,
) -> None:
    """One tick of max-pressure control for every intersection, in place.

    ``along`` (bool ``[I, G]``) marks the pedestrian and bicycle groups. ``hold_s`` (float
    ``[I, S]``) is how long a stage's requested groups must have been green together before
    the controller reconsiders it (``period_s``, capped at the stage's max green, or its
    largest minimum green if longer); from then on it decides every tick. ``t_s`` is the time
    of the tick these requests are for, ``dt_s`` the tick length (the state ``sig`` was set
    ``dt_s`` earlier). Updates ``st`` and writes ``request`` (bool ``[I, G]``).
    """
    n_i, n_g = sig.state.shape
    for i in range(n_i):
        cur = st.stage[i]
        due = cur < 0 or _cut_now(timing, stages, sig, demand, dt_s, cur, i)
        waiting = False
        for g in range(n_g):
            if (cur >= 0 and demand[i, g] and timing.valid[i, g] and not stages[i, cur, g]
                    and sig.state[i, g] != GREEN and not blocked[i, g]):
                waiting = True
                # A waiting caller that is overdue forces a decision now.
                if sig.wait_s[i, g] + dt_s >= patience_s[i] - EPS_S:
                    due = True
        if not due and t_s - st.decided_s[i] >= hold_s[i, cur] - EPS_S:
            # Green together for: the shortest green among the stage's groups, as it will
            # be at the end of this tick; none if one of them is not green.
            together_s = np.inf
            for g in range(n_g):
                if _serves(timing, stages, along, sig, demand, gap_s, blocked, params, st.served,
                           waiting, cur, i, g):
                    if sig.state[i, g] != GREEN:
                        together_s = -1.0
                        break
                    together_s = min(together_s, sig.elapsed_s[i, g] + dt_s)
            due = together_s >= hold_s[i, cur] - EPS_S
        if due:
            s = _decide(
                timing, stages, n_stages[i], sig, demand, queue, approach, downstream, blocked,
                hold_s, gap_s, patience_s, dt_s, params, cur, st.pressure, i,
            )
            if s != cur:
                st.stage[i] = s
                st.decided_s[i] = t_s
                st.served[i, :] = False
                waiting = False
                for g in range(n_g):
                    if (demand[i, g] and timing.valid[i, g] and not stages[i, s, g]
                            and sig.state[i, g] != GREEN and not blocked[i, g]):
                        waiting = True
                        break
        s = st.stage[i]
        for g in range(n_g):
            request[i, g] = _serves(timing, stages, along, sig, demand, gap_s, blocked, params,
                                    st.served, waiting, s, i, g)
            if along[i, g] and stages[i, s, g] and sig.state[i, g] == GREEN:
                st.served[i, g] = True


class MaxPressure(Controller):
    """Max-pressure (Varaiya): the stage with the largest pressure, switched when the gain pays the intergreen.

    Parameters (keyword only, stored unchanged):

    ``period_s`` (default 10.0 s)
        How long a chosen stage's groups are green together (and at least their minimum
        greens) before the controller reconsiders; from then on it decides every tick. It
        covers the start-up of the queue, before the loops see it move. Measured with the
        other defaults (vehicle-loss hours, seed 42, tjunction / corridor / ingolstadt7):
        5 s 25.4 / 50.6 / 32.1, 10 s 23.7 / 44.2 / 37.0, 15 s - / - / 49.7; 20 s (with a 1 veh/s
        penalty) 24.6 / 59.6 / -.
    ``gap_s`` (default 3.0 s)
        A green group discharges while a vehicle passed its loops this recently: the gap of
        vehicle-actuated control (a queue leaving at saturation flow passes a loop every
        1.5-2.5 s). 2.0 s: ingolstadt7 37.1 against 34.9 veh-h (seeds 42, 43).
    ``lost_veh_per_s`` (default 4.0)
        The switching penalty: vehicles per second of intergreen that a discharging stage
        would have passed (at most its own pressure). About the saturation flow of the
        stage's lanes together (0.5 veh/s a lane). Measured before the cap at the stage's own
        pressure (seed 42, tjunction / corridor, period 10 s): 1 veh/s 33.1 / 45.2, 2 veh/s
        23.5 / 43.9, 4 veh/s 20.9 / 42.4; the cap then took ingolstadt7 from 54.7 to 37.0.

    Attributes after :meth:`reset`: ``state_`` (:class:`PressureState`: ``stage`` int
    ``[I]``, ``decided_s`` float ``[I]``, ``pressure`` float ``[I, S]`` at the last decision,
    ``served`` bool ``[I, G]``), ``hold_s_`` (float ``[I, S]``), ``along_`` (bool ``[I, G]``:
    pedestrian and bicycle groups), ``params_`` (:class:`PressureParams`), ``request_``
    (returned by :meth:`step`, reused).
    """

    name: ClassVar[str] = "max-pressure"

    def __init__(
        self, *, period_s: float = 10.0, gap_s: float = 3.0, lost_veh_per_s: float = 4.0,
    ) -> None:
        self.period_s = period_s
        self.gap_s = gap_s
        self.lost_veh_per_s = lost_veh_per_s

    def reset(self, net: CompiledNetwork) -> None:
        """No stage yet: the first tick decides, everywhere."""
        super().reset(net)
        if not float(self.period_s) > 0.0:
            raise ConfigError(f"max-pressure: period_s must be positive, got {self.period_s}")
        if not float(self.gap_s) > 0.0:
            raise ConfigError(f"max-pressure: gap_s must be positive, got {self.gap_s}")
        if not float(self.lost_veh_per_s) >= 0.0:
            raise ConfigError(
                f"max-pressure: lost_veh_per_s must be >= 0, got {self.lost_veh_per_s}"
            )
        self.params_ = PressureParams(
            gap_s=float(self.gap_s), lost_veh_per_s=float(self.lost_veh_per_s)
        )
        self.timing_ = contiguous_timing(net)
        self.stages_ = np.ascontiguousarray(net.stages, dtype=np.bool_)
        self.n_stages_ = np.ascontiguousarray(net.n_stages, dtype=np.int64)
        self.along_ = np.ascontiguousarray(slow_mode_mask(net) & net.timing.valid)
        # Largest min green per stage (0 for empty and padding stages): never decide earlier.
        min_green = np.where(
            self.stages_ & self.timing_.valid[:, None, :], self.timing_.min_green_s[:, None, :], 0.0
        ).max(axis=2)
        # A hold longer than the stage's max green means nothing: the core ends the green there
        # when a conflicting group calls, so the period is capped at it.
        max_green = np.where(
            self.stages_ & self.timing_.valid[:, None, :], self.timing_.max_green_s[:, None, :], 0.0
        ).max(axis=2)
        self.hold_s_ = np.maximum(min_green, np.minimum(float(self.period_s), max_green))
        # Pure max-pressure has no bound on waiting: a lightly loaded stage can lose every
        # decision. A calling group that has waited half a cycle of maxed-out stages makes
        # its stage overdue, and overdue stages win (longest wait first), so every caller is
        # served within one such cycle, well before the core's anti-starvation must step in.
        clear = self.timing_.intergreen_s.max(axis=(1, 2))
        self.patience_s_ = 0.5 * (max_green.sum(axis=1) + net.n_stages * clear)
        n_i, n_s, _ = self.stages_.shape
        self.state_ = PressureState(
            stage=np.full(n_i, -1, dtype=np.int64),
            decided_s=np.full(n_i, -np.inf),
            pressure=np.zeros((n_i, n_s)),
            served=net.full(False, np.bool_),
        )
        self.request_ = net.full(False, np.bool_)
        self.free_ = net.full(False, np.bool_)  # "no exit blocked", when not measured
        self.clock_ = TickClock()

    def step(self, obs: Observation, signals: SignalState) -> np.ndarray:
        """One kernel call for the whole network; returns ``request_``."""
        check_observation(obs, self.request_.shape, self.name)
        dt_s = self.clock_.tick(obs.t_s)
        max_pressure_kernel(
            self.timing_, self.stages_, self.n_stages_, self.along_, self.hold_s_, self.patience_s_,
            signals,
            obs.demand, obs.gap_s, obs.queue_veh, obs.approach_veh, obs.downstream_queue_veh,
            obs.exit_blocked if obs.exit_blocked is not None else self.free_,
            float(obs.t_s), dt_s, self.params_, self.state_, self.request_,
        )
        return self.request_
