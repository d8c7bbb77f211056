"""Priority applications and the arbiter on small deterministic intersections, to the tick.

Every case drives a controller and the real core the way the runner does (observe at the time
of the coming tick, ``step``, ``advance`` with the controller's ``extend_green``), with
``dt_s = 0.5`` and the core's conflict monitor on. ``states[n]`` is the state set at tick
``n + 1``, shown from ``times[n] = (n + 1) * 0.5`` s. Timelines are worked out from the
rules of the core (a green ends on the tick it is no longer requested once its minimum green
has passed; a conflicting green starts on the first tick at which the intergreen since that
end has passed) and of the arbiter (``controllers/arbiter.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ivri.controllers import (
    BusPriority,
    Crosswalk,
    FixedTime,
    GreenFlow,
    PriorityArbiter,
    RainMode,
    RainSeries,
    Role,
    Schwung,
    TruckPriority,
    V2XObservation,
    VehicleActuated,
    make_controller,
)
from ivri.controllers.base import Controller, Observation
from ivri.controllers.priority import request_keys, request_tokens

from ivri.config import ConflictConfig, IntersectionConfig, SignalGroupConfig
from ivri.core.compile import CompiledNetwork, compile_network
from ivri.core.idx import AMBER, GREEN, RED
from ivri.core.safety import SafetyRecorder
from ivri.engine import Engine
from ivri.errors import ConfigError

DT_S = 0.5
EPS = 1e-6

#: Per tick: (time of the tick, the observation to fill) -> None.
Scenario = Callable[[float, Observation], None]


# --- helpers ---------------------------------------------------------------------------------


def group(gid: str, **kw: Any) -> SignalGroupConfig:
    """Round numbers: amber 3, min green 6, max green 30, min red 1, max wait 120."""
    base: dict[str, Any] = {"amber_s": 3.0, "min_green_s": 6.0, "max_green_s": 30.0,
                            "min_red_s": 1.0, "max_wait_s": 120.0}
    base.update(kw)
    return SignalGroupConfig(id=gid, **base)


def conflict(a: str, b: str, ig_ab: float = 5.0, ig_ba: float = 5.0) -> ConflictConfig:
    return ConflictConfig(between=(a, b), intergreen_s=(ig_ab, ig_ba))


def intersection(groups: list[SignalGroupConfig], conflicts: list[ConflictConfig],
                 stages: list[tuple[str, ...]] | None = None, xid: str = "J") -> CompiledNetwork:
    return compile_network([IntersectionConfig(
        id=xid, signal_groups=tuple(groups), conflicts=tuple(conflicts), stages=tuple(stages or ()),
    )])


def two_groups(**kw: Any) -> CompiledNetwork:
    """A and B (motor) conflict, intergreen 5 s both ways; stages [A], [B]."""
    return intersection([group("A", **kw), group("B", **kw)], [conflict("A", "B")])


class Log:
    """A decision log: keeps every record."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def record(self, **fields: Any) -> None:
        self.rows.append(fields)

    def events(self, event: str, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["event"] == event
                and all(r[k] == v for k, v in match.items())]


def v2x_row(token: int, group: int, **kw: Any) -> dict[str, Any]:
    return {"token": token, "intersection": 0, "group": group, **kw}


def emergency(token: int, group: int, distance_m: float, speed_mps: float = 10.0) -> dict[str, Any]:
    return v2x_row(token, group, distance_m=distance_m, speed_mps=speed_mps,
                   role=int(Role.EMERGENCY), siren=True, app=True)


def approaching(t: float, arrival_s: float, speed_mps: float = 10.0) -> float:
    """Distance to the stop line at ``t`` of a road user arriving at ``arrival_s``."""
    return speed_mps * (arrival_s - t)


class Run:
    """A controller and a core (monitor on) for ``n_ticks``; see the module docstring."""

    def __init__(self, net: CompiledNetwork, ctl: Controller, scenario: Scenario, n_ticks: int,
                 demand: bool = True) -> None:
        self.net = net
        self.ctl = ctl
        self.ids = net.group_ids[0]
        self.log = Log()
        ctl.attach_log(self.log)
        engine = Engine(net, ctl, DT_S, monitor=True)
        core = engine.core
        rec = SafetyRecorder(net.timing, strict=True)
        rec.record(0.0, core.signals.state)
        obs = Observation.empty(net)
        shape = net.timing.valid.shape
        self.times = np.arange(1, n_ticks + 1) * DT_S
        self.states = np.zeros((n_ticks, *shape), dtype=np.int8)
        self.extend = np.zeros((n_ticks, *shape), dtype=np.bool_)
        for n in range(n_ticks):
            obs.t_s = core.t_s + DT_S
            obs.demand[:] = demand
            obs.v2x = V2XObservation.empty()
            scenario(obs.t_s, obs)
            engine.tick(obs)
            ext = ctl.extend_green()
            if ext is not None:
                self.extend[n] = ext
            self.states[n] = core.signals.state
            rec.record(core.t_s, core.signals.state)  # raises on any timing fault

    def col(self, gid: str) -> int:
        return self.ids.index(gid)

    def at(self, gid: str, t: float) -> int:
        """The aspect of ``gid`` shown at time ``t``."""
        n = round(t / DT_S) - 1
        return int(self.states[n, 0, self.col(gid)])

    def intervals(self, gid: str, aspect: int = GREEN) -> list[tuple[float, float]]:
        """(start, end) times of every run of ``aspect`` (end: first time it is no longer shown)."""
        on = self.states[:, 0, self.col(gid)] == aspect
        edges = np.diff(np.concatenate([[False], on, [False]]).astype(np.int8))
        starts = (np.nonzero(edges == 1)[0] + 1) * DT_S
        ends = (np.nonzero(edges == -1)[0] + 1) * DT_S
        return [(float(a), float(b)) for a, b in zip(starts, ends, strict=True)]

    def green_starts(self, gid: str) -> list[float]:
        return [a for a, _ in self.intervals(gid)]

    def green_at_or_after(self, gid: str, t: float) -> float:
        """The first time >= ``t`` at which ``gid`` is green."""
        for a, b in self.intervals(gid):
            if b > t + EPS:
                return max(a, t)
        raise AssertionError(f"{gid} is never green from {t} s on")


def arbiter(base: Controller, *apps: Any, **kw: Any) -> PriorityArbiter:
    return PriorityArbiter(base=base, applications=apps, **kw)


def fixed(green_s: float = 20.0) -> FixedTime:
    return FixedTime(green_s=green_s)


# --- GreenFlow -------------------------------------------------------------------------------
# Two-group plan of fixed-time with green_s 20: A green 0.5-20, amber to 23, B green 25-45,
# A 50-70, B 75-95, ... (A starts at the first tick, 0.5 s).


def test_base_plan_of_the_two_group_intersection() -> None:
    r = Run(two_groups(), fixed(), lambda t, obs: None, 200)
    assert r.intervals("A") == [(0.5, 20.0), (50.0, 70.0), (100.0, 100.5)]
    assert r.intervals("B") == [(25.0, 45.0), (75.0, 95.0)]


def test_greenflow_ends_a_running_conflicting_green_in_time() -> None:
    """B is red behind A's green (50-70 in the plan); an ambulance on B arrives at 66 s.

    From ETA 15 s (t = 51: worst case, A's min green 6 + intergreen 5, plus margin 4) A's red
    neighbours may not start; from ETA <= what ending A needs (A: 5 s more to min green... or
    its intergreen 5 s) plus the margin 4 the arbiter drops A's request, the core ends A after
    its minimum green, amber 3 s, and starts B once the intergreen 5 s has passed.
    """
    arrival = 66.0

    def scene(t: float, obs: Observation) -> None:
        if t <= arrival:
            obs.v2x = V2XObservation.from_rows([emergency(7, 1, approaching(t, arrival))])

    # Margin 4 s pinned (the default, 12 s, would hold B's previous green all the way through).
    r = Run(two_groups(), arbiter(fixed(), GreenFlow(), rules={"emergency": {"margin_s": 4.0}}), scene, 200)
    assert r.at("B", arrival) == GREEN
    # A's green of the second cycle was cut short, but not below its minimum green.
    a_start, a_end = next((a, b) for a, b in r.intervals("A") if a >= 50.0)
    assert a_start == 50.0
    assert 6.0 - EPS <= a_end - a_start < 20.0
    # Amber exactly 3 s, then B after exactly the intergreen (5 s from the end of A's green).
    assert (a_end, a_end + 3.0) in r.intervals("A", AMBER)
    b_start = r.green_at_or_after("B", a_end)
    assert b_start == pytest.approx(a_end + 5.0)
    # Not sooner than needed: B starts at most margin + a tick before the arrival.
    assert arrival - 4.0 - DT_S - EPS <= b_start <= arrival
    assert r.log.events("grant", signal_group="B", priority_class="emergency")


def test_greenflow_close_call_keeps_the_minimum_green() -> None:
    """The ambulance appears 8 s out 1 s after A started: too late to make it, but A still
    runs its full minimum green (6 s), its amber (3 s) and the intergreen (5 s) before B."""
    appear, arrival = 51.0, 59.0

    def scene(t: float, obs: Observation) -> None:
        if appear <= t < arrival + 5.0:
            obs.v2x = V2XObservation.from_rows([emergency(7, 1, max(approaching(t, arrival), 0.0))])

    r = Run(two_groups(), arbiter(fixed(), GreenFlow()), scene, 160)
    a_start, a_end = next((a, b) for a, b in r.intervals("A") if a >= 50.0)
    assert (a_start, a_end) == (50.0, 56.0)  # exactly the minimum green
    assert (56.0, 59.0) in r.intervals("A", AMBER)
    assert r.green_at_or_after("B", 56.0) == 61.0  # 56 + intergreen 5


def test_greenflow_holds_green_past_max_green_while_approaching() -> None:
    """B is green 25-45 in the plan (max green 30). An ambulance on B arriving at 58 s (ETA 13 s
    when the plan ends B, within the 15 s horizon) keeps B green from 25 s until it has passed:
    33 s of green, past max green while A calls."""
    arrival = 58.0

    def scene(t: float, obs: Observation) -> None:
        if t <= arrival:
            obs.v2x = V2XObservation.from_rows([emergency(7, 1, approaching(t, arrival))])

    r = Run(two_groups(), arbiter(fixed(), GreenFlow()), scene, 200)
    b_start, b_end = r.intervals("B")[0]
    assert b_start == 25.0
    assert b_end >= arrival and b_end - b_start > 30.0  # past max green
    assert r.extend[int(55.0 / DT_S), 0, r.col("B")]  # held via extend, not by the base
    # Compensation: A, held back by the ambulance, is served right after it has gone: B is
    # released at the arrival (B has run its min green), A starts after B's intergreen.
    a_next = r.green_at_or_after("A", arrival)
    assert a_next <= arrival + DT_S + 5.0 + DT_S
    assert r.log.events("recovery", signal_group="A", priority_class="compensation")


def test_greenflow_compensation_serves_the_held_back_group_first() -> None:
    """After the ambulance on B (arrival 68 s) has gone, the plan wants B again (its slot 70-95),
    but A, which lost its green to the ambulance, is owed a compensation green first."""
    arrival = 68.0

    def scene(t: float, obs: Observation) -> None:
        if t <= arrival:
            obs.v2x = V2XObservation.from_rows([emergency(7, 1, approaching(t, arrival))])

    r = Run(two_groups(), arbiter(fixed(), GreenFlow(), compensation_green_s=8.0), scene, 240)
    base = Run(two_groups(), fixed(), lambda t, obs: None, 240)
    assert base.at("A", 80.0) != GREEN  # the base alone would serve B now
    # B (green from 64: arrival less margin 4) is released once the ambulance has passed and
    # B has had its min green 6; A follows after the intergreen 5.
    b_start = r.green_at_or_after("B", 60.0)
    a_next = r.green_at_or_after("A", arrival)
    assert a_next <= max(arrival + DT_S, b_start + 6.0) + 5.0 + DT_S
    assert base.green_at_or_after("A", 71.0) == 100.0  # the plan's next A slot
    a_start, a_end = next((a, b) for a, b in r.intervals("A") if a >= arrival)
    assert a_end - a_start >= 8.0 - EPS  # at least the compensation green
    assert r.log.events("release", signal_group="A", priority_class="compensation")


def test_greenflow_two_emergency_vehicles_earliest_arrival_first() -> None:
    """Ambulance 1 on A arrives at 45 s, ambulance 2 on B at 35 s (listed first: row order must
    not matter). B goes first and is green at 35; A follows and is green at 45."""
    for rows_order in (0, 1):
        def scene(t: float, obs: Observation, rows_order: int = rows_order) -> None:
            rows = []
            if t <= 45.0:
                rows.append(emergency(1, 0, approaching(t, 45.0)))
            if t <= 35.0:
                rows.append(emergency(2, 1, approaching(t, 35.0)))
            obs.v2x = V2XObservation.from_rows(rows[::-1] if rows_order else rows)

        r = Run(two_groups(), arbiter(fixed(), GreenFlow()), scene, 160)
        assert r.at("B", 35.0) == GREEN
        assert r.at("A", 45.0) == GREEN
        # While both approached, A was deferred behind B.
        assert r.log.events("deferred", signal_group="A", priority_class="emergency")


def test_greenflow_stopped_vehicle_times_out() -> None:
    """An ambulance that stops 50 m before B (ETA stays 10 s) is served for the class's 90 s,
    then dropped: the time-out is logged and A, held back meanwhile, gets green again."""
    def scene(t: float, obs: Observation) -> None:
        obs.v2x = V2XObservation.from_rows([emergency(7, 1, 50.0, speed_mps=0.0)])

    r = Run(two_groups(), arbiter(fixed(), GreenFlow()), scene, 300)
    outs = r.log.events("time-out", signal_group="B", priority_class="emergency")
    assert len(outs) == 1
    grant = r.log.events("grant", signal_group="B", priority_class="emergency")[0]
    assert outs[0]["t_s"] == pytest.approx(grant["t_s"] + 90.0)
    t_out = outs[0]["t_s"]
    # B was held (far past its max green 30 s) until the time-out, and released right after.
    b_start, b_end = r.intervals("B")[0]
    assert b_start <= grant["t_s"] + DT_S
    assert t_out - DT_S <= b_end <= t_out + DT_S
    # A, held back all that time, is then served: B's intergreen 5 s later (compensation).
    assert r.green_at_or_after("A", t_out) <= b_end + 5.0 + DT_S
    assert r.log.events("recovery", signal_group="A")


def test_greenflow_far_out_changes_nothing() -> None:
    """An ambulance 1000 m out at 5 m/s (ETA 200 s, 50 s at the end of the run) is planned
    but needs nothing yet: the lights are exactly those of the base controller alone."""
    def scene(t: float, obs: Observation) -> None:
        obs.v2x = V2XObservation.from_rows([emergency(7, 1, 1000.0 - 5.0 * t, speed_mps=5.0)])

    base = Run(two_groups(), fixed(), scene, 300)
    r = Run(two_groups(), arbiter(fixed(), GreenFlow()), scene, 300)
    np.testing.assert_array_equal(r.states, base.states)
    assert not r.extend.any()
    assert r.log.events("request", priority_class="emergency")
    assert not r.log.events("grant")


def test_greenflow_ignores_vehicles_without_siren_and_out_of_range() -> None:
    def scene(t: float, obs: Observation) -> None:
        obs.v2x = V2XObservation.from_rows([
            v2x_row(1, 1, distance_m=approaching(t, 66.0), speed_mps=10.0, role=int(Role.EMERGENCY),
                    app=True),
            emergency(2, 1, 1500.0, speed_mps=0.0),
        ])

    base = Run(two_groups(), fixed(), scene, 200)
    r = Run(two_groups(), arbiter(fixed(), GreenFlow()), scene, 200)
    np.testing.assert_array_equal(r.states, base.states)
    assert r.log.rows == []


def test_status_without_a_verified_request_never_asks() -> None:
    """A CAM describes, it never requests: emergency (siren on), bus (late) and truck rows
    without ``app`` (no verified request) leave the lights exactly as without them."""
    def scene(t: float, obs: Observation) -> None:
        rows = [dict(emergency(1, 1, approaching(t, 30.0)), app=False),
                dict(bus(2, 1, approaching(t, 10.0), lateness_s=600.0), app=False),
                dict(truck(3, 1, 40.0, 15.0), app=False)]
        obs.v2x = V2XObservation.from_rows(rows)

    base = Run(two_groups(), fixed(), scene, 200)
    apps = arbiter(fixed(), GreenFlow(), BusPriority(late_after_s=0.0), TruckPriority())
    r = Run(two_groups(), apps, scene, 200)
    np.testing.assert_array_equal(r.states, base.states)
    assert r.log.rows == []


# --- Schwung ---------------------------------------------------------------------------------


def motor_and_cycle(**bike: Any) -> CompiledNetwork:
    """A (motor) and C (bicycle) conflict, intergreen 5 s both ways; max green 60 s.

    Fixed-time with green_s 40: A green 0.5-40, amber to 43, C green 45-85, A 90-130, ...
    """
    return intersection([group("A", max_green_s=60.0),
                         group("C", mode="bicycle", **{"max_green_s": 60.0, **bike})],
                        [conflict("A", "C")])


#: The cyclist class as a pre-empting, conditional request (cut_after_s 10, others_wait_s 50),
#: pinned here so that these tests judge the arbiter's rules, not the defaults of the day
#: (the default cyclist class may place early calls instead: ``precall``).
CYCLIST_CUT = {"cyclist": {"preempt": True, "precall": False, "cut_after_s": 10.0,
                           "others_wait_s": 50.0,
                           "net_benefit": False}}  # the cut mechanics alone, not whether it pays


def cyclist(token: int, group: int, distance_m: float, speed_mps: float = 5.0,
            app: bool = True) -> dict[str, Any]:
    return v2x_row(token, group, distance_m=distance_m, speed_mps=speed_mps,
                   role=int(Role.CYCLIST), app=app)


def test_schwung_brings_green_by_arrival_after_cut_after() -> None:
    """A cyclist with the app asks at 12 s for C, arriving at 27 s (ETA 15 s, within the 25 s
    horizon). A has run 11.5 s, past the class's cut_after_s 10, so the arbiter ends A early
    enough for C to be green at the arrival; without the app C waits for its slot (45 s)."""
    appear, arrival = 12.0, 27.0

    def scene(t: float, obs: Observation) -> None:
        if appear <= t <= arrival:
            obs.v2x = V2XObservation.from_rows([cyclist(3, 1, approaching(t, arrival, 5.0))])

    r = Run(motor_and_cycle(), arbiter(fixed(40.0), Schwung(), rules=CYCLIST_CUT), scene, 200)
    base = Run(motor_and_cycle(), fixed(40.0), scene, 200)
    assert r.at("C", arrival) == GREEN
    assert base.at("C", arrival) == RED
    assert base.green_at_or_after("C", arrival) == 45.0
    assert r.green_at_or_after("C", 0.0) < base.green_at_or_after("C", 0.0)
    a_end = r.intervals("A")[0][1]
    assert a_end - 0.5 >= 10.0 - EPS  # A ran past cut_after_s before it was ended
    assert r.log.events("grant", signal_group="C", priority_class="cyclist")
    # The request asked for nothing beyond its arrival: the plan resumes afterwards.
    assert r.green_at_or_after("A", arrival) < 60.0


def test_schwung_never_cuts_a_green_before_cut_after() -> None:
    """The cyclist appears at 1 s, 8 s out: A (green since 0.5 s) still runs 10 s, the class's
    cut_after_s, though its minimum green is only 6 s; C follows after the intergreen."""
    arrival = 9.0

    def scene(t: float, obs: Observation) -> None:
        if 1.0 <= t < arrival + 8.0:
            obs.v2x = V2XObservation.from_rows([cyclist(3, 1, max(approaching(t, arrival, 5.0), 0.0))])

    r = Run(motor_and_cycle(), arbiter(fixed(40.0), Schwung(), rules=CYCLIST_CUT), scene, 100)
    a_start, a_end = r.intervals("A")[0]
    assert a_end - a_start == pytest.approx(10.0)
    assert r.green_at_or_after("C", 0.0) == pytest.approx(a_end + 5.0)


def three_groups() -> CompiledNetwork:
    """A, B (motor) and C (bicycle), all conflicting (intergreen 5 s), stages [A], [C], [B].

    Fixed-time with green_s 30: A 0.5-30, C 35-65, B 70-100, A 105-135, C 140-170, ...
    """
    return intersection([group("A"), group("B"), group("C", mode="bicycle")],
                        [conflict("A", "B"), conflict("A", "C"), conflict("B", "C")],
                        stages=[("A",), ("C",), ("B",)])


@pytest.mark.parametrize(("appear", "granted"), [(15.0, True), (85.0, False)])
def test_schwung_refused_when_others_waited_too_long(appear: float, granted: bool) -> None:
    """At 15 s (A green 14.5 s, B and C waiting 15 s) a request for C, 10 s out, is served.
    At 85 s (B green 15 s, but A has waited 55 s > others_wait_s 50) the same request is
    refused: C waits for its slot at 140 s."""
    arrival = appear + 10.0

    def scene(t: float, obs: Observation) -> None:
        if appear <= t <= arrival:
            obs.v2x = V2XObservation.from_rows([cyclist(3, 2, approaching(t, arrival, 5.0))])

    r = Run(three_groups(), arbiter(fixed(30.0), Schwung(), rules=CYCLIST_CUT), scene, 300)
    refusals = r.log.events("refusal", signal_group="C", priority_class="cyclist")
    if granted:
        assert r.at("C", arrival) == GREEN
        assert not refusals
    else:
        assert r.at("C", arrival) == RED
        assert r.green_at_or_after("C", appear) == 140.0  # the plan's slot
        assert len(refusals) == 1
        assert refusals[0]["reason"] == "conflicting road users have waited too long"
        assert not r.log.events("grant", signal_group="C")


# --- Rain mode -------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rain.csv"
    p.write_text(text)
    return p


def test_rain_series_from_csv(tmp_path: Path) -> None:
    s = RainSeries.from_csv(write(tmp_path, "# radar\ntime_s,rain_mm_h\n0,0\n60,2.5\n\n120,0\n"))
    np.testing.assert_array_equal(s.t_s, [0.0, 60.0, 120.0])
    np.testing.assert_array_equal(s.mm_h, [0.0, 2.5, 0.0])
    assert (s.at(-1.0), s.at(59.9), s.at(60.0), s.at(500.0)) == (0.0, 0.0, 2.5, 0.0)
    clock = RainSeries.from_csv(write(tmp_path, "time,intensity\n00:01:00,1\n01:00:30,0\n"))
    np.testing.assert_array_equal(clock.t_s, [60.0, 3630.0])


@pytest.mark.parametrize(("text", "match"), [
    ("time_s,rain_mm_h\n0,0\n60,wet\n", r"line 3: cannot read"),
    ("time_s,rain_mm_h\n0,0\n10,1\n10,2\n", r"line 4: times must increase"),
    ("time_s,rain_mm_h\n0,-1\n", r"line 2: intensity must be >= 0"),
    ("time_s,rain_mm_h\n0\n", r"line 2: cannot read"),
    ("when,how_much\n0,1\n", r"needs a time column"),
    ("time_s,rain_mm_h\n", r"no samples"),
])
def test_rain_series_errors_name_the_line(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RainSeries.from_csv(write(tmp_path, text))


def rain_switches(app: RainMode, net: CompiledNetwork, t_end: float, dt: float = 1.0) -> list[tuple[float, bool]]:
    app.reset(net)
    for n in range(1, int(t_end / dt) + 1):
        app.is_raining(n * dt)
    return app.switches_


def test_rain_sensor_switches_on_first_wet_sample_and_off_dry_after() -> None:
    """Shower 100-160 s: on at 100 s; off 300 s after the last wet tick (159 s), i.e. once the
    series has been dry for dry_after_s (to within a tick)."""
    series = RainSeries(np.array([0.0, 100.0, 160.0]), np.array([0.0, 2.0, 0.0]))
    switches = rain_switches(RainMode(rain=series, dry_after_s=300.0), two_groups(), 1000.0)
    assert len(switches) == 2
    assert switches[0] == (100.0, True)
    t_off, on = switches[1]
    assert not on and 459.0 <= t_off <= 460.0
    # Below the threshold it never switches on.
    light = RainSeries(np.array([0.0]), np.array([0.4]))
    assert rain_switches(RainMode(rain=light, threshold_mm_h=0.5), two_groups(), 200.0) == []


def test_rain_nowcast_switches_on_lead_s_before_the_shower() -> None:
    series = RainSeries(np.array([0.0, 1000.0, 1060.0]), np.array([0.0, 3.0, 0.0]))
    switches = rain_switches(RainMode(rain=series, source="nowcast", lead_s=600.0, dry_after_s=300.0),
                             two_groups(), 2000.0)
    assert switches[0] == (400.0, True)
    assert not switches[1][1] and 1359.0 <= switches[1][0] <= 1360.0


def steady_traffic_on_a(t: float, obs: Observation) -> None:
    """A's detectors see a vehicle every 2.5 s: under the actuated gap (3 s), so A extends."""
    obs.gap_s[0, 0] = 2.5


def test_rain_cyclists_waiting_get_green_earlier() -> None:
    """Raining, actuated base: C (bicycle) waits while A extends on steady traffic up to its
    60 s max green. Once C has waited wait_s (20 s) the base controller sees A's 2.5 s gaps as
    gap-outs (the rain class's gap_out_s, 2 s): A ends at once and C is green one intergreen
    later, instead of after A's max green. Dry: nothing changes."""
    wet = RainMode(rain=RainSeries.constant(5.0), wait_s=20.0)
    dry = RainMode(rain=RainSeries.constant(0.0), wait_s=20.0)
    net = motor_and_cycle()
    r = Run(net, arbiter(VehicleActuated(), wet), steady_traffic_on_a, 200)
    d = Run(net, arbiter(VehicleActuated(), dry), steady_traffic_on_a, 200)
    base = Run(net, VehicleActuated(), steady_traffic_on_a, 200)
    assert base.green_starts("A")[0] == 0.5 and base.green_at_or_after("C", 0.0) >= 60.0
    c_rain = r.green_at_or_after("C", 0.0)
    assert 20.5 + 3.0 + 2.0 <= c_rain <= 20.5 + 5.0 + 2 * DT_S
    assert r.log.events("grant", signal_group="C", priority_class="rain")
    # Dry: the arbiter's output is the base controller's, tick by tick.
    np.testing.assert_array_equal(d.states, base.states)
    assert d.log.rows == [] and not d.extend.any()


def test_rain_call_does_not_cut_a_conflicting_cycle_track() -> None:
    """Raining, actuated base: two conflicting cycle tracks. C's riders pass its loop every
    2.5 s (under the actuated gap of 3 s) and D waits. The shorter gap of rain mode (2 s) ends
    motor greens only: riders pass a loop at longer headways, and cutting C for D would move
    the same riders' delay from one track to the other. C runs to its max green (60 s), as
    without rain mode; with a motor group in C's place it would end at once (the test above)."""
    net = intersection([group("C", mode="bicycle", max_green_s=60.0),
                        group("D", mode="bicycle", max_green_s=60.0)], [conflict("C", "D")])

    def riders_on_c(t: float, obs: Observation) -> None:
        obs.gap_s[0, 0] = 2.5

    wet = RainMode(rain=RainSeries.constant(5.0), wait_s=20.0)
    r = Run(net, arbiter(VehicleActuated(), wet), riders_on_c, 200)
    base = Run(net, VehicleActuated(), riders_on_c, 200)
    assert base.green_starts("C")[0] == 0.5 and base.green_at_or_after("D", 0.0) >= 60.0
    assert r.log.events("grant", signal_group="D", priority_class="rain")
    assert r.green_at_or_after("D", 0.0) == base.green_at_or_after("D", 0.0)


def test_schwung_early_call_brings_green_by_arrival_without_cutting() -> None:
    """Actuated base, default cyclist rules (an early call and nothing more): a cyclist with the
    app arrives at C at 40 s; C's detectors see it only then. A's traffic stops at 20 s (it
    gaps out, and rests in green while nobody else calls). With Schwung the call comes at the
    app's horizon (25 s ahead): A ends at its gap and C is green before the cyclist arrives.
    Without it C waits until the cyclist stands at the stop line. With steady traffic on A
    the early call shortens no gap: A runs on as it would for a waiting cyclist."""

    def scenario(t: float, obs: Observation, steady: bool) -> None:
        obs.gap_s[0, 0] = 2.5 if steady or t < 20.0 else t - 20.0
        obs.demand[0, 0] = True
        obs.demand[0, 1] = t >= 40.0
        if t < 40.0:
            obs.v2x = V2XObservation.from_rows([v2x_row(5, 1, distance_m=approaching(t, 40.0, 5.0),
                                                        speed_mps=5.0, role=int(Role.CYCLIST), app=True)])

    def gapping(t: float, obs: Observation) -> None:
        scenario(t, obs, steady=False)

    def steady(t: float, obs: Observation) -> None:
        scenario(t, obs, steady=True)

    net = motor_and_cycle()
    r = Run(net, arbiter(VehicleActuated(), Schwung(horizon_s=25.0)), gapping, 200, demand=False)
    base = Run(net, VehicleActuated(), gapping, 200, demand=False)
    assert r.green_at_or_after("C", 15.0) <= 40.0
    assert base.green_at_or_after("C", 15.0) > 40.0
    grants = r.log.events("grant", signal_group="C", priority_class="cyclist")
    assert grants and "early call" in grants[0]["reason"]
    # Steady traffic on A: no shortened gap, A runs to its max green (60 s) as without the app.
    r2 = Run(net, arbiter(VehicleActuated(), Schwung(horizon_s=25.0)), steady, 200, demand=False)
    assert r2.intervals("A")[0][1] - r2.intervals("A")[0][0] >= 59.5


@pytest.mark.parametrize("gap_s", [1.0, 10.0])
def test_rain_holds_cyclist_green_while_riders_come(gap_s: float) -> None:
    """C's max green is 20 s (the plan gives it 20 s). Raining with riders passing every second
    (gap 1 s < gap_s 4 s) C is held to the rain max_green_s of 35 s; with a gap of 10 s (no
    riders) it is not held."""
    net = motor_and_cycle(max_green_s=20.0)

    def scene(t: float, obs: Observation) -> None:
        obs.gap_s[0, 1] = gap_s

    app = RainMode(rain=RainSeries.constant(5.0), wait_s=900.0, max_green_s=35.0, gap_s=4.0)
    r = Run(net, arbiter(fixed(20.0), app), scene, 300)
    base = Run(net, fixed(20.0), scene, 300)
    c_base = base.intervals("C")[0]
    assert c_base[1] - c_base[0] == pytest.approx(20.0)
    c_start, c_end = r.intervals("C")[0]
    assert c_start == c_base[0]
    if gap_s < 4.0:
        assert 35.0 - DT_S <= c_end - c_start <= 35.0 + DT_S
        assert r.extend[:, 0, 1].any()
    else:
        assert c_end - c_start == pytest.approx(20.0)
        np.testing.assert_array_equal(r.states, base.states)


def test_rain_per_intersection_overrides() -> None:
    net = compile_network([
        IntersectionConfig(id=x, signal_groups=(group("A"), group("C", mode="bicycle")),
                           conflicts=(conflict("A", "C"),))
        for x in ("J1", "J2")
    ])
    app = RainMode(rain=RainSeries.constant(1.0), max_green_s=40.0,
                   per_intersection={"J2": {"max_green_s": 25.0, "wait_s": 5.0}})
    app.reset(net)
    np.testing.assert_array_equal(app.profile_["max_green_s"], [40.0, 25.0])
    np.testing.assert_array_equal(app.profile_["wait_s"], [20.0, 5.0])
    np.testing.assert_array_equal(app.profile_["gap_s"], [4.0, 4.0])
    with pytest.raises(ConfigError, match="unknown intersection 'J9'"):
        RainMode(rain=RainSeries.constant(1.0), per_intersection={"J9": {"wait_s": 5.0}}).reset(net)
    with pytest.raises(ConfigError, match="unknown parameter 'green_s'"):
        RainMode(rain=RainSeries.constant(1.0), per_intersection={"J1": {"green_s": 5.0}}).reset(net)
    with pytest.raises(ConfigError, match="no rain series"):
        RainMode().reset(net)


# --- Crosswalk -------------------------------------------------------------------------------
# A (motor) and P (pedestrian: amber 0, max green 20) conflict; intergreen A -> P 5 s,
# P -> A 8 s (the crossing's clearance). Fixed-time green 20: A 0.5-20, P 25-45, A 53-73, ...


def crossing() -> CompiledNetwork:
    return intersection([group("A"), group("P", mode="pedestrian", amber_s=0.0, max_green_s=20.0)],
                        [conflict("A", "P", 5.0, 8.0)])


def walker(token: int, distance_m: float, on_crossing: bool, app: bool = True) -> dict[str, Any]:
    return v2x_row(token, 1, distance_m=distance_m, speed_mps=0.6, role=int(Role.PEDESTRIAN),
                   app=app, slow=True, on_crossing=on_crossing)


def test_crosswalk_slow_user_on_crossing_keeps_walk_green() -> None:
    """A slow crosser steps onto a 12 m crossing at 40 s and walks 0.6 m/s (off at 60 s). The
    walk green is held until the rest of the crossing at 0.6 m/s plus the margin 1 s fits in
    the clearance (8 s): until 4.2 m are left, at 53 s; then A only after the 8 s clearance, when
    the crosser is off the crossing."""
    def dist(t: float) -> float:
        return 12.0 - 0.6 * (t - 40.0)

    def scene(t: float, obs: Observation) -> None:
        if t >= 40.0 and dist(t) > 0.0:
            obs.v2x = V2XObservation.from_rows([walker(5, dist(t), on_crossing=True)])

    r = Run(crossing(), arbiter(fixed(), Crosswalk()), scene, 200)
    base = Run(crossing(), fixed(), scene, 200)
    assert base.intervals("P")[0] == (25.0, 45.0)
    p_start, p_end = r.intervals("P")[0]
    assert p_start == 25.0
    assert p_end - p_start > 20.0  # past max green while A calls
    # Released as soon as (and not before) the rest fits in the clearance.
    assert dist(p_end) / 0.6 + 1.0 <= 8.0 + DT_S
    assert dist(p_end - DT_S) / 0.6 + 1.0 > 8.0 - EPS
    a_start = r.green_at_or_after("A", p_end)
    assert a_start >= p_end + 8.0 - EPS
    assert dist(a_start - 1.0) <= 0.0  # off the crossing, with the margin to spare
    assert r.log.events("grant", signal_group="P", priority_class="slow_crosser_clearing")


def test_crosswalk_slow_user_at_kerb_holds_walk_green() -> None:
    """A slow crosser waits at the kerb from 40 s to 60 s: the walk green (25-45 in the plan)
    lasts until they go, past P's max green of 20 s."""
    def scene(t: float, obs: Observation) -> None:
        if 40.0 <= t < 60.0:
            obs.v2x = V2XObservation.from_rows([walker(5, 0.0, on_crossing=False)])

    r = Run(crossing(), arbiter(fixed(), Crosswalk()), scene, 200)
    p_start, p_end = r.intervals("P")[0]
    assert p_start == 25.0
    assert 60.0 <= p_end <= 60.0 + DT_S
    assert r.log.events("grant", signal_group="P", priority_class="slow_crosser_walk")


def test_crosswalk_without_app_changes_nothing() -> None:
    """Slow crossers without the app (on the crossing and at the kerb) get the plan's timing."""
    def scene(t: float, obs: Observation) -> None:
        if 40.0 <= t < 60.0:
            obs.v2x = V2XObservation.from_rows([walker(5, 12.0 - 0.6 * (t - 40.0), True, app=False),
                                                walker(6, 0.0, False, app=False)])

    r = Run(crossing(), arbiter(fixed(), Crosswalk()), scene, 200)
    base = Run(crossing(), fixed(), scene, 200)
    np.testing.assert_array_equal(r.states, base.states)
    assert r.log.rows == []


# --- Bus and truck ---------------------------------------------------------------------------


def bus(token: int, group: int, distance_m: float, lateness_s: float) -> dict[str, Any]:
    return v2x_row(token, group, distance_m=distance_m, speed_mps=10.0, role=int(Role.BUS),
                   lateness_s=lateness_s, app=True)


def truck(token: int, group: int, distance_m: float, speed_mps: float) -> dict[str, Any]:
    return v2x_row(token, group, distance_m=distance_m, speed_mps=speed_mps, role=int(Role.TRUCK),
                   app=True)


@pytest.mark.parametrize("lateness_s", [95.0, 85.0, 0.0])
def test_late_bus_gets_priority_on_time_bus_does_not(lateness_s: float) -> None:
    """A bus on B arrives at 65 s, in A's slot (50-70). Late (95 s behind free flow: 35 s behind
    a timetable with 60 s of slack, over late_after_s 30): from ETA 15 s (A's
    cut_after_s 8 + intergreen 5 + margin 2) A may not start, B is green at the arrival. On
    time: nothing changes."""
    arrival = 65.0

    def scene(t: float, obs: Observation) -> None:
        if t <= arrival:
            obs.v2x = V2XObservation.from_rows([bus(4, 1, approaching(t, arrival), lateness_s)])

    r = Run(two_groups(), arbiter(fixed(), BusPriority()), scene, 200)
    base = Run(two_groups(), fixed(), scene, 200)
    assert base.at("B", arrival) == RED
    if lateness_s > 90.0:
        assert r.at("B", arrival) == GREEN
        assert r.log.events("request", signal_group="B", priority_class="public_transport")
        assert r.log.events("grant", signal_group="B", priority_class="public_transport")
        # Every green of A that ended in the run lasted at least the class's cut_after_s 8 s.
        assert all(b - a >= 8.0 - EPS for a, b in r.intervals("A") if b < r.times[-1])
    else:
        np.testing.assert_array_equal(r.states, base.states)
        assert r.log.rows == []


@pytest.mark.parametrize("speed_mps", [15.0, 5.0])
def test_truck_at_speed_holds_green(speed_mps: float) -> None:
    """A truck on A arrives at 73 s, just after the plan ends A (70 s). At 15 m/s (above
    30 km/h, within the 8 s horizon from 65 s) A is held until it has passed; at 5 m/s not."""
    arrival = 73.0

    def scene(t: float, obs: Observation) -> None:
        if t <= arrival:
            obs.v2x = V2XObservation.from_rows([truck(9, 0, approaching(t, arrival, speed_mps), speed_mps)])

    r = Run(two_groups(), arbiter(fixed(), TruckPriority()), scene, 200)
    base = Run(two_groups(), fixed(), scene, 200)
    assert base.at("A", 72.5) == AMBER
    if speed_mps > 10.0:
        assert r.at("A", arrival - DT_S) == GREEN
        a_start, a_end = next((a, b) for a, b in r.intervals("A") if a >= 50.0)
        assert a_start == 50.0 and arrival - DT_S <= a_end <= arrival + DT_S
        assert r.log.events("grant", signal_group="A", priority_class="freight")
    else:
        np.testing.assert_array_equal(r.states, base.states)


def test_truck_budget_refuses_after_budget_per_h_grants() -> None:
    """Budget 2 grants per hour: trucks at the ends of A's greens at 23, 73 and 123 s; the
    first two are held for, the third is refused for budget and A ends as planned (120 s)."""
    arrivals = (23.0, 73.0, 123.0)

    def scene(t: float, obs: Observation) -> None:
        obs.v2x = V2XObservation.from_rows([truck(k, 0, approaching(t, a, 15.0), 15.0)
                                            for k, a in enumerate(arrivals) if t <= a])

    ctl = arbiter(fixed(), TruckPriority(), rules={"freight": {"budget_per_h": 2.0}})
    r = Run(two_groups(), ctl, scene, 300)
    grants = r.log.events("grant", priority_class="freight")
    refusals = r.log.events("refusal", priority_class="freight")
    assert [g["t_s"] < 100.0 for g in grants] == [True, True]
    assert len(refusals) == 1 and refusals[0]["t_s"] > 100.0
    assert refusals[0]["reason"] == "the budget of grants per hour is used up"
    assert r.at("A", 22.5) == GREEN and r.at("A", 72.5) == GREEN
    assert r.intervals("A")[2] == (100.0, 120.0)


@pytest.mark.parametrize("with_emergency", [False, True])
def test_bus_never_ranks_above_an_emergency_vehicle(with_emergency: bool) -> None:
    """A late bus on A arrives at 40 s, an ambulance on B at 44 s, both during B's green (25-45).
    Alone, the bus ends B after 8 s and gets green; with the ambulance, B is held for it and the
    bus waits behind it, though it arrives earlier."""
    def scene(t: float, obs: Observation) -> None:
        rows = []
        if t <= 40.0:
            rows.append(bus(4, 0, approaching(t, 40.0), 120.0))
        if with_emergency and t <= 44.0:
            rows.append(emergency(7, 1, approaching(t, 44.0)))
        obs.v2x = V2XObservation.from_rows(rows)

    r = Run(two_groups(), arbiter(fixed(), GreenFlow(), BusPriority()), scene, 200)
    if with_emergency:
        assert r.at("B", 44.0) == GREEN
        assert r.at("A", 40.0) == RED
        assert r.log.events("deferred", signal_group="A", priority_class="public_transport")
    else:
        assert r.at("A", 40.0) == GREEN


# --- make_controller -------------------------------------------------------------------------


def test_make_controller_builds_an_arbiter() -> None:
    ctl = make_controller("actuated+greenflow+schwung", gap_s=2.5, greenflow={"range_m": 300.0},
                          arbiter={"compensation_green_s": 5.0})
    assert isinstance(ctl, PriorityArbiter)
    assert ctl.base.name == "actuated" and ctl.base.get_params()["gap_s"] == 2.5
    assert [type(a) for a in ctl.applications] == [GreenFlow, Schwung]
    assert ctl.applications[0].range_m == 300.0
    assert ctl.compensation_green_s == 5.0
    ctl.reset(two_groups())  # builds and runs
    assert isinstance(make_controller("fixed-time"), FixedTime)


def test_make_controller_errors() -> None:
    with pytest.raises(ConfigError, match="unknown priority application 'warp'"):
        make_controller("actuated+warp")
    with pytest.raises(ConfigError, match="parameters for 'schwung' given"):
        make_controller("actuated+greenflow", schwung={"horizon_s": 10.0})
    with pytest.raises(ConfigError, match="'greenflow'.*range"):
        make_controller("actuated+greenflow", greenflow={"range": 10.0})
    with pytest.raises(ConfigError, match="twice"):
        make_controller("actuated+greenflow+greenflow")
    with pytest.raises(ConfigError, match="arbiter parameters given"):
        make_controller("actuated", arbiter={"compensation_green_s": 5.0})
    ctl = make_controller("actuated+greenflow", arbiter={"rules": {"tram": {"margin_s": 5.0}}})
    with pytest.raises(ConfigError, match="unknown priority class 'tram'"):
        ctl.reset(two_groups())
    ctl = make_controller("actuated+greenflow", arbiter={"rules": {"emergency": {"margn_s": 5.0}}})
    with pytest.raises(ConfigError, match="arbiter rules for 'emergency'"):
        ctl.reset(two_groups())


def test_request_keys_carry_the_token_back() -> None:
    """The sumo-gui highlights the road user of a request: its token comes back out of the key,
    whatever the intersection and the application (greenflow rewrites the lowest bits)."""
    tokens = np.array([0, 1, 12345, (1 << 39) - 1], dtype=np.int64)
    keys = request_keys(tokens, np.array([0, 3, 65535, 7]), app_code=255)
    assert (keys >= 0).all()
    assert (request_tokens(keys) == tokens).all()
    assert (request_tokens((keys & ~np.int64(0xFF)) | np.int64(64 + 5)) == tokens).all()
