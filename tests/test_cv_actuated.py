"""cv-actuated: connected vehicles' positions and speeds on top of vehicle-actuated control.

At a 0 % equipped share it shows the same signal states as ``actuated``, tick by tick, in
SUMO; a platoon beyond the loops keeps its green; a vehicle beyond the loops calls its group
before it reaches the stop-line loop; with a high share a green ends when nobody is coming.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from ivri.controllers import (
    ConnectedActuated,
    Role,
    V2XObservation,
    VehicleActuated,
    make_controller,
)
from ivri.controllers.base import Observation
from ivri.controllers.cv_actuated import predicted_arrivals
from test_priority_apps import GREEN, Run, two_groups, v2x_row

from ivri.engine import Engine
from ivri.runner import resolve_scenario
from ivri.sumo.bridge import SumoBridge


def car(token: int, group: int, distance_m: float, speed_mps: float = 10.0) -> dict[str, Any]:
    return v2x_row(token, group, distance_m=distance_m, speed_mps=speed_mps, role=int(Role.CAR))


def a_runs_dry_b_calls(platoon: bool, share_known: bool = False):
    """A's loops see their last vehicle at 10 s (then only a growing gap); B calls from 12 s.
    ``platoon``: connected cars on A arrive every 2 s from 14 s to 30 s (beyond the loops)."""
    arrivals = np.arange(14.0, 31.0, 2.0)

    def scene(t: float, obs: Observation) -> None:
        obs.demand[0, 0] = t < 10.0
        obs.demand[0, 1] = t >= 12.0
        obs.gap_s[0, 0] = max(t - 10.0, 0.0)
        obs.gap_s[0, 1] = 100.0
        if platoon:
            rows = [car(k, 0, 10.0 * (a - t)) for k, a in enumerate(arrivals) if t < a]
            obs.v2x = V2XObservation.from_rows(rows)
            obs.gap_s[0, 0] = max(t - 10.0, 0.0) if t < 14.0 else 0.5  # the loops see the platoon
        elif share_known:
            # One connected vehicle far away on B keeps the estimate fed; nobody comes on A.
            obs.v2x = V2XObservation.from_rows([car(99, 1, 500.0, 0.0)])
            obs.queue_veh[0, 1] = 1.0
    return scene


def test_platoon_beyond_the_loops_keeps_its_green() -> None:
    """actuated ends A at its 3 s gap (13 s), B is green at 18 s; cv-actuated sees the platoon
    on A arriving from 14 s and keeps A green until it has passed (max green 30 s)."""
    base = Run(two_groups(), VehicleActuated(), a_runs_dry_b_calls(False), 120)
    cv = Run(two_groups(), ConnectedActuated(), a_runs_dry_b_calls(True), 120)
    assert base.intervals("A")[0][1] <= 14.0
    assert cv.intervals("A")[0][1] >= 30.0 - 1e-6
    assert cv.at("A", 20.0) == GREEN and cv.at("A", 29.0) == GREEN


def test_calls_a_group_before_its_first_vehicle_reaches_the_loop() -> None:
    """A rests in green (nobody else calls). A connected car on B, 80 m out at 10 m/s, calls B
    8 s before it arrives: B is green when it arrives; actuated waits for the stop-line loop."""
    arrival = 30.0

    def scene(t: float, obs: Observation) -> None:
        obs.demand[0, 0] = True
        obs.gap_s[0, 0] = 100.0
        obs.demand[0, 1] = t >= arrival
        if t < arrival:
            obs.v2x = V2XObservation.from_rows([car(1, 1, 10.0 * (arrival - t))])

    base = Run(two_groups(), VehicleActuated(), scene, 120, demand=False)
    cv = Run(two_groups(), ConnectedActuated(), scene, 120, demand=False)
    assert cv.green_at_or_after("B", 0.0) <= arrival
    assert base.green_at_or_after("B", 0.0) > arrival


def test_ends_a_green_when_nobody_is_coming_with_a_known_high_share() -> None:
    """A's loops gap out (gap 1.5 s at 11.5 s); with a share of 0.9 known and no connected car
    on A, cv-actuated ends A at the short gap instead of actuated's 3 s."""
    base = Run(two_groups(), VehicleActuated(), a_runs_dry_b_calls(False), 120)
    cv = Run(two_groups(), ConnectedActuated(share=0.9), a_runs_dry_b_calls(False, share_known=True), 120)
    assert cv.intervals("A")[0][1] < base.intervals("A")[0][1]


def test_predicted_platoon_end() -> None:
    """Arrivals 2, 4, 6 s and 20 s on one group, 3 s on another: the platoon of the first ends
    at 6 s (20 s is too far behind), the second's at 3 s; a group nobody approaches: -inf."""
    obs = Observation.empty(two_groups())
    obs.v2x = V2XObservation.from_rows([car(1, 0, 20.0), car(2, 0, 40.0), car(3, 0, 60.0),
                                        car(4, 0, 200.0), car(5, 1, 30.0)])
    first, last = predicted_arrivals(obs, (1, 2), 1.0, 10.0, 5.0)
    assert first.tolist() == [[2.0, 3.0]]
    assert last.tolist() == [[6.0, 3.0]]
    obs.v2x = V2XObservation.empty()
    first, last = predicted_arrivals(obs, (1, 2), 1.0, 10.0, 5.0)
    assert np.isinf(first).all() and (last == -math.inf).all()


@pytest.mark.parametrize("period_s", [0.0])
def test_equals_actuated_at_zero_share_in_sumo(tmp_path, period_s: float) -> None:
    """crossing:short, 240 s: with no equipped motor vehicle, cv-actuated shows the same signal
    states as actuated on every tick (the V2X emulation runs for both)."""
    _, cfg = resolve_scenario("crossing:short")
    zero = {"shares": {"car": 0.0, "bus": 0.0, "truck": 0.0, "emergency": 0.0}, "cam_period_s": period_s}
    states = {}
    for name in ("actuated", "cv-actuated"):
        ctl = make_controller(name)
        rows = []
        with SumoBridge(cfg, seed=7, out_dir=tmp_path / name, v2x=zero,
                        extra_args=["--end", "240"]) as bridge:
            net = bridge.start()
            engine = Engine(net, ctl, bridge.dt_s, start_s=bridge.begin_s)
            t = bridge.begin_s
            while t < 240.0 - 1e-9:
                t = bridge.step()
                changed = engine.tick(bridge.observe())
                bridge.actuate(engine.signals, changed)
                rows.append(engine.signals.state.copy())
        states[name] = np.array(rows)
    assert len(states["actuated"]) > 200
    assert (states["actuated"] == GREEN).any()
    np.testing.assert_array_equal(states["actuated"], states["cv-actuated"])
