"""The national estimate without SUMO: parameters, sweep, cache, extrapolation arithmetic."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from ivri.errors import ConfigError
from ivri.national.cache import RunCache, job_key, scenario_digest, software_fingerprint
from ivri.national.effects import METRICS, EffectTable
from ivri.national.extrapolate import (
    monte_carlo,
    national,
    per_intersection_year,
    summarise,
    tornado,
)
from ivri.national.parameters import load_parameters, parse_parameters
from ivri.national.runs import run_jobs
from ivri.national.sweep import ALL, BASELINES, Job, Sweep, build_sweep


def _bundled() -> dict[str, Any]:
    text = resources.files("ivri.national").joinpath("parameters.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _param(value: float, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"value": value, "low": value if low is None else low, "high": value if high is None else high,
            "source": "test"}


# --- parameter file ------------------------------------------------------------------------------


def test_bundled_parameters_load_and_every_one_has_a_source() -> None:
    params = load_parameters()
    assert params.value("national.intersections") == 5500
    assert all(p.source.strip() for p in params.parameters.values())
    assert "national.intersections" in params.uncertain()
    assert "reference.g40_vehicle_loss_hours" not in params.uncertain()


def test_missing_source_is_an_error_naming_the_parameter() -> None:
    data = _bundled()
    del data["parameters"]["national"]["rollout_share"]["source"]
    with pytest.raises(ConfigError, match=r"'national.rollout_share'.*source"):
        parse_parameters(data)


def test_empty_source_is_an_error_naming_the_parameter() -> None:
    data = _bundled()
    data["parameters"]["fuel"]["density_diesel_g_per_l"]["source"] = "  "
    with pytest.raises(ConfigError, match=r"'fuel.density_diesel_g_per_l'.*source"):
        parse_parameters(data)


def test_range_that_excludes_the_value_is_an_error_naming_the_parameter() -> None:
    data = _bundled()
    data["parameters"]["national"]["intersections"]["high"] = 5000.0
    with pytest.raises(ConfigError, match=r"'national.intersections'.*range \[5000, 5000\] excludes value 5500"):
        parse_parameters(data)


def test_missing_parameter_is_an_error_naming_it() -> None:
    data = _bundled()
    del data["parameters"]["day_hours"]["night"]
    with pytest.raises(ConfigError, match=r"'day_hours.night' is missing"):
        parse_parameters(data)


def test_bad_parameter_file_exits_2_with_one_line(tmp_path: Path) -> None:
    from ivri.national.__main__ import app

    bad = tmp_path / "p.toml"
    text = resources.files("ivri.national").joinpath("parameters.toml").read_text(encoding="utf-8")
    bad.write_text(text.replace("value = 5500", "value = 7000"), encoding="utf-8")
    result = CliRunner().invoke(app, ["--out", str(tmp_path / "o"), "--params", str(bad)])
    assert result.exit_code == 2
    assert "national.intersections" in result.output and "excludes value 7000" in result.output


# --- sweep ---------------------------------------------------------------------------------------


def test_quick_sweep_is_small_and_shares_runs_across_weather() -> None:
    sweep = build_sweep(load_parameters(), quick=True)
    assert sweep.types == ("crossing", "tjunction")
    assert sweep.seeds == (42,) and sweep.end_s == 300.0
    # per type: fixed-time, actuated, greenflow (dry = rain), all dry, all rain
    assert len(sweep.jobs) == 10
    cells = {(c.itype, c.weather, c.arm): j for c, j in sweep.cells.items() if c.itype == "crossing"}
    assert cells[("crossing", "dry", "actuated")] == cells[("crossing", "rain", "actuated")]
    assert cells[("crossing", "dry", ALL)].rain_mm_h == 0.0
    assert cells[("crossing", "rain", ALL)].rain_mm_h == 2.0
    assert dict(cells[("crossing", "dry", "greenflow")].shares)["cyclist"] == 0.1


def test_sweep_skips_glosa_with_a_note_when_it_is_not_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    import ivri.controllers as ctl

    apps = {k: v for k, v in ctl.APPLICATIONS.items() if k != "glosa"}
    monkeypatch.setattr(ctl, "APPLICATIONS", apps)
    sweep = build_sweep(load_parameters(), scenarios=["crossing"], seeds=[1])
    assert "glosa" not in sweep.features and "glosa" not in sweep.all_spec
    assert any("glosa" in n for n in sweep.notes)


def test_sweep_rejects_unknown_type_and_network_without_share(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown intersection type 'roundabout'"):
        build_sweep(load_parameters(), scenarios=["roundabout"])
    from ivri.sumo_networks import get_scenario

    cfg = get_scenario("crossing:short").sumocfg
    with pytest.raises(ConfigError, match=r"'type_share.crossing' is already|already in the sweep"):
        build_sweep(load_parameters(), scenarios=["crossing"], networks=[cfg])
    copy_cfg = cfg.parent / "crossing.short.sumocfg"
    with pytest.raises(ConfigError, match=r"type_share.mine"):
        mine = tmp_path / "mine.sumocfg"
        mine.write_text(copy_cfg.read_text(encoding="utf-8"), encoding="utf-8")
        build_sweep(load_parameters(), scenarios=["tjunction"], networks=[mine])


# --- cache ---------------------------------------------------------------------------------------


def _job(**kw: Any) -> Job:
    base: dict[str, Any] = {"scenario": "crossing:short", "controller": "actuated", "seed": 42, "end_s": 60.0,
                            "shares": (("cyclist", 0.1),), "rain_mm_h": None}
    return Job(**{**base, **kw})


def test_job_key_changes_with_everything_that_defines_a_run() -> None:
    fp = {"ivri": "0.1.0", "sumo": "1.28.0", "source": "abc", "record": "1"}
    key = job_key(_job(), fp, "scen")
    assert key == job_key(_job(), dict(fp), "scen")
    variants = [
        job_key(_job(seed=43), fp, "scen"),
        job_key(_job(controller="fixed-time"), fp, "scen"),
        job_key(_job(end_s=120.0), fp, "scen"),
        job_key(_job(shares=(("cyclist", 0.2),)), fp, "scen"),
        job_key(_job(controller="actuated+rain", rain_mm_h=2.0), fp, "scen"),
        job_key(_job(), {**fp, "sumo": "1.29.0"}, "scen"),
        job_key(_job(), {**fp, "ivri": "0.2.0"}, "scen"),
        job_key(_job(), {**fp, "source": "def"}, "scen"),
        job_key(_job(), fp, "edited-network"),
    ]
    assert key not in variants and len(set(variants)) == len(variants)


def test_fingerprint_and_scenario_digest_are_stable() -> None:
    fp = software_fingerprint()
    assert set(fp) == {"ivri", "sumo", "source", "record"}
    assert scenario_digest("crossing:short") == scenario_digest("crossing:short")
    assert scenario_digest("crossing:short") != scenario_digest("tjunction:short")


def test_run_cache_round_trip_and_counts(tmp_path: Path) -> None:
    cache = RunCache(tmp_path / "c")
    assert cache.get("k") is None and cache.misses == 1
    cache.put("k", {"a": 1})
    assert cache.get("k") == {"a": 1} and cache.hits == 1
    assert len(cache) == 1 and not list((tmp_path / "c").glob(".tmp-*"))
    (tmp_path / "c" / "broken.json").write_text("{", encoding="utf-8")
    assert cache.get("broken") is None


CALLS: list[Job] = []


def _fake_run(job: Job) -> dict[str, Any]:
    CALLS.append(job)
    return {"vehicle_loss_hours": float(job.seed), "wall_time_s": 0.0}


# Known messages of dask's in-process cluster at shutdown; nothing else is filtered.
_DASK_FILTERS = [
    "ignore:Port .* is already in use:UserWarning",
    "ignore::ResourceWarning",
]


@pytest.mark.filterwarnings(*_DASK_FILTERS)
def test_run_jobs_computes_misses_only(tmp_path: Path) -> None:
    from dask.distributed import Client, LocalCluster

    cache = RunCache(tmp_path / "cache")
    jobs = [_job(seed=s) for s in (1, 2, 3)]
    CALLS.clear()
    with (LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
          Client(cluster) as client):
        results, stats = run_jobs(jobs, cache, client, fn=_fake_run)
        assert (stats.hits, stats.misses) == (0, 3) and len(CALLS) == 3
        assert results[jobs[1]]["vehicle_loss_hours"] == 2.0
        # one new job: only that one runs
        more = [*jobs, _job(seed=4)]
        results, stats = run_jobs(more, cache, client, fn=_fake_run)
        assert (stats.hits, stats.misses) == (3, 1) and len(CALLS) == 4
    # everything cached: no client needed
    results, stats = run_jobs(more, cache, None, fn=_fake_run)
    assert (stats.hits, stats.misses) == (4, 0) and len(CALLS) == 4
    with pytest.raises(RuntimeError, match="no Dask client"):
        run_jobs([_job(seed=9)], cache, None, fn=_fake_run)


# --- extrapolation arithmetic --------------------------------------------------------------------


def _known_params(**over: float) -> Any:
    vals = {
        "national.intersections": 1000, "national.rollout_share": 0.5,
        "type_share.crossing": 0.6, "type_share.tjunction": 0.2,
        "day_hours.peak": 100, "day_hours.night": 200, "day_scale.peak": 1.0, "day_scale.night": 0.5,
        "weather.rain_hour_share": 0.1, "weather.rain_mm_h": 2.0,
        "equipped.emergency": 1.0, "equipped.bus": 1.0, "equipped.truck": 1.0, "equipped.cyclist": 0.1,
        "equipped.slow_pedestrian": 0.5, "equipped.car": 0.1,
        "emergency.passages_per_intersection_year": 876.0,
        "baseline.fixed_time_share": 0.25,
        "fuel.density_petrol_g_per_l": 742.0, "fuel.density_diesel_g_per_l": 832.0,
        "reference.g40_vehicle_loss_hours": 467000, "reference.g40_fuel_litres": 17e6,
    }
    vals.update(over)
    tree: dict[str, Any] = {}
    for name, v in vals.items():
        node = tree
        *path, leaf = name.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = _param(v, v * 0.5, v * 2.0) if name == "national.intersections" else _param(v)
    return parse_parameters({"day_types": {"peak": "peak", "night": "offpeak"}, "parameters": tree})


def _zero() -> dict[str, np.ndarray]:
    return {m: np.zeros(1) for m in (*METRICS, "ev_s_per_passage")}


def _known_table(params: Any) -> EffectTable:
    """Effects per intersection-hour chosen so the result can be computed by hand."""
    sweep = Sweep(types=("crossing", "tjunction"), variants=("peak", "offpeak"),
                  day_variant={"peak": "peak", "night": "offpeak"},
                  features=("rain", "schwung", "greenflow", ALL), seeds=(42,), end_s=None,
                  shares={"cyclist": 0.1, "emergency": 1.0}, cells={})
    effects: dict[tuple[str, str, str, str, str], dict[str, np.ndarray]] = {}
    for t in sweep.types:
        for v in sweep.variants:
            for w in ("dry", "rain"):
                for b in BASELINES:
                    for f in sweep.features:
                        effects[(t, v, w, b, f)] = _zero()
    # rain at the crossing, peak: 4 / 2 h per int-hour vs fixed-time / actuated when dry, 8 / 6 in rain
    for (w, b), x in {("dry", "fixed-time"): 4.0, ("dry", "actuated"): 2.0,
                      ("rain", "fixed-time"): 8.0, ("rain", "actuated"): 6.0}.items():
        effects[("crossing", "peak", w, b, "rain")]["veh_h"] = np.array([x])
    for w in ("dry", "rain"):
        for b in BASELINES:
            effects[("crossing", "offpeak", w, b, "rain")]["veh_h"] = np.array([1.0])
            effects[("crossing", "peak", w, b, "rain")]["petrol_kg"] = np.array([0.742])
            effects[("crossing", "offpeak", w, b, "rain")]["petrol_kg"] = np.array([0.742])
            for v in sweep.variants:
                effects[("tjunction", v, w, b, "rain")]["veh_h"] = np.array([2.0])
                effects[("crossing", v, w, b, "schwung")]["cyclist_h"] = np.array([1.0])
                effects[("crossing", v, w, b, ALL)]["cyclist_h"] = np.array([3.0])
                effects[("crossing", v, w, b, "greenflow")]["veh_h"] = np.array([-0.5])
                effects[("crossing", v, w, b, "greenflow")]["ev_s_per_passage"] = np.array([10.0])
    ev_rate = {(t, v): np.array([1.0]) for t in sweep.types for v in sweep.variants}
    return EffectTable(sweep=sweep, effects=effects, ev_rate=ev_rate)


def test_extrapolation_on_known_inputs() -> None:
    params = _known_params()
    table = _known_table(params)
    p = params.values()
    # crossing: peak 100 h x [0.9 (0.25*4 + 0.75*2) + 0.1 (0.25*8 + 0.75*6)] = 290; night 200 x 0.5 x 1 = 100
    assert per_intersection_year(table, p, "crossing", "rain")["veh_h"] == pytest.approx(390.0)
    assert per_intersection_year(table, p, "tjunction", "rain")["veh_h"] == pytest.approx(400.0)
    # petrol: 0.742 kg per int-hour = 1 L at 742 g/L; 100 + 100 weighted hours
    assert per_intersection_year(table, p, "crossing", "rain")["fuel_l"] == pytest.approx(200.0)
    res = national(table, p, "rain")
    # 1000 x 0.5 x (0.75 x 390 + 0.25 x 400); type shares 0.6 / 0.2 renormalised to 0.75 / 0.25
    assert res["veh_h"] == pytest.approx(196_250.0)
    assert res["fuel_l"] == pytest.approx(500 * 0.75 * 200.0)
    # a denser fuel gives fewer litres
    assert national(table, {**p, "fuel.density_petrol_g_per_l": 1484.0}, "rain")["fuel_l"] == pytest.approx(37_500.0)


def test_equipped_share_scales_effects_and_all_is_corrected_term_by_term() -> None:
    params = _known_params()
    table = _known_table(params)
    p = params.values()
    base = per_intersection_year(table, p, "crossing", "schwung")["cyclist_h"]
    assert base == pytest.approx(200.0)  # (100 x 1 + 200 x 0.5) x 1
    doubled = per_intersection_year(table, {**p, "equipped.cyclist": 0.2}, "crossing", "schwung")["cyclist_h"]
    assert doubled == pytest.approx(400.0)
    # all: 3 per int-hour + (k - 1) x schwung's 1 -> 4 at k = 2
    assert per_intersection_year(table, p, "crossing", ALL)["cyclist_h"] == pytest.approx(600.0)
    assert per_intersection_year(table, {**p, "equipped.cyclist": 0.2}, "crossing", ALL)["cyclist_h"] == \
        pytest.approx(800.0)


def test_greenflow_is_rescaled_to_real_emergency_passages() -> None:
    params = _known_params()
    table = _known_table(params)
    p = params.values()
    e = per_intersection_year(table, p, "crossing", "greenflow")
    # real rate 876 / 300 h = 2.92 per int-hour vs 1.0 simulated: -0.5 x 2.92 x 200 weighted hours
    assert e["veh_h"] == pytest.approx(-0.5 * 876 / 300 * 200)
    # 876 passages x 10 s x hour-weighted scale (100/300 x 1 + 200/300 x 0.5) / 3600
    assert e["ev_h"] == pytest.approx(876 * 10 * (1 / 3 + 1 / 3) / 3600)


def test_monte_carlo_is_the_same_arithmetic_per_draw() -> None:
    params = _known_params()
    table = _known_table(params)
    draws, info = monte_carlo(table, params, n=500, rng_seed=1)
    assert info["varied"] == ["national.intersections"]
    d = draws["rain"]["veh_h"]
    assert d.shape == (500,)
    # only the number of intersections varies and the result is linear in it
    rng = np.random.default_rng(1)
    n_int = params["national.intersections"].sample(rng, 500)
    assert np.allclose(d, n_int * 196.25)
    s = summarise(national(table, params.values(), "rain"), draws["rain"])
    assert s["veh_h"]["p5"] < s["veh_h"]["central"] < s["veh_h"]["p95"]
    rows = tornado(table, params, "rain")
    assert rows[0]["name"] == "national.intersections"
    assert rows[0]["veh_h_low"] == pytest.approx(98_125.0) and rows[0]["veh_h_high"] == pytest.approx(392_500.0)


def test_seed_resampling_picks_paired_seeds() -> None:
    params = _known_params()
    table = _known_table(params)
    table = copy.copy(table)
    table.sweep = copy.copy(table.sweep)
    table.sweep.seeds = (1, 2)
    for m in table.effects.values():
        for k in list(m):
            m[k] = np.repeat(m[k], 2)
    table.effects[("tjunction", "peak", "dry", "actuated", "rain")]["veh_h"] = np.array([0.0, 4.0])
    table.ev_rate = {k: np.repeat(v, 2) for k, v in table.ev_rate.items()}
    p = params.values()
    mean = per_intersection_year(table, p, "tjunction", "rain")["veh_h"]
    first = per_intersection_year(table, p, "tjunction", "rain", {"tjunction": 0})["veh_h"]
    second = per_intersection_year(table, p, "tjunction", "rain", {"tjunction": 1})["veh_h"]
    assert first < mean < second and mean == pytest.approx((first + second) / 2)
    rows = tornado(table, params, "rain")
    assert any(r["name"] == "simulation seed" for r in rows)


def test_share_scaling_leaves_the_gain_of_actuation_over_fixed_time_alone() -> None:
    params = _known_params(**{"baseline.fixed_time_share": 1.0})
    table = _known_table(params)
    for v in table.sweep.variants:
        for w in ("dry", "rain"):
            # vs fixed time: 10 (9 from actuation itself + 1 from the app); vs actuated: 1
            table.effects[("crossing", v, w, "fixed-time", "schwung")]["veh_h"] = np.array([10.0])
            table.effects[("crossing", v, w, "actuated", "schwung")]["veh_h"] = np.array([1.0])
    p = params.values()
    assert per_intersection_year(table, p, "crossing", "schwung")["veh_h"] == pytest.approx(200 * 10.0)
    # twice the share doubles only the app's own part: 9 + 2 x 1 = 11
    doubled = per_intersection_year(table, {**p, "equipped.cyclist": 0.2}, "crossing", "schwung")
    assert doubled["veh_h"] == pytest.approx(200 * 11.0)
