"""Health KPIs: a run that jams says so, in kpis.json and in one line under the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_sumocfg_overrides import crossing_sumocfg

from ivri.metrics import kpi_table
from ivri.metrics.health import (
    BACKLOG_GROWTH_VEHICLES,
    compute_health,
    gridlock_line,
    read_statistics,
)

STATISTICS = """<?xml version="1.0" encoding="UTF-8"?>
<statistics>
    <vehicles loaded="2354" inserted="1430" running="894" waiting="{waiting}"/>
    <teleports total="{teleports}" jam="{jam}" yield="{yield_}" wrongLane="{wrong}"/>
    <safety collisions="2" emergencyStops="1" emergencyBraking="7"/>
</statistics>
"""


def _summary(path: Path, backlog: list[int]) -> Path:
    steps = "".join(f'<step time="{60 * k}.00" waiting="{w}"/>\n' for k, w in enumerate(backlog))
    path.write_text(f"<summary>\n{steps}</summary>\n", encoding="utf-8")
    return path


def _stats(path: Path, waiting: int, teleports: int) -> Path:
    # SUMO's jam reasons add up to the total when no vehicle collided.
    jam, yield_, wrong = (6, 103, teleports - 109) if teleports else (0, 0, 0)
    path.write_text(STATISTICS.format(waiting=waiting, teleports=teleports, jam=jam, yield_=yield_, wrong=wrong),
                    encoding="utf-8")
    return path


def test_statistics_counters_are_read(tmp_path: Path) -> None:
    stats = read_statistics(_stats(tmp_path / "s.xml", waiting=918, teleports=113))
    assert stats["teleports"] == 113 and stats["teleports_yield"] == 103
    assert stats["teleports_wrong_lane"] == 4 and stats["collisions"] == 2
    assert stats["emergency_braking"] == 7 and stats["waiting"] == 918


def test_a_growing_backlog_without_teleports_is_gridlock(tmp_path: Path) -> None:
    summary = _summary(tmp_path / "sum.xml", [0, 5, 10, 20, 40, 60, 80, 100, 120, 140])
    health = compute_health(_stats(tmp_path / "s.xml", waiting=150, teleports=0), summary, 0.0, 600.0)
    assert health.teleports == 0
    assert health.backlog_mid == 60  # the row at half-way, t = 300 s
    assert health.never_inserted == 150 and health.backlog_max == 150
    assert health.backlog_growth_per_h == pytest.approx((150 - 60) / (300 / 3600), abs=0.1)
    assert health.gridlock
    line = gridlock_line(health.to_dict())
    assert line is not None and "150 vehicles never got in" in line and "grew by 90" in line


def test_a_steady_queue_at_the_edge_is_not_gridlock(tmp_path: Path) -> None:
    backlog = [0, 8, 12, 10, 11, 9, 12, 10, 8, 11]
    summary = _summary(tmp_path / "sum.xml", backlog)
    health = compute_health(_stats(tmp_path / "s.xml", waiting=10, teleports=0), summary, 0.0, 600.0)
    assert health.never_inserted - health.backlog_mid < BACKLOG_GROWTH_VEHICLES
    assert not health.gridlock
    assert gridlock_line(health.to_dict()) is None


def _teleports(path: Path, total: int, yield_: int, collisions: int) -> Path:
    path.write_text(
        '<statistics><vehicles loaded="10" inserted="10" running="0" waiting="0"/>'
        f'<teleports total="{total}" jam="0" yield="{yield_}" wrongLane="0"/>'
        f'<safety collisions="{collisions}" emergencyStops="0" emergencyBraking="0"/></statistics>',
        encoding="utf-8",
    )
    return path


def test_a_collision_teleport_is_a_collision_not_a_gridlock(tmp_path: Path) -> None:
    # SUMO teleports a vehicle after a collision and counts it in the total only.
    stats = _teleports(tmp_path / "s.xml", total=1, yield_=0, collisions=1)
    health = compute_health(stats, _summary(tmp_path / "sum.xml", [0] * 10), 0.0, 600.0)
    assert health.teleports == 1 and health.collisions == 1
    assert not health.gridlock
    assert gridlock_line(health.to_dict()) is None


def test_a_jam_teleport_is_a_gridlock(tmp_path: Path) -> None:
    stats = _teleports(tmp_path / "s.xml", total=3, yield_=1, collisions=2)
    health = compute_health(stats, _summary(tmp_path / "sum.xml", [0] * 10), 0.0, 600.0)
    assert health.gridlock
    line = gridlock_line(health.to_dict())
    assert line is not None and "1 vehicles teleported out of jams" in line


def test_missing_statistics_name_the_file(tmp_path: Path) -> None:
    from ivri.errors import SimulationError

    with pytest.raises(SimulationError, match="statistics"):
        compute_health(tmp_path / "none.xml", _summary(tmp_path / "s.xml", [0]), 0.0, 60.0)


def test_table_says_gridlock_in_one_line_per_run() -> None:
    healthy = {"controller": "sumo-actuated", "seed": 42, "vehicle_loss_hours": 1.0,
               "health": {"gridlock": False, "teleports": 0, "never_inserted": 0}}
    jammed = {"controller": "actuated", "seed": 42, "vehicle_loss_hours": 9.0, "depart_delay_share": 0.8,
              "health": {"gridlock": True, "teleports": 3, "teleports_jam": 3, "teleports_yield": 0,
                         "teleports_wrong_lane": 0, "never_inserted": 200, "backlog_mid": 20,
                         "collisions": 0, "emergency_braking": 1}}
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(kpi_table([healthy, jammed]))
    text = console.export_text()
    lines = [ln for ln in text.splitlines() if "GRIDLOCK" in ln]
    assert len(lines) == 1
    assert "actuated (seed 42)" in lines[0] and "3 vehicles teleported" in lines[0]
    assert "200 vehicles never got in" in lines[0]
    for header in ("depart %", "teleports", "not in", "collisions", "e-brakes"):
        assert header in text


@pytest.mark.sumo
def test_gridlocked_network_is_reported_and_its_loss_counts_the_vehicles_never_inserted(tmp_path: Path) -> None:
    # The bundled crossing with eight times its demand and a short time-to-teleport: it jams
    # within two minutes and vehicles queue outside the network.
    cfg = crossing_sumocfg(tmp_path, """<processing><time-to-teleport value="20"/></processing>
  <scale value="8"/>""", end_s=240)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "ivri", "run", str(cfg), "-c", "actuated", "--out", str(out)],
                            capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    gridlock = [ln for ln in result.stdout.splitlines() if "GRIDLOCK" in ln]
    assert len(gridlock) == 1 and "teleported" in gridlock[0]
    record = json.loads((out / "kpis.json").read_text())[0]
    health = record["health"]
    assert health["gridlock"] and health["teleports"] > 0
    assert health["teleports"] == health["teleports_jam"] + health["teleports_yield"] + health["teleports_wrong_lane"]
    assert health["never_inserted"] > 50
    # Every vehicle that never got in is in the loss hours with its depart delay.
    assert sum(m["undeparted"] for m in record["by_mode"].values()) == health["never_inserted"]
    assert record["depart_delay_hours"] > 0
    assert record["depart_delay_share"] == pytest.approx(
        record["depart_delay_hours"] / record["vehicle_loss_hours"])
    assert record["depart_delay_share"] > 0.3
