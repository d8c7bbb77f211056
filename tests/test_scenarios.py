"""Tests of the bundled SUMO scenarios (sumo_networks/, installed as ivri.sumo_networks)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

try:
    from ivri.sumo_networks import SCENARIO_DIR, Scenario, bundled_scenarios, get_scenario
except ImportError:  # not installed: use the repository's folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sumo_networks import SCENARIO_DIR, Scenario, bundled_scenarios, get_scenario

NAMES = {"crossing", "tjunction", "corridor", "grid"}
VARIANTS = {"peak", "offpeak", "short"}


def _cfg_inputs(cfg: Path) -> dict[str, list[Path]]:
    root = ET.parse(cfg).getroot()
    out: dict[str, list[Path]] = {}
    for key in ("net-file", "route-files", "additional-files"):
        el = root.find(f"input/{key}")
        if el is not None:
            out[key] = [cfg.parent / v.strip() for v in el.get("value").split(",") if v.strip()]
    return out


def _time(cfg: Path, key: str) -> float:
    return float(ET.parse(cfg).getroot().find(f"time/{key}").get("value"))


def test_registry_covers_all_names_and_variants():
    scenarios = bundled_scenarios()
    assert {(s.name, s.variant) for s in scenarios} == {(n, v) for n in NAMES for v in VARIANTS}
    for s in scenarios:
        assert isinstance(s, Scenario)
        assert s.description and "\n" not in s.description
        assert s.sumocfg.parent.parent == SCENARIO_DIR


@pytest.mark.parametrize("scenario", bundled_scenarios(), ids=lambda s: f"{s.name}:{s.variant}")
def test_sumocfg_exists_and_references_existing_files(scenario: Scenario):
    cfg = scenario.sumocfg
    assert cfg.is_file(), cfg
    inputs = _cfg_inputs(cfg)
    assert inputs.get("net-file") and inputs.get("route-files")
    for files in inputs.values():
        for f in files:
            assert f.is_file(), f"{cfg.name} references missing {f}"
    root = ET.parse(cfg).getroot()
    assert root.find("random_number/seed").get("value") == "42"
    assert root.find("processing/time-to-teleport").get("value") == "300"
    assert _time(cfg, "begin") == 0 and _time(cfg, "step-length") == 1
    assert _time(cfg, "end") == (600 if scenario.variant == "short" else 3600)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_net_has_actuated_traffic_lights(name: str):
    net = SCENARIO_DIR / name / f"{name}.net.xml"
    logics = ET.parse(net).getroot().findall("tlLogic")
    assert logics, f"{net.name} has no traffic light"
    assert any(tl.get("type") == "actuated" for tl in logics)
    assert all(tl.get("type") == "actuated" for tl in logics)
    # yellow (amber) of at least 3 s in every program
    for tl in logics:
        yellows = [int(float(p.get("duration"))) for p in tl.findall("phase") if "y" in p.get("state")]
        assert yellows and min(yellows) >= 3


@pytest.mark.parametrize("name", sorted(NAMES))
def test_demand_has_every_mode(name: str):
    rou = ET.parse(SCENARIO_DIR / name / f"{name}.peak.rou.xml").getroot()
    vtypes = {t.get("id"): t for t in rou.findall("vType")}
    classes = {t.get("vClass") for t in vtypes.values()}
    assert {"passenger", "truck", "bus", "bicycle", "pedestrian", "emergency"} <= classes
    params = {(t.get("id"), p.get("key"), p.get("value")) for t in vtypes.values() for p in t.findall("param")}
    assert ("emergency", "has.bluelight.device", "true") in params
    assert ("ped_slow", "ivri.slow", "1") in params
    assert float(vtypes["ped_slow"].get("desiredMaxSpeed")) <= 0.8
    for t in vtypes.values():
        if t.get("vClass") in ("passenger", "truck", "trailer", "bus", "emergency"):
            assert t.get("emissionClass", "").startswith("HBEFA4/")
    assert rou.findall("personFlow") and rou.findall("flow")


def test_get_scenario_names_and_variants():
    assert get_scenario("grid") == get_scenario("grid:peak")
    s = get_scenario("grid:short")
    assert (s.name, s.variant) == ("grid", "short")
    assert s.sumocfg.name == "grid.short.sumocfg"
    assert get_scenario("crossing:offpeak").variant == "offpeak"


@pytest.mark.parametrize("bad", ["nope", "grid:rush", ""])
def test_get_scenario_unknown_raises_keyerror_with_choices(bad: str):
    with pytest.raises(KeyError) as exc:
        get_scenario(bad)
    msg = str(exc.value)
    for name in NAMES:
        assert name in msg
    assert "grid:short" in msg


def test_crossing_short_runs_with_libsumo():
    """300 steps of crossing:short: cars, bicycles and pedestrians all depart (about 1 s)."""
    libsumo = pytest.importorskip("libsumo")
    cfg = get_scenario("crossing:short").sumocfg
    libsumo.start(["sumo", "-c", str(cfg), "--no-step-log", "--no-warnings"])
    try:
        classes: set[str] = set()
        departed = persons = 0
        for _ in range(300):
            libsumo.simulationStep()
            departed += libsumo.simulation.getDepartedNumber()
            persons += libsumo.simulation.getDepartedPersonNumber()
            for vid in libsumo.simulation.getDepartedIDList():
                classes.add(libsumo.vehicle.getVehicleClass(vid))
        assert libsumo.trafficlight.getIDList() == ("C",)
    finally:
        libsumo.close()
    assert departed > 50
    assert persons > 5
    assert {"passenger", "bicycle"} <= classes


@pytest.mark.sumo
@pytest.mark.parametrize("name", sorted(NAMES))
def test_bundled_scenario_starts_without_warnings(name: str, tmp_path: Path):
    """SUMO loads every bundled scenario and runs its first 200 s (buses and the first emergency
    vehicle included) without a warning: nothing a newcomer would read as broken."""
    import subprocess

    from ivri.sumo.connection import sumo_binary

    log = tmp_path / "sumo_errors.log"
    cfg = get_scenario(f"{name}:short").sumocfg
    res = subprocess.run([sumo_binary(), "-c", str(cfg), "--end", "200", "--no-step-log", "--error-log", str(log)],
                         capture_output=True, text=True, check=False, timeout=120)
    assert res.returncode == 0, res.stderr
    assert log.read_text() == "", log.read_text()
