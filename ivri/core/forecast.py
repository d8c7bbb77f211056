"""The committed forecast: per signal group, the window of its next change that the core keeps.

SPaT (SPATEM ``minEndTime`` / ``maxEndTime`` / ``likelyTime``) is only worth something to a
road user when it holds: speed advice built on a time-to-green that vehicle-actuated control
does not keep makes cars crawl towards a light that then stays red. So a controller may
*commit* to the next change of a group, and the core keeps the commitment:

* a green group with a committed earliest end (``min_end_s``) stays green until then (it is
  held as if requested, also past its maximum green);
* a green group with a committed latest end (``max_end_s``) ends by then;
* a red group with a committed earliest start (``min_end_s``) does not start before then.

The core accepts only what it can keep, whatever the requests of later ticks: a green is held
no longer than the earliest time a conflicting group could starve, a red is held back no longer
than its own starvation, a green's latest end is never before its minimum green has run, and an
existing commitment is only ever narrowed, never widened. Times are absolute simulation
seconds on the tick grid; ``-inf`` / ``inf`` mean "no commitment". A commitment ends with the
change it forecast. ``likely_s`` is the controller's best guess (not binding), published as
``likelyTime`` inside the window.

Safety does not depend on any of this: a commitment only adds requests to a green that has
passed its minimum green or withholds them; intergreen, amber and minimum red stay the kernel's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ivri.core.compile import Timing
from ivri.core.idx import GREEN, RED
from ivri.core.jit import njit
from ivri.core.state import SignalState

__all__ = ["Commitment", "commit_kernel", "enforce_commitment_kernel", "no_commitment", "release_changed"]

# Tolerance of the tick-grid rounding (as in the engine's time-to-change).
_TICK_TOL = 1.0e-6
_EPS_S = 1.0e-9


class Commitment(NamedTuple):
    """Absolute times of the next change per group (float64 ``[I, G]``; see the module docstring)."""

    min_end_s: np.ndarray  # no change before this time (-inf: none)
    max_end_s: np.ndarray  # a green ends by this time (inf: none)
    likely_s: np.ndarray   # the controller's best guess (nan: none)


def no_commitment(shape: tuple[int, int]) -> Commitment:
    """A commitment to nothing (the start of a run)."""
    return Commitment(np.full(shape, -math.inf), np.full(shape, math.inf), np.full(shape, math.nan))


@njit
def _grid_up(t_s: float, x_s: float, dt_s: float) -> float:
    """The first tick time at or after ``x_s`` (ticks at ``t_s + k dt_s``)."""
    return t_s + max(math.ceil((x_s - t_s) / dt_s - _TICK_TOL), 1) * dt_s


@njit
def _grid_down(t_s: float, x_s: float, dt_s: float) -> float:
    """The last tick time at or before ``x_s`` (never before the next tick)."""
    return t_s + max(math.floor((x_s - t_s) / dt_s + _TICK_TOL), 1) * dt_s


@njit
def commit_kernel(
    timing: Timing,
    sig: SignalState,
    t_s: float,
    dt_s: float,
    prop_min: np.ndarray,
    prop_max: np.ndarray,
    prop_likely: np.ndarray,
    committed: Commitment,
    aspect: np.ndarray,
) -> None:
    """Merge a controller's proposal into ``committed`` (in place), keeping only what is keepable.

    ``t_s`` is the time of the state ``sig``; the next tick is at ``t_s + dt_s``. ``aspect``
    (int8 ``[I, G]``) records the aspect each commitment was made for.
    """
    n_i, n_g = sig.state.shape
    for i in range(n_i):
        for g in range(n_g):
            if not timing.valid[i, g]:
                continue
            s = sig.state[i, g]
            lo = committed.min_end_s[i, g]
            hi = committed.max_end_s[i, g]
            if s == GREEN:
                # Held no longer than a conflicting group could starve (one tick of margin).
                limit = math.inf
                for k in range(n_g):
                    if timing.conflict[i, g, k] and timing.valid[i, k]:
                        limit = min(limit, t_s + timing.max_wait_s[i, k] - sig.wait_s[i, k] - dt_s)
                p = prop_min[i, g]
                if p > lo and limit >= t_s + dt_s:
                    cap = _grid_down(t_s, limit, dt_s) if limit < math.inf else math.inf
                    lo = min(max(lo, min(_grid_up(t_s, p, dt_s), cap)), hi)
                q = prop_max[i, g]
                if q < hi:
                    floor_s = _grid_up(t_s, t_s + timing.min_green_s[i, g] - sig.elapsed_s[i, g], dt_s)
                    hi = max(min(hi, _grid_up(t_s, q, dt_s)), floor_s, lo)
            elif s == RED:
                limit = t_s + timing.max_wait_s[i, g] - sig.wait_s[i, g] - dt_s
                p = prop_min[i, g]
                if p > lo and limit >= t_s + dt_s:
                    lo = max(lo, min(_grid_up(t_s, p, dt_s), _grid_down(t_s, limit, dt_s)))
            committed.min_end_s[i, g] = lo
            committed.max_end_s[i, g] = hi
            committed.likely_s[i, g] = prop_likely[i, g]
            aspect[i, g] = s


@njit
def enforce_commitment_kernel(
    sig: SignalState,
    committed: Commitment,
    t_next_s: float,
    request: np.ndarray,
    extend: np.ndarray,
    out_request: np.ndarray,
    out_extend: np.ndarray,
) -> None:
    """The requests the core acts on at the tick ``t_next_s``: the controller's, with its
    commitments kept (greens held or ended, reds held back)."""
    n_i, n_g = sig.state.shape
    for i in range(n_i):
        for g in range(n_g):
            r = request[i, g]
            e = extend[i, g]
            s = sig.state[i, g]
            if s == GREEN:
                if t_next_s < committed.min_end_s[i, g] - _EPS_S:
                    r = True
                    e = True
                elif t_next_s >= committed.max_end_s[i, g] - _EPS_S:
                    r = False
            elif s == RED and t_next_s < committed.min_end_s[i, g] - _EPS_S:
                r = False
            out_request[i, g] = r
            out_extend[i, g] = e


def release_changed(committed: Commitment, aspect: np.ndarray, state: np.ndarray) -> None:
    """Drop the commitments whose change has come (the aspect differs from the one committed for)."""
    done = aspect != state
    if done.any():
        committed.min_end_s[done] = -math.inf
        committed.max_end_s[done] = math.inf
        committed.likely_s[done] = math.nan
        aspect[done] = state[done]

