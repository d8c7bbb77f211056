"""GLOSA speed advice (controllers/glosa.py): the advice rules without SUMO, and one SUMO run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ivri.controllers import (
    APPLICATIONS,
    Glosa,
    PriorityArbiter,
    Role,
    SpeedAdvice,
    V2XObservation,
    make_controller,
)
from ivri.controllers.base import Observation

from ivri.config import ConflictConfig, IntersectionConfig, SignalGroupConfig
from ivri.core.compile import CompiledNetwork, compile_network
from ivri.core.engine import TimeToChange
from ivri.core.idx import AMBER, GREEN, RED
from ivri.core.state import SignalState


def two_groups() -> CompiledNetwork:
    """A and B conflict (intergreen 5 s); amber 3, min green 6, max green 30, min red 1."""
    groups = tuple(SignalGroupConfig(id=g, amber_s=3.0, min_green_s=6.0, max_green_s=30.0,
                                     min_red_s=1.0, max_wait_s=120.0) for g in ("A", "B"))
    return compile_network([IntersectionConfig(
        id="J", signal_groups=groups,
        conflicts=(ConflictConfig(between=("A", "B"), intergreen_s=(5.0, 5.0)),), stages=(),
    )])


def signals(net: CompiledNetwork, a: int, b: int, elapsed_s: float = 20.0) -> SignalState:
    shape = net.timing.valid.shape
    state = np.full(shape, RED, np.int8)
    state[0, 0], state[0, 1] = a, b
    return SignalState(state=state, elapsed_s=np.full(shape, elapsed_s), green_end_s=np.full(shape, -100.0),
                       wait_s=np.zeros(shape))


def spat(net: CompiledNetwork, min_a: float, max_a: float = np.inf, min_b: float = 1.0,
         max_b: float = np.inf) -> TimeToChange:
    shape = net.timing.valid.shape
    lo, hi = np.full(shape, np.inf), np.full(shape, np.inf)
    lo[0, :2], hi[0, :2] = (min_a, min_b), (max_a, max_b)
    return TimeToChange(lo, hi)


def row(token: int = 1, distance_m: float = 100.0, speed_mps: float = 13.0, role: Role = Role.CAR,
        group: int = 0) -> dict[str, Any]:
    return {"token": token, "intersection": 0, "group": group, "distance_m": distance_m,
            "speed_mps": speed_mps, "role": int(role)}


def advise(app: Glosa, net: CompiledNetwork, rows: list[dict[str, Any]], sig: SignalState,
           ttc: TimeToChange) -> SpeedAdvice:
    obs = Observation.empty(net, t_s=1.0)
    obs.v2x = V2XObservation.from_rows(rows)
    assert len(app.requests(obs, sig)) == 0  # never a priority request
    return app.advice(sig, ttc)


@pytest.fixture
def net() -> CompiledNetwork:
    return two_groups()


@pytest.fixture
def app(net: CompiledNetwork) -> Glosa:
    a = Glosa()
    a.reset(net)
    return a


def test_registered_and_switchable() -> None:
    assert APPLICATIONS["glosa"] is Glosa
    ctl = make_controller("actuated+glosa", glosa={"range_m": 200.0})
    assert isinstance(ctl, PriorityArbiter) and ctl.gives_advice()
    assert not make_controller("actuated+greenflow").gives_advice()


def test_car_100_m_from_red_with_10_s_to_green_gets_10_mps(app: Glosa, net: CompiledNetwork) -> None:
    adv = advise(app, net, [row()], signals(net, RED, RED), spat(net, 10.0))
    assert adv.token.tolist() == [1]
    assert adv.speed_mps[0] == pytest.approx(10.0)


def test_time_to_green_waits_for_a_running_conflicting_green(app: Glosa, net: CompiledNetwork) -> None:
    # B green, ends at the earliest in 2 s (A: 2 + intergreen 5 = 7 s), at the latest in 8 s:
    # halfway, 5 s, and the intergreen: 10 s to green.
    app.latest_weight, app.max_spread_s = 0.5, 6.0
    adv = advise(app, net, [row(distance_m=120.0)], signals(net, RED, GREEN), spat(net, 7.0, min_b=2.0, max_b=8.0))
    assert adv.speed_mps[0] == pytest.approx(120.0 / 10.0)


def test_no_advice_while_the_green_start_is_too_uncertain(app: Glosa, net: CompiledNetwork) -> None:
    # B may run 2 to 20 s more: the spread of A's start (18 s) is above max_spread_s.
    app.max_spread_s = 5.0
    adv = advise(app, net, [row(distance_m=120.0)], signals(net, RED, GREEN, elapsed_s=8.0),
                 spat(net, 7.0, min_b=2.0, max_b=20.0))
    assert len(adv.token) == 0


def test_no_advice_at_a_green_it_can_pass(app: Glosa, net: CompiledNetwork) -> None:
    adv = advise(app, net, [row()], signals(net, GREEN, RED), spat(net, 2.0, 20.0))
    assert len(adv.token) == 0


def test_no_advice_when_it_arrives_after_the_green_anyway(app: Glosa, net: CompiledNetwork) -> None:
    adv = advise(app, net, [row(distance_m=200.0, speed_mps=10.0)], signals(net, RED, RED), spat(net, 10.0))
    assert len(adv.token) == 0


def test_clipped_at_min_speed(app: Glosa, net: CompiledNetwork) -> None:
    adv = advise(app, net, [row(distance_m=50.0)], signals(net, RED, RED), spat(net, 40.0))
    assert adv.speed_mps[0] == pytest.approx(app.min_speed_mps)


def test_amber_counts_as_stopping(app: Glosa, net: CompiledNetwork) -> None:
    app.max_spread_s = np.inf
    app.latest_weight = 0.3  # a target past the committed earliest start: advice is needed
    adv = advise(app, net, [row(distance_m=200.0)], signals(net, AMBER, RED, elapsed_s=1.0), spat(net, 2.0, 2.0))
    assert len(adv.token) == 1 and adv.speed_mps[0] < 13.0


@pytest.mark.parametrize("role", [Role.EMERGENCY, Role.PEDESTRIAN])
def test_no_advice_for_emergency_vehicles_or_pedestrians(app: Glosa, net: CompiledNetwork, role: Role) -> None:
    adv = advise(app, net, [row(role=role)], signals(net, RED, RED), spat(net, 10.0))
    assert len(adv.token) == 0


def test_trucks_and_buses_are_advised(app: Glosa, net: CompiledNetwork) -> None:
    rows = [row(token=1, role=Role.TRUCK), row(token=2, role=Role.BUS)]
    adv = advise(app, net, rows, signals(net, RED, RED), spat(net, 10.0))
    assert sorted(adv.token.tolist()) == [1, 2]


def test_out_of_range_none(app: Glosa, net: CompiledNetwork) -> None:
    adv = advise(app, net, [row(distance_m=app.range_m + 1.0, speed_mps=14.0)], signals(net, RED, RED),
                 spat(net, 30.0))
    assert len(adv.token) == 0


def test_cyclists_follow_time_to_green_by_share(net: CompiledNetwork) -> None:
    rows = [row(token=t, distance_m=60.0, speed_mps=5.0, role=Role.CYCLIST) for t in range(1, 201)]
    for share, lo, hi in ((0.0, 0, 0), (1.0, 200, 200), (0.5, 70, 130)):
        app = Glosa(cyclist_share=share)
        app.reset(net)
        adv = advise(app, net, rows, signals(net, RED, RED), spat(net, 15.0))
        assert lo <= len(adv.token) <= hi
        assert np.allclose(adv.speed_mps, 4.0)


def test_advice_continues_then_ends_at_green(app: Glosa, net: CompiledNetwork) -> None:
    red = signals(net, RED, RED)
    first = advise(app, net, [row()], red, spat(net, 10.0))
    # It follows the advice: now at 10 m/s, 90 m out, 9 s to green: still advised (no flapping).
    again = advise(app, net, [row(distance_m=90.0, speed_mps=10.0)], red, spat(net, 9.0))
    assert first.token.tolist() == again.token.tolist() == [1]
    assert again.speed_mps[0] == pytest.approx(10.0)
    green = advise(app, net, [row(distance_m=80.0, speed_mps=10.0)], signals(net, GREEN, RED), spat(net, 6.0))
    assert len(green.token) == 0


def test_reset_forgets(app: Glosa, net: CompiledNetwork) -> None:
    advise(app, net, [row()], signals(net, RED, RED), spat(net, 10.0))
    app.reset(net)
    assert len(app.advised_token_) == 0 and len(app.last_.token) == 0


@pytest.mark.sumo
def test_glosa_in_sumo_applies_advice(tmp_path: Path) -> None:
    from ivri.runner import RunSpec, run_controller

    rec = run_controller(RunSpec(scenario="crossing:short", controller="actuated+glosa", seed=42,
                                 out_dir=tmp_path))
    v2x = rec["v2x"]
    assert v2x["equipped"]["car"] > 0  # the runner's default car share for GLOSA
    assert v2x["advice_starts"] > 0 and v2x["advice_commands"] >= v2x["advice_starts"]
    assert v2x["advice_releases"] > 0
    assert rec["by_mode"]["car"]["arrived"] > 0
