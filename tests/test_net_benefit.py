"""Net-benefit arbitration on hand-made intersections: a request is granted only when it pays in
person-seconds, not while a conflicting approach is near capacity, at most once per cycle, and
the groups it held back are paid back. Every refusal is logged with both numbers.

Timelines as in ``test_priority_apps`` (the same helpers): ``dt_s`` 0.5 s, fixed-time plans,
the real core with its monitor on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from ivri.controllers import BusPriority, Schwung
from ivri.controllers.arbiter import Status
from ivri.controllers.base import Observation
from ivri.controllers.priority import DEFAULT_RULES, PERSONS, PriorityClass
from ivri.controllers.v2x import V2XObservation
from test_priority_apps import (
    GREEN,
    RED,
    Run,
    approaching,
    arbiter,
    bus,
    conflict,
    cyclist,
    fixed,
    group,
    intersection,
    motor_and_cycle,
)

#: A cyclist class that may cut a green (the default one only calls early), still weighed.
CYCLIST_WEIGHED = {"cyclist": {"preempt": True, "precall": False, "cut_after_s": 0.0}}


@pytest.mark.parametrize("queue_on_a", [0.0, 12.0])
def test_cyclist_refused_when_conflicting_queue_is_long_granted_when_empty(queue_on_a: float) -> None:
    """Fixed time (green 40 s): A green 0.5-40. A cyclist with the app for C appears at 10 s and
    arrives at 20 s. With nobody on A the cut costs nobody and saves the cyclist a wait: granted,
    C green on arrival. With 12 vehicles queued on A (1.3 persons each) the cut would cost them
    far more than the one cyclist saves: refused, logged with both numbers, C keeps its slot."""
    arrival = 20.0

    def scene(t: float, obs: Observation) -> None:
        obs.queue_veh[0, 0] = queue_on_a
        obs.approach_veh[0, 0] = queue_on_a
        if 10.0 <= t <= arrival:
            obs.v2x = V2XObservation.from_rows([cyclist(3, 1, approaching(t, arrival, 5.0))])

    r = Run(motor_and_cycle(), arbiter(fixed(40.0), Schwung(), rules=CYCLIST_WEIGHED), scene, 200)
    grants = r.log.events("grant", signal_group="C", priority_class="cyclist")
    refusals = r.log.events("refusal", signal_group="C", priority_class="cyclist")
    if queue_on_a == 0.0:
        assert r.at("C", arrival) == GREEN
        assert grants and not refusals
        assert grants[0]["benefit_ps"] > grants[0]["cost_ps"] >= 0.0
    else:
        assert r.at("C", arrival) == RED and not grants
        assert refusals[0]["reason"] == "it costs the conflicting streams more person-seconds than it saves"
        benefit, cost = refusals[0]["benefit_ps"], refusals[0]["cost_ps"]
        assert 0.0 < benefit < cost
        # The cost counts A's queue in persons: at least 12 x 1.3 persons x an intergreen.
        assert cost >= 12 * PERSONS["car"] * 5.0
        assert r.intervals("C")[0][0] == 45.0  # its slot in the plan


def three_motor() -> Any:
    """A, B, C (motor), all conflicting (intergreen 5 s); fixed-time stages [A], [B], [C]."""
    return intersection([group("A"), group("B"), group("C")],
                        [conflict("A", "B"), conflict("A", "C"), conflict("B", "C")],
                        stages=[("A",), ("B",), ("C",)])


def late_buses(arrivals: dict[int, float]) -> Any:
    """Late buses (200 s behind free flow) arriving on the given groups at the given times."""
    def scene(t: float, obs: Observation) -> None:
        obs.demand[0, :] = True
        rows = [bus(10 + g, g, approaching(t, a), 200.0) for g, a in arrivals.items() if t <= a]
        obs.v2x = V2XObservation.from_rows(rows)
    return scene


def test_one_intervention_per_cycle_across_classes() -> None:
    """Fixed time (green 20 s): A 0.5-20, B 25-45, C 50-70. A late bus for C arrives at 15 s
    (in A's slot): it pays (21 persons, nobody queued) and is granted, cutting A. A second late
    bus, for B, arriving at 40 s while C serves the first, is refused: this cycle has had its
    intervention (and A, cut by it, is still owed its green)."""
    r = Run(three_motor(), arbiter(fixed(), BusPriority()), late_buses({2: 15.0, 1: 40.0}), 300)
    first = r.log.events("grant", signal_group="C", priority_class="public_transport")
    second = r.log.events("refusal", signal_group="B", priority_class="public_transport")
    assert first and r.at("C", 15.0) == GREEN
    assert second, r.log.rows
    assert second[0]["reason"].startswith("one intervention per cycle")
    assert second[0]["benefit_ps"] is not None and second[0]["cost_ps"] is not None
    assert not r.log.events("grant", signal_group="B", priority_class="public_transport")


def test_compensation_after_a_bus_cut() -> None:
    """The bus for C (arriving 15 s) cuts A and holds B back. Once it has passed, A and B are
    owed a green (logged as recovery) and get one of at least the compensation green (8 s)
    before C is green again."""
    r = Run(three_motor(), arbiter(fixed(), BusPriority()), late_buses({2: 15.0}), 300)
    owed = {e["signal_group"] for e in r.log.events("recovery")}
    assert {"A", "B"} <= owed
    c_end = r.intervals("C")[0][1]
    next_c = next(a for a, _ in r.intervals("C") if a > c_end)
    for gid in ("A", "B"):
        start, end = next((a, b) for a, b in r.intervals(gid) if a >= c_end)
        assert end - start >= 8.0 - 1e-6 and start < next_c
    assert r.log.events("grant", priority_class="compensation")


def test_saturation_gating_refuses_a_cut_into_a_queue_at_capacity() -> None:
    """A has 20 vehicles queued on one lane: 40 s of discharge, more than the 30 s max green it
    can get. A late bus for B is not served by cutting A (refused, near capacity)."""
    def scene(t: float, obs: Observation) -> None:
        obs.queue_veh[0, 0] = 20.0
        obs.approach_veh[0, 0] = 20.0
        if t <= 15.0:
            obs.v2x = V2XObservation.from_rows([bus(4, 1, approaching(t, 15.0), 200.0)])

    r = Run(intersection([group("A"), group("B")], [conflict("A", "B")]), arbiter(fixed(), BusPriority()),
            scene, 100)
    refusals = r.log.events("refusal", signal_group="B", priority_class="public_transport")
    assert refusals and refusals[0]["reason"] == "a conflicting approach is near capacity"
    assert r.at("B", 15.0) == RED


def test_absolute_classes_and_compensation_are_not_weighed() -> None:
    """Emergency vehicles and persons on the crossing keep absolute precedence; compensation pays
    back. Everything a road user asks for otherwise is weighed."""
    absolute = {PriorityClass.EMERGENCY, PriorityClass.SLOW_CROSSER_CLEARING,
                PriorityClass.SLOW_CROSSER_WALK, PriorityClass.COMPENSATION, PriorityClass.NONE}
    for c, rules in DEFAULT_RULES.items():
        assert rules.net_benefit == (c not in absolute), c
    assert Status.REFUSED_COST.name and np.int8(Status.REFUSED_CYCLE) == 14


def test_a_bus_hold_owes_no_compensation() -> None:
    """Fixed time (green 20 s): A 0.5-20. A late bus for A arrives at 23 s: A's green is held
    for it (weighed, granted: nobody queues elsewhere). A hold only lengthens the running green,
    so B and C, which come next in the plan anyway, are not owed a pre-empting compensation
    green afterwards (that would shorten the next greens for nothing)."""
    r = Run(three_motor(), arbiter(fixed(), BusPriority()), late_buses({0: 23.0}), 200)
    grants = r.log.events("grant", signal_group="A", priority_class="public_transport")
    assert grants and grants[0]["reason"] == "its green is held until it has passed"
    assert r.at("A", 23.0) == GREEN
    assert not r.log.events("recovery"), r.log.rows
    assert not r.log.events("grant", priority_class="compensation")


def test_an_early_call_goes_in_when_green_could_not_come_sooner() -> None:
    """Fixed time (green 40 s): A green 0.5-40. A Schwung cyclist for C appears 25 s out at
    10 s. Green for C needs at least A's minimum green (6 s) plus the intergreen (5 s), plus the
    class's margin (2 s): 13 s. The early call goes in then (about 22 s), not when the app
    first speaks: called at once, C could be served and gap out before the cyclist is there."""
    arrival = 35.0

    def scene(t: float, obs: Observation) -> None:
        if 10.0 <= t <= arrival:
            obs.v2x = V2XObservation.from_rows([cyclist(3, 1, approaching(t, arrival, 5.0))])

    r = Run(motor_and_cycle(), arbiter(fixed(40.0), Schwung()), scene, 120)
    calls = r.log.events("grant", signal_group="C", priority_class="cyclist")
    assert calls, r.log.rows
    assert arrival - 13.0 - 1.0 <= calls[0]["t_s"] <= arrival - 13.0 + 1.0
