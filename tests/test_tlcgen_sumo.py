"""A TLCGen controller on a SUMO network: the mapping proposal, the foes check, a run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivri.config import load_network_config
from ivri.errors import ConfigError
from ivri.runner import RunSpec, resolve_scenario, run_controller
from ivri.sumo.sumocfg import read_sumocfg
from ivri.tlcgen import TlcMap, check_against_network, convert, load_tlc_map, propose_map, read_tlc

EXAMPLES = Path(__file__).parents[1] / "docs" / "examples" / "tlcgen"
TLC = EXAMPLES / "crossing.tlc"
MAP = EXAMPLES / "crossing.map.yaml"


@pytest.fixture(scope="module")
def net_file() -> Path:
    return Path(read_sumocfg(resolve_scenario("crossing")[1]).net_file)


def test_the_proposal_on_the_bundled_crossing_is_the_reviewed_mapping(net_file: Path) -> None:
    proposed, notes = propose_map(read_tlc(TLC), net_file)
    reviewed = load_tlc_map(MAP)
    assert proposed.tls_id == "C"
    assert proposed.groups == reviewed.groups
    assert proposed.detectors == reviewed.detectors
    # North arm first (01-03): 02 is straight and right on the shared lane, 03 the left turn.
    assert proposed.groups["fc02"].links == (0, 1)
    assert proposed.groups["fc03"].links == (2,)
    assert proposed.groups["fc22"].links == (21, 22) and proposed.groups["fc21"].links == (23,)
    assert proposed.groups["fc31"].links == (24,)  # the crossing over the north arm
    assert proposed.detectors["02_2"].lane == "N_C_0" and proposed.detectors["02_2"].distance_m == 40.0
    assert not any("no SUMO link" in n or "in no signal group" in n for n in notes)


def test_the_committed_config_is_what_the_import_gives(net_file: Path) -> None:
    mapping = load_tlc_map(MAP)
    imp = convert(read_tlc(TLC), mapping)
    notes = check_against_network(imp, mapping, net_file)
    assert load_network_config(EXAMPLES / "crossing.intersection.yaml").intersections[0] == imp.config
    # Permissive turns are the file's green-green conflicts (GK), and reported as such.
    assert any(n.startswith("fc02/fc09: SUMO foes, run together as the file's green-green conflict") for n in notes)


def _without_conflict(text: str, a: str, b: str) -> str:
    for x, y in ((a, b), (b, a)):
        text, n = re.subn(rf"<Conflict>\s*<FaseVan>{x}</FaseVan>\s*<FaseNaar>{y}</FaseNaar>.*?</Conflict>",
                          "", text, count=1, flags=re.DOTALL)
        assert n == 1
    return text


def test_a_conflict_missing_against_sumo_foes_is_refused(tmp_path: Path, net_file: Path) -> None:
    path = tmp_path / "missing.tlc"
    path.write_text(_without_conflict(TLC.read_text(), "02", "05"))
    mapping = load_tlc_map(MAP)
    imp = convert(read_tlc(path), mapping)
    with pytest.raises(ConfigError, match=r"lets SUMO foes be green together: fc02 and fc05 .*allow_conflicts"):
        check_against_network(imp, mapping, net_file)
    # Confirming it does not make two crossing straight streams safe: the run's own check refuses.
    confirmed = TlcMap(**{**mapping.model_dump(), "allow_conflicts": (("fc02", "fc05"),)})
    with pytest.raises(ConfigError, match=r"'fc02' and 'fc05' are not in conflict.*declare the conflict"):
        check_against_network(imp, confirmed, net_file)


def test_a_conflict_sumo_considers_harmless_is_reported(tmp_path: Path, net_file: Path) -> None:
    """02 (north, straight and right) and 06 (east, left) run in different modules and their
    paths never meet: a conflict between them is stricter than the geometry, reported, kept."""
    extra = "".join(f"""
      <Conflict>
        <FaseVan>{x}</FaseVan>
        <FaseNaar>{y}</FaseNaar>
        <Waarde>10</Waarde>
      </Conflict>""" for x, y in (("02", "06"), ("06", "02")))
    path = tmp_path / "strict.tlc"
    path.write_text(TLC.read_text().replace("<Conflicten>", "<Conflicten>" + extra, 1))
    mapping = load_tlc_map(MAP)
    imp = convert(read_tlc(path), mapping)
    notes = check_against_network(imp, mapping, net_file)
    assert "conflict fc02/fc06: SUMO's junction considers their links harmless (no foes); the conflict is kept" in notes
    assert any(set(c.between) == {"fc02", "fc06"} for c in imp.config.conflicts)


def test_the_imported_controller_runs(tmp_path: Path) -> None:
    record = run_controller(RunSpec(scenario="crossing:short", controller="actuated", seed=1, out_dir=tmp_path,
                                    intersections=EXAMPLES / "crossing.intersection.yaml", end_s=120.0))
    assert record["motor_trips"] > 0
    assert record["by_intersection"]["C"]["tls_writes"] > 0  # ivri's core drove the light
