"""Co-simulation: SUMO's equipped vehicles -> CAMs over MQTT -> the gateway -> SPATEM -> SUMO's lights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from local_broker import LocalBroker, free_port

from ivri.cosim import REF_LAT_LON, GeoMapping, build_sites, check_broker
from ivri.errors import ConfigError
from ivri.gateway.site import SiteTable
from ivri.runner import RunSpec, run_controller

CONTROLLER = "actuated+greenflow"
END_S = 300.0  # the crossing's first ambulance departs at 120 s


def test_bad_url_and_missing_broker_fail_in_one_line() -> None:
    with pytest.raises(ConfigError, match="scheme"):
        check_broker("http://127.0.0.1:1883")
    port = free_port()
    with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{port} .*not reachable"):
        check_broker(f"mqtt://127.0.0.1:{port}", timeout_s=1.0)


def test_local_mapping_is_equirectangular_around_the_reference() -> None:
    geo = GeoMapping(None)
    lat, lon = geo.to_latlon(np.array([0.0, 1000.0]), np.array([0.0, 1000.0]))
    assert (lat[0], lon[0]) == REF_LAT_LON
    assert (lat[1] - lat[0]) * 111_195.08 == pytest.approx(1000.0, rel=1e-4)
    assert (lon[1] - lon[0]) * 111_195.08 * math.cos(math.radians(REF_LAT_LON[0])) == pytest.approx(1000.0, rel=1e-4)


@pytest.mark.sumo
def test_sites_from_the_network_place_lanes_on_their_groups() -> None:
    from ivri.sumo_networks import get_scenario

    from ivri.config import NetworkConfig
    from ivri.sumo.network import derive_intersections, read_net
    from ivri.sumo.sumocfg import read_sumocfg

    net = read_net(read_sumocfg(get_scenario("crossing:short").sumocfg).net_file)
    configs, maps = derive_intersections(net)
    config = NetworkConfig(intersections=tuple(configs))
    geo = GeoMapping(net)
    sites = build_sites(config, maps, net, geo)
    table = SiteTable(config, sites)
    (site,) = sites.sites
    assert site.its_id == 1 and len(site.approaches) == 12  # 3 lanes on each of 4 arms
    # A car 200 m west of the centre, driving east on the straight-on lane of the west arm.
    lane = net.getLane("W_C_0")
    x, y = lane.getShape()[-1]
    lat, lon = geo.to_latlon(np.array([x - 200.0]), np.array([y]))
    group, dist = table.match(np.array([0]), lat, lon, np.array([90.0]))
    assert configs[0].group_ids()[group[0]] == "W_C_s"
    assert dist[0] == pytest.approx(200.0, abs=0.5)
    # Driving away (west) it belongs to no approach.
    group, _ = table.match(np.array([0]), lat, lon, np.array([270.0]))
    assert group[0] == -1


@pytest.mark.sumo
def test_crossing_over_mqtt_matches_the_in_process_run(mqtt_broker: LocalBroker, tmp_path: Path) -> None:
    local = run_controller(RunSpec("crossing:short", CONTROLLER, out_dir=tmp_path / "local", end_s=END_S))
    cosim = run_controller(RunSpec("crossing:short", CONTROLLER, out_dir=tmp_path / "mqtt", end_s=END_S,
                                   v2x_broker=mqtt_broker.url))
    c = cosim["cosim"]
    gw = c["gateway"]
    ticks = int(END_S)  # crossing:short steps 1 s
    # Every SUMO step was one gateway tick with one SPATEM, and it came back over MQTT.
    assert c["ticks"] == gw["ticks"] == ticks
    assert gw["published"]["spatem"] == ticks and c["spatem_received"] == ticks and c["spatem_bad"] == 0
    assert gw["published"]["mapem"] == 1 and gw["connections"] == 1 and not gw["dropped"]
    # The gateway received the equipped vehicles' CAMs, and rejected none.
    assert c["cams_sent"] > 100 and gw["received"]["cam"] == c["cams_sent"]
    assert not gw["rejected"] and not gw["refused"]
    # The ambulance was granted green by the gateway, which knew of it only from its CAMs.
    assert cosim["decisions"]["emergency"]["grant"] >= 1
    assert cosim["safety"]["emergency_passages"] >= 1 and cosim["safety"]["emergency_red_passages"] == 0
    # The lights SUMO showed never had conflicting greens (the core's monitor ran in the gateway).
    assert c["conflicting_greens"] == 0 and c["tls_changes"] > 20
    # The run's record is a normal one, with sane KPIs next to the in-process run.
    for key in ("vehicle_loss_hours", "fuel_litres", "stops", "by_mode", "by_intersection"):
        assert key in cosim
    assert cosim["vehicle_loss_hours"] == pytest.approx(local["vehicle_loss_hours"], rel=0.5)
    assert cosim["stops"] == pytest.approx(local["stops"], rel=0.5)
    assert cosim["emergency_time_lost_s"] <= local["emergency_time_lost_s"] + 10.0
    # Privacy: no SUMO vehicle ids in the record.
    import re

    from ivri.sumo_networks import get_scenario

    routes = get_scenario("crossing:short").sumocfg.parent / "crossing.peak.rou.xml"
    ids = re.findall(r'<(?:flow|personFlow|vehicle|person|trip) id="([^"]+)"', routes.read_text())
    text = json.dumps(cosim)
    assert ids and not [f for f in ids if f'"{f}.' in text or f'"{f}"' in text]
    assert (tmp_path / "mqtt" / "actuated_greenflow" / "decisions.jsonl").is_file()


def test_gateway_lockstep_with_an_external_clock_and_demand_source(mqtt_broker: LocalBroker) -> None:
    """GatewayService(external_clock=True, demand_source=...): no engine loop of its own; each
    tick_once(t) is one tick at the caller's time, with the caller's detector demand."""
    import asyncio

    from ivri.controllers.base import Observation
    from test_gateway_service import NET, SITES, make_gateway, wait_for

    from ivri.core.idx import GREEN
    from ivri.gateway.service import GatewayService

    svc: GatewayService | None = None

    def demand() -> Observation:
        assert svc is not None
        obs = Observation.empty(svc.net)
        obs.demand[0, 1] = True  # fc05 is called by a "detector"; no CAM at all
        return obs

    svc = make_gateway(NET, mqtt_broker.url, sites=SITES, tick_s=0.5, spat_every_s=0.5,
                       external_clock=True, demand_source=demand)

    async def main() -> None:
        runner = asyncio.create_task(svc.run())
        await wait_for(lambda: svc.status == "online", 5, "the gateway to connect")
        await asyncio.sleep(0.3)
        assert svc.ticks == 0  # nobody ticked: no engine loop
        for k in range(1, 21):
            await svc.tick_once(k * 0.5)
        svc.stop()
        await asyncio.wait_for(runner, 5)

    asyncio.run(main())
    assert svc.ticks == 20 and svc.core.t_s == pytest.approx(10.0)
    assert svc.published["spatem"] == 20  # spat_every_s == tick_s: one per tick
    assert svc.core.signals.state[0, 1] == GREEN and svc.received == {}


def _states_per_tick(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The signal states a run showed, tick by tick, from its timeline (one row per change)."""
    from ivri.metrics.timeline import load_timeline

    tl = load_timeline(run_dir / "timeline.npz")
    t, i, g, v = tl.events["state"]
    order = np.lexsort((g, i, t))
    return np.stack([t[order], i[order], g[order]]), v[order]


@pytest.mark.sumo
def test_ivri_run_and_the_cosimulation_in_memory_show_the_same_lights(tmp_path: Path) -> None:
    """The same scenario and seed through ``ivri run``'s engine tick and through the
    co-simulation (CAMs -> gateway -> SPATEM over the in-memory transport) gives the same signal
    states, tick by tick. ``actuated`` reads no CAMs, so both see the same observations; V2X
    emulation runs in both, so SUMO's random stream is the same."""
    end_s = 200.0
    runs = {}
    for name, broker in (("run", None), ("cosim", "memory://")):
        runs[name] = run_controller(RunSpec("crossing:short", "actuated", out_dir=tmp_path / name, end_s=end_s,
                                            v2x=True, v2x_broker=broker))
    c = runs["cosim"]["cosim"]
    assert c["broker"] == "memory" and c["ticks"] == int(end_s) and c["spatem_received"] == int(end_s)
    assert c["cams_sent"] > 0 and c["gateway"]["received"]["cam"] == c["cams_sent"]
    at_run, states_run = _states_per_tick(tmp_path / "run" / "actuated")
    at_cosim, states_cosim = _states_per_tick(tmp_path / "cosim" / "actuated")
    assert states_run.size > 50  # the lights changed many times
    np.testing.assert_array_equal(at_run, at_cosim)
    np.testing.assert_array_equal(states_run, states_cosim)
    assert runs["cosim"]["vehicle_loss_hours"] == runs["run"]["vehicle_loss_hours"]
