"""Small helpers shared by the stage-based controllers (not public).

The stage controllers all think in the same terms: the stages of an intersection in cycle
order (``CompiledNetwork.stages``, bool ``[I, S, G]``), the time a transition between two
stages needs (the intergreen from the groups that end into the groups that start), and the
length of the tick, which they need to look one tick ahead (see :class:`TickClock`).
"""

from __future__ import annotations

import math

import numpy as np

from ivri.core.compile import CompiledNetwork, Timing
from ivri.core.compile import contiguous_timing as compile_contiguous
from ivri.core.idx import GREEN, MODE_BICYCLE, MODE_PEDESTRIAN
from ivri.core.jit import njit
from ivri.core.state import SignalState

from .base import Observation

__all__ = [
    "EPS_S",
    "TickClock",
    "check_observation",
    "clearance_covered",
    "contiguous_timing",
    "slow_mode_mask",
    "transition_s",
]

#: Timer tolerance, the same as the core's (``ivri.core.kernel.EPS_S``): a controller that
#: compares a timer with a limit must agree with the core on the tick it expires.
EPS_S = 1.0e-9


class TickClock:
    """The tick length, learnt from the observation times.

    The runner calls ``controller.step(obs, core.signals)`` and then ``core.advance``: the
    state a controller reads was set at ``obs.t_s - dt_s``, and the core adds ``dt_s`` to every
    timer before it compares with a limit. To decide on the same tick as the core (e.g. to end
    a green exactly at its minimum green, not one tick later), a controller therefore looks at
    ``elapsed_s + dt_s``. The interface hands a controller no ``dt_s``, so it is the time
    between two observations (0 on the first tick, when no group is green yet anyway).
    """

    __slots__ = ("last_t_s",)

    def __init__(self) -> None:
        self.last_t_s = math.nan

    def tick(self, t_s: float) -> float:
        """Record ``t_s`` and return the time since the previous observation (>= 0)."""
        dt_s = 0.0 if math.isnan(self.last_t_s) else max(t_s - self.last_t_s, 0.0)
        self.last_t_s = t_s
        return dt_s


def contiguous_timing(net: CompiledNetwork) -> Timing:
    """The network's timing arrays in the one layout the kernels are compiled for."""
    return compile_contiguous(net.timing)


def check_observation(obs: Observation, shape: tuple[int, int], who: str) -> None:
    """Raise ``ValueError`` when the observation does not match the network of ``reset``.

    Only shapes are checked (a few attribute reads per tick): a wrong network is the mistake
    that would otherwise surface as an index error deep inside a kernel.
    """
    for name in ("demand", "gap_s", "queue_veh", "approach_veh", "downstream_queue_veh"):
        a = getattr(obs, name)
        if a.shape != shape:
            raise ValueError(
                f"{who}: obs.{name} has shape {a.shape}, expected {shape} "
                "(intersections, signal groups); was reset() called with this network?"
            )


def transition_s(timing: Timing, i: int, ending: np.ndarray, starting: np.ndarray) -> float:
    """The time from the end of the groups ``ending`` to the start of ``starting`` (bool ``[G]``).

    The largest intergreen from an ending group into a conflicting starting group; 0 when
    they do not conflict. A group in both masks does not end, so callers pass
    ``prev & ~cur`` and ``cur & ~prev``.
    """
    ig = np.where(
        timing.conflict[i] & ending[:, None] & starting[None, :], timing.intergreen_s[i], 0.0
    )
    return float(ig.max(initial=0.0))


def slow_mode_mask(net: CompiledNetwork) -> np.ndarray:
    """bool ``[I, G]``: pedestrian and bicycle groups (the ones that may be kept green along)."""
    return (net.mode == MODE_PEDESTRIAN) | (net.mode == MODE_BICYCLE)


@njit
def clearance_covered(
    timing: Timing, sig: SignalState, demand: np.ndarray, i: int, g: int,
    stays: np.ndarray, leaves: np.ndarray,
) -> bool:
    """Whether group ``g`` can stay green to the end of the running stage at no cost.

    It can when, for every waiting group ``k`` in conflict with it, a green group that stays
    green to the end of the stage (``stays[h] and not leaves[h]``, bool rows ``[G]``) needs
    at least as long a clearance into ``k``: ending together with the stage, ``g`` then holds
    ``k`` back no longer than that group does. A crossing's clearance (10-16 s over a wide
    road) is often twice a car's; kept green to the end of every stage it would add the
    difference to every stage change.
    """
    n_g = sig.state.shape[1]
    for k in range(n_g):
        if not (timing.conflict[i, g, k] and timing.valid[i, k] and demand[i, k]
                and sig.state[i, k] != GREEN):
            continue
        need_s = timing.intergreen_s[i, g, k]
        covered = False
        for h in range(n_g):
            if (stays[h] and not leaves[h] and sig.state[i, h] == GREEN
                    and timing.conflict[i, h, k]
                    and timing.intergreen_s[i, h, k] >= need_s - EPS_S):
                covered = True
                break
        if not covered:
            return False
    return True

