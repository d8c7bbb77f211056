"""ivri.sumo without running SUMO: .sumocfg reading, network derivation, detectors, state strings.

Networks are built here with netconvert from the plain XML in tests/data/sumo/ (a four-arm
junction with sidewalks and crossings, a T-junction with cycle lanes and an actuated
program) and taken from the SUMO distribution itself (the RiLSA example of the German
guidelines, the "square" game grid, an OSM city net with trams and joined junctions).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ivri.config import IntersectionConfig, NetworkConfig
from ivri.core.compile import compile_network
from ivri.core.idx import AMBER, GREEN, RED
from ivri.errors import ConfigError, NetworkError
from ivri.sumo.actuate import Actuator
from ivri.sumo.detectors import detector_ids_in, write_detectors
from ivri.sumo.network import derive_intersections, link_maps_for_configs, read_net
from ivri.sumo.sumocfg import parse_time_s, read_sumocfg

DATA = Path(__file__).parent / "data" / "sumo"

sumolib = pytest.importorskip("sumolib")


def _netconvert() -> str:
    try:
        import sumo

        cand = Path(sumo.SUMO_HOME) / "bin" / "netconvert"
        if cand.is_file():
            return str(cand)
    except ImportError:
        pass
    found = shutil.which("netconvert")
    if not found:
        pytest.skip("netconvert not available")
    return found


def build_net(out_dir: Path, name: str, *options: str) -> Path:
    """netconvert tests/data/sumo/<name>.nod.xml + .edg.xml into out_dir/<name>.net.xml."""
    out = out_dir / f"{name}.net.xml"
    subprocess.run(
        [_netconvert(), "-n", str(DATA / f"{name}.nod.xml"), "-e", str(DATA / f"{name}.edg.xml"),
         "--no-turnarounds", *options, "-o", str(out)],
        check=True, capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def cross4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_net(tmp_path_factory.mktemp("cross4"), "cross4", "--sidewalks.guess", "--crossings.guess")


@pytest.fixture(scope="module")
def tee(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_net(tmp_path_factory.mktemp("tee"), "tee", "--tls.guess", "--tls.default-type", "actuated",
                     "--bikelanes.guess")


def _sumo_tools() -> Path:
    sumo = pytest.importorskip("sumo")
    return Path(sumo.SUMO_HOME) / "tools"


def _conflicts(x: IntersectionConfig) -> dict[frozenset[str], tuple[float, float]]:
    return {frozenset(c.between): c.intergreen_s for c in x.conflicts}


def _ig(x: IntersectionConfig, leaving: str, entering: str) -> float:
    """Intergreen from the end of ``leaving``'s green to the start of ``entering``'s."""
    for c in x.conflicts:
        if c.between == (leaving, entering):
            return c.intergreen_s[0]
        if c.between == (entering, leaving):
            return c.intergreen_s[1]
    raise KeyError((leaving, entering))


def _check_consistent(x: IntersectionConfig) -> None:
    """Everything the core relies on: validation passes, stages free of conflicts, ig >= amber."""
    IntersectionConfig.model_validate(x.model_dump())
    amber = {g.id: g.amber_s for g in x.signal_groups}
    for c in x.conflicts:
        for ending, ig in zip(c.between, c.intergreen_s, strict=True):
            assert ig >= amber[ending]
            assert round(ig * 10) == pytest.approx(ig * 10)  # rounded to 0.1 s
    pairs = set(_conflicts(x))
    for stage in x.stages:
        for a in stage:
            for b in stage:
                assert frozenset((a, b)) not in pairs
    compile_network([x])


# --- .sumocfg ------------------------------------------------------------------------------


def test_read_sumocfg_resolves_paths_lists_and_times(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    for f in ("sub/n.net.xml", "a.rou.xml", "b.rou.xml", "x.add.xml", "y.add.xml"):
        (tmp_path / f).write_text("<x/>")
    cfg = tmp_path / "s.sumocfg"
    cfg.write_text(
        '<configuration><input><net-file value="sub/n.net.xml"/>'
        '<route-files value="a.rou.xml, b.rou.xml"/><additional-files value="x.add.xml y.add.xml"/>'
        '</input><time><begin value="0:01:00"/><end value="3600"/><step-length value="0.5"/></time>'
        '<random_number><seed value="7"/></random_number><tripinfo-output value="t.xml"/></configuration>'
    )
    c = read_sumocfg(cfg)
    assert c.net_file == (tmp_path / "sub" / "n.net.xml").resolve()
    assert [p.name for p in c.route_files] == ["a.rou.xml", "b.rou.xml"]
    assert [p.name for p in c.additional_files] == ["x.add.xml", "y.add.xml"]
    assert (c.begin_s, c.end_s, c.step_length_s, c.seed) == (60.0, 3600.0, 0.5, 7)
    assert c.options["tripinfo-output"] == "t.xml"


def test_read_sumocfg_defaults_and_synonyms(tmp_path: Path):
    (tmp_path / "n.net.xml").write_text("<x/>")
    cfg = tmp_path / "s.sumocfg"
    cfg.write_text('<sumoConfiguration><n value="n.net.xml"/></sumoConfiguration>')
    c = read_sumocfg(cfg)
    assert (c.begin_s, c.end_s, c.step_length_s, c.seed) == (0.0, None, 1.0, None)
    assert c.route_files == () and c.additional_files == ()


@pytest.mark.parametrize(
    ("text", "files", "message"),
    [
        (None, (), "does not exist"),
        ("<configuration><input>", (), "not valid XML"),
        ("<configuration><input/></configuration>", (), "names no network"),
        ('<configuration><net-file value="gone.net.xml"/></configuration>', (), "'gone.net.xml' does not exist"),
        ('<configuration><net-file value="n.net.xml"/><route-files value="r.xml"/></configuration>',
         ("n.net.xml",), "route file 'r.xml' does not exist"),
        ('<configuration><net-file value="n.net.xml"/><end value="soon"/></configuration>',
         ("n.net.xml",), "end 'soon'"),
    ],
)
def test_read_sumocfg_errors_name_file_and_problem(tmp_path: Path, text, files, message):
    for f in files:
        (tmp_path / f).write_text("<x/>")
    cfg = tmp_path / "bad.sumocfg"
    if text is not None:
        cfg.write_text(text)
    with pytest.raises(NetworkError) as exc:
        read_sumocfg(cfg)
    assert "bad.sumocfg" in str(exc.value) and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_parse_time():
    assert parse_time_s("90") == 90.0
    with pytest.raises(ValueError, match="not a SUMO time"):
        parse_time_s("1:30")  # SUMO refuses two fields (see tests/test_timefmt.py)
    assert parse_time_s("1:00:00:00") == 86400.0
    with pytest.raises(ValueError):
        parse_time_s("x")


# --- derivation ------------------------------------------------------------------------------


def test_cross4_groups_conflicts_stages(cross4: Path):
    xs, maps = derive_intersections(cross4)
    assert len(xs) == 1 and xs[0].id == xs[0].tls_id == "C"
    x, lm = xs[0], maps[0]
    ids = x.group_ids()
    motor = [g.id for g in x.signal_groups if g.mode == "motor"]
    peds = [g for g in x.signal_groups if g.mode == "pedestrian"]
    assert sorted(motor) == ["E_C_lsr", "N_C_lsr", "S_C_lsr", "W_C_lsr"]
    assert sorted(g.id for g in peds) == ["ped_C_c0", "ped_C_c1", "ped_C_c2", "ped_C_c3"]
    assert all(g.amber_s == 0.0 and g.lanes[0].startswith(":C_c") for g in peds)
    assert all(g.amber_s == 3.0 for g in x.signal_groups if g.mode == "motor")
    # Every link of the tls belongs to exactly one group, and the groups list them.
    assert sorted(k for g in x.signal_groups for k in g.sumo_links) == list(range(lm.n_links))
    for gi, g in enumerate(x.signal_groups):
        assert all(lm.group_of_link[k] == gi for k in g.sumo_links)
    c = _conflicts(x)
    # Crossing directions conflict; opposing directions run together (permissive left turns).
    assert frozenset(("N_C_lsr", "E_C_lsr")) in c
    assert frozenset(("W_C_lsr", "S_C_lsr")) in c
    assert frozenset(("N_C_lsr", "S_C_lsr")) not in c
    assert frozenset(("E_C_lsr", "W_C_lsr")) not in c
    # The crossing over the north arm conflicts with the north approach; pedestrians clear
    # slower than cars, so the intergreen after the crossing is the longer one.
    assert _ig(x, "ped_C_c0", "N_C_lsr") > 8.0 > _ig(x, "N_C_lsr", "ped_C_c0") >= 3.0
    _check_consistent(x)
    assert len(x.stages) == 2
    assert {"N_C_lsr", "S_C_lsr"} <= set(x.stages[0]) or {"N_C_lsr", "S_C_lsr"} <= set(x.stages[1])
    covered = {g for s in x.stages for g in s}
    assert covered == set(ids)


def test_cross4_partial_conflicts_yield(cross4: Path):
    """The left turn from N gives way to S's through traffic: its link shows 'g' while S is green."""
    xs, maps = derive_intersections(cross4)
    x, lm = xs[0], maps[0]
    idx = {g: i for i, g in enumerate(x.group_ids())}
    net = sumolib.net.readNet(str(cross4), withInternal=True, withPedestrianConnections=True)
    left = list(net.getEdge("N_C").getOutgoing()[net.getEdge("C_E")])
    assert left and left[0].getDirection() == "l"
    k = left[0].getTLLinkIndex()
    assert idx["S_C_lsr"] in lm.yield_to[k]
    # The through links of N never give way to anything.
    through = net.getEdge("N_C").getOutgoing()[net.getEdge("C_S")]
    assert all(lm.yield_to[c.getTLLinkIndex()] == () for c in through)


def test_tee_bicycles_fixed_links_and_actuated_max_green(tee: Path):
    xs, maps = derive_intersections(tee)
    x, lm = xs[0], maps[0]
    modes = {g.id: g.mode for g in x.signal_groups}
    assert sorted(g for g, m in modes.items() if m == "bicycle") == ["E_T_ls_bike", "S_T_lr_bike", "W_T_s_bike"]
    assert "pedestrian" not in modes.values()
    # The cycle lane's right turn W -> S is green in every phase: no group, it stays green.
    free = [k for k in range(lm.n_links) if lm.group_of_link[k] < 0]
    assert len(free) == 1 and lm.fixed_state[free[0]] == "G"
    # Actuated program: maximum green from its maxDur (50 s) rather than the default.
    assert all(g.max_green_s == 50.0 for g in x.signal_groups)
    c = _conflicts(x)
    assert frozenset(("E_T_ls", "S_T_lr")) in c
    assert frozenset(("W_T_s", "S_T_lr")) in c
    assert frozenset(("W_T_s", "E_T_ls")) not in c
    assert frozenset(("W_T_r", "S_T_lr")) not in c
    _check_consistent(x)
    # W's right turn runs in both stages.
    assert all("W_T_r" in s for s in x.stages)


def test_group_green_only_in_transitions_gets_a_stage(tmp_path: Path):
    net = build_net(tmp_path, "cross4", "--sidewalks.guess", "--crossings.guess",
                    "--tllogic-files", str(DATA / "cross4_transition.tll.xml"))
    xs, _ = derive_intersections(net)
    x = xs[0]
    _check_consistent(x)
    in_stage = {g for s in x.stages for g in s}
    assert in_stage == set(x.group_ids())
    main = [s for s in x.stages if "N_C_lsr" in s or "E_C_lsr" in s]
    assert len(main) == 2  # the two main phases...
    extra = [s for s in x.stages if s not in main]
    assert {"ped_C_c0", "ped_C_c2"} <= {g for s in extra for g in s}  # ...and stages for the rest


def test_networks_from_the_sumo_distribution():
    tools = _sumo_tools()
    rilsa = tools / "sumolib/scenario/scenarios/RiLSA1/rilsa1.net.xml"
    square = tools / "game/square/square.net.xml"
    osm = tools / "game/A10KW/osm.net.xml"
    if not rilsa.is_file() or not square.is_file():
        pytest.skip("SUMO's example networks are not in this installation")
    xs, _ = derive_intersections(rilsa)
    assert len(xs) == 1
    assert sum(g.mode == "pedestrian" for g in xs[0].signal_groups) == 4
    xs, maps = derive_intersections(square)
    assert len(xs) == 12 and len(maps) == 12
    for x in xs:
        _check_consistent(x)
    if osm.is_file():  # an OSM net with joined junctions
        xs, _ = derive_intersections(osm)
        for x in xs:
            _check_consistent(x)
        compile_network(xs)


def test_derive_errors(tmp_path: Path):
    with pytest.raises(NetworkError, match="does not exist"):
        derive_intersections(tmp_path / "nope.net.xml")
    bad = tmp_path / "bad.net.xml"
    bad.write_text("<net><edge id='a'")
    with pytest.raises(NetworkError, match="bad.net.xml"):
        derive_intersections(bad)
    plain = build_net(tmp_path, "tee", "--bikelanes.guess")  # no traffic light
    with pytest.raises(NetworkError, match="has no traffic lights"):
        derive_intersections(plain)


def test_user_config_link_maps(cross4: Path):
    xs, maps = derive_intersections(cross4)
    cfg = NetworkConfig(intersections=tuple(xs))
    again = link_maps_for_configs(cfg, cross4)
    assert again[0].fixed_state == maps[0].fixed_state
    assert np.array_equal(again[0].group_of_link, maps[0].group_of_link)
    assert again[0].yield_to == maps[0].yield_to
    wrong = xs[0].model_copy(update={"id": "X1", "tls_id": "nowhere"})
    with pytest.raises(ConfigError, match="'nowhere'"):
        link_maps_for_configs([wrong], cross4)
    # Dropping a conflict between two straight streams is refused, not driven.
    c = xs[0].conflicts
    drop = next(cc for cc in c if set(cc.between) == {"N_C_lsr", "E_C_lsr"})
    unsafe = IntersectionConfig(id="C", tls_id="C", signal_groups=xs[0].signal_groups,
                                conflicts=tuple(cc for cc in c if cc is not drop))
    with pytest.raises(ConfigError, match="declare the conflict") as exc:
        link_maps_for_configs([unsafe], cross4)
    assert "'N_C_lsr'" in str(exc.value) and "'E_C_lsr'" in str(exc.value)


# --- detectors ------------------------------------------------------------------------------


def test_write_detectors(cross4: Path, tmp_path: Path):
    xs, maps = derive_intersections(cross4)
    path = tmp_path / "det.add.xml"
    dets = write_detectors(maps, cross4, path, taken_ids={"ivri_sl_W_C_1"})
    lanes = {lane for g in xs[0].signal_groups if g.mode != "pedestrian" for lane in g.lanes}
    assert {d.lane for d in dets if d.kind != "exit"} == lanes
    # One exit loop per exit lane (the straight links' outgoing lanes), 7 m past its start.
    exits = {lane for lm in maps for lanes_g in lm.exit_lanes for lane in lanes_g}
    exit_dets = [d for d in dets if d.kind == "exit"]
    assert {d.lane for d in exit_dets} == exits and len(exit_dets) == len(exits)
    assert all(d.pos_m == pytest.approx(7.0) for d in exit_dets)
    by_kind = {k: [d for d in dets if d.kind == k] for k in ("stopline", "extension")}
    assert all(len(v) == len(lanes) for v in by_kind.values())
    net = read_net(cross4)
    for d in by_kind["stopline"]:
        assert d.pos_m == pytest.approx(net.getLane(d.lane).getLength() - 1.5, abs=0.01)
    for d in by_kind["extension"]:
        assert d.pos_m == pytest.approx(net.getLane(d.lane).getLength() - 40.0, abs=0.01)
    ids = [d.id for d in dets]
    assert len(set(ids)) == len(ids) and all(i.startswith("ivri_") for i in ids)
    assert "ivri_sl_W_C_1" not in ids and "ivri_sl_W_C_1_2" in ids  # clash avoided
    assert set(ids) == detector_ids_in([path])
    text = path.read_text()
    assert 'file="NUL"' in text and "inductionLoop" in text and "laneAreaDetector" not in text
    # Without stop-line loops: one loop per lane, the extension loop.
    ext_only = [d for d in write_detectors(maps, cross4, tmp_path / "ext.add.xml", stopline=False)
                if d.kind != "exit"]
    assert [(d.lane, d.pos_m, d.targets) for d in ext_only] == [
        (d.lane, d.pos_m, d.targets) for d in by_kind["extension"]]
    assert {d.kind for d in ext_only} == {"extension"}
    assert detector_ids_in([tmp_path / "ext.add.xml"]) >= {d.id for d in ext_only}


# --- state strings ---------------------------------------------------------------------------


class _FakeTrafficLight:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def setRedYellowGreenState(self, tls: str, state: str) -> None:
        self.calls.append((tls, state))


class _FakeConn:
    def __init__(self) -> None:
        self.trafficlight = _FakeTrafficLight()


def test_actuator_strings_yield_and_amber(cross4: Path):
    xs, maps = derive_intersections(cross4)
    net = compile_network(xs)
    act = Actuator(None, net, maps)
    lm = maps[0]
    idx = net.group_index[0]
    state = net.full(RED, np.int8)
    assert act.state_strings(state)[0] == lm.fixed_state == "r" * lm.n_links
    state[0, idx["N_C_lsr"]] = GREEN
    s = act.state_strings(state)[0]
    links = xs[0].signal_groups[idx["N_C_lsr"]].sumo_links
    assert all(s[k] == "G" for k in links)
    state[0, idx["S_C_lsr"]] = GREEN  # opposing traffic: N's left turn now gives way
    s = act.state_strings(state)[0]
    assert sorted({s[k] for k in links}) == ["G", "g"]
    state[0, idx["S_C_lsr"]] = AMBER  # S may still be in the junction: N keeps giving way
    assert sorted({act.state_strings(state)[0][k] for k in links}) == ["G", "g"]
    state[0, idx["S_C_lsr"]] = RED
    assert {act.state_strings(state)[0][k] for k in links} == {"G"}
    state[0, idx["N_C_lsr"]] = AMBER
    state[0, idx["ped_C_c1"]] = AMBER  # pedestrians have no amber in SUMO: red
    s = act.state_strings(state)[0]
    assert all(s[k] == "y" for k in links)
    assert s[xs[0].signal_groups[idx["ped_C_c1"]].sumo_links[0]] == "r"


def test_actuator_writes_only_on_change(cross4: Path):
    xs, maps = derive_intersections(cross4)
    net = compile_network(xs)
    conn = _FakeConn()
    act = Actuator(conn, net, maps)
    state = net.full(RED, np.int8)
    everything = np.ones(1, dtype=bool)
    assert act.write(state) == 1
    for _ in range(5):
        assert act.write(state, everything) == 0  # nothing differs
    state[0, 0] = GREEN
    assert act.write(state, np.zeros(1, dtype=bool)) == 0  # not reported as changed: not looked at
    assert act.write(state, everything) == 1
    assert act.writes == 2 and len(conn.trafficlight.calls) == 2
    assert conn.trafficlight.calls[-1] == ("C", act.last[0])


def test_importing_the_bridge_does_not_load_sumo():
    code = (
        "import sys, ivri.sumo\n"
        "from ivri.sumo import bridge, network, observe, actuate, detectors, connection, sumocfg\n"
        "assert not {'libsumo', 'traci', 'sumolib'} & set(sys.modules), sys.modules.keys()\n"
        "import ivri.sumo as s\n"
        "assert all(getattr(s, n) is not None for n in s.__all__)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_observer_traci_ids_equal_sumos_own_table():
    # observe.py keeps its few TraCI ids by hand so that importing the bridge loads no SUMO
    # package (test above); this keeps them equal to SUMO's own table.
    import traci.constants as tc

    from ivri.sumo import observe

    names = [n for n in vars(observe) if n.isupper() and hasattr(tc, n)]
    assert {"LAST_STEP_VEHICLE_HALTING_NUMBER", "VAR_ANGLE", "CMD_GET_PERSON_VARIABLE"} <= set(names)
    assert {n: getattr(observe, n) for n in names} == {n: getattr(tc, n) for n in names}
