"""The fair references: SUMO's own programs switched to its actuated and delay-based types."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from ivri.controllers import SUMO_REFERENCES, describe_controllers, validate_run_choice

from ivri.errors import ConfigError, NetworkError
from ivri.sumo.tls_programs import MAX_DUR_S, MIN_DUR_S, read_programs, write_typed_programs

STATIC_NET = """<net>
  <edge id="a" from="x" to="y"><lane id="a_0" index="0" speed="13.9" length="100"/></edge>
  <tlLogic id="J1" type="static" programID="0" offset="7">
    <phase duration="42" state="GGgrrr"/>
    <phase duration="4" state="GGrrrr"/>
    <phase duration="3" state="yyrrrr"/>
    <phase duration="60" state="rrrGGG" name="main"/>
    <phase duration="3" state="rrryyy"/>
  </tlLogic>
  <tlLogic id="J2" type="actuated" programID="0" offset="0">
    <param key="max-gap" value="2.5"/>
    <phase duration="31" minDur="10" maxDur="40" state="Gr"/>
    <phase duration="3" state="yr"/>
    <phase duration="31" minDur="10" maxDur="40" state="rG"/>
    <phase duration="3" state="ry"/>
  </tlLogic>
</net>
"""


def _phases(root: ET.Element, tls: str) -> list[dict[str, str]]:
    logic = next(t for t in root.iter("tlLogic") if t.get("id") == tls)
    return [dict(p.attrib) for p in logic.iter("phase")]


def test_typed_programs_keep_every_phase_and_vary_only_main_greens(tmp_path: Path) -> None:
    net = tmp_path / "x.net.xml"
    net.write_text(STATIC_NET, encoding="utf-8")
    out = tmp_path / "typed.add.xml"
    assert write_typed_programs([net], "actuated", out) == 2
    root = ET.parse(out).getroot()
    logics = {t.get("id"): t for t in root.iter("tlLogic")}
    assert {t.get("type") for t in logics.values()} == {"actuated"}
    assert logics["J1"].get("offset") == "7"
    j1 = _phases(root, "J1")
    assert [p["state"] for p in j1] == ["GGgrrr", "GGrrrr", "yyrrrr", "rrrGGG", "rrryyy"]
    assert [p["duration"] for p in j1] == ["42", "4", "3", "60", "3"]
    assert j1[0]["minDur"] == f"{MIN_DUR_S:g}" and j1[0]["maxDur"] == f"{MAX_DUR_S:g}"
    assert "minDur" not in j1[1]  # clearing step of the green before it: fixed
    assert "minDur" not in j1[2] and "minDur" not in j1[4]  # amber: fixed
    assert j1[3]["maxDur"] == "60" and j1[3]["name"] == "main"  # never shorter than the plan's own green
    # An actuated program switched to actuated keeps its own durations and tuning.
    j2 = _phases(root, "J2")
    assert j2[0]["minDur"] == "10" and j2[0]["maxDur"] == "40"
    assert [p.get("value") for p in logics["J2"].iter("param")] == ["2.5"]


def test_switching_type_drops_the_other_types_tuning(tmp_path: Path) -> None:
    net = tmp_path / "x.net.xml"
    net.write_text(STATIC_NET, encoding="utf-8")
    out = tmp_path / "typed.add.xml"
    write_typed_programs([net], "delay_based", out)
    logic = next(t for t in ET.parse(out).getroot().iter("tlLogic") if t.get("id") == "J2")
    assert logic.get("type") == "delay_based"
    assert not list(logic.iter("param"))


def test_a_program_in_an_additional_file_wins_over_the_network(tmp_path: Path) -> None:
    net = tmp_path / "x.net.xml"
    net.write_text(STATIC_NET, encoding="utf-8")
    add = tmp_path / "own.add.xml"
    add.write_text('<additional><tlLogic id="J1" type="static" programID="mine" offset="0">'
                   '<phase duration="20" state="Gr"/><phase duration="20" state="rG"/></tlLogic></additional>',
                   encoding="utf-8")
    programs = read_programs([net, add])
    assert programs["J1"].get("programID") == "mine"


def test_no_traffic_light_is_a_clear_error(tmp_path: Path) -> None:
    net = tmp_path / "x.net.xml"
    net.write_text("<net/>", encoding="utf-8")
    with pytest.raises(NetworkError, match="no traffic-light program"):
        write_typed_programs([net], "actuated", tmp_path / "o.xml")


def test_references_are_run_choices_not_engine_controllers() -> None:
    from ivri.controllers import make_controller

    listed = describe_controllers()
    for name in ("sumo-native", "sumo-actuated", "sumo-delay-based"):
        assert name in SUMO_REFERENCES and name in listed
        assert validate_run_choice(name) == name
        with pytest.raises(ConfigError, match="not an engine controller"):
            make_controller(name)
    with pytest.raises(ConfigError, match="priority applications need an engine controller"):
        validate_run_choice("sumo-actuated+greenflow")


@pytest.mark.sumo
def test_sumo_actuated_and_delay_based_run_on_a_bundled_scenario(tmp_path: Path) -> None:
    from ivri.runner import TYPED_PROGRAMS_FILENAME, RunSpec, run_controller

    records = {name: run_controller(RunSpec(scenario="crossing:short", controller=name, out_dir=tmp_path,
                                            end_s=240.0))
               for name in ("sumo-native", "sumo-actuated", "sumo-delay-based")}
    for name, rec in records.items():
        assert rec["controller"] == name
        assert rec["by_mode"]["car"]["arrived"] > 0
        assert not rec["health"]["gridlock"]
    typed = ET.parse(tmp_path / "sumo-delay-based" / TYPED_PROGRAMS_FILENAME).getroot()
    assert {t.get("type") for t in typed.iter("tlLogic")} == {"delay_based"}
    # The bundled programs are SUMO's actuated type already: sumo-actuated runs the same control.
    assert records["sumo-actuated"]["vehicle_loss_hours"] == pytest.approx(records["sumo-native"]["vehicle_loss_hours"])
    # Delay-based control is a different controller: its result differs.
    assert records["sumo-delay-based"]["vehicle_loss_hours"] != pytest.approx(
        records["sumo-native"]["vehicle_loss_hours"])
    # SUMO accepted the programs (a bad phase definition would be an error in its log).
    log = (tmp_path / "sumo-delay-based" / "sumo_errors.log").read_text(errors="replace")
    assert "Error" not in log
