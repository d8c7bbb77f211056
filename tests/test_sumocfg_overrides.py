"""A .sumocfg written for another tool (TraCI controller, sumo-gui) runs, with a note per option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ivri.sumo_networks import get_scenario

from ivri.errors import NetworkError
from ivri.sumo.sumocfg import driving_overrides, read_sumocfg


def crossing_sumocfg(tmp_path: Path, extra: str, end_s: int = 60) -> Path:
    """A .sumocfg of the bundled crossing with ``extra`` options, ending at ``end_s``."""
    folder = get_scenario("crossing:short").sumocfg.parent
    cfg = tmp_path / "city.sumocfg"
    cfg.write_text(f"""<configuration>
  <input><net-file value="{folder / 'crossing.net.xml'}"/>
         <route-files value="{folder / 'crossing.peak.rou.xml'}"/>
         <additional-files value="{folder / 'crossing.add.xml'}"/></input>
  <time><begin value="0"/><end value="{end_s}"/></time>
  {extra}
</configuration>
""", encoding="utf-8")
    return cfg


TRACI_TOOL = """<traci_server><remote-port value="8813"/><num-clients value="2"/></traci_server>
  <gui_only><start value="true"/><delay value="200"/><breakpoints value="30"/>
            <gui-settings-file value="missing-view.xml"/></gui_only>
  <random_number><random value="true"/></random_number>"""


def _overrides(cfg: Path, tmp_path: Path, backend: str = "libsumo", gui: bool = False,
               command_line: dict[str, str] | None = None) -> dict[str, tuple[tuple[str, ...], str]]:
    found = driving_overrides(read_sumocfg(cfg), backend=backend, gui=gui, seeded=True,
                              command_line=command_line or {}, blank_gui_settings=tmp_path / "blank.xml")
    return {o.option: (o.args, o.note) for o in found}


def test_each_conflicting_option_gets_an_override_and_a_note(tmp_path: Path) -> None:
    cfg = crossing_sumocfg(tmp_path, TRACI_TOOL)
    lib = _overrides(cfg, tmp_path)
    assert lib["remote-port"][0] == ("--remote-port", "0")
    assert lib["num-clients"][0] == ("--num-clients", "1")
    assert lib["random"][0] == ("--random", "false")
    assert lib["gui-settings-file"][0] == ("--gui-settings-file", str(tmp_path / "blank.xml"))
    assert (tmp_path / "blank.xml").is_file()
    for option in ("start", "delay", "breakpoints"):
        assert lib[option][0] == () and "no effect without --gui" in lib[option][1]
    for _, note in lib.values():
        assert note.startswith("city.sumocfg: ") and "\n" not in note
    # Over TraCI ivri's own port wins (it is on the command line); sumo-gui would pause at a breakpoint.
    gui = _overrides(cfg, tmp_path, backend="traci", gui=True)
    assert gui["remote-port"][0] == () and "replaced" in gui["remote-port"][1]
    assert gui["num-clients"][0] == ("--num-clients", "1")
    assert gui["breakpoints"][0] == ("--breakpoints", "")
    assert gui["gui-settings-file"][0] == ()


def test_a_config_without_conflicts_gets_no_note(tmp_path: Path) -> None:
    assert _overrides(crossing_sumocfg(tmp_path, ""), tmp_path, command_line={"tripinfo-output": "t.xml"}) == {}


def test_outputs_the_metrics_need_are_replaced_with_a_note(tmp_path: Path) -> None:
    cfg = crossing_sumocfg(tmp_path, '<output><tripinfo-output value="mine.xml"/><personinfo-output value="p.xml"/></output>')
    found = _overrides(cfg, tmp_path, command_line={"tripinfo-output": "/run/tripinfo.xml"})
    assert found["personinfo-output"][0] == ("--personinfo-output", "/run/tripinfo.xml")
    assert "mine.xml" in found["tripinfo-output"][1]


def test_step_length_other_than_one_second_is_honoured_with_a_note(tmp_path: Path) -> None:
    cfg = crossing_sumocfg(tmp_path, '<time><step-length value="0.5"/></time>')
    found = _overrides(cfg, tmp_path)
    assert found["step-length"][0] == () and "0.5 s honoured" in found["step-length"][1]


def test_a_config_that_would_only_save_itself_is_refused(tmp_path: Path) -> None:
    cfg = crossing_sumocfg(tmp_path, '<configuration><save-configuration value="copy.sumocfg"/></configuration>')
    with pytest.raises(NetworkError, match="save-configuration"):
        _overrides(cfg, tmp_path)


@pytest.mark.sumo
@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_a_config_for_a_traci_controller_runs_without_waiting(tmp_path: Path, backend: str) -> None:
    cfg = crossing_sumocfg(tmp_path, TRACI_TOOL)
    args = [sys.executable, "-m", "ivri", "run", str(cfg), "-c", "actuated", "--out", str(tmp_path / "out")]
    if backend == "traci":
        args.append("--traci")
    # Before the overrides this waited forever for a TraCI client; a minute is plenty for 60 s.
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    notes = [ln for ln in result.stderr.splitlines() if ln.startswith("note: city.sumocfg:")]
    assert any("remote-port 8813" in n for n in notes)
    assert any("num-clients 2" in n for n in notes)
    assert any("random ignored" in n for n in notes)
    assert "actuated" in result.stdout
