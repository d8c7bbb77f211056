"""The signal-group state machine: the safety layer, and the only code that decides what a light shows.

One call of :func:`advance_kernel` advances every signal group of every intersection by one
tick, in place. Controllers only *request* green (``request_green``); this kernel grants what
is safe. Whatever the requests, it never

* shows two conflicting greens,
* cuts a minimum green, an amber, a minimum red or an intergreen time,
* shows green on a padding column,

and a group that keeps calling (``demand``) is served within a bound even when no controller
requests it (anti-starvation, see :func:`advance_kernel`).

Speed: the per-tick work is O(G) per intersection. Conflict sets are bit masks (``uint64``, so
at most :data:`MAX_GROUPS` groups per intersection), precomputed once by
:func:`build_conflict_sets`; the O(G) intergreen scan runs only for the rare group that asks
for green while all its conflicting groups are red. No allocation per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ivri.core.compile import Timing
from ivri.core.idx import AMBER, GREEN, RED
from ivri.core.jit import njit, njit_parallel, prange
from ivri.core.safety import monitor_row
from ivri.core.state import SignalState
from ivri.errors import ConfigError

__all__ = [
    "EPS_S",
    "MAX_GROUPS",
    "ConflictSets",
    "advance_kernel",
    "advance_kernel_parallel",
    "build_conflict_sets",
]

#: Largest number of signal groups per intersection: a conflict set is one ``uint64``.
MAX_GROUPS = 64

#: Tolerance of every timer comparison. Timers are sums of ``dt_s``; 0.1 s is not exact in
#: binary, so 60 ticks of 0.1 s can sum to 5.999999999999999. The tolerance lets such a timer
#: expire on the tick it is meant to, never a tick late, and never more than 1 ns early.
EPS_S = 1.0e-9

# numba types a mix of uint64 and a plain int as float64; numpy scalars keep bit masks uint64
# both compiled and under NUMBA_DISABLE_JIT.
_ZERO = np.uint64(0)
_ONE = np.uint64(1)


class ConflictSets(NamedTuple):
    """Arrays derived once from :class:`~ivri.core.compile.Timing`, for speed only.

    They hold nothing that ``Timing`` does not; :func:`build_conflict_sets` is their only
    producer, and the run-time monitor (:mod:`ivri.core.safety`) deliberately ignores them
    and reads ``Timing.conflict`` itself.
    """

    conflict_mask: np.ndarray  # uint64[I, G]: bit k of [i, g] set when g conflicts with valid k


def build_conflict_sets(timing: Timing) -> ConflictSets:
    """Pack ``timing.conflict`` into one bit mask per signal group.

    Raises :class:`~ivri.errors.ConfigError` when an intersection has more than
    :data:`MAX_GROUPS` signal groups.
    """
    n_i, n_g = timing.valid.shape
    if n_g > MAX_GROUPS:
        raise ConfigError(
            f"the core supports at most {MAX_GROUPS} signal groups per intersection, got {n_g}"
        )
    bits = np.left_shift(np.uint64(1), np.arange(n_g, dtype=np.uint64))
    # Conflicts with padding columns are dropped: padding is always red and never calls.
    conflict = np.asarray(timing.conflict, dtype=np.bool_) & np.asarray(timing.valid)[:, None, :]
    mask = np.bitwise_or.reduce(np.where(conflict, bits, np.uint64(0)), axis=2)
    return ConflictSets(conflict_mask=np.ascontiguousarray(mask.reshape(n_i, n_g), dtype=np.uint64))


@njit
def _advance_intersection(
    timing: Timing,
    sets: ConflictSets,
    sig: SignalState,
    request_green: np.ndarray,
    demand: np.ndarray,
    extend: np.ndarray,
    t_s: float,
    dt_s: float,
    i: int,
) -> bool:
    """Advance intersection ``i`` by one tick; True when any of its groups changed aspect."""
    n_g = sig.state.shape[1]
    state = sig.state[i]
    elapsed = sig.elapsed_s[i]
    green_end = sig.green_end_s[i]
    wait = sig.wait_s[i]
    valid = timing.valid[i]
    cmask = sets.conflict_mask[i]
    request = request_green[i]
    calls = demand[i]
    hold = extend[i]
    changed = False

    # Pass 1: timers, and the groups that call and that starve (as bit masks).
    demand_m = _ZERO
    starving_m = _ZERO
    queued_m = _ZERO  # requested and waiting: they queue for green in order of wait
    for g in range(n_g):
        elapsed[g] += dt_s
        if valid[g] and calls[g]:
            demand_m |= _ONE << np.uint64(g)
            if state[g] != GREEN:
                wait[g] += dt_s
                if request[g]:
                    queued_m |= _ONE << np.uint64(g)
                if wait[g] >= timing.max_wait_s[i, g] - EPS_S:
                    starving_m |= _ONE << np.uint64(g)
            else:
                wait[g] = 0.0
        else:
            wait[g] = 0.0

    # Pass 2: ends of green and amber, decided from the aspect at the start of the tick; it
    # also collects the red groups that may ask to start (red since the start of the tick, so
    # that red is shown for at least one tick even when min_red_s is 0).
    nonred_m = _ZERO
    cand_m = _ZERO
    for g in range(n_g):
        bit = _ONE << np.uint64(g)
        s = state[g]
        if s == GREEN:
            if elapsed[g] >= timing.min_green_s[i, g] - EPS_S:
                cm = cmask[g]
                if (
                    not request[g]
                    or (cm & starving_m) != _ZERO
                    or (
                        elapsed[g] >= timing.max_green_s[i, g] - EPS_S
                        and (cm & demand_m) != _ZERO
                        and not (hold[g] and request[g])
                    )
                ):
                    green_end[g] = t_s
                    elapsed[g] = 0.0
                    changed = True
                    if timing.amber_s[i, g] > 0.0:
                        state[g] = AMBER
                    else:
                        state[g] = RED
        elif s == AMBER:
            if elapsed[g] >= timing.amber_s[i, g] - EPS_S:
                state[g] = RED
                elapsed[g] = 0.0
                changed = True
        elif (
            valid[g]
            and (request[g] or (starving_m & bit) != _ZERO)
            and elapsed[g] >= timing.min_red_s[i, g] - EPS_S
        ):
            cand_m |= bit
        if state[g] != RED:
            nonred_m |= bit

    if cand_m == _ZERO:
        return changed

    # Pass 3a: drop candidates that may not start even alone. Starting other groups this tick
    # only adds non-red groups, so a group dropped here stays blocked for the whole tick.
    for g in range(n_g):
        bit = _ONE << np.uint64(g)
        if (cand_m & bit) == _ZERO:
            continue
        cm = cmask[g]
        ok = (cm & nonred_m) == _ZERO
        w = wait[g]
        if ok and (cm & starving_m) != _ZERO:
            # Anti-starvation reservation. A starving group reserves its conflicting groups:
            # none of them may start unless it starves too and has waited longer (ties: lower
            # index). The rule "only starving groups may start" alone is not enough: two
            # starving groups that do not conflict with each other can take turns and keep a
            # third one, which conflicts with both, blocked for ever.
            if (starving_m & bit) == _ZERO:
                ok = False
            else:
                rivals = cm & starving_m
                for k in range(n_g):
                    if (rivals & (_ONE << np.uint64(k))) != _ZERO and (
                        wait[k] > w or (wait[k] == w and k < g)
                    ):
                        ok = False
                        break
        if ok and (starving_m & bit) == _ZERO and (cm & queued_m) != _ZERO:
            # Queue order between requested groups: do not jump ahead of a conflicting group
            # that is requested too and has waited longer but is still held by an intergreen.
            # Without this, a green that max green has just ended comes straight back (its
            # own amber + min red is often shorter than the rival's intergreen), and max green
            # would mean nothing to a controller that keeps requesting.
            rivals = cm & queued_m
            for k in range(n_g):
                if (rivals & (_ONE << np.uint64(k))) != _ZERO and wait[k] > w:
                    ok = False
                    break
        if ok:
            # Intergreen from the end of green of every conflicting group (red ones included).
            for k in range(n_g):
                if (cm & (_ONE << np.uint64(k))) != _ZERO and (
                    t_s - green_end[k] < timing.intergreen_s[i, k, g] - EPS_S
                ):
                    ok = False
                    break
        if not ok:
            cand_m &= ~bit

    # Pass 3b: start the remaining candidates, longest wait first (ties: lower index), and
    # re-check conflicts after each start so that two conflicting groups never start together.
    while cand_m != _ZERO:
        best = -1
        best_wait = -1.0
        for g in range(n_g):
            if (cand_m & (_ONE << np.uint64(g))) != _ZERO and wait[g] > best_wait:
                best = g
                best_wait = wait[g]
        bit = _ONE << np.uint64(best)
        cand_m &= ~bit
        if (cmask[best] & nonred_m) == _ZERO:
            state[best] = GREEN
            elapsed[best] = 0.0
            wait[best] = 0.0
            nonred_m |= bit
            changed = True
    return changed


_ADVANCE_DOC = """Advance every signal group of every intersection by one tick, in place.

    Arguments: the safety rules (``timing``, and ``sets`` from :func:`build_conflict_sets`),
    the state to advance (``sig``, written in place), ``request_green`` and ``demand``
    (bool ``[I, G]``: the controllers' wish for green, and the road users who call for it),
    ``extend`` (bool ``[I, G]``: a priority hold, a requested green that may run past its
    maximum green; it never outlasts a conflicting group's starvation),
    ``t_s`` the simulation time of this tick (after the step: the state set now is shown during
    ``[t_s, t_s + dt_s)``), ``dt_s`` the tick length, and ``changed`` (bool ``[I]``, output:
    True where any group changed aspect). Returns the number of intersections that changed.

    With ``monitor_valid``, ``monitor_masks`` (a :class:`~ivri.core.safety.ConflictMonitor`'s
    ``valid`` and ``masks``) and ``bad`` (bool ``[I]``, output), the conflict monitor checks
    each intersection right after it advanced (:func:`~ivri.core.safety.monitor_row`, with
    the monitor's own masks), while its row is still in the cache: ``bad[i]`` is True where
    it shows conflicting greens, as a separate pass of the monitor would find.

    Per tick and intersection, in this order:

    1. ``elapsed_s += dt_s`` for every group; ``wait_s += dt_s`` for a valid group with demand
       that is not green, else ``wait_s = 0``. A group *starves* when it is not green and
       ``wait_s >= max_wait_s``.
    2. A green group ends (to amber, or straight to red when ``amber_s == 0``; ``green_end_s =
       t_s``) only when ``elapsed_s >= min_green_s`` and one of: it is no longer requested; it
       has reached ``max_green_s``, a conflicting group calls and it is not held (``extend``
       and requested); a conflicting group starves.
       An amber group turns red when ``elapsed_s >= amber_s``.
    3. A group that was red at the start of the tick may start green when it is valid,
       requested or starving, red for ``>= min_red_s``, every conflicting group is red with
       ``t_s - green_end_s[k] >= intergreen_s[k, j]``, and no conflicting group has a better
       claim: a starving group beats every group that does not starve, between starving groups
       the longer wait (then the lower index) wins, and a requested group that waits beats a
       requested group that waited less. Candidates start longest wait first (ties: lower
       index), conflicts re-checked after each start. A group that starts gets
       ``elapsed_s = wait_s = 0``.

    All timer comparisons allow :data:`EPS_S`. Padding columns (``valid`` False) stay red.
    """


def _make_advance_kernel(parallel: bool) -> Callable[..., int]:
    """Compile the one loop over intersections, serially (``range``) or over cores (``prange``).

    Both kernels come from this single body, so they cannot drift apart. Intersections are
    independent, so the results are identical. ``loop`` is a closure variable: numba's cache
    keys on it, so the two compilations never load each other's machine code.
    """
    loop = prange if parallel else range

    def kernel(
        timing: Timing,
        sets: ConflictSets,
        sig: SignalState,
        request_green: np.ndarray,
        demand: np.ndarray,
        extend: np.ndarray,
        t_s: float,
        dt_s: float,
        changed: np.ndarray,
        monitor_valid: np.ndarray | None = None,
        monitor_masks: np.ndarray | None = None,
        bad: np.ndarray | None = None,
    ) -> int:
        n_changed = 0
        for i in loop(sig.state.shape[0]):
            hit = _advance_intersection(
                timing, sets, sig, request_green, demand, extend, t_s, dt_s, i
            )
            changed[i] = hit
            if hit:
                n_changed += 1
            if bad is not None:  # resolved at compile time: no monitor, no branch
                # The monitor's three arrays come together (SignalCore passes all or none);
                # a narrowing test per array would be one more branch in the hot loop.
                bad[i] = monitor_row(monitor_valid, monitor_masks, sig.state, i)  # type: ignore[arg-type]
        return n_changed

    name = "advance_kernel_parallel" if parallel else "advance_kernel"
    kernel.__name__ = name
    kernel.__qualname__ = name
    kernel.__doc__ = _ADVANCE_DOC if not parallel else (
        ":func:`advance_kernel` with intersections split over cores (``numba.prange``).\n\n"
        "    The same compiled body; it pays off only for large networks (see\n"
        "    ``benchmarks/core_throughput.py``).\n"
    )
    return (njit_parallel if parallel else njit)(kernel)


advance_kernel = _make_advance_kernel(parallel=False)
advance_kernel_parallel = _make_advance_kernel(parallel=True)
