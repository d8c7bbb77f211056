"""SignalCore: the public wrapper around the kernel (input checks, time, reset, monitor, SPaT timing)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ivri.config import ConflictConfig, IntersectionConfig, SignalGroupConfig
from ivri.core.compile import CompiledNetwork, compile_network
from ivri.core.engine import SignalCore
from ivri.core.idx import AMBER, GREEN, RED
from ivri.core.safety import SafetyRecorder
from ivri.errors import ConfigError, SafetyViolation


def crossing(n: int = 2) -> CompiledNetwork:
    """``n`` copies of a small crossing: main road m1/m2, side road s1, crosswalk p (amber 0)."""
    groups = (
        SignalGroupConfig(id="m1", min_green_s=6, max_green_s=20),
        SignalGroupConfig(id="m2", min_green_s=6, max_green_s=20),
        SignalGroupConfig(id="s1", min_green_s=4, max_green_s=12, max_wait_s=40),
        SignalGroupConfig(id="p", mode="pedestrian", amber_s=0.0, min_green_s=5, max_green_s=8, min_red_s=2),
    )
    conflicts = (
        ConflictConfig(between=("m1", "s1"), intergreen_s=(4.0, 5.0)),
        ConflictConfig(between=("m2", "s1"), intergreen_s=(4.5, 4.0)),
        ConflictConfig(between=("s1", "p"), intergreen_s=(3.5, 7.0)),
        ConflictConfig(between=("m1", "p"), intergreen_s=(5.0, 8.0)),
    )
    xs = [IntersectionConfig(id=f"J{i}", signal_groups=groups, conflicts=conflicts) for i in range(n)]
    # One smaller intersection, so that the arrays have padding columns.
    xs.append(IntersectionConfig(id="T", signal_groups=groups[:2]))
    return compile_network(xs)


def test_dt_must_be_positive() -> None:
    net = crossing()
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ConfigError, match="dt_s"):
            SignalCore(net, bad)


def test_shape_and_dtype_errors_are_clear() -> None:
    net = crossing()
    core = SignalCore(net, 0.5)
    good = net.full(False, np.bool_)
    with pytest.raises(ValueError, match=r"request_green must have shape \(3, 4\)"):
        core.advance(np.zeros((3, 3), dtype=np.bool_))
    with pytest.raises(ValueError, match="request_green must be a bool array, got dtype float64"):
        core.advance(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="demand must have shape"):
        core.advance(good, np.zeros((4, 3), dtype=np.bool_))
    with pytest.raises(ValueError, match="demand must be a bool array"):
        core.advance(good, np.zeros((3, 4), dtype=np.int8))
    # A rejected call leaves no trace: time did not move.
    assert core.t_s == 0.0
    assert np.all(core.signals.state == RED)


def test_non_contiguous_and_list_inputs_work() -> None:
    net = crossing()
    core = SignalCore(net, 0.5)
    wide = np.ones((3, 8), dtype=np.bool_)
    core.advance(wide[:, ::2])
    core.advance(np.ones((3, 4), dtype=np.bool_).tolist())
    assert core.t_s == 1.0


def test_advance_returns_the_same_changed_array() -> None:
    net = crossing()
    core = SignalCore(net, 0.5)
    req = net.full(True, np.bool_)
    first = core.advance(req)
    assert first is core.changed
    assert first.tolist() == [True, True, True]
    assert core.advance(req) is first
    assert first.tolist() == [False, False, False]


def test_time_is_counted_not_summed() -> None:
    core = SignalCore(crossing(), 0.1, start_s=100.0)
    req = core.net.full(False, np.bool_)
    for _ in range(10_000):
        core.advance(req)
    assert core.t_s == 100.0 + 10_000 * 0.1


def test_reset_is_idempotent_and_keeps_the_arrays() -> None:
    net = crossing()
    rng = np.random.default_rng(0)
    reqs = rng.random((200, *net.timing.valid.shape)) < 0.5
    core = SignalCore(net, 0.5)
    arrays = tuple(core.signals)

    def trace() -> list[np.ndarray]:
        out = []
        for r in reqs:
            core.advance(r)
            out.append(np.concatenate([a.ravel().astype(float) for a in core.signals]))
        return out

    first = trace()
    core.reset()
    core.reset()
    fresh = SignalCore(net, 0.5)
    for a, b in zip(core.signals, fresh.signals, strict=True):
        assert np.array_equal(a, b)
    assert core.t_s == 0.0 and not core.changed.any()
    assert all(a is b for a, b in zip(core.signals, arrays, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(trace(), first, strict=True))


def test_green_mask() -> None:
    core = SignalCore(crossing(), 1.0)
    req = core.net.full(False, np.bool_)
    req[:, 0] = True
    core.advance(req)
    assert np.array_equal(core.green_mask(), req)


def test_monitor_names_intersection_and_groups() -> None:
    net = crossing()
    core = SignalCore(net, 1.0)
    # Corrupt the state from outside (what the kernel never does): m1 and s1 both green.
    idx = net.group_index[1]
    core.signals.state[1, idx["m1"]] = GREEN
    core.signals.state[1, idx["s1"]] = GREEN
    core.signals.elapsed_s[1] = 0.0
    with pytest.raises(SafetyViolation, match=r"intersection 'J1': m1 \+ s1"):
        core.advance(net.full(True, np.bool_))
    off = SignalCore(net, 1.0, monitor=False)
    off.signals.state[1, idx["m1"]] = off.signals.state[1, idx["s1"]] = GREEN
    off.signals.elapsed_s[1] = 0.0
    off.advance(net.full(True, np.bool_))  # no monitor, no exception


def test_parallel_core_gives_the_same_states() -> None:
    net = crossing(5)
    rng = np.random.default_rng(1)
    a, b = SignalCore(net, 0.5), SignalCore(net, 0.5, parallel=True)
    for _ in range(300):
        r = rng.random(net.timing.valid.shape) < 0.4
        d = r | (rng.random(r.shape) < 0.3)
        assert np.array_equal(a.advance(r, d), b.advance(r, d))
        for x, y in zip(a.signals, b.signals, strict=True):
            assert np.array_equal(x, y)


def test_time_to_change_on_a_known_timeline() -> None:
    net = crossing(1)
    core = SignalCore(net, 1.0)
    idx = net.group_index[0]
    m1, s1, p = idx["m1"], idx["s1"], idx["p"]
    req = net.full(False, np.bool_)
    req[0, m1] = True
    core.advance(req)  # t=1: m1 green
    ttc = core.time_to_change_s()
    assert ttc.min_s[0, m1] == 6.0 and ttc.max_s[0, m1] == math.inf  # nobody else calls
    assert ttc.min_s[0, s1] == 6.0 + 4.0  # m1's min green, then intergreen m1 -> s1
    assert ttc.min_s[0, p] == 6.0 + 5.0
    assert ttc.max_s[0, s1] == math.inf
    assert np.all(ttc.min_s[1, 2:] == math.inf)  # padding of T (2 groups) and ...
    assert np.all(ttc.min_s[1, :2] == 1.0)  # ... its real groups, which may start next tick
    dem = req.copy()
    dem[0, s1] = True
    for _ in range(3):
        core.advance(req, dem)  # t=4: s1 calls for 3 s
    ttc = core.time_to_change_s()
    assert ttc.min_s[0, m1] == 3.0
    assert ttc.max_s[0, m1] == 17.0  # max green 20 from t=1 -> ends at t=21
    core.advance(req & False, dem)  # t=5: request dropped, m1 (green 4 s) keeps its min green
    assert core.signals.state[0, m1] == GREEN
    ttc = core.time_to_change_s()
    assert ttc.min_s[0, m1] == 2.0
    core.advance(req & False, dem)
    core.advance(req & False, dem)  # t=7: amber
    assert core.signals.state[0, m1] == AMBER
    ttc = core.time_to_change_s()
    assert ttc.min_s[0, m1] == ttc.max_s[0, m1] == 3.0
    assert ttc.min_s[0, s1] == 4.0
    req2 = net.full(False, np.bool_)
    req2[0, s1] = True
    for _ in range(4):
        core.advance(req2, dem)
    assert core.signals.state[0, s1] == GREEN and core.t_s == 11.0  # exactly as predicted


@pytest.mark.parametrize("dt_s", [0.5, 1.0])
def test_time_to_change_bounds_hold(dt_s: float) -> None:
    """Under random requests and constant calls, no change comes before ``min_s``, an amber ends
    exactly at ``min_s``, and a green ends no later than ``max_s``."""
    net = crossing(4)
    rng = np.random.default_rng(int(dt_s * 10))
    core = SignalCore(net, dt_s)
    rec = SafetyRecorder(net.timing)
    rec.record(core.t_s, core.signals.state)
    shape = net.timing.valid.shape
    dem = np.ones(shape, dtype=np.bool_)
    deadline_min = np.full(shape, -math.inf)
    deadline_max = np.full(shape, math.inf)
    prev = core.signals.state.copy()
    for _ in range(1500):
        core.advance(rng.random(shape) < 0.6, dem)
        now, t = core.signals.state, core.t_s
        rec.record(t, now)
        moved = now != prev
        assert np.all(t >= deadline_min[moved] - 1e-9), "changed before min_s"
        assert np.all(t <= deadline_max[moved] + 1e-9)
        stuck = ~moved & (deadline_max < t - 1e-9)
        assert not stuck.any(), "did not change by max_s"
        ttc = core.time_to_change_s()
        deadline_min = t + ttc.min_s
        deadline_max = t + ttc.max_s
        prev = now.copy()
    assert rec.green_starts.sum() > 100
