"""Scenario copies of the national runs: extended demand and the emergency rate."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ivri.national.demand import EMERGENCY_VTYPE_ID, prepare_scenario, scenario_has_emergency


def _scenario(tmp_path: Path, routes: str, begin: float, end: float) -> Path:
    (tmp_path / "net.net.xml").write_text("<net/>", encoding="utf-8")
    (tmp_path / "demand.rou.xml").write_text(f"<routes>{routes}</routes>", encoding="utf-8")
    cfg = tmp_path / "city.sumocfg"
    cfg.write_text(
        '<configuration><input><net-file value="net.net.xml"/><route-files value="demand.rou.xml"/></input>'
        f'<time><begin value="{begin:g}"/><end value="{end:g}"/></time></configuration>', encoding="utf-8")
    return cfg


def _city_hour(tmp_path: Path) -> Path:
    """A real-world style hour from 16:00: cars every 30 s, a bus, one car that left before 16:00."""
    cars = "".join(f'<trip id="car{k}" type="pkw" depart="{57600 + 30 * k}" from="a" to="b"/>' for k in range(120))
    return _scenario(tmp_path, '<vType id="pkw" vClass="passenger"/><vType id="bus" vClass="bus"/>'
                     '<trip id="early" type="pkw" depart="57000" from="a" to="b"/>'
                     '<trip id="bus0" type="bus" depart="57700" from="a" to="b"/>' + cars, 57600, 61200)


def _departures(path: Path) -> list[tuple[str, str, float]]:
    root = ET.parse(path).getroot()
    return [(e.get("id", ""), e.get("type", ""), float(e.get("depart", "0"))) for e in root if e.tag == "trip"]


def test_cars_of_a_demand_without_emergency_vehicles_become_them_at_the_asked_rate(tmp_path: Path) -> None:
    cfg = _city_hour(tmp_path)
    assert not scenario_has_emergency(cfg)
    out, counts = prepare_scenario(cfg, tmp_path / "copy", 61200.0, emergency_per_h=3.0)
    trips = _departures(tmp_path / "copy" / "demand0.rou.xml")
    evs = [(i, d) for i, t, d in trips if t == EMERGENCY_VTYPE_ID]
    # One every 20 min, the first 10 min in: the first car at or after 58200, 59400 and 60600.
    assert counts["emergency_vehicles"] == 3
    assert evs == [("car20", 58200.0), ("car60", 59400.0), ("car100", 60600.0)]
    root = ET.parse(tmp_path / "copy" / "demand0.rou.xml").getroot()
    vtype = next(v for v in root.iter("vType") if v.get("id") == EMERGENCY_VTYPE_ID)
    assert vtype.get("vClass") == "emergency"
    assert {p.get("key"): p.get("value") for p in vtype.iter("param")}["has.bluelight.device"] == "true"
    # The hour stays the hour: nothing repeated, the bus untouched, the car before 16:00 left out.
    ids = [i for i, _, _ in trips]
    assert len(ids) == 121 and "early" not in ids and not any(".r" in i for i in ids)
    assert ("bus0", "bus", 57700.0) in trips
    assert ET.parse(out).getroot().find("time/end").get("value") == "61200"


def test_the_same_cars_are_converted_in_every_arm_and_none_at_rate_zero(tmp_path: Path) -> None:
    cfg = _city_hour(tmp_path)
    a = _departures(prepare_scenario(cfg, tmp_path / "a", 61200.0, 3.0)[0].parent / "demand0.rou.xml")
    b = _departures(prepare_scenario(cfg, tmp_path / "b", 61200.0, 3.0)[0].parent / "demand0.rou.xml")
    assert a == b
    _, counts = prepare_scenario(cfg, tmp_path / "c", 61200.0, 0.0)
    assert counts["emergency_vehicles"] == 0
    assert all(t == "pkw" or t == "bus" for _, t, _ in _departures(tmp_path / "c" / "demand0.rou.xml"))


def test_a_demand_with_emergency_vehicles_is_thinned_not_converted(tmp_path: Path) -> None:
    evs = "".join(f'<trip id="ev{k}" type="ev" depart="{600 * k}" from="a" to="b"/>' for k in range(6))
    cars = "".join(f'<trip id="car{k}" type="car" depart="{60 * k}" from="a" to="b"/>' for k in range(60))
    cfg = _scenario(tmp_path, '<vType id="ev" vClass="emergency"/><vType id="car" vClass="passenger"/>'
                    + "".join(sorted([evs, cars])), 0, 3600)
    assert scenario_has_emergency(cfg)
    # Two hours from a one-hour demand with 6 an hour: 12 emergency trips, every 2nd kept for 3 an hour.
    _, counts = prepare_scenario(cfg, tmp_path / "copy", 7200.0, 3.0)
    trips = _departures(tmp_path / "copy" / "demand0.rou.xml")
    assert counts["emergency_vehicles"] == 6
    assert [i for i, t, _ in trips if t == "ev"] == ["ev0", "ev2", "ev4", "ev0.r1", "ev2.r1", "ev4.r1"]
    assert sum(t == "car" for _, t, _ in trips) == 120
    assert not any(t == EMERGENCY_VTYPE_ID for _, t, _ in trips)
