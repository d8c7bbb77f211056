"""Metrics: units, conversions and definitions checked against hand-computed numbers and SUMO.

The handwritten fixture tests/data/metrics/tripinfo_mixed.xml (SUMO 1.28 format) holds:

========  ==========  =========  ====  =====  ======  =====  ========  ===============
trip      vType       mode       loss  delay  stops   state  fuel mg   fuel
========  ==========  =========  ====  =====  ======  =====  ========  ===============
car_a     DEFAULT     car        20    4      2       done   74,200    petrol 0.1 L
car_b     diesel_car  car        40    6      3       unfin  167,200   diesel 0.2 L
car_c     DEFAULT     car        0     50     0       undep  0
truck_a   lorry       truck      30    0      1       done   836,000   diesel 1.0 L
bus_a     citybus     bus        25    0      1       done   500,000   CNG (no litres)
amb_a     ambulance   emergency  8     0      0       done   83,600    diesel 0.1 L
mystery   (unknown)   other      12    2      1       done   148,400   petrol 0.2 L
bike_a    bike        bicycle    10    0      1       done   0         -
tram_a    tram        other      100   0      5       done   0         - (not road motor)
ped_a     walks 300 s + 100 s, 400 m + 120 m, loss 20 + 5, waiting 15 + 0, arrived
ped_b     walk 200 s, length unknown, loss 60, waiting 40, unfinished
ped_c     rides only: no walk, not a pedestrian trip
========  ==========  =========  ====  =====  ======  =====  ========  ===============
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from ivri import metrics
from ivri.errors import ConfigError, SimulationError
from ivri.metrics import (
    FUEL_DENSITY_G_PER_L,
    MODES,
    SUMO_DEFAULT_VTYPES,
    Kpis,
    VTypeInfo,
    compute_kpis,
    default_emission_class,
    fuel_mg_to_litres,
    fuel_type_of,
    is_road_motor_vehicle,
    kpi_table,
    mode_of,
    plot_comparison,
    read_kpis_json,
    read_tripinfo,
    read_vtypes,
    sumo_output_options,
    tripinfo_path,
    write_kpis_json,
)

DATA = Path(__file__).parent / "data" / "metrics"
TRIPINFO = DATA / "tripinfo_mixed.xml"
ROUTES = DATA / "routes_mixed.rou.xml"

SUMO = shutil.which("sumo")
NETCONVERT = shutil.which("netconvert")
needs_sumo = pytest.mark.skipif(SUMO is None or NETCONVERT is None, reason="SUMO not installed")


@pytest.fixture(scope="module")
def vtypes() -> dict[str, VTypeInfo]:
    return read_vtypes([ROUTES])


@pytest.fixture(scope="module")
def kpis(vtypes: dict[str, VTypeInfo]) -> Kpis:
    return compute_kpis(TRIPINFO, vtypes)


# --- public surface ---------------------------------------------------------------------------


def test_all_names_exist() -> None:
    for name in metrics.__all__:
        assert hasattr(metrics, name), name
    assert len(set(metrics.__all__)) == len(metrics.__all__)


# --- fuel -------------------------------------------------------------------------------------


def test_densities_are_the_ones_sumo_uses() -> None:
    assert FUEL_DENSITY_G_PER_L == {"petrol": 742.0, "diesel": 836.0}


@pytest.mark.parametrize(
    ("mass_mg", "fuel", "litres"),
    [
        (742_000.0, "petrol", 1.0),
        (836_000.0, "diesel", 1.0),
        (74_200.0, "petrol", 0.1),
        (18_469.18, "petrol", 18_469.18 / 742.0 / 1000.0),
        (500_000.0, "cng", 0.0),
        (1_000.0, "electric", 0.0),
        (0.0, "none", 0.0),
    ],
)
def test_fuel_mg_to_litres_hand_computed(mass_mg: float, fuel: str, litres: float) -> None:
    assert fuel_mg_to_litres(mass_mg, fuel) == pytest.approx(litres, rel=1e-12)


def test_fuel_mg_to_litres_on_arrays() -> None:
    out = fuel_mg_to_litres(np.array([0.0, 742.0, 1_484_000.0]), "petrol")
    np.testing.assert_allclose(out, [0.0, 0.001, 2.0])
    np.testing.assert_array_equal(fuel_mg_to_litres(np.array([5.0, 6.0]), "lng"), [0.0, 0.0])


@pytest.mark.parametrize(
    ("emission_class", "fuel"),
    [
        ("HBEFA4/PC_petrol_Euro-4", "petrol"),
        ("HBEFA4/PC_diesel_Euro-6d", "diesel"),
        ("HBEFA4/PC_BEV", "electric"),
        ("HBEFA4/PC_PHEV_petrol_Euro-6d_(El)", "electric"),
        ("HBEFA4/PC_PHEV_diesel_Euro-6d_(D)", "diesel"),
        ("HBEFA4/PC_CNG_petrol_Euro-6d", "cng"),
        ("HBEFA4/PC_LPG_petrol_Euro-6d", "petrol"),
        ("HBEFA4/PC_FuelCell", "hydrogen"),
        ("HBEFA4/LCV_diesel_N1-III_Euro-6ab", "diesel"),
        ("HBEFA4/LCV_FFV_N1-II_Euro-6__(E85)", "petrol"),
        ("HBEFA4/RT_le7.5t_Euro-VI_A-C", "diesel"),  # SUMO's default truck: diesel, unnamed
        ("HBEFA4/RT_petrol", "petrol"),
        ("HBEFA4/TT_AT_gt34-40t_Euro-VI_A-C", "diesel"),
        ("HBEFA4/TT_AT_LNG_Euro-VI_(CI)", "lng"),
        ("HBEFA4/UBus_Std_gt15-18t_Euro-VI_A-C", "diesel"),
        ("HBEFA4/UBus_Std_gt15-18t_CNG_Euro-VI", "cng"),
        ("HBEFA4/UBus_Electric_Std_gt15-18t", "electric"),
        ("HBEFA4/Coach_3-Axes_gt18t_Euro-VI_A-C", "diesel"),
        ("HBEFA4/MC_4S_gt250cc_preEuro", "petrol"),
        ("HBEFA4/Moped_le50cc_Euro-2", "petrol"),
        ("HBEFA3/PC_G_EU4", "petrol"),
        ("HBEFA3/PC_D_EU4", "diesel"),
        ("HBEFA3/HDV_D_EU0", "diesel"),
        ("HBEFA3/Bus", "diesel"),
        ("HBEFA3/zero", "none"),
        ("PHEMlight/PC_G_EU4", "petrol"),
        ("PHEMlight5/PC_EU4_D_MW", "diesel"),
        ("PHEMlight/PC_BEV", "electric"),
        ("Zero/default", "none"),
        ("Energy/unknown", "electric"),
        ("MMPEVEM", "electric"),
        ("hbefa4/pc_DIESEL_euro-6d", "diesel"),  # SUMO ignores case, so do we
        ("HBEFA4/default", "petrol"),
        ("", "petrol"),  # unknown vehicle type: SUMO's default class is petrol
        ("SomethingElse/XYZ", "petrol"),
    ],
)
def test_fuel_type_of(emission_class: str, fuel: str) -> None:
    assert fuel_type_of(emission_class) == fuel


# --- vehicle types and modes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vclass", "mode"),
    [
        ("passenger", "car"),
        ("taxi", "car"),
        ("private", "car"),
        ("evehicle", "car"),
        ("motorcycle", "car"),
        ("moped", "car"),
        ("truck", "truck"),
        ("trailer", "truck"),
        ("delivery", "truck"),
        ("bus", "bus"),
        ("coach", "bus"),
        ("tram", "other"),
        ("emergency", "emergency"),
        ("authority", "emergency"),
        ("bicycle", "bicycle"),
        ("pedestrian", "pedestrian"),
        ("rail", "other"),
        ("", "other"),
        ("no_such_class", "other"),
    ],
)
def test_mode_of(vclass: str, mode: str) -> None:
    assert mode_of(vclass) == mode
    assert mode in MODES


def test_road_motor_vehicles() -> None:
    for vclass in ("passenger", "truck", "bus", "emergency", "motorcycle", "army", ""):
        assert is_road_motor_vehicle(vclass), vclass
    for vclass in ("bicycle", "pedestrian", "tram", "rail", "ship", "scooter"):
        assert not is_road_motor_vehicle(vclass), vclass


def test_read_vtypes(vtypes: dict[str, VTypeInfo]) -> None:
    # SUMO's built-in types are always there.
    for vtype_id in ("DEFAULT_PEDTYPE", "DEFAULT_BIKETYPE", "DEFAULT_TAXITYPE"):
        assert vtypes[vtype_id] == SUMO_DEFAULT_VTYPES[vtype_id]
    assert vtypes["DEFAULT_BIKETYPE"] == VTypeInfo("bicycle", "Zero/default")
    # Redefined without vClass: still a petrol passenger car.
    assert vtypes["DEFAULT_VEHTYPE"] == VTypeInfo("passenger", "HBEFA4/PC_petrol_Euro-4")
    assert vtypes["diesel_car"] == VTypeInfo("passenger", "HBEFA4/PC_diesel_Euro-6d")
    # No emissionClass: SUMO's default for the vClass.
    assert vtypes["lorry"] == VTypeInfo("truck", "HBEFA4/RT_le7.5t_Euro-VI_A-C")
    assert vtypes["ambulance"] == VTypeInfo("emergency", "HBEFA4/LCV_diesel_N1-III_Euro-6ab")
    assert vtypes["tram"] == VTypeInfo("tram", "Zero/default")
    assert "mystery" not in vtypes


def test_read_vtypes_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_vtypes([tmp_path / "missing.rou.xml"])
    broken = tmp_path / "broken.rou.xml"
    broken.write_text("<routes><vType id='a'></routes>")
    with pytest.raises(ConfigError, match="cannot read"):
        read_vtypes([broken])


# --- tripinfo parsing -------------------------------------------------------------------------


def test_read_tripinfo_rows() -> None:
    ti = read_tripinfo(TRIPINFO)
    v, p = ti.vehicles, ti.persons
    assert ti.sumo_version == "1.28.0"
    assert len(v) == 9
    assert int(v.departed.sum()) == 8  # car_c never entered
    assert int(v.arrived.sum()) == 7  # car_b still driving, car_c waiting
    assert v.depart_delay_s.sum() == pytest.approx(62.0)
    assert v.fuel_mg.sum() == pytest.approx(1_809_400.0)
    assert v.has_emissions.all()
    # persons: ped_c only rode, so it has no walk stages
    assert len(p) == 3
    assert sorted(p.walk_stages.tolist()) == [0, 1, 2]
    walking = p.walk_stages > 0
    assert p.walk_time_loss_s[walking].sum() == pytest.approx(85.0)
    assert np.nansum(p.walk_route_length_m) == pytest.approx(520.0)
    assert set(p.type_ids) == {"DEFAULT_PEDTYPE", "slowped"}


def test_no_ids_kept(kpis: Kpis) -> None:
    # Privacy by design: vehicle and person ids must not survive parsing or reach results.
    ti = read_tripinfo(TRIPINFO)
    assert "secret" not in repr(ti)
    assert "secret" not in json.dumps(kpis.to_dict())


def test_read_tripinfo_human_readable_time() -> None:
    v = read_tripinfo(DATA / "tripinfo_human_time.xml").vehicles
    np.testing.assert_allclose(v.duration_s, [3600.0, 59.0])
    np.testing.assert_allclose(v.time_loss_s, [80.5, 2.96])
    np.testing.assert_allclose(v.depart_delay_s, [4.0, 0.0])
    np.testing.assert_array_equal(v.arrived, [True, False])  # "-00:00:01" is unfinished


def test_volumetric_fuel_is_refused() -> None:
    with pytest.raises(ConfigError, match="volumetric"):
        read_tripinfo(DATA / "tripinfo_volumetric.xml")


def test_missing_or_truncated_tripinfo(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="not found"):
        read_tripinfo(tmp_path / "tripinfo.xml")
    truncated = tmp_path / "truncated.xml"
    text = TRIPINFO.read_text()
    truncated.write_text(text[: len(text) // 2])
    with pytest.raises(SimulationError, match="truncated"):
        read_tripinfo(truncated)


# --- KPIs against hand-computed numbers -------------------------------------------------------


def test_vehicle_loss_hours_include_depart_delay(kpis: Kpis) -> None:
    # motor vehicles: car_a, car_b, car_c, truck, bus, ambulance, mystery (not bike, not tram)
    assert kpis.motor_trips == 7
    assert kpis.time_loss_hours == pytest.approx((20 + 40 + 0 + 30 + 25 + 8 + 12) / 3600)
    assert kpis.depart_delay_hours == pytest.approx((4 + 6 + 50 + 2) / 3600)
    assert kpis.vehicle_loss_hours == pytest.approx(197 / 3600)
    assert kpis.vehicle_loss_hours == pytest.approx(kpis.time_loss_hours + kpis.depart_delay_hours)


def test_fuel_and_emissions_hand_computed(kpis: Kpis) -> None:
    assert kpis.fuel_petrol_litres == pytest.approx(0.1 + 0.2)  # car_a + unknown type
    assert kpis.fuel_diesel_litres == pytest.approx(0.2 + 1.0 + 0.1)  # car_b, truck, ambulance
    assert kpis.fuel_litres == pytest.approx(1.6)
    assert kpis.fuel_kg == pytest.approx(1.8094)  # all fuel mass, the CNG bus's 0.5 kg too
    assert kpis.co2_kg == pytest.approx(5.47)
    assert kpis.nox_kg == pytest.approx(0.00425)
    assert kpis.electricity_kwh == 0.0
    assert kpis.motor_trips_without_emissions == 0


def test_stops_and_emergency(kpis: Kpis) -> None:
    assert kpis.stops == 2 + 3 + 0 + 1 + 1 + 0 + 1  # not the bicycle's 1 nor the tram's 5
    assert kpis.emergency_time_lost_s == 8.0
    assert kpis.emergency_mean_time_lost_s == 8.0
    assert kpis.emergency_stops == 0


def test_car_mode_counts_unfinished_and_undeparted(kpis: Kpis) -> None:
    car = kpis.by_mode["car"]
    assert (car.trips, car.arrived, car.unfinished, car.undeparted) == (3, 1, 1, 1)
    assert car.time_loss_s == 60.0
    assert car.depart_delay_s == 60.0
    assert car.stops == 5
    assert car.mean_time_loss_s == 30.0  # over the two that entered
    assert car.mean_delay_s == pytest.approx((24 + 46 + 50) / 3)  # over all three
    assert car.mean_travel_time_s == 60.0  # arrived only
    assert car.mean_waiting_s == 20.0
    assert car.mean_stops == 2.5
    assert car.distance_km == pytest.approx(0.8)
    assert car.fuel_litres == pytest.approx(0.1 + 0.2)


def test_other_modes(kpis: Kpis) -> None:
    assert set(kpis.by_mode) == set(MODES)
    bike = kpis.by_mode["bicycle"]
    assert (bike.trips, bike.stops, bike.fuel_litres, bike.co2_kg) == (1, 1, 0.0, 0.0)
    assert bike.mean_delay_s == 10.0
    bus = kpis.by_mode["bus"]
    assert bus.fuel_litres == 0.0  # CNG has no litres
    assert bus.co2_kg == pytest.approx(1.4)
    assert kpis.by_mode["truck"].fuel_litres == pytest.approx(1.0)
    other = kpis.by_mode["other"]  # the unknown type and the tram
    assert (other.trips, other.time_loss_s, other.stops) == (2, 112.0, 6)
    assert other.fuel_litres == pytest.approx(0.2)


def test_pedestrians_from_walk_stages(kpis: Kpis) -> None:
    ped = kpis.by_mode["pedestrian"]
    assert (ped.trips, ped.arrived, ped.unfinished, ped.undeparted) == (2, 1, 1, 0)
    assert ped.time_loss_s == 85.0
    assert ped.mean_time_loss_s == 42.5
    assert ped.mean_delay_s == 42.5
    assert ped.mean_travel_time_s == 400.0  # ped_a: 300 + 100 s of walking
    assert ped.mean_waiting_s == 27.5
    assert ped.waiting_s == 55.0
    assert ped.stops is None  # SUMO counts no stops for walkers
    assert ped.mean_stops is None
    assert ped.distance_km == pytest.approx(0.52)  # ped_b's unfinished length is unknown


def test_unknown_vtypes_never_crash() -> None:
    # Without any vType definitions, the fixture's own types are unknown: "other", petrol.
    k = compute_kpis(TRIPINFO, {})
    assert k.by_mode["car"].trips == 2  # only DEFAULT_VEHTYPE, known to SUMO by default
    assert k.by_mode["bicycle"].trips == 0
    assert k.by_mode["other"].trips == 7
    # every unknown type counts as a petrol road motor vehicle: all fuel mass in petrol litres
    # except SUMO defaults' (none here), and the tram's delay now counts too
    assert k.fuel_petrol_litres == pytest.approx(1_809_400 / 742 / 1000)
    assert k.fuel_diesel_litres == 0.0
    assert k.motor_trips == 9


def test_empty_tripinfo(tmp_path: Path) -> None:
    empty = tmp_path / "tripinfo.xml"
    empty.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<tripinfos>\n</tripinfos>\n')
    k = compute_kpis(empty, {})
    assert k.vehicle_loss_hours == 0.0
    assert k.by_mode["car"].trips == 0
    assert k.by_mode["car"].mean_delay_s is None
    json.dumps(k.to_dict(), allow_nan=False)


def test_kpis_are_frozen(kpis: Kpis) -> None:
    with pytest.raises(ValueError, match="frozen"):
        kpis.fuel_litres = 0.0  # type: ignore[misc]


# --- reports ----------------------------------------------------------------------------------


def _records(kpis: Kpis) -> list[dict]:
    base = {"scenario": "fixture", "sumo_version": "1.28.0"}
    slower = kpis.model_copy(
        update={
            "vehicle_loss_hours": kpis.vehicle_loss_hours * 1.5,
            "time_loss_hours": kpis.time_loss_hours * 1.5,
            "depart_delay_hours": kpis.depart_delay_hours * 1.5,
        }
    )
    seed2 = slower.model_copy(update={"stops": 11, "fuel_litres": 1.9})
    return [
        {**base, "controller": "fixed-time", "seed": 1, "wall_time_s": 3.2, **slower.to_dict()},
        {**base, "controller": "fixed-time", "seed": 2, "wall_time_s": 3.1, **seed2.to_dict()},
        {**base, "controller": "greenflow", "seed": 1, "wall_time_s": 3.9, **kpis.to_dict()},
    ]


def test_json_round_trip(kpis: Kpis, tmp_path: Path) -> None:
    records = _records(kpis)
    path = tmp_path / "out" / "kpis.json"
    write_kpis_json(records, path)
    back = read_kpis_json(path)
    assert back == records
    assert Kpis.from_dict(back[2]) == kpis
    assert json.loads(path.read_text())[0]["by_mode"]["pedestrian"]["stops"] is None


def test_json_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON"):
        write_kpis_json([{"controller": "x", "fuel_litres": math.nan}], tmp_path / "k.json")


def test_kpi_table(kpis: Kpis) -> None:
    table = kpi_table(_records(kpis), title="fixture")
    headers = [c.header for c in table.columns]
    for header in ("controller", "vehicle-loss h", "fuel L", "CO2 kg", "stops", "car delay s",
                   "bike delay s", "ped delay s", "emergency lost s", "wall s"):  # fmt: skip
        assert header in headers
    assert table.row_count == 3
    console = Console(file=io.StringIO(), width=250, record=True)
    console.print(table)
    text = console.export_text()
    assert "greenflow" in text
    assert "1.6" in text  # fuel litres
    assert "40.0" in text  # mean car delay


def test_plot_comparison(kpis: Kpis, tmp_path: Path) -> None:
    path = plot_comparison(_records(kpis), tmp_path / "plots" / "cmp.png", "Fixture comparison")
    assert path.is_file()
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert len(data) > 10_000


# --- SUMO itself ------------------------------------------------------------------------------


def test_sumo_output_options(tmp_path: Path) -> None:
    out = tmp_path / "run1"
    opts = sumo_output_options(out)
    assert out.is_dir()  # SUMO will not create it
    assert opts[opts.index("--tripinfo-output") + 1] == str(tripinfo_path(out))
    for flag in ("--tripinfo-output.write-unfinished", "--tripinfo-output.write-undeparted"):
        assert opts[opts.index(flag) + 1] == "true"
    assert opts[opts.index("--device.emissions.probability") + 1] == "1"
    assert opts[opts.index("--emissions.volumetric-fuel") + 1] == "false"


def _tiny_scenario(tmp: Path) -> tuple[Path, Path]:
    """Two edges through one node, with sidewalks; two cars, a bicycle and a pedestrian."""
    (tmp / "n.nod.xml").write_text(
        textwrap.dedent("""\
        <nodes>
            <node id="west" x="0" y="0" type="priority"/>
            <node id="mid" x="200" y="0" type="priority"/>
            <node id="east" x="400" y="0" type="priority"/>
        </nodes>
        """)
    )
    (tmp / "n.edg.xml").write_text(
        textwrap.dedent("""\
        <edges>
            <edge id="in" from="west" to="mid" numLanes="1" speed="13.89" sidewalkWidth="2"/>
            <edge id="out" from="mid" to="east" numLanes="1" speed="13.89" sidewalkWidth="2"/>
        </edges>
        """)
    )
    net = tmp / "tiny.net.xml"
    subprocess.run(
        [NETCONVERT, "-n", str(tmp / "n.nod.xml"), "-e", str(tmp / "n.edg.xml"), "-o", str(net)],
        check=True,
        capture_output=True,
    )
    routes = tmp / "tiny.rou.xml"
    routes.write_text(
        textwrap.dedent("""\
        <routes>
            <vType id="diesel_car" vClass="passenger" emissionClass="HBEFA4/PC_diesel_Euro-6d"/>
            <vType id="bike" vClass="bicycle"/>
            <route id="r" edges="in out"/>
            <vehicle id="c0" depart="0" route="r"/>
            <person id="p0" depart="0"><walk edges="in out"/></person>
            <vehicle id="b0" depart="1" route="r" type="bike"/>
            <vehicle id="c1" depart="3" route="r" type="diesel_car"/>
        </routes>
        """)
    )
    return net, routes


def _run_sumo(net: Path, routes: Path, options: list[str]) -> None:
    cmd = [SUMO, "-n", str(net), "-r", str(routes), "--no-step-log", "--seed", "7", *options]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def _raw_fuel_by_vtype(tripinfo: Path) -> dict[str, float]:
    fuel: dict[str, float] = {}
    for trip in ET.parse(tripinfo).getroot().iter("tripinfo"):
        emissions = trip.find("emissions")
        assert emissions is not None
        fuel[trip.get("vType", "")] = fuel.get(trip.get("vType", ""), 0.0) + float(
            emissions.get("fuel_abs", "nan")
        )
    return fuel


@pytest.mark.sumo
@needs_sumo
def test_real_sumo_run(tmp_path: Path) -> None:
    net, routes = _tiny_scenario(tmp_path)
    out = tmp_path / "run"
    _run_sumo(net, routes, sumo_output_options(out))
    k = compute_kpis(tripinfo_path(out), read_vtypes([routes]))

    assert k.by_mode["car"].trips == 2
    assert k.by_mode["car"].arrived == 2
    assert k.by_mode["bicycle"].trips == 1
    assert k.by_mode["pedestrian"].trips == 1
    assert k.by_mode["pedestrian"].arrived == 1
    assert k.motor_trips == 2
    assert k.fuel_litres > 0.0
    assert k.by_mode["bicycle"].fuel_litres == 0.0
    assert k.by_mode["bicycle"].co2_kg == 0.0

    # Units: SUMO's fuel_abs is mg; litres = mg / density (g/L) / 1000 (mg/g).
    raw_mg = _raw_fuel_by_vtype(tripinfo_path(out))
    assert raw_mg["bike"] == 0.0
    assert k.fuel_petrol_litres == pytest.approx(raw_mg["DEFAULT_VEHTYPE"] / 742.0 / 1000.0)
    assert k.fuel_diesel_litres == pytest.approx(raw_mg["diesel_car"] / 836.0 / 1000.0)
    # A car burns some 0.01-0.1 L on 400 m: a unit slip would be off by 10^3.
    assert 0.005 < k.fuel_litres / 2 < 0.2


@pytest.mark.sumo
@needs_sumo
def test_litres_equal_sumos_own_volumetric_fuel(tmp_path: Path) -> None:
    """Our litres from mg equal the ml SUMO writes in its own volumetric mode."""
    net, routes = _tiny_scenario(tmp_path)
    mass_dir, volume_dir = tmp_path / "mass", tmp_path / "volume"
    _run_sumo(net, routes, sumo_output_options(mass_dir))
    volumetric = sumo_output_options(volume_dir)
    volumetric[volumetric.index("--emissions.volumetric-fuel") + 1] = "true"
    _run_sumo(net, routes, volumetric)

    k = compute_kpis(tripinfo_path(mass_dir), read_vtypes([routes]))
    sumo_ml = _raw_fuel_by_vtype(tripinfo_path(volume_dir))
    # SUMO writes 2 decimals of ml per trip.
    assert k.fuel_petrol_litres * 1000 == pytest.approx(sumo_ml["DEFAULT_VEHTYPE"], abs=0.01)
    assert k.fuel_diesel_litres * 1000 == pytest.approx(sumo_ml["diesel_car"], abs=0.01)
    # ... and a volumetric file is refused rather than misread as mg.
    with pytest.raises(ConfigError):
        read_tripinfo(tripinfo_path(volume_dir))


@pytest.mark.sumo
@needs_sumo
def test_default_emission_classes_match_libsumo(tmp_path: Path) -> None:
    """Our table of SUMO's per-vClass default emission classes equals what SUMO reports."""
    net, _ = _tiny_scenario(tmp_path)
    vclasses = ["passenger", "truck", "trailer", "bus", "coach", "delivery", "emergency",
                "motorcycle", "moped", "bicycle", "pedestrian", "tram", "taxi", "rail"]  # fmt: skip
    additional = tmp_path / "types.add.xml"
    additional.write_text(
        "<additional>\n"
        + "".join(f'    <vType id="t_{v}" vClass="{v}"/>\n' for v in vclasses)
        + "</additional>\n"
    )
    # libsumo in a child process: it is a process-wide singleton other tests may use.
    script = textwrap.dedent(f"""\
        import json, libsumo
        libsumo.start(["sumo", "-n", {str(net)!r}, "-a", {str(additional)!r},
                       "--no-step-log", "--end", "1"])
        ids = libsumo.vehicletype.getIDList()
        print(json.dumps({{t: libsumo.vehicletype.getEmissionClass(t) for t in ids}}))
        libsumo.close()
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60
    )
    reported = json.loads(result.stdout.strip().splitlines()[-1])
    for v in vclasses:
        assert default_emission_class(v) == reported[f"t_{v}"], v
    for vtype_id, info in SUMO_DEFAULT_VTYPES.items():
        assert info.emission_class == reported[vtype_id], vtype_id
