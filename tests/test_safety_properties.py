"""Safety properties of the core, over generated intersections and generated request streams.

Whatever a controller asks (random, all at once, flipping every tick, greedy for conflicting
greens, calls that nobody requests, requests for padding columns), the core never shows two
conflicting greens, never cuts an amber, a minimum green, a minimum red or an intergreen,
never lights a padding column, and serves every group that keeps calling within a bound.

The core runs with its own monitor off, so that these tests judge the kernel by their own
checks (the independent :class:`~ivri.core.safety.SafetyRecorder` and plain numpy), not by
the engine's exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivri.config import ConflictConfig, IntersectionConfig, SignalGroupConfig
from ivri.core.compile import CompiledNetwork, Timing, compile_network
from ivri.core.engine import SignalCore
from ivri.core.idx import GREEN, RED
from ivri.core.safety import SafetyRecorder

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies ------------------------------------------------------------------------------


def tenths(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Times on a 0.1 s grid: awkward against 0.5 s and 1 s ticks, exact enough to read."""
    return st.integers(round(lo * 10), round(hi * 10)).map(lambda v: v / 10)


@st.composite
def intersections(draw: st.DrawFn, ident: str) -> IntersectionConfig:
    """2..12 groups, a random symmetric conflict graph, intergreens >= the ending group's amber."""
    n = draw(st.integers(2, 12))
    groups = []
    for g in range(n):
        mode = draw(st.sampled_from(["motor", "bicycle", "pedestrian"]))
        min_green = draw(tenths(0.5, 12.0))
        groups.append(SignalGroupConfig(
            id=f"g{g}",
            mode=mode,
            amber_s=0.0 if mode == "pedestrian" else draw(tenths(1.0, 4.5)),
            min_green_s=min_green,
            max_green_s=min_green + draw(tenths(0.0, 30.0)),
            min_red_s=draw(tenths(0.0, 3.0)),
            max_wait_s=draw(tenths(0.5, 90.0)),
        ))
    conflicts = []
    for a in range(n):
        for b in range(a + 1, n):
            if draw(st.booleans()):
                conflicts.append(ConflictConfig(
                    between=(f"g{a}", f"g{b}"),
                    intergreen_s=(groups[a].amber_s + draw(tenths(0.0, 6.0)),
                                  groups[b].amber_s + draw(tenths(0.0, 6.0))),
                ))
    return IntersectionConfig(id=ident, signal_groups=tuple(groups), conflicts=tuple(conflicts))


@st.composite
def networks(draw: st.DrawFn) -> CompiledNetwork:
    """Several intersections at once (so the arrays have padding columns)."""
    n = draw(st.integers(1, 4))
    return compile_network([draw(intersections(f"J{i}")) for i in range(n)])


REGIMES = ("coin", "all", "flip", "sticky", "calls_only", "hog", "drop_greens", "greedy")

#: A stream: (tick, state now) -> (request_green, demand), bool [I, G] each.
Stream = Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class StreamSpec:
    regime: str
    seed: int

    def build(self, net: CompiledNetwork, n_ticks: int, calling: np.ndarray | None = None) -> Stream:
        """Precompute random parts; ``calling`` (bool [I, G]) forces demand on for ever."""
        rng = np.random.default_rng(self.seed)
        shape = net.timing.valid.shape
        conflict = net.timing.conflict
        r = self.regime
        # Full-width arrays: requests and calls land on padding columns too.
        if r == "coin":
            p = rng.uniform(0.05, 0.95, size=2)
            req = rng.random((n_ticks, *shape)) < p[0]
            dem = rng.random((n_ticks, *shape)) < p[1]
        elif r == "all":
            req = np.ones((n_ticks, *shape), dtype=np.bool_)
            dem = req
        elif r == "flip":
            req = (np.arange(n_ticks)[:, None, None] + rng.integers(0, 2, size=shape)) % 2 == 0
            dem = np.ones_like(req) if rng.random() < 0.5 else ~req
        elif r == "sticky":
            flips = rng.random((n_ticks, *shape)) < rng.uniform(0.01, 0.3)
            req = np.logical_xor.accumulate(flips, axis=0) ^ (rng.random(shape) < 0.5)
            dem = req | (rng.random((n_ticks, *shape)) < 0.2)
        elif r == "calls_only":  # nobody requests: only anti-starvation gives green
            req = rng.random((n_ticks, *shape)) < 0.02
            dem = rng.random((n_ticks, *shape)) < 0.8
        else:  # hog / drop_greens / greedy react to the state; their base calls are random
            req = np.zeros((n_ticks, *shape), dtype=np.bool_)
            dem = rng.random((n_ticks, *shape)) < 0.7
        if calling is not None:
            dem = dem | calling
        hog = rng.random(shape) < 0.5

        def stream(n: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            green = state == GREEN
            if r == "hog":  # keep a fixed half green for ever and ask nothing else
                return hog | (green & hog), dem[n]
            if r == "drop_greens":  # end every green at once, ask for every red: flip-flop
                return ~green, dem[n]
            if r == "greedy":  # keep greens and ask for everything that conflicts with them
                want = green | np.any(conflict & green[:, :, None], axis=1)
                return want, dem[n]
            return req[n], dem[n]

        return stream


streams = st.builds(StreamSpec, regime=st.sampled_from(REGIMES), seed=st.integers(0, 2**32 - 1))
dts = st.sampled_from([0.1, 0.5, 1.0])


def simulate(net: CompiledNetwork, dt_s: float, stream: Stream, n_ticks: int,
             on_tick: Callable[[SignalCore, np.ndarray], None]) -> None:
    """Run the core for ``n_ticks``; ``on_tick(core, state_before)`` after each tick."""
    core = SignalCore(net, dt_s, monitor=False)
    for n in range(n_ticks):
        before = core.signals.state.copy()
        req, dem = stream(n, before)
        core.advance(np.ascontiguousarray(req), np.ascontiguousarray(dem))
        on_tick(core, before)


def ticks_for(seconds: float, dt_s: float) -> int:
    return math.ceil(seconds / dt_s)


# --- properties ------------------------------------------------------------------------------


@SETTINGS
@given(net=networks(), dt_s=dts, spec=streams)
def test_never_two_conflicting_greens(net: CompiledNetwork, dt_s: float, spec: StreamSpec) -> None:
    conflict = net.timing.conflict

    def check(core: SignalCore, _: np.ndarray) -> None:
        green = core.signals.state == GREEN
        clash = conflict & green[:, :, None] & green[:, None, :]
        assert not clash.any(), f"t={core.t_s}: conflicting greens at {np.argwhere(clash)[0]}"

    n = ticks_for(150.0, dt_s)
    simulate(net, dt_s, spec.build(net, n), n, check)


@SETTINGS
@given(net=networks(), dt_s=dts, spec=streams)
def test_padding_never_green(net: CompiledNetwork, dt_s: float, spec: StreamSpec) -> None:
    padding = ~net.timing.valid

    def check(core: SignalCore, _: np.ndarray) -> None:
        assert np.all(core.signals.state[padding] == RED)

    n = ticks_for(100.0, dt_s)
    simulate(net, dt_s, spec.build(net, n), n, check)


@SETTINGS
@given(net=networks(), dt_s=dts, spec=streams)
def test_amber_min_green_min_red_and_intergreen_respected(
    net: CompiledNetwork, dt_s: float, spec: StreamSpec
) -> None:
    """Every transition is checked by the recorder (raises SafetyViolation on the first fault)."""
    rec = SafetyRecorder(net.timing, strict=True)
    rec.record(0.0, np.full(net.timing.valid.shape, RED, dtype=np.int8))
    n = ticks_for(200.0, dt_s)
    simulate(net, dt_s, spec.build(net, n), n, lambda core, _: rec.record(core.t_s, core.signals.state))
    assert rec.n_records == n + 1


def starvation_bound_s(timing: Timing, i: int, j: int, dt_s: float) -> float:
    """Longest time group j of intersection i can call (demand every tick, not green) unserved.

    Derivation (see ``ivri.core.kernel``: starving groups reserve their conflicting groups):

    1. j starves once it has called for ``max_wait_s[j]``; on a tick grid that takes at most
       ``max_wait_s[j] + dt`` from the first tick of its wait.
    2. Among the starving groups, the one with the best claim (longest wait, then lowest
       index), call it p, cannot be blocked by a new green: a group that conflicts with p and
       does not starve may not start, and a starving one has a worse claim, so it may not start
       either. Each green that conflicts with p ends as soon as its minimum green is served
       (p starves), then p waits the intergreen; and p itself may still have to finish its own
       amber and minimum red. So p starts within
       ``S = max over p of max(max_k(min_green[k] + intergreen[k, p]), amber[p] + min_red[p]) + 3 dt``
       of becoming the best (each timer ends on the first tick at or after it: + dt each, and
       one more tick because red must be shown at the start of the tick it ends).
    3. Waits all grow by dt per tick, so the claim order between two waiting groups never
       changes; a group ahead of j falls behind for good once served (its wait restarts at 0)
       or once its calls stop. So each of the other ``n - 1`` groups enters the set ahead of j
       at most once and leaves it at most once: at most ``2 (n - 1)`` changes of the best, so
       at most ``2 (n - 1) + 1`` periods, each shorter than S, before j is the best and served.

    Bound: ``max_wait_s[j] + dt + (2 (n - 1) + 1) * S``.

    A kernel that drops the starvation rules (or the reservation) fails it: a group that calls
    but is never requested is then never served, and the runs below outlast the bound.
    """
    valid = timing.valid[i]
    groups = np.nonzero(valid)[0]
    n = len(groups)
    s_max = 0.0
    for p in groups:
        own = timing.amber_s[i, p] + timing.min_red_s[i, p]
        clear = max(
            (timing.min_green_s[i, k] + timing.intergreen_s[i, k, p]
             for k in groups if timing.conflict[i, k, p]),
            default=0.0,
        )
        s_max = max(s_max, own, clear)
    s_max += 3 * dt_s
    return float(timing.max_wait_s[i, j]) + dt_s + (2 * (n - 1) + 1) * s_max


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=networks(), dt_s=dts, spec=streams, seed=st.integers(0, 2**32 - 1))
def test_no_starvation(net: CompiledNetwork, dt_s: float, spec: StreamSpec, seed: int) -> None:
    """Every group that calls every tick gets green within :func:`starvation_bound_s`, whatever
    is requested; groups picked at random call for the whole run, which outlasts every bound."""
    timing = net.timing
    shape = timing.valid.shape
    rng = np.random.default_rng(seed)
    calling = (rng.random(shape) < 0.5) & timing.valid
    calling[:, 0] = True  # at least one continuous caller per intersection
    bound_s = np.zeros(shape)
    for i, j in np.argwhere(timing.valid):
        bound_s[i, j] = starvation_bound_s(timing, i, j, dt_s)
    n_ticks = ticks_for(bound_s[calling].max(), dt_s) + 5
    run_start = np.full(shape, -1)  # first tick of the current unserved call, or -1
    worst = np.zeros(shape)  # longest unserved call seen, s

    def check(core: SignalCore, before: np.ndarray) -> None:
        n = round((core.t_s - core.start_s) / dt_s) - 1
        dem = stream(n, before)[1]  # the demand this tick saw (streams are pure per tick)
        waiting = timing.valid & dem & (before != GREEN)
        start = waiting & (run_start < 0)
        run_start[start] = n
        served = core.signals.state == GREEN
        done = (run_start >= 0) & (served | ~waiting)
        run_start[done] = -1
        open_ = run_start >= 0
        length = np.where(open_, (n - run_start + 1) * dt_s, 0.0)
        np.maximum(worst, length, out=worst)
        late = open_ & (length > bound_s + 1e-9)
        assert not late.any(), (
            f"group {np.argwhere(late)[0]} called for {length[late][0]:.1f} s without green; "
            f"bound {bound_s[late][0]:.1f} s"
        )

    stream = spec.build(net, n_ticks, calling=calling)
    simulate(net, dt_s, stream, n_ticks, check)
