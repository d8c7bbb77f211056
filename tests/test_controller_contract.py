"""One contract for every controller in the registry (scikit-learn's check_estimator, for ivri).

Each controller runs against the real core (:class:`ivri.core.engine.SignalCore`) on a few
compiled intersections (a Dutch four-arm template and random ones, padded to one width) with
seeded random observations whose queues follow the signals, and connected road users
(emergency vehicles, buses, trucks, cyclists and pedestrians with the app, cars) that
approach, wait and pass. The controllers are every base controller and, through the arbiter
(:class:`~ivri.controllers.PriorityArbiter`), every priority application on a base
controller, and all of them at once. Whatever a controller is, it must:

* return bool ``[I, G]``, the same array object every tick, never requesting a padding column;
* leave the observation and the core's state alone;
* be deterministic, and ``reset`` idempotent (and forgetting the previous run);
* get every group that calls without pause to green within a bound;
* report its constructor parameters through ``get_params``;
* behave the same when its kernels run as plain Python (``NUMBA_DISABLE_JIT=1``).

A priority application on its own returns well-formed requests (columns of one length and
their dtypes, rows inside the network, a known class, a finite arrival), leaves the
observation and the core's state alone, and reports its parameters; on the traffic here
each one's requests reach the arbiter and are acted on.

Safety (no conflicting greens, minimum green, intergreen) is the core's job; the contract
still records every run with the core's independent :class:`~ivri.core.safety.SafetyRecorder`.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ivri.controllers import (
    APPLICATIONS,
    CONTROLLERS,
    SUMO_NATIVE,
    PriorityApplication,
    PriorityArbiter,
    PriorityClass,
    PriorityRequests,
    RainSeries,
    Role,
    V2XObservation,
    available_controllers,
    describe_controllers,
    make_controller,
    validate_run_choice,
)
from ivri.controllers.arbiter import ACTING, Status
from ivri.controllers.base import NO_DETECTION_S, Controller, Observation
from ivri.controllers.fixed_time import FixedTime

from ivri.config import ConflictConfig, IntersectionConfig, SignalGroupConfig
from ivri.core.compile import CompiledNetwork, compile_network
from ivri.core.engine import SignalCore
from ivri.core.forecast import Commitment
from ivri.core.idx import GREEN, RED
from ivri.core.safety import SafetyRecorder
from ivri.core.state import SignalState
from ivri.engine import Engine
from ivri.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
N_TICKS = 600
BASES = sorted(CONTROLLERS)
#: Every priority application on the vehicle-actuated base, and all of them on fixed time.
PRIORITY_SPECS = [f"actuated+{a}" for a in APPLICATIONS] + ["fixed-time+" + "+".join(APPLICATIONS)]
NAMES = BASES + PRIORITY_SPECS
#: (name, tick length): base controllers at two tick lengths; the priority specs, whose
#: arbiter learns the tick length from the same clock as the base controllers, at one (to
#: keep the suite fast).
NAMES_DT = [(n, dt) for n in BASES for dt in (1.0, 0.5)] + [(n, 1.0) for n in PRIORITY_SPECS]
#: Ticks of the runs that are repeated to compare them (determinism, reset).
REPEAT_TICKS = {**dict.fromkeys(BASES, N_TICKS), **dict.fromkeys(PRIORITY_SPECS, 300)}
#: The classes each application's requests come in.
APP_CLASSES = {
    "greenflow": {PriorityClass.EMERGENCY},
    "schwung": {PriorityClass.CYCLIST},
    "rain": {PriorityClass.RAIN},
    "crosswalk": {PriorityClass.SLOW_CROSSER_WALK, PriorityClass.SLOW_CROSSER_CLEARING},
    "bus": {PriorityClass.PUBLIC_TRANSPORT},
    "truck": {PriorityClass.FREIGHT},
    "glosa": set(),  # speed advice only: it never asks for green
}
#: Controllers that by design ignore the detectors (their runs do not depend on the seed).
DETECTOR_BLIND = {"fixed-time"}
#: Rain during part of the run (rain mode needs a series): dry, 3 mm/h from 60 s, dry from 400 s.
RAIN = RainSeries(np.array([0.0, 60.0, 400.0]), np.array([0.0, 3.0, 0.0]))
#: Parameters an application needs to run at all.
APP_PARAMS: dict[str, dict[str, object]] = {"rain": {"rain": RAIN}}


def build(name: str) -> Controller:
    """The controller of a contract name: a base controller or a priority spec."""
    apps = name.split("+")[1:]
    return make_controller(name, **{a: APP_PARAMS[a] for a in apps if a in APP_PARAMS})


# -- networks ----------------------------------------------------------------------------------


def four_arm(xid: str = "X4") -> IntersectionConfig:
    """A Dutch four-arm template: two motor directions, cycle tracks and crossings beside them.

    fc02/fc08 (north-south) conflict with fc05/fc11 (east-west); the cyclists fc22 and the
    pedestrians fc31 run beside north-south, fc26 and fc33 beside east-west. Pedestrian
    clearances are long, amber is 0 for pedestrians.
    """
    g = SignalGroupConfig
    groups = (
        g(id="fc02", min_green_s=6, max_green_s=30),
        g(id="fc05", min_green_s=6, max_green_s=25),
        g(id="fc08", min_green_s=6, max_green_s=30),
        g(id="fc11", min_green_s=6, max_green_s=25),
        g(id="fc22", mode="bicycle", amber_s=2.0, min_green_s=5, max_green_s=20),
        g(id="fc26", mode="bicycle", amber_s=2.0, min_green_s=5, max_green_s=20),
        g(id="fc31", mode="pedestrian", amber_s=0.0, min_green_s=5, max_green_s=15),
        g(id="fc33", mode="pedestrian", amber_s=0.0, min_green_s=5, max_green_s=15),
    )
    ns = ("fc02", "fc08", "fc22", "fc31")
    ew = ("fc05", "fc11", "fc26", "fc33")
    speed = {"fc": 5.0}
    conflicts = []
    for a in ns:
        for b in ew:
            ig_ab = 8.0 if a == "fc31" else (6.0 if a == "fc22" else speed["fc"])
            ig_ba = 8.0 if b == "fc33" else (6.0 if b == "fc26" else speed["fc"] + 0.5)
            conflicts.append(ConflictConfig(between=(a, b), intergreen_s=(ig_ab, ig_ba)))
    return IntersectionConfig(id=xid, signal_groups=groups, conflicts=tuple(conflicts))


def random_intersection(seed: int, n_groups: int, xid: str) -> IntersectionConfig:
    """Random groups, conflicts and timings (stages derived from the conflicts)."""
    rng = np.random.default_rng(seed)
    modes = ("motor", "motor", "bicycle", "pedestrian", "bus")
    groups = []
    for k in range(n_groups):
        mode = str(rng.choice(modes))
        min_g = float(rng.integers(4, 8))
        groups.append(SignalGroupConfig(
            id=f"g{k}", mode=mode, amber_s=0.0 if mode == "pedestrian" else float(rng.choice([2.0, 3.0])),
            min_green_s=min_g, max_green_s=min_g + float(rng.integers(8, 30)),
            min_red_s=float(rng.choice([0.0, 1.0, 2.0])),
        ))
    conflicts = []
    for a in range(n_groups):
        for b in range(a + 1, n_groups):
            if rng.random() < 0.45:
                ig = (groups[a].amber_s + float(rng.integers(0, 4)) + float(rng.choice([0.0, 0.5])),
                      groups[b].amber_s + float(rng.integers(0, 4)) + float(rng.choice([0.0, 0.5])))
                conflicts.append(ConflictConfig(between=(f"g{a}", f"g{b}"), intergreen_s=ig))
    return IntersectionConfig(id=xid, signal_groups=tuple(groups), conflicts=tuple(conflicts))


def contract_network() -> CompiledNetwork:
    """Three intersections of different widths: the padding columns are real."""
    return compile_network([
        four_arm("X4"),
        random_intersection(1, 6, "R6"),
        random_intersection(2, 4, "R4"),
    ])


# -- observations ------------------------------------------------------------------------------


class ObservationSource:
    """Seeded, plausible detector data: queues grow at red, discharge at green.

    ``continuous`` (bool ``[I, G]``) marks groups that call on every tick; the others call at
    random. Everything else (gaps, approach counts, downstream queues) is random, but the same
    for the same seed and the same signals.
    """

    def __init__(self, net: CompiledNetwork, seed: int, continuous: np.ndarray, dt_s: float) -> None:
        self.rng = np.random.default_rng(seed)
        self.valid = net.timing.valid
        self.continuous = continuous & self.valid
        self.dt_s = dt_s
        self.obs = Observation.empty(net)
        self.queue = net.full(0.0)
        self.traffic = RoadUsers(net, self.rng)

    def next(self, t_s: float, state: np.ndarray) -> Observation:
        rng, shape = self.rng, self.valid.shape
        green = state == GREEN
        arrivals = rng.random(shape) < 0.25 * self.dt_s
        self.queue += arrivals
        self.queue[green] = np.maximum(self.queue[green] - 0.5 * self.dt_s, 0.0)
        o = self.obs
        o.t_s = t_s
        o.demand[...] = self.valid & (self.continuous | (self.queue > 0) | (rng.random(shape) < 0.05))
        o.queue_veh[...] = np.where(self.valid, self.queue, 0.0)
        o.approach_veh[...] = np.where(self.valid, rng.poisson(1.0, shape), 0.0)
        o.downstream_queue_veh[...] = np.where(self.valid, rng.integers(0, 3, shape), 0.0)
        gaps = rng.exponential(2.5, shape)
        o.gap_s[...] = np.where(self.valid & (rng.random(shape) < 0.9), gaps, NO_DETECTION_S)
        o.v2x = self.traffic.next(self.dt_s, state)
        return o


#: Roles of new connected road users and their odds (emergency vehicles rare: each one may
#: hold the intersection as long as it needs).
ROLES = np.array([Role.EMERGENCY, Role.BUS, Role.TRUCK, Role.CYCLIST, Role.PEDESTRIAN, Role.CAR])
ROLE_ODDS = np.array([0.04, 0.16, 0.16, 0.3, 0.16, 0.18])
SPEED_MPS = np.zeros(len(Role))  # by role
SPEED_MPS[[Role.EMERGENCY, Role.BUS, Role.TRUCK, Role.CYCLIST, Role.PEDESTRIAN, Role.CAR]] = (
    14.0, 9.0, 12.0, 5.0, 0.8, 12.0)
CROSSING_M = 12.0


class RoadUsers:
    """A fixed number of connected road users per intersection, as V2X rows.

    Each approaches one valid group of its intersection at its role's speed and passes the stop
    line; a pedestrian waits at the kerb until its group is green, then crosses. Who has passed
    is replaced by a new road user (new pseudonym, role, group, distance). Seeded: the same
    seed and the same signals give the same rows.
    """

    def __init__(self, net: CompiledNetwork, rng: np.random.Generator, per_intersection: int = 4) -> None:
        self.rng = rng
        self.valid = net.timing.valid
        n = net.n_intersections * per_intersection
        self.intersection = np.repeat(np.arange(net.n_intersections), per_intersection)
        self.next_token = 0
        self.token = np.zeros(n, np.int64)
        self.group = np.zeros(n, np.int64)
        self.role = np.zeros(n, np.int8)
        self.distance_m = np.zeros(n)
        self.app = np.zeros(n, np.bool_)
        self.lateness_s = np.zeros(n)
        self.on_crossing = np.zeros(n, np.bool_)
        self._spawn(np.ones(n, np.bool_), far=False)

    def _spawn(self, new: np.ndarray, *, far: bool) -> None:
        k = int(new.sum())
        if k == 0:
            return
        rng = self.rng
        self.token[new] = np.arange(self.next_token, self.next_token + k)
        self.next_token += k
        valid = self.valid[self.intersection[new]]
        # A random valid group per road user: the argmax of random keys over the valid columns.
        self.group[new] = np.argmax(np.where(valid, rng.random(valid.shape), -1.0), axis=1)
        self.role[new] = rng.choice(ROLES, size=k, p=ROLE_ODDS)
        self.distance_m[new] = rng.uniform(150.0, 500.0, k) if far else rng.uniform(20.0, 400.0, k)
        self.app[new] = rng.random(k) < 0.8
        self.lateness_s[new] = rng.uniform(0.0, 200.0, k)
        self.on_crossing[new] = False
        walker = new & (self.role == Role.PEDESTRIAN)
        self.distance_m[walker] = 0.0  # at the kerb

    def next(self, dt_s: float, state: np.ndarray) -> V2XObservation:
        speed = SPEED_MPS[self.role]
        walker = self.role == Role.PEDESTRIAN
        green = state[self.intersection, self.group] == GREEN
        start = walker & ~self.on_crossing & green
        self.on_crossing[start] = True
        self.distance_m[start] = CROSSING_M
        moving = ~walker | self.on_crossing
        self.distance_m[moving] -= speed[moving] * dt_s
        self._spawn(moving & (self.distance_m < 0.0), far=True)
        speed = SPEED_MPS[self.role]
        walker = self.role == Role.PEDESTRIAN
        return V2XObservation(
            token=self.token.copy(), intersection=self.intersection.copy(), group=self.group.copy(),
            distance_m=self.distance_m.copy(), speed_mps=np.where(walker & ~self.on_crossing, 0.0, speed),
            role=self.role.copy(), siren=self.role == Role.EMERGENCY, app=self.app.copy(),
            slow=walker, on_crossing=self.on_crossing.copy(), lateness_s=self.lateness_s.copy(),
        )


def run(
    ctl: Controller,
    net: CompiledNetwork,
    *,
    seed: int = 7,
    n_ticks: int = N_TICKS,
    dt_s: float = 1.0,
    continuous: np.ndarray | None = None,
    reset: bool = True,
    check: bool = True,
    decisions: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Drive ``ctl`` through the engine as the runner does; return the requests and states per tick.

    With ``decisions``, an arbiter's request rows are appended per tick (class, status)."""
    engine = Engine(net, StepChecks(ctl, net) if check else ctl, dt_s, reset=reset)
    core = engine.core
    rec = SafetyRecorder(net.timing)
    rec.record(core.t_s, core.signals.state)
    cont = net.full(False, np.bool_) if continuous is None else continuous
    src = ObservationSource(net, seed, cont, dt_s)
    requests = np.zeros((n_ticks, *net.timing.valid.shape), dtype=np.bool_)
    states = np.zeros((n_ticks, *net.timing.valid.shape), dtype=np.int8)
    for n in range(n_ticks):
        # The runner's order: observe at the time of the coming tick, then the engine's tick.
        obs = src.next(core.t_s + dt_s, core.signals.state)
        engine.tick(obs)
        requests[n] = engine.request
        if decisions is not None and isinstance(ctl, PriorityArbiter):
            decisions.append((ctl.tracked_.cls.copy(), ctl.tracked_.status.copy()))
        states[n] = core.signals.state
        rec.record(core.t_s, core.signals.state)
    return requests, states


class StepChecks(Controller):
    """Runs ``inner`` and checks what its ``step`` may not do: write into the observation or the
    core's state, return anything but its own bool array of the network's shape, request a
    padding column."""

    def __init__(self, inner: Controller, net: CompiledNetwork) -> None:
        self.inner = inner
        self.net = net
        self.first: np.ndarray | None = None

    def reset(self, net: CompiledNetwork) -> None:
        self.inner.reset(net)

    def step(self, obs: Observation, signals: SignalState) -> np.ndarray:
        fields = (obs.demand, obs.gap_s, obs.queue_veh, obs.approach_veh, obs.downstream_queue_veh,
                  *_columns(obs.v2x))
        before_obs = [a.copy() for a in fields]
        before_sig = [a.copy() for a in signals]
        req = self.inner.step(obs, signals)
        assert isinstance(req, np.ndarray) and req.dtype == np.bool_
        assert req.shape == self.net.timing.valid.shape
        self.first = req if self.first is None else self.first
        assert req is self.first, "step must return the controller's own array, reused every tick"
        assert not req[~self.net.timing.valid].any(), "requested a padding column"
        for a, b in zip(before_obs, fields, strict=True):
            assert np.array_equal(a, b), "step wrote into the observation"
        for a, b in zip(before_sig, signals, strict=True):
            assert np.array_equal(a, b), "step wrote into the core's state"
        return req

    def commitment(self) -> Commitment | None:
        return self.inner.commitment()

    def extend_green(self) -> np.ndarray | None:
        return self.inner.extend_green()


def _columns(rows: V2XObservation | PriorityRequests) -> list[np.ndarray]:
    return [getattr(rows, name) for name in rows.DTYPES]


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def longest_wait_s(states: np.ndarray, calls: np.ndarray, dt_s: float) -> np.ndarray:
    """Per group, the longest run of ticks not green, in seconds (for groups that always call)."""
    longest = np.zeros(states.shape[1:])
    run_s = np.zeros(states.shape[1:])
    for s in states:
        run_s = np.where(s == GREEN, 0.0, run_s + dt_s)
        longest = np.maximum(longest, run_s)
    return np.where(calls, longest, 0.0)


def wait_bound_s(net: CompiledNetwork, dt_s: float) -> np.ndarray:
    """Per intersection: one cycle with every stage at its longest (max green + intergreen).

    A controller that serves stages in turn meets it; a controller that lets a calling group
    wait longer than a whole cycle of maxed-out stages is broken, even if the core's
    anti-starvation (``max_wait_s``, 120 s here) would rescue the group later.
    """
    t = net.timing
    max_ig = t.intergreen_s.max(axis=(1, 2))
    per_stage = np.where(net.stages & t.valid[:, None, :], t.max_green_s[:, None, :], 0.0).max(axis=2)
    return per_stage.sum(axis=1) + net.n_stages * (max_ig + 2 * dt_s)


def starvation_bound_s(net: CompiledNetwork, dt_s: float) -> np.ndarray:
    """Per intersection: the core's anti-starvation guarantee (``max_wait_s``, then the
    intergreen). Priority holds may keep a green past max green, never past this."""
    t = net.timing
    max_wait = np.where(t.valid, t.max_wait_s, 0.0).max(axis=1)
    return max_wait + t.intergreen_s.max(axis=(1, 2)) + 2 * dt_s


# -- the contract ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net() -> CompiledNetwork:
    return contract_network()


def test_the_contract_network_has_padding(net: CompiledNetwork) -> None:
    assert not net.timing.valid.all()
    assert (net.n_stages >= 2).all()


def test_every_application_is_in_the_contract() -> None:
    assert set(APP_CLASSES) == set(APPLICATIONS)
    assert all(f"actuated+{a}" in NAMES for a in APPLICATIONS)


@pytest.mark.parametrize(("name", "dt_s"), NAMES_DT)
def test_outputs_well_formed_and_safe(name: str, dt_s: float, net: CompiledNetwork) -> None:
    ctl = build(name)
    decisions: list[tuple[np.ndarray, np.ndarray]] = []
    _, states = run(ctl, net, dt_s=dt_s, decisions=decisions)
    assert (states[:, ~net.timing.valid] == RED).all()
    # The run did something: every intersection showed green, and changed aspects.
    assert (states == GREEN).any(axis=(0, 2)).all()
    assert (np.diff(states, axis=0) != 0).any(axis=(0, 2)).all()
    # ... and every application's requests reached the arbiter, which decided on them (served,
    # refused or kept waiting: more than "planned"), and served some in the run with them all.
    apps = name.split("+")[1:]
    classes = np.concatenate([c for c, _ in decisions]) if decisions else np.zeros(0, np.int8)
    statuses = np.concatenate([s for _, s in decisions]) if decisions else np.zeros(0, np.int8)
    for app in apps:
        mine = np.isin(classes, [int(c) for c in APP_CLASSES[app]])
        assert {PriorityClass(int(c)) for c in classes[mine]} == APP_CLASSES[app], app
        assert not APP_CLASSES[app] or (statuses[mine] > Status.PLANNED).any(), app
    if len(apps) > 1:
        assert np.isin(statuses, ACTING).any()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str, net: CompiledNetwork) -> None:
    n = REPEAT_TICKS[name]
    a = run(build(name), net, seed=3, n_ticks=n)
    b = run(build(name), net, seed=3, n_ticks=n)
    assert digest(*a) == digest(*b)
    c = run(build(name), net, seed=4, n_ticks=n)
    if name not in DETECTOR_BLIND:
        assert digest(*a) != digest(*c), "different observations should change something"


@pytest.mark.parametrize("name", NAMES)
def test_reset_is_idempotent_and_forgets(name: str, net: CompiledNetwork) -> None:
    n = REPEAT_TICKS[name]
    fresh = digest(*run(build(name), net, seed=5, n_ticks=n))
    ctl = build(name)
    ctl.reset(net)
    ctl.reset(net)
    twice = digest(*run(ctl, net, seed=5, reset=False, n_ticks=n))
    ctl.reset(net)  # after a whole run: nothing of it may leak into the next
    again = digest(*run(ctl, net, seed=5, reset=False, n_ticks=n))
    assert fresh == twice == again


@pytest.mark.parametrize(("name", "dt_s"), NAMES_DT)
def test_continuous_demand_gets_green_within_bound(name: str, dt_s: float, net: CompiledNetwork) -> None:
    calls = net.timing.valid.copy()
    _, states = run(build(name), net, continuous=calls, dt_s=dt_s, check=False)
    waited = longest_wait_s(states, calls, dt_s)
    bound = wait_bound_s(net, dt_s)
    if "+" in name:  # priority holds run past max green: the core's anti-starvation bounds them
        bound = np.maximum(bound, starvation_bound_s(net, dt_s))
    assert (waited <= bound[:, None]).all(), (waited, bound)
    # Every group was served more than once (not a single lucky green).
    starts = ((states[1:] == GREEN) & (states[:-1] != GREEN)).sum(axis=0)
    assert (starts[calls] >= 2).all()


@pytest.mark.parametrize("name", [*BASES, PRIORITY_SPECS[-1]])
def test_some_groups_calling_without_pause_are_served(name: str, net: CompiledNetwork) -> None:
    """Half the groups call all the time, the others at random: the callers still get green."""
    rng = np.random.default_rng(11)
    calls = net.timing.valid & (rng.random(net.timing.valid.shape) < 0.5)
    _, states = run(build(name), net, continuous=calls, check=False)
    assert (longest_wait_s(states, calls, 1.0) <= wait_bound_s(net, 1.0)[:, None]).all()


@pytest.mark.parametrize("app", list(APPLICATIONS))
def test_application_requests_are_well_formed(app: str, net: CompiledNetwork) -> None:
    """An application on its own: rows inside the network with their dtypes and a known class,
    finite arrivals, nothing written into the observation or the core's state, and the same
    requests after a reset."""
    n_i, n_g = net.timing.valid.shape

    def requests_per_tick() -> list[PriorityRequests]:
        application = APPLICATIONS[app](**APP_PARAMS.get(app, {}))
        application.reset(net)
        base = FixedTime()
        base.reset(net)
        core = SignalCore(net, 1.0)
        src = ObservationSource(net, 13, net.full(False, np.bool_), 1.0)
        out = []
        for _ in range(300):
            obs = src.next(core.t_s + 1.0, core.signals.state)
            before = [a.copy() for a in (obs.demand, obs.gap_s, obs.queue_veh, *_columns(obs.v2x))]
            before_sig = [a.copy() for a in core.signals]
            req = application.requests(obs, core.signals)
            after = [obs.demand, obs.gap_s, obs.queue_veh, *_columns(obs.v2x)]
            assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True)), "wrote obs"
            assert all(np.array_equal(a, b) for a, b in zip(before_sig, core.signals, strict=True))
            assert isinstance(req, PriorityRequests)
            for column, dtype in PriorityRequests.DTYPES.items():
                assert getattr(req, column).dtype == dtype and len(getattr(req, column)) == len(req)
            assert ((req.intersection >= 0) & (req.intersection < n_i)).all()
            assert ((req.group >= -1) & (req.group < n_g)).all()
            assert set(req.cls.tolist()) <= {int(c) for c in APP_CLASSES[app]}
            assert (np.isfinite(req.eta_s) & (req.eta_s >= 0.0)).all()
            assert len(np.unique(req.key)) == len(req), "one row per request key"
            out.append(req)
            core.advance(base.step(obs, core.signals), obs.demand)
        return out

    first = requests_per_tick()
    if APP_CLASSES[app]:
        assert sum(len(r) for r in first) > 0, "the traffic of the contract never made it ask"
    again = requests_per_tick()
    assert [digest(*_columns(r)) for r in first] == [digest(*_columns(r)) for r in again]


#: Everything that takes keyword parameters: base controllers and priority applications.
PARAMETERISED = {**CONTROLLERS, **APPLICATIONS}
#: Attributes a controller gets after ``__init__`` from a hook, not from its parameters.
HOOK_ATTRIBUTES = {"decision_log"}  # PriorityArbiter.attach_log


@pytest.mark.parametrize("name", sorted(PARAMETERISED))
def test_get_params_returns_the_constructor_parameters(name: str, net: CompiledNetwork,
                                                        tmp_path: Path) -> None:
    cls = PARAMETERISED[name]
    sig = inspect.signature(cls.__init__)
    params = {p: v for p, v in sig.parameters.items() if p != "self"}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values()), "keyword-only"
    assert all(p.default is not inspect.Parameter.empty for p in params.values()), "defaults"
    rain_csv = tmp_path / "rain.csv"
    rain_csv.write_text("time,intensity\n0,0\n60,3\n400,0\n")
    given: dict[str, object] = {"rain": str(rain_csv)} if name == "rain" else {}
    ctl = cls(**given)
    expected = {p: v.default for p, v in params.items()} | given
    assert ctl.get_params() == expected
    ctl.reset(net)
    assert ctl.get_params() == expected, "reset changed a parameter"
    clone = cls(**ctl.get_params())
    assert clone.get_params() == ctl.get_params()
    assert repr(clone).startswith(f"{cls.__name__}(")


@pytest.mark.parametrize("name", NAMES)
def test_state_only_in_trailing_underscore_attributes(name: str, net: CompiledNetwork) -> None:
    ctl = build(name)
    parts = [ctl, *([ctl.base, *ctl.applications] if isinstance(ctl, PriorityArbiter) else [])]
    before = [set(vars(p)) for p in parts]
    for part, attrs in zip(parts, before, strict=True):
        assert attrs - HOOK_ATTRIBUTES == set(part.get_params()), f"{part.name}: __init__ stores exactly its parameters"
    ctl.reset(net)
    for part, attrs in zip(parts, before, strict=True):
        assert all(a.endswith("_") for a in set(vars(part)) - attrs), part.name


@pytest.mark.parametrize("name", NAMES)
def test_wrong_observation_shape_is_a_clear_error(name: str, net: CompiledNetwork) -> None:
    ctl = build(name)
    ctl.reset(net)
    other = compile_network([four_arm("A")])
    core = SignalCore(net, 1.0)
    obs = Observation.empty(other, t_s=1.0)
    with pytest.raises(ValueError, match="shape"):
        ctl.step(obs, core.signals)


def test_registry_names_and_errors() -> None:
    assert available_controllers() == ["fixed-time", "actuated", "max-pressure", "cv-actuated"]
    assert all(CONTROLLERS[n].name == n for n in CONTROLLERS)
    assert list(APPLICATIONS) == ["greenflow", "schwung", "rain", "crosswalk", "bus", "truck", "glosa"]
    assert all(APPLICATIONS[n].name == n for n in APPLICATIONS)
    with pytest.raises(ConfigError, match=r"unknown controller 'nope'; valid: fixed-time, actuated, "
                                          r"max-pressure, cv-actuated, sumo-native, sumo-actuated, sumo-delay-based$"):
        make_controller("nope")
    with pytest.raises(ConfigError, match="not an engine controller"):
        make_controller(SUMO_NATIVE)
    with pytest.raises(ConfigError, match="unknown priority application 'greenflo'"):
        make_controller("actuated+greenflo")
    with pytest.raises(ConfigError, match="'actuated'.*gapp"):
        make_controller("actuated", gapp=2.0)
    assert make_controller("actuated", gap_s=2.0).get_params()["gap_s"] == 2.0
    assert validate_run_choice(SUMO_NATIVE) == SUMO_NATIVE
    assert validate_run_choice("max-pressure") == "max-pressure"
    with pytest.raises(ConfigError):
        validate_run_choice("fixed")
    described = describe_controllers()
    assert list(described) == [*CONTROLLERS, *(f"+{a}" for a in APPLICATIONS), SUMO_NATIVE,
                               "sumo-actuated", "sumo-delay-based"]
    assert all(text for text in described.values())


def test_an_application_is_one_registry_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A priority application is one registry line; the spec builds an arbiter over the base."""

    class Everywhere(PriorityApplication):
        """Test application: asks for green for group 0 everywhere."""

        name = "everywhere"

        def __init__(self, *, extra: int = 0) -> None:
            self.extra = extra

        def requests(self, obs: Observation, signals: object) -> PriorityRequests:
            return PriorityRequests.empty()

    monkeypatch.setitem(APPLICATIONS, "everywhere", Everywhere)
    ctl = make_controller("fixed-time+everywhere", green_s=12.0, everywhere={"extra": 3})
    assert isinstance(ctl, PriorityArbiter)
    assert [a.extra for a in ctl.applications] == [3]
    assert ctl.base.get_params()["green_s"] == 12.0
    assert "+everywhere" in describe_controllers()
    with pytest.raises(ConfigError, match="twice"):
        make_controller("fixed-time+everywhere+everywhere")
    with pytest.raises(ConfigError, match="'everywhere'.*extr"):
        make_controller("fixed-time+everywhere", everywhere={"extr": 3})
    with pytest.raises(ConfigError, match="does not use it"):
        make_controller("fixed-time", everywhere={"extra": 3})


# -- the kernels as plain Python ---------------------------------------------------------------


def run_digests(n_ticks: int = 200) -> dict[str, str]:
    """Digests of a short run per base controller and of the arbiter with every application
    (its kernel serves every class there), imported by the no-JIT subprocess too."""
    net = contract_network()
    calls = net.timing.valid & (np.arange(net.n_groups_max)[None, :] % 2 == 0)
    return {
        name: digest(*run(build(name), net, seed=9, n_ticks=n_ticks, dt_s=0.5,
                          continuous=calls, check=False))
        for name in [*BASES, PRIORITY_SPECS[-1]]
    }


def test_kernels_without_jit_give_the_same_runs() -> None:
    """NUMBA_DISABLE_JIT=1 turns the kernels into plain Python: the runs must be identical."""
    code = (
        "import sys, json; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from ivri.core import jit\n"
        "assert not jit.JIT_ENABLED\n"
        "import test_controller_contract as t\n"
        "print(json.dumps(t.run_digests()))\n"
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO), str(REPO / "tests")],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    assert json.loads(proc.stdout.strip().splitlines()[-1]) == run_digests()
