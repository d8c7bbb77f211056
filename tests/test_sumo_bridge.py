"""The SUMO bridge with SUMO running: closed loop, both backends, observation, actuation, errors.

Every test closes its simulation; an autouse fixture checks that no libsumo simulation is
left open (libsumo allows one per process).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from test_sumo_network import build_net

from ivri.config import NetworkConfig
from ivri.core.compile import CompiledNetwork
from ivri.core.idx import AMBER, GREEN, RED
from ivri.errors import ConfigError, SimulationError
from ivri.sumo.bridge import SumoBridge
from ivri.sumo.connection import libsumo_running, start_sumo
from ivri.sumo.network import derive_intersections, link_foes, read_net
from ivri.sumo.observe import STOPLINE_GAP_LAG_S

pytest.importorskip("libsumo")
pytest.importorskip("traci")

pytestmark = pytest.mark.sumo

BACKENDS = ["libsumo", "traci"]


@pytest.fixture(autouse=True)
def _no_leaked_simulation():
    assert not libsumo_running()
    yield
    assert not libsumo_running(), "a test left a libsumo simulation open"


@pytest.fixture(scope="module")
def cross4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_net(tmp_path_factory.mktemp("cross4"), "cross4", "--sidewalks.guess", "--crossings.guess")


def write_cfg(folder: Path, net: Path, routes: str | None, *, begin: float = 0, end: float = 300,
              step: float = 1.0, name: str = "run") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = f'<net-file value="{net}"/>'
    if routes is not None:
        (folder / f"{name}.rou.xml").write_text(f"<routes>\n{routes}\n</routes>\n")
        files += f'<route-files value="{name}.rou.xml"/>'
    cfg = folder / f"{name}.sumocfg"
    cfg.write_text(
        f"<configuration><input>{files}</input><time><begin value='{begin}'/><end value='{end}'/>"
        f"<step-length value='{step}'/></time><processing><time-to-teleport value='-1'/></processing>"
        "</configuration>"
    )
    return cfg


CROSS4_DEMAND = "\n".join(
    f'<flow id="{a}{b}" begin="0" end="280" period="exp({rate})" from="{a}_C" to="C_{b}" departLane="best"/>'
    for a, b, rate in [("W", "E", 0.12), ("E", "W", 0.12), ("N", "S", 0.08), ("S", "N", 0.08),
                       ("W", "N", 0.03), ("S", "W", 0.03), ("E", "S", 0.03), ("N", "E", 0.03)]
) + '\n<personFlow id="p" begin="0" end="250" period="25"><walk from="W_C" to="C_E"/></personFlow>'


def conflict_checker(net: CompiledNetwork, bridge: SumoBridge):
    """A function that reads every tls state back from SUMO and asserts that no two
    conflicting groups show green and no two foe links both show 'G'."""
    pairs = []
    foes = []
    sumo_net = read_net(bridge.cfg.net_file)
    for x, lm in zip(net.config.intersections, bridge.link_maps, strict=True):
        links = {g.id: g.sumo_links for g in x.signal_groups}
        pairs.append([(links[c.between[0]], links[c.between[1]]) for c in x.conflicts])
        foes.append(np.argwhere(np.triu(link_foes(sumo_net, lm.tls_id))))

    def check() -> int:
        seen_green = 0
        for i, lm in enumerate(bridge.link_maps):
            s = bridge.conn.trafficlight.getRedYellowGreenState(lm.tls_id)
            assert s == bridge.actuator.last[i], "SUMO does not hold the state ivri wrote"
            for a_links, b_links in pairs[i]:
                a_green = any(s[k] in "Gg" for k in a_links)
                b_green = any(s[k] in "Gg" for k in b_links)
                assert not (a_green and b_green), f"conflicting greens at t={bridge.t_s}: {s}"
            for a, b in foes[i]:
                assert not (s[a] == "G" and s[b] == "G"), f"foe links {a}, {b} both 'G': {s}"
            seen_green += s.count("G") + s.count("g")
        return seen_green

    return check


def run_stage_cycle(bridge: SumoBridge, net: CompiledNetwork, stage_s: float, check=None) -> int:
    """A trivial controller inline: request each stage in turn for ``stage_s``; the real core
    (SignalCore) grants what is safe. Returns the number of steps."""
    from ivri.core.engine import SignalCore

    core = SignalCore(net, bridge.dt_s, start_s=bridge.begin_s)
    rows = np.arange(net.n_intersections)
    steps = 0
    t = bridge.begin_s
    while t < bridge.end_s - 1e-9:
        t = bridge.step()
        obs = bridge.observe()
        stage = int((t - bridge.begin_s) // stage_s) % net.n_stages  # per intersection
        request = net.stages[rows, stage]
        changed = core.advance(request, obs.demand)
        bridge.actuate(core.signals, changed)
        if check is not None:
            check()
        steps += 1
    return steps


@pytest.mark.parametrize("backend", BACKENDS)
def test_closed_loop_300s_without_conflicting_greens(cross4: Path, tmp_path: Path, backend: str):
    cfg = write_cfg(tmp_path / "s", cross4, CROSS4_DEMAND, end=300)
    with SumoBridge(cfg, backend=backend, seed=3, out_dir=tmp_path / "out") as bridge:
        net = bridge.start()
        assert net is not None and net.intersection_ids == ("C",)
        assert (bridge.begin_s, bridge.end_s, bridge.dt_s) == (0.0, 300.0, 1.0)
        check = conflict_checker(net, bridge)
        greens = []
        steps = run_stage_cycle(bridge, net, 25.0, check=lambda: greens.append(check()))
        assert steps == 300 and bridge.t_s == 300.0
        assert sum(greens) > 0  # the lights did turn green
        stats = bridge.intersection_stats()
        assert stats["C"]["tls_writes"] == bridge.actuator.writes
        assert 5 < bridge.actuator.writes < steps  # written on change only
        assert stats["C"]["halting_veh_h"] > 0.0
        assert bridge.expected_vehicles() >= 0
    assert bridge.conn is None
    bridge.close()  # idempotent


def test_both_backends_give_the_same_run(cross4: Path, tmp_path: Path):
    results = []
    for backend in BACKENDS:
        cfg = write_cfg(tmp_path / backend, cross4, CROSS4_DEMAND, end=120)
        with SumoBridge(cfg, backend=backend, seed=5, out_dir=tmp_path / backend / "out") as bridge:
            net = bridge.start()
            run_stage_cycle(bridge, net, 20.0)
            results.append((bridge.actuator.writes, bridge.observer.queue_veh_s.copy(),
                             bridge.conn.simulation.getDepartedNumber()))
    assert results[0][0] == results[1][0]
    np.testing.assert_allclose(results[0][1], results[1][1])


def test_libsumo_direct_reads_equal_traci_subscriptions(cross4: Path, tmp_path: Path):
    """libsumo reads lanes and loops with direct getters (no subscriptions), TraCI through
    subscriptions: the observation is the same, field by field and tick by tick."""
    from ivri.core.engine import SignalCore

    seen = {}
    for backend in BACKENDS:
        cfg = write_cfg(tmp_path / backend, cross4, CROSS4_DEMAND, end=150)
        with SumoBridge(cfg, backend=backend, seed=6, out_dir=tmp_path / backend / "out") as bridge:
            net = bridge.start()
            assert bridge.observer.direct == (backend == "libsumo")
            subscribed = bridge.conn.lane.getAllSubscriptionResults()
            assert (len(subscribed) == 0) == (backend == "libsumo")
            core = SignalCore(net, bridge.dt_s, start_s=bridge.begin_s)
            rows = np.arange(net.n_intersections)
            ticks = []
            while bridge.t_s < 150:
                t = bridge.step()
                obs = bridge.observe()
                ticks.append(np.concatenate([obs.queue_veh.ravel(), obs.approach_veh.ravel(),
                                             obs.downstream_queue_veh.ravel(), obs.gap_s.ravel(),
                                             obs.demand.ravel(), obs.exit_blocked.ravel()]))
                changed = core.advance(net.stages[rows, int(t // 20) % net.n_stages], obs.demand)
                bridge.actuate(core.signals, changed)
            seen[backend] = (np.array(ticks), bridge.observer.queue_veh_s.copy())
    np.testing.assert_array_equal(seen["libsumo"][0], seen["traci"][0])
    np.testing.assert_array_equal(seen["libsumo"][1], seen["traci"][1])
    n = net.n_intersections * len(net.group_ids[0])
    assert seen["libsumo"][0][:, :n].sum() > 0 and (seen["libsumo"][0][:, 3 * n:4 * n] < 5.0).any()


def test_writes_only_when_the_string_changes(cross4: Path, tmp_path: Path):
    cfg = write_cfg(tmp_path / "s", cross4, None, end=40)
    with SumoBridge(cfg, out_dir=tmp_path / "out") as bridge:
        net = bridge.start()
        assert bridge.actuator.writes == 1  # taken over at start: all red
        g = net.group_index[0]["N_C_lsr"]
        state = net.full(RED, np.int8)
        everything = np.ones(1, dtype=bool)
        for tick in range(40):
            bridge.step()
            state[0, g] = GREEN if 10 <= tick < 20 else AMBER if 20 <= tick < 23 else RED
            bridge.actuate(state, everything)  # told "changed" every tick on purpose
            s = bridge.conn.trafficlight.getRedYellowGreenState("C")
            assert s == bridge.actuator.last[0]
            links = net.config.intersections[0].signal_groups[g].sumo_links
            expected = "G" if 10 <= tick < 20 else "y" if 20 <= tick < 23 else "r"
            assert {s[k] for k in links} == {expected}
        assert bridge.actuator.writes == 1 + 3  # red -> green -> amber -> red


@pytest.mark.parametrize("stopline_loops", [True, False])
def test_demand_follows_one_vehicle(cross4: Path, tmp_path: Path, stopline_loops: bool):
    routes = '<vehicle id="v" depart="0" departLane="1"><route edges="W_C C_E"/></vehicle>'
    cfg = write_cfg(tmp_path / "s", cross4, routes, end=60)
    with SumoBridge(cfg, out_dir=tmp_path / "out", stopline_loops=stopline_loops) as bridge:
        net = bridge.start()
        assert {d.kind for d in bridge.detectors} == ({"stopline", "extension", "exit"} if stopline_loops
                                                      else {"extension", "exit"})
        idx = net.group_index[0]
        w = idx["W_C_lsr"]
        others = [idx[k] for k in ("N_C_lsr", "E_C_lsr", "S_C_lsr")]
        bridge.step()
        obs = bridge.observe()
        assert not obs.demand.any()  # 190 m away: not yet past the extension loop
        first_demand = None
        passed_at = None
        seen_occupied = False
        while bridge.t_s < 50:
            bridge.step()
            obs = bridge.observe()
            if obs.demand[0, w] and first_demand is None:
                first_demand = bridge.t_s
                assert obs.approach_veh[0, w] == 1.0
            if obs.gap_s[0, w] < bridge.dt_s and passed_at is None:
                passed_at = bridge.t_s  # over the extension loop during this step
            # Demand never lapses between the extension loop and standing at the stop line.
            assert obs.demand[0, w] == (first_demand is not None)
            assert not obs.demand[0, others].any()
            # Over a loop during the step: only this vehicle's group, only while it is on one.
            assert not obs.detector_occupied[0, others].any()
            if obs.detector_occupied[0, w]:
                seen_occupied = True
                assert obs.gap_s[0, w] < bridge.dt_s + STOPLINE_GAP_LAG_S
        # Everything stays red: the vehicle waits at the stop line (halting: demand).
        assert first_demand is not None and first_demand < 20 and passed_at == first_demand
        assert obs.demand[0, w] and obs.queue_veh[0, w] == 1.0
        assert seen_occupied  # passing the extension loop at least
        # Standing at the stop line: over its loop where there is one, past the extension loop.
        assert obs.detector_occupied[0, w] == stopline_loops
        if stopline_loops:
            # Standing on the stop-line loop, whose detections count STOPLINE_GAP_LAG_S later.
            assert obs.gap_s[0, w] == STOPLINE_GAP_LAG_S > 0.0
        else:
            assert obs.gap_s[0, w] == pytest.approx(bridge.t_s - passed_at, abs=1.0)
        assert obs.downstream_queue_veh.sum() == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_observation_with_foreign_subscriptions(cross4: Path, tmp_path: Path, backend: str):
    """Someone else's subscriptions in the same domains (another lane, a loop of the scenario's
    own) change neither the observation nor the queue measure."""
    from ivri.core.engine import SignalCore

    cfg = write_cfg(tmp_path / "s", cross4, CROSS4_DEMAND, end=90)
    runs = []
    for foreign in (False, True):
        with SumoBridge(cfg, backend=backend, seed=4, out_dir=tmp_path / f"out{foreign}") as bridge:
            net = bridge.start()
            if foreign:
                internal = next(k for k in bridge.conn.lane.getIDList() if k.startswith(":"))
                bridge.conn.lane.subscribe(internal, [0x14])
            rows = np.arange(net.n_intersections)
            seen = []
            core = SignalCore(net, bridge.dt_s, start_s=bridge.begin_s)
            while bridge.t_s < 90:
                t = bridge.step()
                obs = bridge.observe()
                seen.append(np.concatenate([obs.queue_veh.ravel(), obs.approach_veh.ravel(),
                                            obs.downstream_queue_veh.ravel(), obs.gap_s.ravel(),
                                            obs.demand.ravel()]))
                changed = core.advance(net.stages[rows, int(t // 15) % net.n_stages], obs.demand)
                bridge.actuate(core.signals, changed)
            runs.append((np.array(seen), bridge.observer.queue_veh_s.copy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][0][:, : 3 * net.n_intersections * len(net.group_ids[0])].sum() > 0


def test_domain_reads_in_any_order():
    from ivri.sumo.observe import _Domain

    d = _Domain(["b", "a", "c", "a"], (0x14, 0x10))
    assert d.ids == ("a", "b", "c") and len(d) == 3
    sorted_res = {k: {0x10: float(n), 0x14: 10.0 + n} for n, k in enumerate("abc")}
    halting, vehicles = d.read(sorted_res)
    np.testing.assert_array_equal(halting, [10, 11, 12])
    np.testing.assert_array_equal(vehicles, [0, 1, 2])
    shuffled = {k: sorted_res[k] for k in "cab"}  # same size, other order: read by id
    np.testing.assert_array_equal(d.read(shuffled)[0], [10, 11, 12])
    more = {"0": {0x10: 7.0, 0x14: 7.0}, **sorted_res}  # a foreign object: read by id
    np.testing.assert_array_equal(d.read(more)[1], [0, 1, 2])
    np.testing.assert_array_equal(d.read(sorted_res)[1], [0, 1, 2])  # back to the fast path


def test_demand_of_a_pedestrian_waiting_at_a_crossing(cross4: Path, tmp_path: Path):
    routes = '<person id="p" depart="0"><walk from="W_C" to="C_E"/></person>'
    cfg = write_cfg(tmp_path / "s", cross4, routes, end=200)
    with SumoBridge(cfg, out_dir=tmp_path / "out") as bridge:
        net = bridge.start()
        peds = [k for k, g in enumerate(net.config.intersections[0].signal_groups) if g.mode == "pedestrian"]
        motor = [k for k in range(len(net.group_ids[0])) if k not in peds]
        waited = set()
        while bridge.t_s < 200:
            bridge.step()
            obs = bridge.observe()
            assert not obs.demand[0, motor].any()
            waited.update(k for k in peds if obs.demand[0, k])
        # All red: the walker waits at exactly one crossing, and says so.
        assert len(waited) == 1
        (k,) = waited
        assert obs.demand[0, k] and obs.queue_veh[0, k] == 1.0


def test_native_run_only_watches(cross4: Path, tmp_path: Path):
    cfg = write_cfg(tmp_path / "s", cross4, CROSS4_DEMAND, begin=100, end=160)
    with SumoBridge(cfg, out_dir=tmp_path / "out", control=False) as bridge:
        assert bridge.start() is None
        assert not (tmp_path / "out" / "ivri_detectors.add.xml").exists()
        program = bridge.conn.trafficlight.getProgram("C")
        while bridge.t_s < bridge.end_s:
            bridge.step()
        assert bridge.t_s == 160.0 == bridge.conn.simulation.getTime()
        assert bridge.conn.trafficlight.getProgram("C") == program != "online"
        with pytest.raises(SimulationError):
            bridge.observe()
        with pytest.raises(SimulationError):
            bridge.actuate(np.zeros((1, 8), dtype=np.int8))
        stats = bridge.intersection_stats()
        assert set(stats) == {"C"} and "tls_writes" not in stats["C"]
        types = bridge.vtypes()
    assert types == bridge.vtypes()  # still there after close
    assert types["DEFAULT_VEHTYPE"][0] == "passenger"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sumo_start_error_carries_sumos_message(cross4: Path, tmp_path: Path, backend: str):
    cfg = write_cfg(tmp_path / "s", cross4, None, end=10)
    with SumoBridge(cfg, backend=backend, out_dir=tmp_path / "out", extra_args=["--no-such-option", "1"]) as bridge:
        with pytest.raises(SimulationError) as exc:
            bridge.start()
        assert "no-such-option" in str(exc.value)
        assert bridge.conn is None  # start() cleaned up after itself, before close()


def test_one_libsumo_simulation_at_a_time(cross4: Path, tmp_path: Path):
    cfg = write_cfg(tmp_path / "s", cross4, None, end=10)
    with SumoBridge(cfg, out_dir=tmp_path / "a") as first:
        first.start()
        with pytest.raises(SimulationError, match="already running"):
            start_sumo(["-c", str(cfg)])
        # TraCI runs alongside.
        with SumoBridge(cfg, backend="traci", out_dir=tmp_path / "b") as second:
            second.start()
            second.step()
        first.step()


def test_user_config(cross4: Path, tmp_path: Path):
    xs, _ = derive_intersections(cross4)
    renamed = xs[0].model_copy(update={"id": "kruispunt_1"})
    cfg = write_cfg(tmp_path / "s", cross4, CROSS4_DEMAND, end=60)
    with SumoBridge(cfg, out_dir=tmp_path / "out", intersections=NetworkConfig(intersections=(renamed,))) as b:
        net = b.start()
        assert net.intersection_ids == ("kruispunt_1",)
        run_stage_cycle(b, net, 20.0, check=conflict_checker(net, b))
        assert set(b.intersection_stats()) == {"kruispunt_1"}
    wrong = xs[0].model_copy(update={"tls_id": "J9"})
    with SumoBridge(cfg, out_dir=tmp_path / "out2", intersections=NetworkConfig(intersections=(wrong,))) as bridge:
        with pytest.raises(ConfigError, match="'J9'"):
            bridge.start()
        assert bridge.conn is None  # start() cleaned up after itself, before close()


def test_scenario_from_the_sumo_distribution(tmp_path: Path):
    """SUMO's own 'cross' game scenario (a left-turn-lane intersection), at 0.5 s steps."""
    sumo = pytest.importorskip("sumo")
    src = Path(sumo.SUMO_HOME) / "tools" / "game" / "cross"
    if not (src / "cross.net.xml").is_file():
        pytest.skip("SUMO's game scenarios are not in this installation")
    for f in ("cross.net.xml", "cross.rou.xml"):
        shutil.copy(src / f, tmp_path / f)
    cfg = tmp_path / "cross.sumocfg"
    cfg.write_text(
        '<configuration><input><net-file value="cross.net.xml"/><route-files value="cross.rou.xml"/>'
        '</input><time><begin value="0"/><end value="120"/><step-length value="0.5"/></time></configuration>'
    )
    with SumoBridge(cfg, out_dir=tmp_path / "out", seed=1) as bridge:
        net = bridge.start()
        assert bridge.dt_s == 0.5
        steps = run_stage_cycle(bridge, net, 20.0, check=conflict_checker(net, bridge))
        assert steps == 240
        assert bridge.conn.simulation.getArrivedNumber() + bridge.conn.vehicle.getIDCount() > 0


@pytest.mark.sumo
def test_v2x_rows_follow_the_cam_period(tmp_path: Path) -> None:
    """With a CAM every 3 s the applications see the vehicles' rows change at most every 3 s;
    with a CAM every step, every step."""
    from ivri.controllers.v2x import Role

    from ivri.runner import resolve_scenario

    _, cfg = resolve_scenario("crossing:short")
    seen: dict[float, list[int]] = {}
    for period in (0.0, 3.0):
        with SumoBridge(cfg, seed=42, out_dir=tmp_path / str(period),
                        v2x={"cam_period_s": period, "shares": {"cyclist": 1.0}}) as bridge:
            bridge.start()
            changes, last = [], None
            for _ in range(120):
                t_s = bridge.step()
                rows = bridge.observe().v2x
                vehicles = tuple(rows.token[rows.role != Role.PEDESTRIAN].tolist()), tuple(rows.distance_m.round(3).tolist())
                if vehicles != last:
                    changes.append(round(t_s))
                    last = vehicles
            seen[period] = changes
    assert len(seen[0.0]) > 40, "cyclists move every step: the rows change nearly every step"
    gaps = np.diff(seen[3.0])
    assert len(gaps) > 5 and gaps.min() >= 3
