"""Webster's method: the textbook examples, and a plan from a bundled scenario's flows."""

from __future__ import annotations

import numpy as np
import pytest

from ivri.errors import ConfigError
from ivri.national.webster import (
    optimum_cycle_s,
    progression_offsets,
    split_greens,
    webster_params,
    webster_plan,
)


def test_two_phase_textbook_example() -> None:
    # A GATE Civil Engineering examination question (transportation; worked on
    # interviewmania.com, "Traffic engineering miscellaneous"): two-phase signal, N-S critical
    # flow 1000 veh/h at a saturation flow of 2500, E-W 900 at 3000, total lost time 12 s;
    # Webster's cycle is (1.5 x 12 + 5) / (1 - 0.7) = 76.7, "77 s".
    y = [1000 / 2500, 900 / 3000]
    c = optimum_cycle_s(12.0, sum(y))
    assert c == pytest.approx(76.67, abs=0.01)
    g = split_greens(c, 12.0, y)
    assert g == pytest.approx([(c - 12.0) * 0.4 / 0.7, (c - 12.0) * 0.3 / 0.7])
    assert g.sum() + 12.0 == pytest.approx(c)


def test_second_textbook_example_and_the_bounds() -> None:
    # Flows 500 and 300 pcu/h at 1600 pcu/h each, 16 s lost per cycle: C0 = 58 s (a standard
    # examination example of Webster's method, worked on byjus.com question-answer, "If the
    # normal flows on two approach roads at an intersection are ... 500 pcu per hr and 300").
    assert optimum_cycle_s(16.0, (500 + 300) / 1600) == pytest.approx(58.0)
    assert optimum_cycle_s(16.0, 0.97, c_max=120.0) == 120.0
    assert optimum_cycle_s(16.0, 1.2) == 120.0
    assert optimum_cycle_s(4.0, 0.0, c_min=30.0) == 30.0
    with pytest.raises(ConfigError, match="lost time"):
        optimum_cycle_s(-1.0, 0.5)


def test_progression_offsets_follow_the_main_axis() -> None:
    pos = {"A": (0.0, 0.0), "B": (300.0, 5.0), "C": (900.0, -5.0)}
    off = progression_offsets(pos, 10.0, 60.0)
    assert off == pytest.approx({"A": 0.0, "B": 30.0, "C": 90.0 % 60.0})
    assert progression_offsets({"A": (1.0, 2.0)}, 10.0, 60.0) == {"A": 0.0}


def test_plan_of_the_crossing_follows_its_flows() -> None:
    from ivri.runner import resolve_scenario

    peak = webster_plan(resolve_scenario("crossing:peak")[1])
    off = webster_plan(resolve_scenario("crossing:offpeak")[1])
    # More demand: higher flow ratios, a longer cycle; the busy main road gets the longer green.
    assert 0.2 < peak.y_total["C"] < 0.9
    assert off.y_total["C"] < peak.y_total["C"]
    assert off.cycle_s["C"] < peak.cycle_s["C"]
    assert peak.cycle_s["C"] == pytest.approx((1.5 * peak.lost_s["C"] + 5) / (1 - peak.y_total["C"]))
    g = np.array(peak.stage_green_s["C"])
    assert g.max() > 1.5 * g.min()
    assert g.sum() + peak.lost_s["C"] == pytest.approx(peak.cycle_s["C"])


def test_corridor_runs_one_cycle_with_a_green_wave() -> None:
    from ivri.controllers import make_controller

    from ivri.runner import resolve_scenario

    cfg = resolve_scenario("corridor:peak")[1]
    plan = webster_plan(cfg)
    assert len(set(plan.cycle_s.values())) == 1
    assert len(set(plan.offset_s.values())) > 1
    # The parameters fit the fixed-time controller as they are.
    ctl = make_controller("fixed-time", **webster_params(cfg))
    assert ctl.get_params()["stage_green_s"].keys() == plan.stage_green_s.keys()
