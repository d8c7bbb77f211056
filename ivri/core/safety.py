"""Independent safety checks: a run-time conflict monitor and a trace recorder for tests.

Neither trusts the kernel (:mod:`ivri.core.kernel`): both read ``Timing.conflict`` and the
timing limits directly, not the kernel's derived bit masks, so a fault in either is not hidden
by the same fault in the other.

* :class:`ConflictMonitor` (and :func:`conflicting_greens`) is the conflict monitor of EN 12675 practice: it looks at the
  aspects of one tick only, is O(I x G) and cheap enough to run every tick
  (:class:`~ivri.core.engine.SignalCore` does, with ``monitor=True``, through a
  :class:`ConflictMonitor`).
* :class:`SafetyRecorder` (and :func:`check_trace`) follows aspects over time and checks every
  timing rule: minimum green, amber, minimum red, intergreen, legal transitions.
"""

from __future__ import annotations

import math

import numpy as np

from ivri.core.compile import Timing
from ivri.core.idx import AMBER, GREEN, RED
from ivri.core.jit import njit
from ivri.errors import ConfigError, SafetyViolation

__all__ = [
    "TRACE_TOL_S",
    "ConflictMonitor",
    "SafetyRecorder",
    "check_trace",
    "conflicting_greens",
    "conflicting_pairs",
    "green_conflict_masks",
    "monitor_row",
]

#: Slack of the recorder's duration checks. The kernel may act up to 1 ns early (its timer
#: tolerance); anything beyond 1 us is a real violation, far below any tick length.
TRACE_TOL_S = 1.0e-6

_ASPECT = {RED: "red", GREEN: "green", AMBER: "amber"}

# numpy scalars keep the bit masks uint64 both compiled and under NUMBA_DISABLE_JIT.
_ZERO = np.uint64(0)
_ONE = np.uint64(1)


def green_conflict_masks(timing: Timing) -> np.ndarray:
    """uint64 ``[I, G]``: bit k of ``[i, g]`` set when ``timing.conflict[i, g, k]``.

    The monitor's own packing of the conflict matrix (``numpy.packbits``), written apart from
    the kernel's :func:`~ivri.core.kernel.build_conflict_sets` on purpose. Raises
    :class:`~ivri.errors.ConfigError` beyond 64 signal groups per intersection.
    """
    conflict = np.asarray(timing.conflict, dtype=np.bool_)
    n_i, n_g, _ = conflict.shape
    if n_g > 64:
        raise ConfigError(f"the conflict monitor supports at most 64 signal groups per intersection, got {n_g}")
    padded = np.zeros((n_i, n_g, 64), dtype=np.bool_)
    padded[:, :, :n_g] = conflict
    packed = np.packbits(padded, axis=2, bitorder="little")  # uint8 [I, G, 8], bit k -> byte k // 8
    return np.ascontiguousarray(packed.view("<u8")[:, :, 0], dtype=np.uint64)


@njit
def monitor_row(valid: np.ndarray, masks: np.ndarray, state: np.ndarray, i: int) -> bool:
    """True when intersection ``i`` of ``state`` shows two conflicting greens (``masks`` from
    :func:`green_conflict_masks`) or a padding column that is not red.

    Also called by the core's advance kernel right after it advanced intersection ``i``
    (:func:`~ivri.core.kernel.advance_kernel` with a monitor), while that row is still in
    the cache; the masks stay the monitor's own."""
    # Without branches on the aspects (they change from row to row and would be mispredicted):
    # one pass collects the greens and any padding column that is not red, a second one ORs
    # the conflict masks of the green groups (times 1 for a green group, times 0 otherwise).
    n_g = state.shape[1]
    green_m = _ZERO
    padding_lit = False
    for g in range(n_g):
        s = state[i, g]
        green_m |= np.uint64(s == GREEN) << np.uint64(g)
        padding_lit |= (s != RED) & (not valid[i, g])
    clash = _ZERO
    for g in range(n_g):
        clash |= masks[i, g] * ((green_m >> np.uint64(g)) & _ONE)
    return padding_lit or (clash & green_m) != _ZERO


@njit
def _monitor_kernel(valid: np.ndarray, masks: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    n_bad = 0
    for i in range(state.shape[0]):
        bad = monitor_row(valid, masks, state, i)
        out[i] = bad
        if bad:
            n_bad += 1
    return n_bad


class ConflictMonitor:
    """The conflict monitor of one network: its masks are packed once, a check is O(I x G).

    ``check(state, out)`` fills ``out`` (bool ``[I]``) with True where an intersection shows
    two conflicting greens (or a padding column that is not red) and returns how many do.
    ``valid`` and ``masks`` are its arrays, for :func:`monitor_row` inside the core's kernel.
    """

    def __init__(self, timing: Timing) -> None:
        self.valid = np.ascontiguousarray(timing.valid, dtype=np.bool_)
        self.masks = green_conflict_masks(timing)

    def check(self, state: np.ndarray, out: np.ndarray) -> int:
        """Check the aspects ``state`` (int8 ``[I, G]``); see the class docstring."""
        return int(_monitor_kernel(self.valid, self.masks, state, out))


def conflicting_greens(timing: Timing, state: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """bool ``[I]``: True where an intersection shows two conflicting greens (or a padding column is not red).

    ``state`` is ``SignalState.state`` (int8 ``[I, G]``). A one-off check; to check every tick,
    keep a :class:`ConflictMonitor` (the masks are then packed once).
    """
    if out is None:
        out = np.zeros(state.shape[0], dtype=np.bool_)
    ConflictMonitor(timing).check(state, out)
    return out


def conflicting_pairs(timing: Timing, state: np.ndarray, i: int) -> list[tuple[int, int]]:
    """The offending column pairs of intersection ``i`` (a padding column that is not red pairs with itself).

    For error messages: plain Python, called only after :func:`conflicting_greens` found a fault.
    """
    n_g = state.shape[1]
    pairs: list[tuple[int, int]] = []
    for g in range(n_g):
        if not timing.valid[i, g] and state[i, g] != RED:
            pairs.append((g, g))
        for k in range(g + 1, n_g):
            if state[i, g] == GREEN and state[i, k] == GREEN and timing.conflict[i, g, k]:
                pairs.append((g, k))
    return pairs


class SafetyRecorder:
    """Follow the aspects of every signal group tick by tick and check every safety rule.

    Feed it with :meth:`record` once for the state before the first tick and once after each
    tick. ``t_s`` is the time from which the recorded state is shown. It checks:

    * never two conflicting greens, never a padding column other than red;
    * legal transitions only: red -> green -> amber -> red (green -> red only when
      ``amber_s == 0``);
    * every green lasts ``>= min_green_s``, every amber ``>= amber_s``, every red before a
      green ``>= min_red_s``;
    * a group j starts green only when every conflicting group k is red and at least
      ``intergreen_s[k, j]`` has passed since k's green ended.

    Aspects in force at the first record are taken to have started long ago (as after the
    all-red start of :func:`~ivri.core.state.initial_state`).

    With ``strict=True`` (default) the first violation raises
    :class:`~ivri.errors.SafetyViolation`; otherwise they collect in :attr:`violations`.
    """

    def __init__(self, timing: Timing, *, strict: bool = True, tol_s: float = TRACE_TOL_S) -> None:
        self.timing = timing
        self.strict = strict
        self.tol_s = tol_s
        self.violations: list[str] = []
        self.n_records = 0
        shape = timing.valid.shape
        self._state: np.ndarray | None = None
        self._since_s = np.full(shape, -math.inf)
        self._green_end_s = np.full(shape, -math.inf)
        #: Green starts seen per group (red -> green transitions), for liveness checks in tests.
        self.green_starts = np.zeros(shape, dtype=np.int64)

    def _fail(self, t_s: float, i: int, msg: str) -> None:
        text = f"t={t_s:.6g} s, intersection {i}: {msg}"
        self.violations.append(text)
        if self.strict:
            raise SafetyViolation(text)

    def record(self, t_s: float, state: np.ndarray) -> None:
        """Check the aspects ``state`` (int8 ``[I, G]``) shown from ``t_s`` against the history."""
        tm = self.timing
        tol = self.tol_s
        state = np.asarray(state)
        green = state == GREEN
        clash = tm.conflict & green[:, :, None] & green[:, None, :]
        for i, g, k in zip(*np.nonzero(clash), strict=True):
            if g < k:
                self._fail(t_s, int(i), f"conflicting groups {g} and {k} are both green")
        for i, g in zip(*np.nonzero(~tm.valid & (state != RED)), strict=True):
            self._fail(t_s, int(i), f"padding column {g} shows {_ASPECT.get(int(state[i, g]), state[i, g])}")

        prev = self._state
        if prev is not None:
            moved = np.nonzero(state != prev)
            # Ends first: a green that ends on this tick counts for the intergreens checked below.
            for i, g in zip(*moved, strict=True):
                was, now = int(prev[i, g]), int(state[i, g])
                dur = t_s - self._since_s[i, g]
                if was == GREEN:
                    if dur < tm.min_green_s[i, g] - tol:
                        self._fail(t_s, int(i), f"group {g} green for {dur:.6g} s < min_green_s {tm.min_green_s[i, g]}")
                    if now == RED and tm.amber_s[i, g] > 0.0:
                        self._fail(t_s, int(i), f"group {g} went from green to red without amber")
                    if now not in (AMBER, RED):
                        self._fail(t_s, int(i), f"group {g}: illegal aspect {now} after green")
                    self._green_end_s[i, g] = t_s
                elif was == AMBER:
                    if now != RED:
                        self._fail(t_s, int(i), f"group {g} went from amber to {_ASPECT.get(now, now)}")
                    if dur < tm.amber_s[i, g] - tol:
                        self._fail(t_s, int(i), f"group {g} amber for {dur:.6g} s < amber_s {tm.amber_s[i, g]}")
                elif was == RED and now != GREEN:
                    self._fail(t_s, int(i), f"group {g} went from red to {_ASPECT.get(now, now)}")
            for i, j in zip(*moved, strict=True):
                if not (prev[i, j] == RED and state[i, j] == GREEN):
                    continue
                red_s = t_s - self._since_s[i, j]
                if red_s < tm.min_red_s[i, j] - tol:
                    self._fail(t_s, int(i), f"group {j} red for {red_s:.6g} s < min_red_s {tm.min_red_s[i, j]}")
                for k in np.nonzero(tm.conflict[i, j])[0]:
                    if state[i, k] != RED:
                        self._fail(t_s, int(i), f"group {j} starts green while conflicting group {k} is "
                                   f"{_ASPECT.get(int(state[i, k]), state[i, k])}")
                    gap_s = t_s - self._green_end_s[i, k]
                    if gap_s < tm.intergreen_s[i, k, j] - tol:
                        self._fail(t_s, int(i), f"group {j} starts {gap_s:.6g} s after the end of green of "
                                   f"{k}: intergreen_s is {tm.intergreen_s[i, k, j]}")
                self.green_starts[i, j] += 1
            self._since_s[moved] = t_s
        self._state = state.copy()
        self.n_records += 1


def check_trace(timing: Timing, t_s: np.ndarray, states: np.ndarray, *, tol_s: float = TRACE_TOL_S) -> list[str]:
    """Check a whole trace: ``states[n]`` (int8 ``[T, I, G]``) is shown from ``t_s[n]``.

    Returns the violations (empty when the trace is safe); see :class:`SafetyRecorder`.
    """
    rec = SafetyRecorder(timing, strict=False, tol_s=tol_s)
    for t, s in zip(t_s, states, strict=True):
        rec.record(float(t), s)
    return rec.violations
