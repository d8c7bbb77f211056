"""The `ivri` command as a traffic engineer meets it: runs, tables, files, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRED_KEYS = {"scenario", "controller", "seed", "sumo_version", "vehicle_loss_hours",
                 "fuel_litres", "co2_kg", "stops", "wall_time_s", "by_mode"}


def ivri(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ivri", *args], capture_output=True, text=True, check=False,
                          cwd=cwd, env=env, timeout=600)


def assert_clean_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A non-zero exit, one error line that names the problem, and no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


@pytest.mark.sumo
def test_compare_on_bundled_scenario_writes_kpis_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = ivri("run", "crossing:short", "--compare", "fixed-time,actuated,sumo-native",
                  "--end", "180", "--out", str(out))
    assert result.returncode == 0, result.stderr
    for name in ("fixed-time", "actuated", "sumo-native"):
        assert name in result.stdout
    records = json.loads((out / "kpis.json").read_text())
    assert [r["controller"] for r in records] == ["fixed-time", "actuated", "sumo-native"]
    for r in records:
        assert r.keys() >= REQUIRED_KEYS
        assert r["scenario"] == "crossing:short"
        assert r["seed"] == 42
        assert r["by_mode"]["car"]["trips"] > 0
        assert r["by_mode"]["bicycle"]["trips"] > 0
        for mode in r["by_mode"].values():
            assert {"trips", "mean_time_loss_s", "stops"} <= mode.keys()
        assert r["vehicle_loss_hours"] > 0 and r["fuel_litres"] > 0
    assert (out / "comparison.png").stat().st_size > 10_000
    # Privacy: results hold aggregates, never the ids of vehicles or persons.
    import re

    from ivri.sumo_networks import get_scenario

    routes = get_scenario("crossing:short").sumocfg.parent / "crossing.peak.rou.xml"
    flows = re.findall(r'<(?:flow|personFlow|vehicle|person) id="([^"]+)"', routes.read_text())
    assert flows
    text = (out / "kpis.json").read_text()
    leaked = [f for f in flows if f'"{f}.' in text or f'"{f}"' in text]
    assert not leaked


@pytest.mark.sumo
def test_runs_a_network_the_project_did_not_write(tmp_path: Path) -> None:
    import sumo

    cfg = Path(sumo.SUMO_HOME) / "tools" / "game" / "cross.sumocfg"
    if not cfg.exists():
        pytest.skip("the eclipse-sumo package ships no game scenarios")
    result = ivri("run", str(cfg), "--controller", "actuated", "--end", "60", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "kpis.json").read_text())[0]
    assert record["controller"] == "actuated"
    assert record["by_intersection"]


def test_unknown_scenario(tmp_path: Path) -> None:
    assert_clean_error(ivri("run", "atlantis"), "atlantis", "crossing")


def test_unknown_controller() -> None:
    assert_clean_error(ivri("run", "crossing:short", "-c", "psychic"), "psychic", "actuated")


def test_missing_sumocfg(tmp_path: Path) -> None:
    assert_clean_error(ivri("run", str(tmp_path / "nope.sumocfg")), "nope.sumocfg")


@pytest.mark.sumo
def test_output_folder_with_a_colon(tmp_path: Path) -> None:
    # SUMO would take the folder for host:port and fail to start with a message about ports.
    assert_clean_error(ivri("run", "crossing:short", "--out", str(tmp_path / "crossing:short")),
                       "crossing:short", "':'")


@pytest.mark.sumo
def test_corrupt_network(tmp_path: Path) -> None:
    (tmp_path / "bad.net.xml").write_text("<net><edge id='a' broken")
    (tmp_path / "bad.sumocfg").write_text(
        '<configuration><input><net-file value="bad.net.xml"/></input></configuration>')
    assert_clean_error(ivri("run", str(tmp_path / "bad.sumocfg")), "bad.net.xml")


def test_inconsistent_intersection_config(tmp_path: Path) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_text('[[intersections]]\nid = "J1"\n[[intersections.signal_groups]]\n'
                   'id = "fc02"\nmin_green_s = 50\nmax_green_s = 20\n')
    assert_clean_error(ivri("run", "crossing:short", "--config", str(cfg)), "min_green_s", "max_green_s")


def test_conflict_without_intergreen(tmp_path: Path) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_text('[[intersections]]\nid = "J1"\n'
                   '[[intersections.signal_groups]]\nid = "a"\n'
                   '[[intersections.signal_groups]]\nid = "b"\n'
                   '[[intersections.conflicts]]\nbetween = ["a", "b"]\n')
    assert_clean_error(ivri("run", "crossing:short", "--config", str(cfg)), "intergreen_s")


def test_listings() -> None:
    scen = ivri("scenarios")
    assert scen.returncode == 0
    for name in ("crossing", "tjunction", "corridor", "grid"):
        assert name in scen.stdout
    ctrl = ivri("controllers")
    assert ctrl.returncode == 0
    for name in ("fixed-time", "actuated", "max-pressure", "sumo-native"):
        assert name in ctrl.stdout
    assert "--compare" in ivri("run", "--help").stdout


@pytest.mark.sumo
def test_derived_config_round_trips_into_a_run(tmp_path: Path) -> None:
    import yaml

    derived = tmp_path / "crossing.yaml"
    result = ivri("derive", "crossing:short", "--out", str(derived))
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(derived.read_text())
    groups = data["intersections"][0]["signal_groups"]
    assert len(groups) >= 12 and data["intersections"][0]["conflicts"]
    run = ivri("run", "crossing:short", "-c", "actuated", "--config", str(derived), "--end", "60",
               "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    # An engineer's edit that breaks a rule is refused before SUMO starts, naming the group.
    groups[0]["min_green_s"] = groups[0]["max_green_s"] + 1
    derived.write_text(yaml.safe_dump(data))
    assert_clean_error(ivri("run", "crossing:short", "--config", str(derived)), groups[0]["id"])
