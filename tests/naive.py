"""Plain-Python references of the core kernels: slow, obvious, and independent of their tricks.

``naive_advance`` is :func:`ivri.core.kernel.advance_kernel` written the way the rules are
stated: loops over groups, the raw ``conflict`` matrix (no bit masks), sorted candidate
lists. The float operations on the timers are the same (``x += dt``, ``x >= limit - EPS``), so
results must be equal element for element, not just close.
"""

from __future__ import annotations

import numpy as np

from ivri.core.compile import Timing
from ivri.core.idx import AMBER, GREEN, RED
from ivri.core.state import SignalState

EPS_S = 1.0e-9


def naive_advance(
    timing: Timing,
    sig: SignalState,
    request_green: np.ndarray,
    demand: np.ndarray,
    t_s: float,
    dt_s: float,
    changed: np.ndarray,
    extend: np.ndarray | None = None,
) -> int:
    """Advance ``sig`` in place by one tick; fill ``changed``; return how many intersections changed."""
    n_i, n_g = sig.state.shape
    n_changed = 0
    for i in range(n_i):
        hold = np.zeros(n_g, dtype=bool) if extend is None else extend[i]
        hit = _advance_one(timing, sig, request_green, demand, hold, t_s, dt_s, i, n_g)
        changed[i] = hit
        n_changed += int(hit)
    return n_changed


def _advance_one(timing, sig, request_green, demand, hold, t_s, dt_s, i, n_g) -> bool:
    valid = [bool(timing.valid[i, g]) for g in range(n_g)]
    conflicts = {g: [k for k in range(n_g) if timing.conflict[i, g, k] and valid[k]] for g in range(n_g)}
    start_state = {g: int(sig.state[i, g]) for g in range(n_g)}
    any_change = False

    # 1. timers
    for g in range(n_g):
        sig.elapsed_s[i, g] = float(sig.elapsed_s[i, g]) + dt_s
        if valid[g] and demand[i, g] and start_state[g] != GREEN:
            sig.wait_s[i, g] = float(sig.wait_s[i, g]) + dt_s
        else:
            sig.wait_s[i, g] = 0.0
    calls = {g for g in range(n_g) if valid[g] and demand[i, g]}
    starving = {
        g for g in range(n_g)
        if valid[g] and start_state[g] != GREEN
        and sig.wait_s[i, g] >= timing.max_wait_s[i, g] - EPS_S
    }
    waits = {g: float(sig.wait_s[i, g]) for g in range(n_g)}

    # 2. ends of green and amber
    for g in range(n_g):
        el = float(sig.elapsed_s[i, g])
        if start_state[g] == GREEN:
            if el < timing.min_green_s[i, g] - EPS_S:
                continue  # minimum green is never cut
            not_requested = not request_green[i, g]
            held = bool(hold[g]) and bool(request_green[i, g])
            max_reached = (
                el >= timing.max_green_s[i, g] - EPS_S
                and any(k in calls for k in conflicts[g])
                and not held
            )
            rival_starves = any(k in starving for k in conflicts[g])
            if not_requested or max_reached or rival_starves:
                sig.green_end_s[i, g] = t_s
                sig.elapsed_s[i, g] = 0.0
                sig.state[i, g] = AMBER if timing.amber_s[i, g] > 0.0 else RED
                any_change = True
        elif start_state[g] == AMBER and el >= timing.amber_s[i, g] - EPS_S:
            sig.state[i, g] = RED
            sig.elapsed_s[i, g] = 0.0
            any_change = True

    # 3. starts of green
    def claim(g: int) -> tuple[int, float, int]:
        # Higher is stronger: starving beats not starving, then longer wait, then lower index.
        return (int(g in starving), waits[g], -g)

    candidates = [
        g for g in range(n_g)
        if valid[g]
        and start_state[g] == RED
        and (request_green[i, g] or g in starving)
        and sig.elapsed_s[i, g] >= timing.min_red_s[i, g] - EPS_S
    ]
    candidates.sort(key=lambda g: (-waits[g], g))
    for j in candidates:
        ok = True
        for k in conflicts[j]:
            if sig.state[i, k] != RED or t_s - sig.green_end_s[i, k] < timing.intergreen_s[i, k, j] - EPS_S:
                ok = False
            elif k in starving and claim(k) > claim(j):
                ok = False  # a starving group reserves its conflicting groups
            elif (
                j not in starving and k in calls and request_green[i, k]
                and start_state[k] != GREEN and waits[k] > waits[j]
            ):
                ok = False  # requested groups queue for green in order of wait
        if ok:
            sig.state[i, j] = GREEN
            sig.elapsed_s[i, j] = 0.0
            sig.wait_s[i, j] = 0.0
            any_change = True
    return any_change


def naive_conflicting_greens(timing: Timing, state: np.ndarray) -> np.ndarray:
    """bool[I]: an intersection shows two conflicting greens, or a non-red padding column."""
    n_i, n_g = state.shape
    out = np.zeros(n_i, dtype=np.bool_)
    for i in range(n_i):
        for g in range(n_g):
            if not timing.valid[i, g] and state[i, g] != RED:
                out[i] = True
            for k in range(n_g):
                if timing.conflict[i, g, k] and state[i, g] == GREEN and state[i, k] == GREEN:
                    out[i] = True
    return out
