"""Control on real city networks: clustered junctions and merges, every movement served,
short approaches measured upstream, spillback.

The networks are built here with netconvert from plain XML written into ``tmp_path``:

* ``spill``: a main road through two signalised junctions 60 m apart, each with a side road.
  Only the first light is controlled by ivri; the second runs SUMO's own fixed program, so
  its red blocks the first light's exit for the main road every cycle;
* ``cluster``: a dual carriageway crossing a road; the four nodes of the crossing are joined
  into one junction (``--junctions.join``) under one traffic light;
* ``short``: a 3 m approach edge between an unsignalised node and the stop line.

Real-world networks (fetched by ``ivri fetch-realworld``, not in the repository; ``.ci/run``
fetches them) are checked too, in the folder that command fills (``IVRI_REALWORLD_DIR``, else
the user's cache).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from ivri.sumo_networks.realworld import realworld_dir
from test_sumo_network import _check_consistent, _netconvert

from ivri.config import NetworkConfig
from ivri.sumo.detectors import write_detectors
from ivri.sumo.network import derive_intersections, link_foes, read_net, upstream_lanes
from ivri.sumo.sumocfg import read_sumocfg

REPO = Path(__file__).parents[1]
BUNDLED_NETS = sorted((REPO / "sumo_networks").glob("*/*.net.xml"))
REALWORLD_NETS = sorted(realworld_dir().glob("*/*.sumocfg"))


def _write_net(d: Path, name: str, nodes: str, edges: str, *options: str) -> Path:
    (d / f"{name}.nod.xml").write_text(f"<nodes>{nodes}</nodes>")
    (d / f"{name}.edg.xml").write_text(f"<edges>{edges}</edges>")
    out = d / f"{name}.net.xml"
    subprocess.run([_netconvert(), "-n", str(d / f"{name}.nod.xml"), "-e", str(d / f"{name}.edg.xml"),
                    "--no-turnarounds", *options, "-o", str(out)], check=True, capture_output=True)
    return out


def _spill_net(d: Path) -> Path:
    nodes = """
      <node id="W" x="-300" y="0" type="priority"/>
      <node id="J1" x="0" y="0" type="traffic_light"/>
      <node id="J2" x="60" y="0" type="traffic_light"/>
      <node id="E" x="300" y="0" type="priority"/>
      <node id="N" x="0" y="200" type="priority"/>
      <node id="S" x="0" y="-200" type="priority"/>
      <node id="N2" x="60" y="200" type="priority"/>
      <node id="S2" x="60" y="-200" type="priority"/>"""
    edges = "".join(
        f'<edge id="{a}{b}" from="{a}" to="{b}" numLanes="1" speed="13.9"/>'
        for a, b in (("W", "J1"), ("J1", "J2"), ("J2", "E"), ("N", "J1"), ("J1", "S"), ("N2", "J2"),
                     ("J2", "S2"))
    )
    return _write_net(d, "spill", nodes, edges)


@pytest.fixture(scope="module")
def cluster_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A dual carriageway (two one-way roads 12 m apart) crossing a two-way road: four nodes,
    # joined into one junction with one traffic light.
    nodes = """
      <node id="w" x="-300" y="0"/> <node id="e" x="300" y="0"/>
      <node id="nA" x="-6" y="300"/> <node id="sA" x="-6" y="-300"/>
      <node id="nB" x="6" y="300"/> <node id="sB" x="6" y="-300"/>
      <node id="a" x="-6" y="0" type="traffic_light"/> <node id="b" x="6" y="0" type="traffic_light"/>"""
    edges = """
      <edge id="wa" from="w" to="a" numLanes="2" speed="13.9"/>
      <edge id="ab" from="a" to="b" numLanes="2" speed="13.9"/>
      <edge id="be" from="b" to="e" numLanes="2" speed="13.9"/>
      <edge id="eb" from="e" to="b" numLanes="2" speed="13.9"/>
      <edge id="ba" from="b" to="a" numLanes="2" speed="13.9"/>
      <edge id="aw" from="a" to="w" numLanes="2" speed="13.9"/>
      <edge id="nAa" from="nA" to="a" numLanes="2" speed="13.9"/>
      <edge id="asA" from="a" to="sA" numLanes="2" speed="13.9"/>
      <edge id="sBb" from="sB" to="b" numLanes="2" speed="13.9"/>
      <edge id="bnB" from="b" to="nB" numLanes="2" speed="13.9"/>"""
    return _write_net(tmp_path_factory.mktemp("cluster"), "cluster", nodes, edges,
                      "--junctions.join", "--junctions.join-dist", "20", "--tls.join")


def _served_problems(net_file: Path) -> list[str]:
    """Links of a tls that change state in its program but belong to no stage of the plan."""
    net = read_net(net_file)
    configs, maps = derive_intersections(net)
    problems = []
    programs = {t.getID(): next(iter(t.getPrograms().values())) for t in net.getTrafficLights()
                if t.getPrograms()}
    # Link indices that some connection uses (a program may keep states for removed ones).
    used = {t.getID(): {c[2] for c in t.getConnections()} for t in net.getTrafficLights()}
    for x, lm in zip(configs, maps, strict=True):
        _check_consistent(x)
        in_stage = {g for stage in x.stages for g in stage}
        states = [p.state for p in programs[lm.tls_id].getPhases()]
        for k in range(lm.n_links):
            gi = int(lm.group_of_link[k])
            if gi < 0:
                if k in used[lm.tls_id] and len({s[k] in "Gg" for s in states}) > 1:
                    problems.append(f"{lm.tls_id}: link {k} switches but has no signal group")
            elif lm.group_ids[gi] not in in_stage:
                problems.append(f"{lm.tls_id}: link {k} ({lm.group_ids[gi]}) is in no stage")
    return problems


# --- every movement served ------------------------------------------------------------------


@pytest.mark.parametrize("net_file", BUNDLED_NETS, ids=lambda p: p.stem)
def test_every_link_is_served_on_bundled_networks(net_file: Path):
    assert _served_problems(net_file) == []


def test_every_link_is_served_on_a_clustered_junction(cluster_net: Path):
    assert _served_problems(cluster_net) == []


@pytest.mark.skipif(not REALWORLD_NETS, reason="no real-world networks fetched (ivri fetch-realworld)")
@pytest.mark.parametrize("cfg", REALWORLD_NETS, ids=lambda p: p.stem)
def test_every_link_is_served_on_real_world_networks(cfg: Path):
    assert _served_problems(read_sumocfg(cfg).net_file) == []


# --- clustered junctions and merges -----------------------------------------------------------


def test_clustered_junction_is_one_intersection_with_consistent_groups(cluster_net: Path):
    net = read_net(cluster_net)
    configs, maps = derive_intersections(net)
    assert len(configs) == 1, "the joined junction must be one traffic light"
    x, lm = configs[0], maps[0]
    assert x.id.startswith("cluster") or len(lm.junctions) > 1
    # Every pair of foe links in compatible groups: one of them gives way ('g'), so SUMO never
    # shows two foe links priority green together.
    foes = link_foes(net, lm.tls_id)
    index = {g: i for i, g in enumerate(lm.group_ids)}
    conflict = np.zeros((lm.n_groups, lm.n_groups), dtype=bool)
    for c in x.conflicts:
        a, b = index[c.between[0]], index[c.between[1]]
        conflict[a, b] = conflict[b, a] = True
    for a, b in zip(*np.nonzero(np.triu(foes, 1)), strict=True):
        ga, gb = lm.group_of_link[a], lm.group_of_link[b]
        if ga < 0 or gb < 0 or ga == gb or conflict[ga, gb]:
            continue
        assert gb in lm.yield_to[a] or ga in lm.yield_to[b], (a, b)
    # Opposite approaches of the joined crossing run together, crossing ones conflict.
    groups = {g.id.split("_")[0]: g.id for g in x.signal_groups}
    assert set(groups) == {"wa", "eb", "nAa", "sBb"}
    pairs = {frozenset(c.between) for c in x.conflicts}
    assert frozenset((groups["wa"], groups["nAa"])) in pairs
    assert frozenset((groups["wa"], groups["eb"])) not in pairs
    assert {frozenset(s) for s in x.stages} == {frozenset((groups["wa"], groups["eb"])),
                                                frozenset((groups["nAa"], groups["sBb"]))}


def test_merging_links_yield_when_program_runs_them_green_together(cluster_net: Path):
    net = read_net(cluster_net)
    _, maps = derive_intersections(net)
    lm = maps[0]
    for a, b in lm.merges:
        assert lm.group_of_link[b] in lm.yield_to[a]


# --- short approaches ---------------------------------------------------------------------------


def test_short_approach_is_measured_upstream_through_the_unsignalised_node(tmp_path: Path, caplog):
    nodes = """
      <node id="w" x="-300" y="0" type="priority"/> <node id="m" x="-3" y="0" type="priority"/>
      <node id="c" x="0" y="0" type="traffic_light"/> <node id="e" x="300" y="0"/>
      <node id="n" x="0" y="300"/> <node id="s" x="0" y="-300"/> <node id="q" x="-3" y="-300"/>"""
    edges = """
      <edge id="wm" from="w" to="m" numLanes="1" speed="13.9"/>
      <edge id="qm" from="q" to="m" numLanes="1" speed="13.9"/>
      <edge id="mc" from="m" to="c" numLanes="1" speed="13.9"/>
      <edge id="ce" from="c" to="e" numLanes="1" speed="13.9"/>
      <edge id="nc" from="n" to="c" numLanes="1" speed="13.9"/>
      <edge id="cs" from="c" to="s" numLanes="1" speed="13.9"/>"""
    net_file = _write_net(tmp_path, "short", nodes, edges)
    net = read_net(net_file)
    _, maps = derive_intersections(net)
    lm = maps[0]
    g = next(k for k in range(lm.n_groups) if lm.in_lanes[k] and lm.in_lanes[k][0].startswith("mc_"))
    approach = lm.approach_lanes(g)
    assert "wm_0" in approach and any(x.startswith(":m_") for x in approach)
    assert dict(upstream_lanes(net, ["mc_0"]))["wm_0"] > 0.0
    with caplog.at_level("WARNING", logger="ivri.sumo"):
        dets = write_detectors(maps, net, tmp_path / "det.add.xml")
    assert "mc_0" in caplog.text  # the stop-line lane shorter than a car is named
    caplog.clear()
    with caplog.at_level("WARNING", logger="ivri.sumo"):
        write_detectors(maps, net, tmp_path / "again.add.xml")
    assert "mc_0" not in caplog.text  # once per process, not once per run of a sweep
    ext = [d for d in dets if d.kind == "extension" and d.lane == "wm_0"]
    assert len(ext) == 1 and (0, g) in ext[0].targets
    # 40 m before the stop line: the loop sits on wm at (length - (40 - offset)).
    wm_len = net.getEdge("wm").getLanes()[0].getLength()
    offset = dict(upstream_lanes(net, ["mc_0"]))["wm_0"]
    assert ext[0].pos_m == pytest.approx(wm_len - (40.0 - offset), abs=0.01)


# --- spillback ----------------------------------------------------------------------------------


@pytest.mark.sumo
def test_actuated_gives_no_green_into_an_exit_blocked_by_a_downstream_red(tmp_path: Path):
    from ivri.runner import RunSpec, run_controller

    net_file = _spill_net(tmp_path)
    (tmp_path / "spill.rou.xml").write_text(
        '<routes><vType id="car" length="5" minGap="2.5"/>'
        '<flow id="main" type="car" from="WJ1" to="J2E" begin="0" end="600" vehsPerHour="700" departSpeed="max"/>'
        '<flow id="side" type="car" from="NJ1" to="J1S" begin="0" end="600" vehsPerHour="360" departSpeed="max"/>'
        '<flow id="side2" type="car" from="N2J2" to="J2S2" begin="0" end="600" vehsPerHour="300" departSpeed="max"/>'
        "</routes>"
    )
    cfg = tmp_path / "spill.sumocfg"
    cfg.write_text('<configuration><input><net-file value="spill.net.xml"/><route-files value="spill.rou.xml"/>'
                   '</input><time><begin value="0"/><end value="600"/></time></configuration>')
    # ivri controls J1 only; J2 runs SUMO's own fixed program (45 s red for the main road).
    configs, _ = derive_intersections(net_file, tls_ids=["J1"])
    j1 = tmp_path / "j1.yaml"
    j1.write_text(yaml.safe_dump(NetworkConfig(intersections=tuple(configs)).model_dump(mode="json")))
    blocked_s = {}
    for aware in (False, True):
        rec = run_controller(RunSpec(scenario=str(cfg), controller="actuated", seed=1, out_dir=tmp_path / str(aware),
                                     intersections=j1, controller_params={"exit_aware": aware}))
        blocked_s[aware] = rec["by_intersection"]["J1"]["green_while_exit_blocked_s"]
    assert blocked_s[False] >= 60.0, "the test network must block the exit under plain actuated control"
    assert blocked_s[True] <= 10.0
