"""Gateway pieces without a broker: the example files, approach matching, expiry, topics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from ivri.controllers.v2x import Role
from test_gateway_service import make_gateway

from ivri.config import load_network_config
from ivri.errors import ConfigError
from ivri.gateway.service import GatewayService
from ivri.gateway.site import GatewaySites, SiteTable, load_gateway_sites
from ivri.gateway.spat import SSEM_STATUS, time_mark
from ivri.gateway.topics import TopicLayout
from ivri.gateway.transport import parse_broker_url
from ivri.its import Cam, ReferencePosition, decode_json, encode_json

DOCS = Path(__file__).resolve().parents[1] / "docs"


def example_service(**kw: object) -> GatewayService:
    return make_gateway(load_network_config(DOCS / "gateway-example.toml"), "mqtt://127.0.0.1:1",
                        sites=load_gateway_sites(DOCS / "gateway-example-sites.toml"), **kw)


def sample_cam() -> bytes:
    return (DOCS / "its-samples" / "cam_emergency.json").read_bytes()


def test_sample_cam_maps_to_the_west_approach() -> None:
    svc = example_service()
    svc.handle("ivri/nl/J101/cam", sample_cam(), now=0.0)
    v = svc.table.observation(svc.sites, 0.0, 10.0)
    assert len(v) == 1
    assert svc.net.group_ids[0][v.group[0]] == "fc02"
    assert v.role[0] == Role.EMERGENCY and v.siren[0]
    assert 190.0 < v.distance_m[0] < 210.0
    assert v.speed_mps[0] == pytest.approx(13.89)
    assert not v.app[0]  # a CAM describes; it never requests
    svc.tick(now=0.0)
    assert len(svc.ctl.tracked_.status) == 0  # no priority request from a CAM alone


def test_cam_priority_only_with_the_closed_site_option(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="ivri.gateway"):
        svc = example_service(allow_cam_priority=True)
    assert "allow_cam_priority" in caplog.text
    svc.handle("ivri/nl/J101/cam", sample_cam(), now=0.0)
    svc.tick(now=0.0)
    assert svc.ctl.tracked_.status.tolist() == [3]  # PREPARING: conflicting groups kept red


def test_vehicle_leaving_or_past_the_stop_line_has_no_row() -> None:
    svc = example_service()
    cam = decode_json(sample_cam(), "cam")
    away = cam.model_copy(update={"heading": 2700})  # driving west, away from the junction
    past = cam.model_copy(update={  # 20 m east of the centre, beyond the fc02 stop line
        "header": cam.header.model_copy(update={"station_id": 2}),
        "reference_position": ReferencePosition(latitude=521003200, longitude=50787930)})
    svc.handle("ivri/nl/J101/cam", encode_json(away), now=0.0)
    svc.handle("ivri/nl/J101/cam", encode_json(past), now=0.0)
    assert len(svc.table) == 2
    assert len(svc.table.observation(svc.sites, 0.0, 10.0)) == 0


def test_rows_expire_without_updates() -> None:
    svc = example_service(station_ttl_s=3.0)
    svc.handle("ivri/nl/J101/cam", sample_cam(), now=0.0)
    svc.table.expire(2.0, 3.0)
    assert len(svc.table) == 1
    svc.table.expire(3.5, 3.0)
    assert len(svc.table) == 0 and not svc.table._tokens  # the station id is forgotten


def test_bus_and_cyclist_roles_from_cam() -> None:
    svc = example_service()
    cam = decode_json(sample_cam(), "cam")
    bus = Cam.model_validate({**json.loads(cam.model_dump_json()), "station_type": 6,
                              "vehicle_role": None, "emergency_container": None})
    svc.handle("ivri/nl/J101/cam", encode_json(bus), now=0.0)
    v = svc.table.observation(svc.sites, 0.0, 10.0)
    assert v.role.tolist() == [Role.BUS] and v.lateness_s.tolist() == [0.0]


def test_table_grows_and_reuses_slots() -> None:
    svc = example_service()
    cam = decode_json(sample_cam(), "cam")
    for k in range(3000):
        m = cam.model_copy(update={"header": cam.header.model_copy(update={"station_id": k})})
        svc.handle("ivri/nl/J101/cam", encode_json(m), now=0.0)
    assert len(svc.table) == 3000
    assert len(svc.table.observation(svc.sites, 0.0, 10.0)) == 3000
    svc.table.expire(10.0, 3.0)
    assert len(svc.table) == 0


def test_cam_plausibility_and_rate() -> None:
    svc = example_service()
    cam = decode_json(sample_cam(), "cam")
    for k in range(6):  # 100 Hz: the burst of 5 passes, the sixth is over the CAM rate
        svc.handle("ivri/nl/J101/cam", encode_json(cam), now=k * 0.01)
    fast = cam.model_copy(update={"speed": 9000})  # 90 m/s
    svc.handle("ivri/nl/J101/cam", encode_json(fast), now=1.0)
    pos = cam.reference_position
    jump = cam.model_copy(update={"reference_position": pos.model_copy(
        update={"latitude": pos.latitude + 50_000})})  # 556 m in 1 s
    svc.handle("ivri/nl/J101/cam", encode_json(jump), now=1.0)
    far = cam.model_copy(update={"header": cam.header.model_copy(update={"station_id": 9}),
                                 "reference_position": pos.model_copy(update={"latitude": pos.latitude + 200_000})})
    svc.handle("ivri/nl/J101/cam", encode_json(far), now=1.0)  # 2.2 km away: outside the site
    assert svc.rejected == {"cam_over_rate": 1, "implausible_speed": 1, "implausible_jump": 1,
                            "outside_site": 1}
    assert len(svc.table) == 1


def test_example_files_and_bad_sites() -> None:
    cfg = load_network_config(DOCS / "gateway-example.toml")
    SiteTable(cfg, load_gateway_sites(DOCS / "gateway-example-sites.toml"))
    bad = GatewaySites.model_validate({"sites": [{"intersection": "J999", "its_id": 1}]})
    with pytest.raises(ConfigError, match="J999"):
        SiteTable(cfg, bad)
    bad_group = GatewaySites.model_validate({"sites": [{"intersection": "J101", "its_id": 1,
                                                        "signal_group_numbers": {"fc99": 3}}]})
    with pytest.raises(ConfigError, match="fc99"):
        SiteTable(cfg, bad_group)


def test_topics_and_urls() -> None:
    t = TopicLayout("nl")
    assert t.topic("J101", "spatem") == "ivri/nl/J101/spatem"
    assert t.parse("ivri/nl/J101/cam") == ("J101", "cam", "")
    assert t.parse("ivri/nl/J101/cam/dev-7") == ("J101", "cam", "dev-7")
    assert t.parse("ivri/nl/J101/cam/dev-7/x") is None
    assert t.client_topic("J101", "ssem", "dev-7") == "ivri/nl/J101/ssem/dev-7"
    assert t.subscriptions() == [["ivri/nl/+/cam/#"], ["ivri/nl/+/srem/#"]]
    assert t.subscriptions(["J1", "J2"]) == [["ivri/nl/J1/cam/#", "ivri/nl/J2/cam/#"],
                                             ["ivri/nl/J1/srem/#", "ivri/nl/J2/srem/#"]]
    assert t.parse("ivri/de/J101/cam") is None
    with pytest.raises(ConfigError):
        t.topic("a/b", "cam")
    assert parse_broker_url("mqtt://localhost") == ("localhost", 1883, False)
    assert parse_broker_url("mqtts://broker:8884") == ("broker", 8884, True)
    with pytest.raises(ConfigError):
        parse_broker_url("http://x")


def test_ssem_status_mapping_and_time_marks() -> None:
    assert {SSEM_STATUS[s] for s in (3, 4, 5)} == {"granted"}
    assert {SSEM_STATUS[s] for s in (2, 6)} == {"processing"}
    assert {SSEM_STATUS[s] for s in (8, 9, 10)} == {"rejected"}
    assert time_mark(3600.0 * 5 + 12.34) == 123
    assert 0 <= time_mark(1.7e9) < 36000


def test_spatem_timing_is_consistent() -> None:
    svc = example_service(always_demand=True, tick_s=0.5)
    for k in range(40):
        svc.tick(now=k * 0.5)
    ttc = svc.core.time_to_change_s()
    assert np.all(ttc.min_s[svc.net.timing.valid] > 0)
    assert np.all(ttc.max_s >= ttc.min_s)
    assert not math.isnan(float(ttc.min_s[0, 0]))
