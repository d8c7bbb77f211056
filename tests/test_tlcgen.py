"""Importing TLCGen controller files: what is converted, in which units, and what is reported."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from ivri.controllers import BusPriority, GreenFlow, Role, V2XObservation
from typer.testing import CliRunner

from ivri.cli import app
from ivri.config import NetworkConfig, load_network_config, write_data_file
from ivri.core.compile import compile_network
from ivri.errors import ConfigError
from ivri.tlcgen import convert, read_tlc

DATA = Path(__file__).parent / "data" / "tlcgen"


def _imported(name: str, **kw):
    return convert(read_tlc(DATA / name), **kw)


def _ig(config, a: str, b: str) -> float:
    """Intergreen from the end of green of ``a`` to the start of green of ``b``."""
    for c in config.conflicts:
        if c.between == (a, b):
            return c.intergreen_s[0]
        if c.between == (b, a):
            return c.intergreen_s[1]
    raise AssertionError(f"no conflict {a}/{b}")


# --- the four-arm intersection ---------------------------------------------------------------


def test_four_arm_round_trip_through_a_config_file(tmp_path: Path) -> None:
    imp = _imported("four_arm.tlc")
    x = imp.config
    out = tmp_path / "x.yaml"
    write_data_file(out, NetworkConfig(intersections=(x,)).model_dump(mode="json"), "header line")
    back = load_network_config(out).intersections[0]
    assert back == x
    assert x.group_ids() == ["fc02", "fc05", "fc08", "fc11", "fc22", "fc28", "fc31", "fc32"]
    modes = {g.id: g.mode for g in x.signal_groups}
    assert modes == {"fc02": "motor", "fc05": "motor", "fc08": "motor", "fc11": "motor",
                     "fc22": "bicycle", "fc28": "bicycle", "fc31": "pedestrian", "fc32": "pedestrian"}
    g = {s.id: s for s in x.signal_groups}
    # TGL 30, TFG 60 / TGG 40, TRG 20, max green 400 (MaxGroentijden): tenths of a second.
    assert (g["fc02"].amber_s, g["fc02"].min_green_s, g["fc02"].max_green_s, g["fc02"].min_red_s) == (3.0, 6.0, 40.0, 2.0)
    assert (g["fc31"].amber_s, g["fc31"].min_green_s, g["fc31"].max_green_s) == (0.0, 6.0, 12.0)
    assert len(x.conflicts) == 8
    assert x.stages == (("fc02", "fc08", "fc22", "fc31"), ("fc05", "fc11", "fc28", "fc32"))
    # The stage plan compiles: the core gets the conflicts both ways.
    net = compile_network([x])
    idx = net.group_index[0]
    assert net.timing.conflict[0, idx["fc02"], idx["fc05"]] and net.timing.conflict[0, idx["fc05"], idx["fc02"]]
    assert not net.timing.conflict[0, idx["fc02"], idx["fc08"]]


def test_intergreen_times_are_tenths_from_the_end_of_green() -> None:
    """Data/Intergroen true: Waarde is the intergreen itself, 45 -> 4.5 s, each way its own."""
    x = _imported("four_arm.tlc").config
    assert _ig(x, "fc02", "fc05") == 4.5
    assert _ig(x, "fc05", "fc02") == 5.0
    assert _ig(x, "fc32", "fc02") == 9.0  # a pedestrian (no amber) clearing a crossing


def test_clearance_times_add_the_amber_of_the_leaving_group() -> None:
    """Intergroen false: Waarde is the clearance time after amber (ontruimingstijd):
    intergreen = TGL + Waarde, 3.5 + 2.0 = 5.5 s."""
    x = _imported("module_mill.tlc").config
    assert _ig(x, "fc02", "fc05") == 5.5
    assert _ig(x, "fc05", "fc02") == 6.0
    assert _ig(x, "fc32", "fc05") == 7.0      # pedestrian: no amber
    assert _ig(x, "fc22", "fc05") == 4.0      # cyclist: TGL 30 + 10


def test_guaranteed_clearance_is_a_floor(tmp_path: Path) -> None:
    text = (DATA / "module_mill.tlc").read_text()
    # 02 -> 05: Waarde 20 with GarantieWaarde 15; lower the setting below the guarantee.
    text = text.replace("<FaseNaar>05</FaseNaar>\n        <Waarde>20</Waarde>\n        <GarantieWaarde>15",
                        "<FaseNaar>05</FaseNaar>\n        <Waarde>5</Waarde>\n        <GarantieWaarde>15", 1)
    path = tmp_path / "g.tlc"
    path.write_text(text)
    imp = convert(read_tlc(path))
    assert _ig(imp.config, "fc02", "fc05") == 5.0  # 3.5 amber + 1.5 guaranteed
    assert any("02 -> 05" in w and "guaranteed" in w for w in imp.warnings)


def test_an_intergreen_below_the_amber_is_refused(tmp_path: Path) -> None:
    text = (DATA / "four_arm.tlc").read_text().replace(
        "<FaseNaar>05</FaseNaar>\n        <Waarde>45</Waarde>", "<FaseNaar>05</FaseNaar>\n        <Waarde>20</Waarde>", 1)
    path = tmp_path / "short.tlc"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"intergreen 02 -> 05 is 2 s, shorter than the amber of 02 \(3 s\)"):
        convert(read_tlc(path))


# --- the module mill ---------------------------------------------------------------------------


def test_module_mill_gives_the_stages_and_reports_what_ivri_does_differently() -> None:
    imp = _imported("module_mill.tlc")
    x = imp.config
    assert x.stages == (("fc02", "fc08", "fc22"), ("fc03", "fc09"), ("fc05", "fc11"))
    w = imp.warnings
    assert any(s.startswith("module ML1: 22 may go instead of 02") for s in w)
    assert any(s.startswith("module ML2: 32 may go instead of 03") for s in w)
    assert any(s.startswith("fc03: the file forbids its alternative realisation") for s in w)
    assert any(s.startswith("fc32: in no module") for s in w)
    assert "Nalopen: 1 entry not represented" in w
    assert any(s.startswith("fc09: Meeverlengen Nooit") for s in w)
    assert any("avondspits (MG2)" in s for s in w)
    # FK: a conflict at the amber; GK: allowed together, no conflict.
    assert _ig(x, "fc03", "fc22") == 3.5 and _ig(x, "fc22", "fc03") == 3.0
    assert frozenset(("fc02", "fc32")) in imp.green_conflicts
    assert not any(set(c.between) == {"fc02", "fc32"} for c in x.conflicts)
    # VerlengGroentijden: max green = TFG + the set's extension green, 6 + 30 = 36 s.
    assert {g.id: g.max_green_s for g in x.signal_groups}["fc02"] == 36.0


def test_another_green_time_set_can_be_chosen() -> None:
    x = _imported("module_mill.tlc", green_set="MG2").config
    assert {g.id: g.max_green_s for g in x.signal_groups}["fc02"] == 46.0
    with pytest.raises(ConfigError, match="no green-time set 'MG9'"):
        _imported("module_mill.tlc", green_set="MG9")


def test_a_module_with_conflicting_groups_is_refused(tmp_path: Path) -> None:
    text = (DATA / "four_arm.tlc").read_text().replace(
        "<FaseCyclus>08</FaseCyclus>\n            <Alternatieven>", "<FaseCyclus>05</FaseCyclus>\n            <Alternatieven>", 1)
    path = tmp_path / "m.tlc"
    path.write_text(text)
    with pytest.raises(ConfigError, match="stage 0 holds conflicting groups 'fc02' and 'fc05'"):
        convert(read_tlc(path))


# --- priority ingress --------------------------------------------------------------------------


def test_bus_tram_and_emergency_rules_become_priority_rules() -> None:
    imp = _imported("priority.tlc")
    x = imp.config
    rules = {(p.group, p.kind): p.travel_time_s for p in x.priority}
    assert rules == {("fc41", "bus"): 15.0, ("fc61", "tram"): 25.0, ("fc02", "emergency"): None,
                     ("fc08", "emergency"): None}
    assert {g.id: g.mode for g in x.signal_groups}["fc61"] == "tram"
    w = imp.warnings
    bus_line = next(s for s in w if s.startswith("priority ingress 41bus"))
    assert "GroenBewaking=300" in bus_line and "Inmeldingen=KARMelding" in bus_line
    assert any(s.startswith("priority ingress 22fiets (Fiets): not represented") for s in w)
    assert any(s.startswith("emergency ingress 02: not represented (RijTijdOngehinderd=120") for s in w)


def test_a_priority_rule_on_an_unknown_group_is_refused() -> None:
    x = _imported("priority.tlc").config
    data = x.model_dump()
    data["priority"] = [{"group": "fc99", "kind": "bus", "travel_time_s": 15.0}]
    with pytest.raises(ValueError, match="priority rule names unknown signal group 'fc99'"):
        type(x).model_validate(data)


def test_bus_priority_serves_only_the_groups_with_a_rule_and_their_horizon() -> None:
    net = compile_network([_imported("priority.tlc").config])
    idx = net.group_index[0]
    app_ = BusPriority()
    app_.reset(net)

    def request(group: str, distance_m: float) -> bool:
        v = V2XObservation.from_rows([{"token": 1, "intersection": 0, "group": idx[group], "distance_m": distance_m,
                                       "speed_mps": 10.0, "role": int(Role.BUS), "lateness_s": 120.0,
                                       "app": True}])  # a verified request
        return len(app_.requests(SimpleNamespace(v2x=v), net)) == 1

    assert request("fc41", 140.0)        # 14 s away, rule: 15 s
    assert not request("fc41", 160.0)    # 16 s away
    assert request("fc61", 240.0)        # tram rule: 25 s (beyond the default 20 s)
    assert not request("fc02", 50.0)     # a bus on a group without a bus rule


def test_greenflow_serves_only_the_groups_with_an_emergency_rule() -> None:
    net = compile_network([_imported("priority.tlc").config])
    idx = net.group_index[0]
    app_ = GreenFlow()
    app_.reset(net)

    def request(group: str) -> bool:
        v = V2XObservation.from_rows([{"token": 1, "intersection": 0, "group": idx[group], "distance_m": 200.0,
                                       "speed_mps": 15.0, "role": int(Role.EMERGENCY), "siren": True,
                                       "app": True}])  # a verified request
        return np.any(app_.requests(SimpleNamespace(v2x=v), net).group == idx[group])

    assert request("fc02") and request("fc08")
    assert not request("fc05")


# --- bad files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("</ControllerModel>", ""), r"not well-formed XML"),
    (lambda t: t.replace("ControllerModel", "Controller"), r"root element is <Controller>"),
    (lambda t: t.replace("<TGL>30</TGL>", "", 1), r"FaseCyclus 02: missing element <TGL>"),
    (lambda t: t.replace("<TGG>40</TGG>", "<TGG>vier</TGG>", 1), r"FaseCyclus 02: <TGG> is 'vier'"),
    (lambda t: t.replace("<Type>Auto</Type>", "<Type>Trein</Type>", 1), r"signal group 02 has type 'Trein'"),
    (lambda t: re.sub(r"<Conflict>\s*<FaseVan>05</FaseVan>\s*<FaseNaar>02</FaseNaar>\s*<Waarde>50</Waarde>\s*</Conflict>",
                      "", t, count=1), r"conflict 02 -> 05 has no entry 05 -> 02"),
    (lambda t: t.replace("<FaseNaar>05</FaseNaar>", "<FaseNaar>07</FaseNaar>", 1), r"names unknown signal group 07"),
])
def test_a_broken_file_gets_a_clear_error(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "broken.tlc"
    path.write_text(edit((DATA / "four_arm.tlc").read_text()))
    with pytest.raises(ConfigError, match=message) as err:
        convert(read_tlc(path))
    assert str(path) in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.tlc does not exist"):
        read_tlc(tmp_path / "nope.tlc")


# --- the command -------------------------------------------------------------------------------


def test_import_tlc_writes_a_config_that_run_reads(tmp_path: Path) -> None:
    out = tmp_path / "x.yaml"
    r = CliRunner().invoke(app, ["import-tlc", str(DATA / "module_mill.tlc"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "warning: Nalopen: 1 entry not represented" in r.output
    assert "8 signal groups, 16 conflicts, 3 stages" in r.output
    cfg = load_network_config(out)
    assert cfg.intersections[0].stages[0] == ("fc02", "fc08", "fc22")
    # The warnings travel with the file.
    assert "#   Nalopen: 1 entry not represented" in out.read_text()
    assert yaml.safe_load(out.read_text())["intersections"][0]["id"] == "molen"


def test_import_tlc_with_net_needs_a_map(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["import-tlc", str(DATA / "four_arm.tlc"), "--net", "crossing",
                                 "--out", str(tmp_path / "x.yaml")])
    assert r.exit_code == 2
    assert "--net needs --map" in r.output
