"""The committed forecast is never broken: over generated intersections and request streams, no
signal group changes aspect outside the window the core accepted (earliest and latest next
change), whatever the controller, the priority applications or random proposals ask; and the
published SPaT (``time_to_change_s``) is never undercut.

Beside ``test_safety_properties`` (the core's safety rules) and ``test_priority_properties``
(every application at once); the safety rules are checked here too (monitor on).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ivri.controllers import PriorityArbiter, make_controller
from ivri.controllers.base import Controller, Observation
from test_priority_properties import APPS, Users, networks, rain_series
from test_safety_properties import StreamSpec, streams
from test_safety_properties import networks as core_networks

from ivri.core.compile import CompiledNetwork
from ivri.core.engine import SignalCore
from ivri.core.forecast import Commitment
from ivri.core.idx import GREEN
from ivri.core.state import SignalState
from ivri.engine import Engine

TOL = 1e-6
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Watch:
    """Checks, tick by tick, that every change lies in the window committed before the tick and
    that no committed latest end passes without the change."""

    def __init__(self, core: SignalCore) -> None:
        self.core = core
        self.changes = 0
        self.kept_holds = 0

    def before(self) -> None:
        c = self.core.committed
        self.lo = c.min_end_s.copy()
        self.hi = c.max_end_s.copy()
        ttc = self.core.time_to_change_s()
        self.spat_min = self.core.t_s + ttc.min_s
        # SPaT is in whole ticks, with and without commitments (TimeToChange).
        for a in (ttc.min_s, ttc.max_s):
            ticks = a[self.core.net.timing.valid & np.isfinite(a)] / self.core.dt_s
            assert np.allclose(ticks, np.round(ticks), rtol=0.0, atol=TOL), "SPaT off the tick grid"
        self.state = self.core.signals.state.copy()

    def after(self) -> None:
        t = self.core.t_s
        state = self.core.signals.state
        changed = state != self.state
        early = changed & (t < self.lo - TOL)
        assert not early.any(), f"t={t}: {np.argwhere(early)[0]} changed before its committed {self.lo[early][0]}"
        late = (changed & (t > self.hi + TOL)) | (~changed & (self.state == GREEN) & (t >= self.hi - TOL))
        assert not late.any(), f"t={t}: {np.argwhere(late)[0]} missed its committed latest end {self.hi[late][0]}"
        undercut = changed & (t < self.spat_min - TOL)
        assert not undercut.any(), f"t={t}: {np.argwhere(undercut)[0]} changed before SPaT's minEndTime"
        self.changes += int(changed.sum())
        self.kept_holds += int((~changed & (self.state == GREEN) & np.isfinite(self.lo) & (t < self.lo)).sum())


def random_proposal(rng: np.random.Generator, t: float, shape: tuple[int, int]) -> Commitment:
    lo = np.where(rng.random(shape) < 0.3, t + rng.uniform(0.0, 60.0, shape), -math.inf)
    hi = np.where(rng.random(shape) < 0.2, t + rng.uniform(0.0, 60.0, shape), math.inf)
    likely = np.where(rng.random(shape) < 0.3, t + rng.uniform(0.0, 60.0, shape), math.nan)
    return Commitment(lo, hi, likely)


@SETTINGS
@given(net=core_networks(), dt_s=st.sampled_from([0.1, 0.5, 1.0]), spec=streams,
       seed=st.integers(0, 2**32 - 1))
def test_random_commitments_are_kept_under_any_request_stream(
    net: CompiledNetwork, dt_s: float, spec: StreamSpec, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n = math.ceil(150.0 / dt_s)
    stream = spec.build(net, n)
    core = SignalCore(net, dt_s, monitor=True)
    w = Watch(core)
    for k in range(n):
        req, dem = stream(k, core.signals.state.copy())
        core.commit(random_proposal(rng, core.t_s, net.timing.valid.shape))
        w.before()
        core.advance(np.ascontiguousarray(req), np.ascontiguousarray(dem))
        w.after()


class FromOutside(Controller):
    """``inner``, plus a random commitment from outside on one tick in five, given to the core
    after the controller's own: the engine asks for ``extend_green`` after it has committed
    the controller's commitment and just before it advances, so this is where the extra
    proposal goes and where the :class:`Watch` notes the window of the tick."""

    def __init__(self, inner: Controller, rng: np.random.Generator) -> None:
        self.inner = inner
        self.rng = rng
        self.watch: Watch | None = None

    def reset(self, net: CompiledNetwork) -> None:
        super().reset(net)
        self.inner.reset(net)

    def step(self, obs: Observation, signals: SignalState) -> np.ndarray:
        return self.inner.step(obs, signals)

    def commitment(self) -> Commitment | None:
        return self.inner.commitment()

    def extend_green(self) -> np.ndarray | None:
        assert self.watch is not None
        core = self.watch.core
        if self.rng.random() < 0.2:
            core.commit(random_proposal(self.rng, core.t_s, self.net_.timing.valid.shape))
        self.watch.before()
        return self.inner.extend_green()


@SETTINGS
@given(net=networks(), dt_s=st.sampled_from([0.5, 1.0]), base=st.sampled_from(["actuated", "cv-actuated"]),
       seed=st.integers(0, 2**32 - 1))
def test_no_controller_or_application_breaks_a_commitment(
    net: CompiledNetwork, dt_s: float, base: str, seed: int
) -> None:
    """cv-actuated commits to the greens it holds for platoons; every application at once asks
    for cuts and holds on top; random extra proposals come from outside. Nothing is broken."""
    rng = np.random.default_rng(seed)
    shape = net.timing.valid.shape
    n_ticks = 300
    users = Users(rng, net, n_ticks * dt_s, int(rng.integers(5, 40)))
    ctl = make_controller(f"{base}+{APPS}", rain={"rain": rain_series(rng, n_ticks * dt_s), "wait_s": 5.0})
    assert isinstance(ctl, PriorityArbiter)
    engine = Engine(net, FromOutside(ctl, rng), dt_s, monitor=True)
    core = engine.core
    w = Watch(core)
    engine.controller.watch = w
    obs = Observation.empty(net)
    for k in range(1, n_ticks + 1):
        obs.t_s = k * dt_s
        obs.demand[:] = rng.random(shape) < 0.5
        obs.gap_s[:] = rng.uniform(0.0, 8.0, shape)
        obs.queue_veh[:] = rng.integers(0, 5, shape)
        obs.approach_veh[:] = obs.queue_veh + rng.integers(0, 5, shape)
        obs.v2x = users.at(obs.t_s)
        engine.tick(obs)
        w.after()


def test_a_committed_hold_outlasts_a_request_to_end_and_max_green() -> None:
    """By hand: a green committed to last until t=40 s stays green although nobody requests it
    and a conflicting group calls past its max green; a commitment to end by 12 s ends it then.
    A hold is cut back to what a starving conflicting group allows."""
    from test_priority_apps import two_groups

    net = two_groups(max_green_s=20.0, max_wait_s=120.0)
    core = SignalCore(net, 1.0)
    req = np.array([[True, False]])
    dem = np.array([[True, True]])
    core.advance(req, dem)  # t=1: A green
    inf = np.full((1, 2), math.inf)
    core.commit(Commitment(np.array([[40.0, -math.inf]]), inf, np.full((1, 2), math.nan)))
    assert core.committed.min_end_s[0, 0] == 40.0
    ttc = core.time_to_change_s()
    assert ttc.min_s[0, 0] == 39.0  # SPaT's minEndTime carries it
    for _ in range(38):
        core.advance(np.array([[False, True]]), dem)
        assert core.signals.state[0, 0] == GREEN
    core.advance(np.array([[False, True]]), dem)  # t=40: the commitment is kept, A ends
    assert core.signals.state[0, 0] != GREEN
    # A latest end: B green later, committed to end by 12 s after its start although requested.
    core2 = SignalCore(net, 1.0)
    core2.advance(req, dem)
    core2.commit(Commitment(np.full((1, 2), -math.inf), np.array([[12.0, math.inf]]), np.full((1, 2), math.nan)))
    for _ in range(10):
        core2.advance(req, dem)
    assert core2.signals.state[0, 0] == GREEN and core2.t_s == 11.0
    core2.advance(req, dem)
    assert core2.signals.state[0, 0] != GREEN  # t=12
    # Starvation bound: A (max green 300 s) runs, B has called for 99 s of its 120 s max wait;
    # a hold to 200 s is cut back to before B would starve (t=120), and kept.
    core3 = SignalCore(two_groups(max_green_s=300.0, max_wait_s=120.0), 1.0)
    for _ in range(100):
        core3.advance(req, dem)
    assert core3.signals.state[0, 0] == GREEN and core3.t_s == 100.0
    core3.commit(Commitment(np.array([[200.0, -math.inf]]), inf, np.full((1, 2), math.nan)))
    assert 110.0 < core3.committed.min_end_s[0, 0] <= 120.0


def test_spatem_carries_the_committed_times() -> None:
    """SPATEM's minEndTime / likelyTime are the core's committed forecast: a green committed to
    last until 40 s (now 1 s) has minEndTime now + 39 s; a likely time the controller gave is
    likelyTime."""
    from test_priority_apps import two_groups

    from ivri.gateway.site import SiteTable
    from ivri.gateway.spat import build_spatem, time_mark

    net = two_groups()
    core = SignalCore(net, 1.0)
    core.advance(np.array([[True, False]]), np.array([[True, True]]))
    core.commit(Commitment(np.array([[40.0, -math.inf]]), np.full((1, 2), math.inf),
                           np.array([[math.nan, 48.0]])))
    ttc = core.time_to_change_s()
    now = 1_000_000.0
    msg = build_spatem(SiteTable(net.config, None), 0, core.signals.state, ttc.min_s, ttc.max_s,
                       net.timing.valid, now, likely_s=ttc.likely_s)
    a, b = (s.state_time_speed[0].timing for s in msg.intersections[0].states)
    assert a.min_end_time == time_mark(now + 39.0)
    assert b.likely_time == time_mark(now + 47.0)
    # B's earliest start follows A's committed end and the intergreen (5 s): 39 + 5 s from now.
    assert ttc.min_s[0, 1] == 44.0 and b.min_end_time == time_mark(now + 44.0)
