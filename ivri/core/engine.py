"""The public face of the signal-timing core: :class:`SignalCore`.

It owns the state arrays of a run, checks what controllers hand it, advances every
intersection with one kernel call per tick, and watches the result with an independent
conflict monitor::

    core = SignalCore(compile_network(config), dt_s=0.5)
    for _ in range(n_ticks):
        changed = core.advance(request_green, demand)   # bool [I]; same array every tick
        ...core.signals.state...                         # int8 [I, G]: idx.RED / GREEN / AMBER
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ivri.core.compile import CompiledNetwork, Timing, contiguous_timing
from ivri.core.forecast import (
    Commitment,
    commit_kernel,
    enforce_commitment_kernel,
    no_commitment,
    release_changed,
)
from ivri.core.idx import AMBER, GREEN, RED
from ivri.core.jit import njit
from ivri.core.kernel import (
    ConflictSets,
    advance_kernel,
    advance_kernel_parallel,
    build_conflict_sets,
)
from ivri.core.safety import ConflictMonitor, conflicting_pairs
from ivri.core.state import SignalState, initial_state
from ivri.errors import ConfigError, SafetyViolation

__all__ = ["SignalCore", "TimeToChange", "committed_change_kernel", "time_to_change_kernel"]

# Float noise allowed when a remaining time is turned into a whole number of ticks.
_TICK_TOL = 1.0e-6
_ZERO = np.uint64(0)
_ONE = np.uint64(1)


class TimeToChange(NamedTuple):
    """Seconds from ``SignalCore.t_s`` to the next change of aspect, per group (float64 ``[I, G]``).

    ``min_s`` is a hard bound: the aspect will not change sooner, whatever the requests.
    ``max_s`` is the latest change if the present calls persist; ``inf`` when it depends on
    future requests (a green that nothing competes with, every red, padding columns).
    Both are whole numbers of ticks, at least one tick, and include what the controller has
    committed to (:mod:`ivri.core.forecast`): SPaT's ``minEndTime`` / ``maxEndTime``.
    ``likely_s`` is the controller's best guess inside that window (NaN: none; SPaT's
    ``likelyTime``), None where nobody computed it.
    """

    min_s: np.ndarray
    max_s: np.ndarray
    likely_s: np.ndarray | None = None


@njit
def _ticks_until(remaining_s: float, dt_s: float) -> int:
    """Ticks until a timer that needs ``remaining_s`` more seconds expires (at least one)."""
    n = math.ceil(remaining_s / dt_s - _TICK_TOL)
    return max(1, n)


@njit
def _ticks_at_least(remaining_s: float, dt_s: float) -> int:
    """Ticks until ``remaining_s`` more seconds have passed (zero when they already have)."""
    n = math.ceil(remaining_s / dt_s - _TICK_TOL)
    return max(0, n)


@njit
def time_to_change_kernel(
    timing: Timing,
    sets: ConflictSets,
    sig: SignalState,
    extend: np.ndarray,
    t_s: float,
    dt_s: float,
    min_s: np.ndarray,
    max_s: np.ndarray,
) -> None:
    """Fill ``min_s`` / ``max_s`` (see :class:`TimeToChange`) from the state after the tick at ``t_s``.

    Mirrors the rules of :func:`~ivri.core.kernel.advance_kernel`: a green ends no sooner
    than its minimum green, and no later than its maximum green (or a conflicting group's
    starvation) while a conflicting group calls; an amber lasts its amber time; a red may start
    once its minimum red and every intergreen from conflicting groups have passed (a
    conflicting green first needs its own minimum green). "Calls" is read from ``wait_s > 0``.
    A green held by ``extend`` (the last tick's priority holds) has no maximum green, only
    the starvation of a conflicting group.
    """
    n_i, n_g = sig.state.shape
    inf = math.inf
    for i in range(n_i):
        for g in range(n_g):
            if not timing.valid[i, g]:
                min_s[i, g] = inf
                max_s[i, g] = inf
                continue
            s = sig.state[i, g]
            el = sig.elapsed_s[i, g]
            cm = sets.conflict_mask[i, g]
            if s == GREEN:
                n_min = _ticks_until(timing.min_green_s[i, g] - el, dt_s)
                n_max = -1
                for k in range(n_g):
                    if (cm & (_ONE << np.uint64(k))) == _ZERO or sig.wait_s[i, k] <= 0.0:
                        continue
                    n_starve = _ticks_until(timing.max_wait_s[i, k] - sig.wait_s[i, k], dt_s)
                    n_k = n_starve
                    if not extend[i, g]:
                        n_k = min(n_k, _ticks_until(timing.max_green_s[i, g] - el, dt_s))
                    if n_max < 0 or n_k < n_max:
                        n_max = n_k
                min_s[i, g] = n_min * dt_s
                max_s[i, g] = inf if n_max < 0 else max(n_min, n_max) * dt_s
            elif s == AMBER:
                n = _ticks_until(timing.amber_s[i, g] - el, dt_s)
                min_s[i, g] = n * dt_s
                max_s[i, g] = n * dt_s
            else:
                n = _ticks_until(timing.min_red_s[i, g] - el, dt_s)
                for k in range(n_g):
                    if (cm & (_ONE << np.uint64(k))) == _ZERO:
                        continue
                    ig = timing.intergreen_s[i, k, g]
                    sk = sig.state[i, k]
                    if sk == GREEN:
                        # k ends at the earliest after its minimum green; its amber must be over.
                        n_end = _ticks_until(timing.min_green_s[i, k] - sig.elapsed_s[i, k], dt_s)
                        n_k = n_end + max(
                            _ticks_at_least(ig, dt_s), _ticks_at_least(timing.amber_s[i, k], dt_s)
                        )
                    else:
                        n_k = _ticks_at_least(ig - (t_s - sig.green_end_s[i, k]), dt_s)
                        if sk == AMBER:
                            n_amb = _ticks_until(timing.amber_s[i, k] - sig.elapsed_s[i, k], dt_s)
                            n_k = max(n_k, n_amb)
                    n = max(n, n_k)
                min_s[i, g] = n * dt_s
                max_s[i, g] = inf


@njit
def committed_change_kernel(
    timing: Timing,
    sets: ConflictSets,
    sig: SignalState,
    committed: Commitment,
    t_s: float,
    dt_s: float,
    min_s: np.ndarray,
    max_s: np.ndarray,
    likely_s: np.ndarray,
) -> None:
    """Narrow ``min_s`` / ``max_s`` of :func:`time_to_change_kernel` to the committed window and
    fill ``likely_s`` (see :class:`TimeToChange`), in whole ticks like the rest.

    A group does not change before its committed earliest end, and a committed green ends by its
    committed latest end. A red group starts no sooner than a conflicting green committed to run
    on has ended and, after that, the intergreen (and the green's amber) has passed: the rule of
    :func:`time_to_change_kernel` for a conflicting green, with the committed end in place of
    its minimum green. ``likely_s`` is the controller's guess clipped into the window.
    """
    n_i, n_g = sig.state.shape
    for i in range(n_i):
        for g in range(n_g):
            if not timing.valid[i, g]:
                likely_s[i, g] = math.nan
                continue
            lo = min_s[i, g]
            hi = max_s[i, g]
            min_end = committed.min_end_s[i, g]
            if min_end > -math.inf:
                lo = max(lo, _ticks_until(min_end - t_s, dt_s) * dt_s)
            if sig.state[i, g] == RED:
                cm = sets.conflict_mask[i, g]
                for k in range(n_g):
                    if (cm & (_ONE << np.uint64(k))) == _ZERO or sig.state[i, k] != GREEN:
                        continue
                    k_end = committed.min_end_s[i, k]
                    if k_end == -math.inf:
                        continue
                    n_k = _ticks_until(k_end - t_s, dt_s) + max(
                        _ticks_at_least(timing.intergreen_s[i, k, g], dt_s),
                        _ticks_at_least(timing.amber_s[i, k], dt_s),
                    )
                    lo = max(lo, n_k * dt_s)
            max_end = committed.max_end_s[i, g]
            if max_end < math.inf:
                hi = min(hi, _ticks_until(max_end - t_s, dt_s) * dt_s)
            hi = max(hi, lo)
            min_s[i, g] = lo
            max_s[i, g] = hi
            likely = committed.likely_s[i, g] - t_s
            likely_s[i, g] = likely if math.isnan(likely) else min(max(likely, lo), hi)


class SignalCore:
    """The signal-timing core of a run: state arrays, one kernel call per tick, a conflict monitor.

    Parameters: ``net`` (from :func:`~ivri.core.compile.compile_network`), ``dt_s`` (the tick
    length, > 0), and keyword options ``monitor`` (check every tick with the independent
    monitor of :mod:`ivri.core.safety` and raise :class:`~ivri.errors.SafetyViolation` on a
    conflict; default True), ``parallel`` (split intersections over cores; pays off only for
    thousands of intersections) and ``start_s`` (the time of the initial state).

    Attributes: ``net``, ``dt_s``, ``signals`` (:class:`~ivri.core.state.SignalState`, written
    in place: hold on to it, never write it), ``t_s`` (time of the current state) and
    ``changed`` (bool ``[I]``, from the last tick).
    """

    def __init__(
        self,
        net: CompiledNetwork,
        dt_s: float,
        *,
        monitor: bool = True,
        parallel: bool = False,
        start_s: float = 0.0,
    ) -> None:
        dt_s = float(dt_s)
        if not (math.isfinite(dt_s) and dt_s > 0.0):
            raise ConfigError(f"SignalCore: dt_s must be a positive number of seconds, got {dt_s}")
        self.net = net
        self.dt_s = dt_s
        self.monitor = monitor
        self.parallel = parallel
        self.start_s = float(start_s)
        # One dtype and layout per array, so that numba compiles (and caches) one specialisation.
        self._timing = contiguous_timing(net.timing)
        self._sets = build_conflict_sets(self._timing)
        self._shape = self._timing.valid.shape
        self._kernel = advance_kernel_parallel if parallel else advance_kernel
        self.signals: SignalState = initial_state(net)
        self.changed = np.zeros(self._shape[0], dtype=np.bool_)
        self._bad = np.zeros(self._shape[0], dtype=np.bool_)
        self._conflict_monitor = ConflictMonitor(self._timing)
        self._no_extend = np.zeros(self._shape, dtype=np.bool_)
        self._last_extend = self._no_extend
        self._likely_s = np.empty(self._shape)
        self._ttc = TimeToChange(np.empty(self._shape), np.empty(self._shape), self._likely_s)
        # The committed forecast (ivri.core.forecast) and the aspect each commitment is for.
        self.committed: Commitment = no_commitment(self._shape)
        self._aspect = self.signals.state.copy()
        self._has_commitment = False
        self._req_kept = np.zeros(self._shape, dtype=np.bool_)
        self._ext_kept = np.zeros(self._shape, dtype=np.bool_)
        self._tick = 0
        self.t_s = self.start_s

    def reset(self) -> None:
        """Back to the all-red start at ``start_s``. Idempotent; the arrays stay the same objects."""
        for dst, src in zip(self.signals, initial_state(self.net), strict=True):
            dst[...] = src
        self.changed[:] = False
        for a, b in zip(self.committed, no_commitment(self._shape), strict=True):
            a[...] = b
        self._aspect[...] = self.signals.state
        self._has_commitment = False
        self._tick = 0
        self.t_s = self.start_s

    def commit(self, proposal: Commitment | None) -> None:
        """Take a controller's commitment to the next change of its groups (absolute times).

        The core keeps what it accepts (see :mod:`ivri.core.forecast`): it narrows an existing
        commitment, never widens one, and accepts no hold it could not keep against a
        starving group. ``None`` (a controller that commits to nothing) changes nothing.
        Call it before :meth:`advance`; the result is in :attr:`committed`.
        """
        if proposal is None:
            return
        arrays = [np.ascontiguousarray(np.asarray(a, dtype=np.float64)) for a in proposal]
        for name, a in zip(Commitment._fields, arrays, strict=True):
            if a.shape != self._shape:
                raise ValueError(f"SignalCore.commit: {name} must have shape {self._shape}, got {a.shape}")
        commit_kernel(self._timing, self.signals, self.t_s, self.dt_s, arrays[0], arrays[1], arrays[2],
                      self.committed, self._aspect)
        self._has_commitment = True

    def _checked(self, a: np.ndarray, name: str) -> np.ndarray:
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        if a.shape != self._shape:
            raise ValueError(
                f"SignalCore.advance: {name} must have shape {self._shape} "
                f"(intersections, signal groups), got {a.shape}"
            )
        if a.dtype != np.bool_:
            raise ValueError(f"SignalCore.advance: {name} must be a bool array, got dtype {a.dtype}")
        return a if a.flags.c_contiguous else np.ascontiguousarray(a)

    def advance(
        self,
        request_green: np.ndarray,
        demand: np.ndarray | None = None,
        extend: np.ndarray | None = None,
    ) -> np.ndarray:
        """Advance every intersection by one tick and return ``changed`` (bool ``[I]``).

        ``request_green`` (bool ``[I, G]``) is what the controllers want; ``demand`` (bool
        ``[I, G]``) marks groups with road users calling for green, which drives maximum green
        and anti-starvation. Without ``demand`` the requests stand in for it. ``extend`` (bool
        ``[I, G]``) holds requested greens past their maximum green, for priority
        applications (an emergency vehicle still approaching); minimum green, amber,
        intergreen and anti-starvation are unaffected. Requests for padding columns are
        ignored.

        The returned array is :attr:`changed` itself, overwritten by the next call: copy it to
        keep it. Raises :class:`ValueError` on a wrong shape or dtype, and
        :class:`~ivri.errors.SafetyViolation` if the monitor finds conflicting greens.
        """
        request = self._checked(request_green, "request_green")
        calls = request if demand is None else self._checked(demand, "demand")
        hold = self._no_extend if extend is None else self._checked(extend, "extend")
        self._tick += 1
        # Time from the tick count, not by summing dt_s: no drift over a day of 0.1 s ticks.
        self.t_s = self.start_s + self._tick * self.dt_s
        if self._has_commitment:
            enforce_commitment_kernel(self.signals, self.committed, self.t_s, request, hold,
                                      self._req_kept, self._ext_kept)
            request, hold = self._req_kept, self._ext_kept
        self._last_extend = hold
        if self.monitor:
            # The monitor checks each intersection inside the kernel's loop, right after it
            # advanced (its own masks and code: ivri.core.safety.monitor_row).
            mon = self._conflict_monitor
            self._kernel(
                self._timing, self._sets, self.signals, request, calls, hold, self.t_s, self.dt_s,
                self.changed, mon.valid, mon.masks, self._bad,
            )
        else:
            self._kernel(
                self._timing, self._sets, self.signals, request, calls, hold, self.t_s, self.dt_s,
                self.changed,
            )
        if self._has_commitment:
            release_changed(self.committed, self._aspect, self.signals.state)
        if self.monitor and self._bad.any():
            raise SafetyViolation(self._describe_violation())
        return self.changed

    def _describe_violation(self) -> str:
        parts = []
        for i in np.nonzero(self._bad)[0]:
            ids = self.net.group_ids[i]
            names = [
                f"{ids[g] if g < len(ids) else g} + {ids[k] if k < len(ids) else k}"
                for g, k in conflicting_pairs(self._timing, self.signals.state, int(i))
            ]
            parts.append(f"intersection {self.net.intersection_ids[i]!r}: {', '.join(names)}")
        return f"conflicting greens at t={self.t_s:.6g} s: " + "; ".join(parts)

    def time_to_change_s(self) -> TimeToChange:
        """Seconds until each group can (``min_s``) and at the latest will (``max_s``) change aspect.

        See :class:`TimeToChange`. Feeds SPaT (SPATEM ``minEndTime`` / ``maxEndTime`` are
        ``t_s`` plus these). The two arrays are reused by the next call: copy them to keep them.
        """
        time_to_change_kernel(
            self._timing, self._sets, self.signals, self._last_extend, self.t_s, self.dt_s,
            self._ttc.min_s, self._ttc.max_s,
        )
        ttc = self._ttc
        if self._has_commitment:
            committed_change_kernel(
                self._timing, self._sets, self.signals, self.committed, self.t_s, self.dt_s,
                ttc.min_s, ttc.max_s, self._likely_s,
            )
        else:
            self._likely_s[...] = np.nan
        return ttc

    def green_mask(self) -> np.ndarray:
        """bool ``[I, G]``: True where a group shows green now (a new array)."""
        return self.signals.state == GREEN

    def __repr__(self) -> str:
        n_i, n_g = self._shape
        return f"SignalCore({n_i} intersections x {n_g} groups, dt_s={self.dt_s}, t_s={self.t_s:.6g})"
