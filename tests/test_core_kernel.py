"""The signal-group kernel against its plain-Python reference (``tests/naive.py``) and known timelines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from naive import naive_advance, naive_conflicting_greens

from ivri.config import ConflictConfig, IntersectionConfig, SignalGroupConfig
from ivri.core.compile import Timing, compile_network
from ivri.core.idx import AMBER, GREEN, NEVER_S, RED
from ivri.core.kernel import (
    MAX_GROUPS,
    advance_kernel,
    advance_kernel_parallel,
    build_conflict_sets,
)
from ivri.core.safety import ConflictMonitor, conflicting_greens
from ivri.core.state import SignalState
from ivri.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


# --- helpers ---------------------------------------------------------------------------------


def fresh_state(shape: tuple[int, int]) -> SignalState:
    return SignalState(
        state=np.full(shape, RED, dtype=np.int8),
        elapsed_s=np.full(shape, 1.0e9),
        green_end_s=np.full(shape, NEVER_S),
        wait_s=np.zeros(shape),
    )


def copy_state(sig: SignalState) -> SignalState:
    return SignalState(*(a.copy() for a in sig))


def random_timing(rng: np.random.Generator, n_i: int, n_g: int) -> Timing:
    """Random safety rules on a 0.5 s grid (so that timers often expire exactly on a tick).

    Padding columns anywhere (not only at the end, as compile_network makes them), amber 0
    with intergreen 0, dense and sparse conflicts: edge cases a config would rarely hold.
    """
    valid = rng.random((n_i, n_g)) < 0.85
    valid[:, 0] = True
    density = rng.choice([0.2, 0.5, 0.9], size=(n_i, 1, 1))
    upper = np.triu(rng.random((n_i, n_g, n_g)) < density, k=1)
    conflict = (upper | upper.transpose(0, 2, 1)) & valid[:, :, None] & valid[:, None, :]
    if rng.random() < 0.3:  # conflicts with padding columns must be ignored
        conflict |= np.triu(rng.random((n_i, n_g, n_g)) < 0.1, k=1)
        conflict |= conflict.transpose(0, 2, 1)
    amber = rng.choice([0.0, 2.0, 3.0, 3.5], size=(n_i, n_g))
    min_green = 0.5 * rng.integers(1, 13, size=(n_i, n_g))
    max_green = min_green + 0.5 * rng.integers(0, 30, size=(n_i, n_g))
    min_red = 0.5 * rng.integers(0, 5, size=(n_i, n_g))
    max_wait = 0.5 * rng.integers(1, 80, size=(n_i, n_g))
    intergreen = np.where(conflict, amber[:, :, None] + 0.5 * rng.integers(0, 9, size=(n_i, n_g, n_g)), 0.0)
    return Timing(valid, conflict, intergreen, amber, min_green, max_green, min_red, max_wait)


def random_streams(rng: np.random.Generator, n_ticks: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Request and demand streams ``[T, I, G]`` in one of several regimes, adversarial ones included."""
    regime = rng.integers(0, 5)
    if regime == 0:  # independent coin flips
        req = rng.random((n_ticks, *shape)) < rng.uniform(0.1, 0.9)
        dem = rng.random((n_ticks, *shape)) < rng.uniform(0.1, 0.9)
    elif regime == 1:  # everything, always
        req = np.ones((n_ticks, *shape), dtype=np.bool_)
        dem = req.copy()
    elif regime == 2:  # flip every tick
        phase = (np.arange(n_ticks)[:, None, None] + rng.integers(0, 2, size=shape)) % 2 == 0
        req = phase
        dem = ~phase if rng.random() < 0.5 else np.ones_like(phase)
    elif regime == 3:  # sticky on/off, as real calls are
        req = np.zeros((n_ticks, *shape), dtype=np.bool_)
        cur = rng.random(shape) < 0.5
        for n in range(n_ticks):
            cur ^= rng.random(shape) < 0.05
            req[n] = cur
        dem = req | (rng.random((n_ticks, *shape)) < 0.3)
    else:  # demand without requests: only anti-starvation serves anyone
        req = rng.random((n_ticks, *shape)) < 0.05
        dem = np.ones((n_ticks, *shape), dtype=np.bool_)
    return np.ascontiguousarray(req), np.ascontiguousarray(dem)


def compare_with_naive(seed: int, n_ticks: int, n_i: int = 3, n_g: int = 10, parallel: bool = False) -> int:
    """Run kernel and reference side by side; assert equal arrays after every tick. Returns #changes."""
    rng = np.random.default_rng(seed)
    timing = random_timing(rng, n_i, n_g)
    sets = build_conflict_sets(timing)
    dt_s = float(rng.choice([0.1, 0.5, 1.0]))
    req, dem = random_streams(rng, n_ticks, (n_i, n_g))
    # Priority holds on about a third of the groups, in runs of ticks as an application sets them.
    ext = np.repeat(rng.random((n_ticks // 10 + 1, n_i, n_g)) < 0.3, 10, axis=0)[:n_ticks]
    sig_k = fresh_state((n_i, n_g))
    if rng.random() < 0.5:  # start from a random safe-looking mid-run state, not only all red
        sig_k.elapsed_s[:] = 0.5 * rng.integers(0, 20, size=(n_i, n_g))
        sig_k.green_end_s[:] = -0.5 * rng.integers(0, 20, size=(n_i, n_g))
    sig_n = copy_state(sig_k)
    ch_k = np.zeros(n_i, dtype=np.bool_)
    ch_n = np.zeros(n_i, dtype=np.bool_)
    kernel = advance_kernel_parallel if parallel else advance_kernel
    total = 0
    for n in range(n_ticks):
        t_s = (n + 1) * dt_s
        got = kernel(timing, sets, sig_k, req[n], dem[n], ext[n], t_s, dt_s, ch_k)
        want = naive_advance(timing, sig_n, req[n], dem[n], t_s, dt_s, ch_n, ext[n])
        for name, a, b in zip(SignalState._fields, sig_k, sig_n, strict=True):
            assert np.array_equal(a, b), f"seed {seed}, tick {n}: {name} differs\n{a}\n{b}"
        assert np.array_equal(ch_k, ch_n), f"seed {seed}, tick {n}: changed differs"
        assert got == want
        total += got
    return total


def two_group_net(**overrides: float) -> tuple[Timing, object]:
    """Groups a and b that conflict: amber 3, intergreen 5 both ways, min green 6, min red 1."""
    kw = {"amber_s": 3.0, "min_green_s": 6.0, "max_green_s": 20.0, "min_red_s": 1.0, "max_wait_s": 120.0}
    kw.update(overrides)
    x = IntersectionConfig(
        id="J1",
        signal_groups=(SignalGroupConfig(id="a", **kw), SignalGroupConfig(id="b", **kw)),
        conflicts=(ConflictConfig(between=("a", "b"), intergreen_s=(5.0, 5.0)),),
    )
    net = compile_network([x])
    return net.timing, build_conflict_sets(net.timing)


def simulate(timing: Timing, req_fn, dt_s: float, n_ticks: int, dem_fn=None, ext_fn=None) -> np.ndarray:
    """States ``[T, I, G]`` after ticks at t = dt, 2 dt, ...; ``req_fn(t_s)`` gives the requests
    (``dem_fn`` the demand, ``ext_fn`` the priority holds)."""
    sets = build_conflict_sets(timing)
    sig = fresh_state(timing.valid.shape)
    changed = np.zeros(timing.valid.shape[0], dtype=np.bool_)
    out = np.empty((n_ticks, *timing.valid.shape), dtype=np.int8)
    for n in range(n_ticks):
        t_s = (n + 1) * dt_s
        req = req_fn(t_s)
        dem = req if dem_fn is None else dem_fn(t_s)
        ext = np.zeros_like(req) if ext_fn is None else ext_fn(t_s)
        advance_kernel(timing, sets, sig, req, dem, ext, t_s, dt_s, changed)
        out[n] = sig.state
    return out


def first_tick(states: np.ndarray, g: int, aspect: int, after: int = 0) -> int:
    hits = np.nonzero(states[after:, 0, g] == aspect)[0]
    return int(hits[0]) + after if len(hits) else -1


# --- fixed, hand-made timelines --------------------------------------------------------------


@pytest.mark.parametrize("dt_s", [1.0, 0.5, 0.1])
def test_two_group_timeline_exact(dt_s: float) -> None:
    """a is requested from t=0 to t=3, then b. Known timeline, in seconds:

    a green 0+dt (first tick) ... min green 6 s, so a ends at dt + 6 (amber from there, 3 s),
    red at dt + 9, and b starts at dt + 6 + 5 (intergreen 5 from a's end of green).
    """
    timing, _ = two_group_net()
    n_ticks = round(30 / dt_s)

    def req(t_s: float) -> np.ndarray:
        return np.array([[t_s <= 3.0 + 1e-9, t_s > 3.0 + 1e-9]])

    s = simulate(timing, req, dt_s, n_ticks)
    def tick(t: float) -> int:
        return round(t / dt_s) - 1

    assert first_tick(s, 0, GREEN) == tick(dt_s)
    assert first_tick(s, 0, AMBER) == tick(dt_s + 6.0), "min green is 6 s, not a tick more or less"
    assert first_tick(s, 0, RED, after=tick(dt_s + 6.0)) == tick(dt_s + 9.0), "amber is 3 s"
    assert first_tick(s, 1, GREEN) == tick(dt_s + 11.0), "intergreen a -> b is 5 s"
    assert (s[:, 0, 0] == GREEN).sum() == round(6 / dt_s)
    assert (s[:, 0, 0] == AMBER).sum() == round(3 / dt_s)
    # b keeps green as long as it is requested and nothing conflicting calls.
    assert np.all(s[tick(dt_s + 11.0):, 0, 1] == GREEN)


def test_priority_hold_outlasts_max_green_but_not_starvation() -> None:
    """An ``extend`` hold keeps a requested green past max green; a starving rival still ends it."""
    timing, _ = two_group_net(max_wait_s=40.0)
    def always_a(t: float) -> np.ndarray:
        return np.array([[True, t >= 10]])

    held = simulate(timing, always_a, 1.0, 80, ext_fn=lambda t: np.array([[True, False]]))
    # b calls from t = 10; its wait reaches 40 s at t = 49 (1 s counted on its first tick).
    assert first_tick(held, 0, AMBER) == 48, "held past max green (t=21) up to b's starvation"
    # A hold on a group that is not requested does nothing.
    s = simulate(timing, lambda t: np.array([[t < 5, t >= 10]]), 1.0, 40,
                 ext_fn=lambda t: np.array([[True, False]]))
    assert first_tick(s, 0, AMBER) == 6, "not requested: ends at min green despite the hold"


def test_amber_not_divisible_by_tick_lasts_whole_ticks() -> None:
    """Amber 2.5 s with 1 s ticks shows for ceil(2.5) = 3 ticks: never shortened."""
    timing, _ = two_group_net(amber_s=2.5)
    s = simulate(timing, lambda t: np.array([[t < 2.5, False]]), 1.0, 20)
    assert (s[:, 0, 0] == AMBER).sum() == 3


def test_max_green_ends_green_only_for_conflicting_demand() -> None:
    timing, _ = two_group_net()
    # a requested all the time; b never calls: a stays green for ever.
    s = simulate(timing, lambda t: np.array([[True, False]]), 1.0, 60)
    assert np.all(s[:, 0, 0] == GREEN)
    # b calls and is requested from t = 10: a ends at its max green (20 s after its start at 1),
    # and does not come straight back: b waited longer and starts after the intergreen.
    s = simulate(timing, lambda t: np.array([[True, t >= 10]]), 1.0, 60)
    assert first_tick(s, 0, AMBER) == 20  # t = 21 = 1 + 20
    assert first_tick(s, 1, GREEN) == 25  # t = 26 = 21 + 5
    assert np.all(s[20:25, 0, 0] != GREEN)


def test_min_green_is_never_cut() -> None:
    """Request for a only on the first tick, a starving b, b calling: a still gets 6 s."""
    timing, _ = two_group_net(max_wait_s=0.5)
    s = simulate(timing, lambda t: np.array([[t <= 1.0, True]]), 0.5, 40,
                 dem_fn=lambda t: np.array([[True, True]]))
    start = first_tick(s, 0, GREEN)
    assert (s[start:start + 12, 0, 0] == GREEN).all()
    assert s[start + 12, 0, 0] == AMBER


def test_zero_amber_goes_straight_to_red_and_zero_intergreen() -> None:
    x = IntersectionConfig(
        id="J",
        signal_groups=(SignalGroupConfig(id="p", mode="pedestrian", amber_s=0.0, min_green_s=4.0, min_red_s=0.0),
                       SignalGroupConfig(id="q", amber_s=0.0, min_green_s=4.0, min_red_s=0.0)),
        conflicts=(ConflictConfig(between=("p", "q"), intergreen_s=(0.0, 0.0)),),
    )
    timing = compile_network([x]).timing
    s = simulate(timing, lambda t: np.array([[t < 2.0, t >= 2.0]]), 1.0, 12)
    # p green at t=1..4 (4 s), straight to red at t=5, q green on the same tick (intergreen 0).
    assert list(s[:6, 0, 0]) == [GREEN] * 4 + [RED] * 2
    assert list(s[:6, 0, 1]) == [RED] * 4 + [GREEN] * 2


def test_red_shown_for_a_tick_even_without_min_red() -> None:
    """Amber -> green directly would show no red at all; one tick of red at least."""
    timing, _ = two_group_net(min_red_s=0.0, amber_s=1.0, min_green_s=1.0)
    s = simulate(timing, lambda t: np.array([[not (3.0 <= t < 4.0), False]]), 1.0, 12)
    # a: green 1..3, amber at 3 (request dropped), red at 4, green again at 5.
    assert list(s[:6, 0, 0]) == [GREEN, GREEN, AMBER, RED, GREEN, GREEN]


def test_two_conflicting_requests_in_one_tick_longest_wait_first() -> None:
    timing, _ = two_group_net()
    # Both call from t=1, only b is requested at first: b waits 0 (green), a's wait grows.
    # Equal waits would favour the lower index; here both start calling together, so a (index 0) wins.
    s = simulate(timing, lambda t: np.array([[True, True]]), 1.0, 3)
    assert list(s[0, 0]) == [GREEN, RED]
    def dem(t: float) -> np.ndarray:
        return np.array([[True, True]])

    s = simulate(timing, lambda t: np.array([[t > 2.0, True]]), 1.0, 3, dem_fn=dem)
    assert list(s[0, 0]) == [RED, GREEN]


def test_starving_group_served_without_any_request() -> None:
    """b calls but no controller ever requests it: it is served once it has waited max_wait_s."""
    timing, _ = two_group_net(max_wait_s=30.0, max_green_s=100.0)
    s = simulate(timing, lambda t: np.array([[True, False]]), 1.0, 80,
                 dem_fn=lambda t: np.array([[True, True]]))
    # b waits from t=1; starving at t=30: a (green since 1, past min green) ends at 30,
    # b starts at 35 (intergreen 5), holds its min green 6 (unrequested), then a returns.
    assert first_tick(s, 0, AMBER) == 29
    assert first_tick(s, 1, GREEN) == 34
    assert (s[:, 0, 1] == GREEN).sum() >= 6


def test_two_starving_groups_cannot_take_turns_against_a_third() -> None:
    """j conflicts with k1 and k2, which do not conflict with each other and starve fast.

    With the plain rule "only starving groups may start", a controller that requests k1 and k2
    in overlapping turns keeps j out for ever (checked against a literal implementation while
    building the kernel). The reservation makes j (longest wait) go first.
    """
    kw = {"amber_s": 1.0, "min_green_s": 2.0, "max_green_s": 10.0, "min_red_s": 0.0}
    x = IntersectionConfig(
        id="J",
        signal_groups=(SignalGroupConfig(id="j", max_wait_s=5.0, **kw),
                       SignalGroupConfig(id="k1", max_wait_s=1.0, **kw),
                       SignalGroupConfig(id="k2", max_wait_s=1.0, **kw)),
        conflicts=(ConflictConfig(between=("j", "k1"), intergreen_s=(3.0, 3.0)),
                   ConflictConfig(between=("j", "k2"), intergreen_s=(3.0, 3.0))),
    )
    timing = compile_network([x]).timing
    dt_s = 0.5

    def req(t_s: float) -> np.ndarray:
        n = round(t_s / dt_s) - 1
        phase = (n // 6) % 2
        return np.array([[False, phase == 0 or n % 6 < 2, phase == 1 or n % 6 < 2]])

    s = simulate(timing, req, dt_s, 400, dem_fn=lambda t: np.ones((1, 3), dtype=np.bool_))
    green_ticks = np.nonzero(s[:, 0, 0] == GREEN)[0]
    assert len(green_ticks) > 0 and green_ticks[0] * dt_s <= 10.0
    # and it keeps being served, not just once
    assert (np.diff(green_ticks) > 1).sum() >= 5


def test_padding_columns_stay_red() -> None:
    rng = np.random.default_rng(3)
    timing = random_timing(rng, 4, 12)
    ones = np.ones((4, 12), dtype=np.bool_)
    s = simulate(timing, lambda t: ones, 0.5, 200)
    assert np.all(s[:, ~timing.valid] == RED)


def test_changed_flags_and_count() -> None:
    timing, _ = two_group_net()
    timing2 = Timing(*(np.concatenate([a, a]) for a in timing))
    sets2 = build_conflict_sets(timing2)
    sig = fresh_state((2, 2))
    changed = np.ones(2, dtype=np.bool_)
    req = np.array([[True, False], [False, False]])
    assert advance_kernel(timing2, sets2, sig, req, req, ~req, 1.0, 1.0, changed) == 1
    assert list(changed) == [True, False]
    assert advance_kernel(timing2, sets2, sig, req, req, ~req, 2.0, 1.0, changed) == 0
    assert list(changed) == [False, False]


def test_too_many_groups_is_a_config_error() -> None:
    n = MAX_GROUPS + 1
    timing = Timing(np.ones((1, n), bool), np.zeros((1, n, n), bool), np.zeros((1, n, n)),
                    *(np.ones((1, n)) for _ in range(5)))
    with pytest.raises(ConfigError, match="at most 64"):
        build_conflict_sets(timing)


def test_64_groups_use_every_bit() -> None:
    """Group 63 is the sign bit of an int64: the masks must be unsigned."""
    n = MAX_GROUPS
    conflict = np.zeros((1, n, n), bool)
    conflict[0, 0, 63] = conflict[0, 63, 0] = True
    timing = Timing(np.ones((1, n), bool), conflict, np.where(conflict, 3.0, 0.0),
                    np.full((1, n), 3.0), np.full((1, n), 5.0), np.full((1, n), 30.0),
                    np.ones((1, n)), np.full((1, n), 100.0))
    sets = build_conflict_sets(timing)
    assert sets.conflict_mask[0, 0] == np.uint64(1) << np.uint64(63)
    ones = np.ones((1, n), dtype=np.bool_)
    s = simulate(timing, lambda t: ones, 1.0, 100)
    assert not np.any((s[:, 0, 0] == GREEN) & (s[:, 0, 63] == GREEN))
    assert (s[:, 0, 63] == GREEN).any()


# --- random cases against the reference ------------------------------------------------------


@pytest.mark.parametrize("seed", range(24))
def test_kernel_equals_naive_on_random_cases(seed: int) -> None:
    compare_with_naive(seed, n_ticks=250)


def test_random_cases_do_exercise_the_state_machine() -> None:
    """Guard against a vacuous comparison: the random cases change aspects a lot."""
    assert sum(compare_with_naive(seed, n_ticks=100) for seed in range(5)) > 100


@pytest.mark.parametrize("seed", range(4))
def test_parallel_kernel_equals_naive(seed: int) -> None:
    compare_with_naive(100 + seed, n_ticks=150, n_i=6, parallel=True)


@pytest.mark.parametrize("n_g", [3, 10, 40, 64])
def test_conflict_monitor_equals_naive(n_g: int) -> None:
    """The monitor's packed masks flag exactly what the raw conflict matrix says, at every width
    (bits beyond one byte and up to bit 63 included) and for non-red padding columns."""
    rng = np.random.default_rng(n_g)
    timing = random_timing(rng, 30, n_g)
    monitor = ConflictMonitor(timing)
    out = np.zeros(30, dtype=np.bool_)
    n_flagged = 0
    for _ in range(40):
        p_green = rng.uniform(0.02, 0.4)
        state = rng.choice([RED, GREEN, AMBER], p=[0.9 - p_green, p_green, 0.1], size=(30, n_g)).astype(np.int8)
        want = naive_conflicting_greens(timing, state)
        assert monitor.check(state, out) == want.sum()
        assert np.array_equal(out, want)
        assert np.array_equal(conflicting_greens(timing, state), want)
        n_flagged += int(want.sum())
    assert 0 < n_flagged < 40 * 30  # both verdicts occur


def test_kernel_without_jit_in_subprocess() -> None:
    """The same comparison with NUMBA_DISABLE_JIT=1: the kernels run as plain Python."""
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from ivri.core import jit, kernel\n"
        "assert not jit.JIT_ENABLED and not hasattr(kernel.advance_kernel, 'py_func')\n"
        "import test_core_kernel as t\n"
        "for seed in range(3): t.compare_with_naive(seed, n_ticks=60, n_i=2, n_g=8)\n"
        "t.compare_with_naive(7, n_ticks=40, n_i=2, n_g=8, parallel=True)\n"
        "import test_core_engine as e\n"
        "e.test_time_to_change_bounds_hold(0.5)\n"
        "t.test_conflict_monitor_equals_naive(10)\n"
        "print('ok')\n"
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO), str(REPO / "tests")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
