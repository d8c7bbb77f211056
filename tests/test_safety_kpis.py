"""Safety KPIs (ivri.metrics.safety): emergency vehicles passing at red, persons caught on a
crossing by a conflicting green; counted with or without V2X emulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_priority_apps import two_groups

from ivri.core.idx import AMBER, GREEN, RED
from ivri.metrics.safety import PASSED_WITHIN_M, SafetyCounter
from ivri.runner import RunSpec, run_controller


def test_an_emergency_vehicle_is_counted_once_at_the_aspect_it_passed() -> None:
    net = two_groups()
    c = SafetyCounter(net, np.zeros(1, np.int64), np.zeros(1, np.int64))
    state = np.array([[RED, GREEN]], np.int8)
    c.emergency({"ev": (0, 0, 40.0)}, state)
    c.emergency({"ev": (0, 0, PASSED_WITHIN_M - 1.0)}, state)
    c.emergency({}, state)  # gone from the approach of group 0, which showed red
    c.emergency({"far": (0, 1, 300.0)}, state)
    c.emergency({}, state)  # left 300 m out: it did not pass the stop line
    c.emergency({"ev2": (0, 1, 5.0)}, np.array([[RED, AMBER]], np.int8))
    c.emergency({}, np.array([[RED, AMBER]], np.int8))
    s = c.stats
    assert (s.emergency_passages, s.emergency_red_passages, s.emergency_amber_passages) == (2, 1, 1)


def test_a_person_on_a_crossing_is_caught_when_a_conflicting_green_starts() -> None:
    net = two_groups()  # A and B conflict; the crossing row 0 belongs to group A
    c = SafetyCounter(net, np.array([0]), np.array([0]))
    ids, roads = ["p1", "p2"], [":C_c0", "kerb"]
    k, slow, app = np.array([0, -1]), np.array([True, True]), np.array([False, False])
    c.crossings(ids, roads, k, slow, app, np.array([[GREEN, RED]], np.int8))
    c.crossings(ids, roads, k, slow, app, np.array([[AMBER, RED]], np.int8))
    assert c.stats.pedestrians_caught == 0 and c.stats.slow_crossings_without_app == 1
    c.crossings(ids, roads, k, slow, app, np.array([[RED, GREEN]], np.int8))  # B starts: p1 is caught
    c.crossings(ids, roads, k, slow, app, np.array([[RED, GREEN]], np.int8))  # not a new start
    s = c.stats
    assert (s.pedestrians_caught, s.slow_caught_without_app, s.slow_caught_with_app) == (1, 1, 0)
    c.crossings([], [], np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool),
                np.array([[RED, RED]], np.int8))
    assert c.stats.to_dict()["pedestrians_caught"] == 1


@pytest.mark.sumo
def test_safety_kpis_exist_without_emulation_and_agree_with_it(tmp_path: Path) -> None:
    """crossing:short, 300 s, actuated: the safety block is there with V2X emulation off (read
    from what SUMO shows) and counts the same passages and caught persons as with it on."""
    off = run_controller(RunSpec("crossing:short", "actuated", out_dir=tmp_path / "off", end_s=300.0))
    on = run_controller(RunSpec("crossing:short", "actuated", out_dir=tmp_path / "on", end_s=300.0, v2x=True))
    assert "v2x" not in off and "v2x" in on
    a, b = off["safety"], on["safety"]
    assert a["emergency_passages"] >= 1  # the crossing's first ambulance departs at 120 s
    for key in ("emergency_passages", "emergency_red_passages", "emergency_amber_passages", "pedestrians_caught"):
        assert a[key] == b[key], key
    assert a["slow_caught_with_app"] == 0 and a["slow_crossings_with_app"] == 0  # nobody has the app
    assert (a["slow_caught_without_app"] == b["slow_caught_with_app"] + b["slow_caught_without_app"])
    assert (a["slow_crossings_without_app"] == b["slow_crossings_with_app"] + b["slow_crossings_without_app"])
    assert a["slow_crossings_without_app"] > 0
