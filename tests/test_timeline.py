"""The signal timeline: recorded change by change during a run, faithful to the core, and drawn."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_clean_error, ivri

from ivri.core.idx import GREEN, RED
from ivri.metrics.timeline import TIMELINE_FILENAME, Timeline, load_timeline


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """crossing:short for 200 s under actuated + GreenFlow (its emergency vehicle comes at about 120 s)."""
    from ivri.runner import RunSpec, run_controller

    out = tmp_path_factory.mktemp("timeline")
    run_controller(RunSpec(scenario="crossing:short", controller="actuated+greenflow", end_s=200.0, out_dir=out))
    return out / "actuated_greenflow"


@pytest.fixture(scope="module")
def timeline(run_dir: Path) -> Timeline:
    return load_timeline(run_dir / TIMELINE_FILENAME)


@pytest.mark.sumo
def test_segments_cover_the_run_without_gaps(timeline: Timeline) -> None:
    assert timeline.intersection_ids == ("C",)
    assert (timeline.begin_s, timeline.end_s) == (0.0, 200.0)
    for channel in ("state", "demand", "detector"):
        g, start, end, value = timeline.segments(channel, 0)
        for k in range(len(timeline.group_ids[0])):
            m = g == k
            assert start[m][0] == 0.0 and end[m][-1] == 200.0
            assert np.array_equal(start[m][1:], end[m][:-1])  # contiguous
            assert np.all(value[m][1:] != value[m][:-1])      # only changes are stored
    # Every group was green at some time, and cars called and were detected.
    g, _, _, value = timeline.segments("state", 0)
    assert set(g[value == GREEN].tolist()) == set(range(len(timeline.group_ids[0])))
    assert timeline.events["detector"][0].size > 20


@pytest.mark.sumo
def test_conflicting_groups_never_show_green_or_amber_together(timeline: Timeline) -> None:
    from ivri.core.compile import compile_network
    from ivri.runner import resolve_scenario
    from ivri.sumo.network import derive_intersections
    from ivri.sumo.sumocfg import read_sumocfg

    configs, _ = derive_intersections(read_sumocfg(resolve_scenario("crossing:short")[1]).net_file)
    conflict = compile_network(configs).timing.conflict[0]
    g, start, end, value = timeline.segments("state", 0)
    moving = value != RED
    pairs = 0
    for a, b in itertools.combinations(range(len(timeline.group_ids[0])), 2):
        if not conflict[a, b]:
            continue
        pairs += 1
        sa, ea = start[moving & (g == a)], end[moving & (g == a)]
        sb, eb = start[moving & (g == b)], end[moving & (g == b)]
        overlap = (sa[:, None] < eb[None, :]) & (sb[None, :] < ea[:, None])
        assert not overlap.any(), (timeline.group_ids[0][a], timeline.group_ids[0][b])
    assert pairs > 20


@pytest.mark.sumo
def test_the_emergency_vehicle_is_requested_and_granted(timeline: Timeline) -> None:
    emergency = next(k for k, v in timeline.class_names.items() if v == "emergency")
    for channel in ("priority", "granted"):
        v = timeline.events[channel][3]
        assert (v == emergency).any(), channel
    t_req = timeline.events["priority"][0][timeline.events["priority"][3] == emergency][0]
    t_grant = timeline.events["granted"][0][timeline.events["granted"][3] == emergency][0]
    assert 100.0 <= t_req <= t_grant <= 200.0
    # The granted group turns (or stays) green while the grant lasts.
    g_grant = int(timeline.events["granted"][2][timeline.events["granted"][3] == emergency][0])
    g, _, end, value = timeline.segments("state", 0)
    green = (g == g_grant) & (value == GREEN)
    assert (end[green] > t_grant).any()


@pytest.mark.sumo
def test_plot_command_writes_png_and_svg(run_dir: Path) -> None:
    result = ivri("plot", str(run_dir.parent), "--intersection", "C", "--from", "60", "--to", "180")
    assert result.returncode == 0, result.stderr
    png, svg = run_dir / "timeline_C.png", run_dir / "timeline_C.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "<svg" in svg.read_text()[:2000]


@pytest.mark.sumo
def test_plot_command_errors(run_dir: Path, tmp_path: Path) -> None:
    assert_clean_error(ivri("plot", str(run_dir), "--intersection", "J9"), "J9", "C")
    assert_clean_error(ivri("plot", str(run_dir), "--intersection", "C", "--from", "150", "--to", "50"),
                       "empty time window")
    # A window after the run's end (a clock mistaken for seconds into the run) names the span.
    assert_clean_error(ivri("plot", str(run_dir), "--intersection", "C", "--from", "90000", "--to", "90600"),
                       "empty time window", "the run spans")
    assert_clean_error(ivri("plot", str(tmp_path), "--intersection", "C"), "no timeline.npz")
    broken = tmp_path / "timeline.npz"
    broken.write_text("not numpy")
    assert_clean_error(ivri("plot", str(broken), "--intersection", "C"), "not a timeline file")
