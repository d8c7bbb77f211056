"""The national estimate without SUMO: parameters, sweep, cache, extrapolation arithmetic."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ivri.errors import ConfigError
from ivri.national.cache import (
    RunCache,
    export_runs,
    job_key,
    run_source_files,
    scenario_digest,
    software_fingerprint,
)
from ivri.national.parameters import load_parameters, parse_parameters
from ivri.national.runs import run_jobs
from ivri.national.sweep import Job, build_sweep


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
    assert sweep.seeds == (42,) and sweep.end_s == 300.0 and sweep.warmup_s == 60.0
    # per type: webster, actuated, kar (lo, hi), g40 (lo, hi); no rain application: dry = rain
    assert len(sweep.jobs) == 12
    cells = {(c.itype, c.weather, c.level, c.arm): j for c, j in sweep.cells.items() if c.itype == "crossing"}
    assert cells[("crossing", "dry", "lo", "kar")] == cells[("crossing", "rain", "lo", "kar")]
    assert cells[("crossing", "dry", "lo", "kar")].emergency_per_h == 0.0
    assert cells[("crossing", "dry", "hi", "kar")].emergency_per_h is None
    assert dict(cells[("crossing", "dry", "lo", "g40")].shares)["cyclist"] == 0.1
    assert all(j.warmup_s == 60.0 for j in sweep.jobs)


def test_baseline_is_todays_light_with_kar_pre_emption() -> None:
    params = load_parameters()
    sweep = build_sweep(params, scenarios=["crossing"], seeds=[1], features=["g40", "full", "greenflow", "bus"])
    cells = {(c.level, c.arm): j for c, j in sweep.cells.items() if c.weather == "dry" and c.variant == "peak"}
    kar = cells[("lo", "kar")]
    assert kar.controller == "actuated+greenflow+bus"
    kp = kar.controller_params()
    assert kp["greenflow"]["range_m"] == params.value("baseline.kar_checkin_m")
    assert kp["bus"]["horizon_s"] == pytest.approx(300 / 13.9)
    # the iVRI emergency request comes from ~1 km; the G40 package adds speed advice, not cyclists
    g40 = cells[("lo", "g40")]
    assert g40.controller == "actuated+greenflow+bus+glosa"
    assert g40.controller_params()["greenflow"]["range_m"] == 1000
    assert g40.controller_params()["bus"] == kp["bus"]
    assert cells[("lo", "bus")].controller_params()["bus"]["horizon_s"] == 60
    assert "schwung" in cells[("lo", "full")].controller and "truck" in cells[("lo", "full")].controller
    # the conversion line: Webster-timed fixed time against plain actuation, no EV levels
    web = cells[("lo", "webster")]
    assert web.controller == "fixed-time" and ("hi", "webster") not in cells
    assert set(web.controller_params()) == {"stage_green_s", "offset_s"}
    assert cells[("lo", "actuated")].controller == "actuated"
    # a second equipped share (the other end of the range) instead of scaling through zero; the
    # baseline runs at it too where it has the application itself (bus priority)
    assert sweep.share_levels["bus"] == params["equipped.bus"].low
    assert dict(cells[("share", "bus")].shares)["bus"] == params["equipped.bus"].low
    assert dict(cells[("share", "kar")].shares)["bus"] == params["equipped.bus"].low
    assert ("share", "g40") not in cells and ("share", "greenflow") not in cells


def test_full_sweep_defaults_to_twenty_seeds_and_a_counted_span() -> None:
    sweep = build_sweep(load_parameters(), scenarios=["crossing"], features=["g40"])
    assert len(sweep.seeds) == 20 and len(set(sweep.seeds)) == 20
    assert sweep.warmup_s == 900.0 and sweep.end_s == 900.0 + 7200.0
    short = build_sweep(load_parameters(), scenarios=["crossing"], features=["g40"], seeds=[1],
                        warmup_s=120.0, span_s=480.0)
    assert (short.warmup_s, short.end_s) == (120.0, 600.0)
    with pytest.raises(ConfigError, match="counted span"):
        build_sweep(load_parameters(), scenarios=["crossing"], seeds=[1], warmup_s=600.0, end_s=300.0)


def test_a_package_without_its_parts_says_its_shares_are_not_varied() -> None:
    alone = build_sweep(load_parameters(), scenarios=["crossing"], features=["full"], seeds=[1])
    note = next(n for n in alone.notes if n.startswith("full:"))
    for part in ("schwung", "crosswalk", "bus", "truck", "glosa"):
        assert part in note
    assert "greenflow" not in note  # its share is interpolated through the emergency levels
    with_parts = build_sweep(load_parameters(), scenarios=["crossing"], features=["g40", "glosa"], seeds=[1])
    assert not any(n.startswith("g40:") for n in with_parts.notes)


def test_sweep_leaves_out_unregistered_applications_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    import ivri.controllers as ctl

    apps = {k: v for k, v in ctl.APPLICATIONS.items() if k != "glosa"}
    monkeypatch.setattr(ctl, "APPLICATIONS", apps)
    sweep = build_sweep(load_parameters(), scenarios=["crossing"], seeds=[1])
    assert "glosa" not in sweep.features and "g40" not in sweep.features
    assert any("glosa" in n for n in sweep.notes)


def test_sweep_rejects_unknown_type_and_network_without_share(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown intersection type 'roundabout'"):
        build_sweep(load_parameters(), scenarios=["roundabout"])
    with pytest.raises(ConfigError, match="unknown real-world type"):
        build_sweep(load_parameters(), scenarios=["realworld:atlantis"])
    from ivri.sumo_networks import get_scenario

    cfg = get_scenario("crossing:short").sumocfg
    with pytest.raises(ConfigError, match=r"'type_share.crossing' is already|already in the sweep"):
        build_sweep(load_parameters(), scenarios=["crossing"], networks=[cfg])
    copy_cfg = cfg.parent / "crossing.short.sumocfg"
    with pytest.raises(ConfigError, match=r"type_share.mine"):
        mine = tmp_path / "mine.sumocfg"
        mine.write_text(copy_cfg.read_text(encoding="utf-8"), encoding="utf-8")
        build_sweep(load_parameters(), scenarios=["tjunction"], networks=[mine])


def test_a_network_without_emergency_vehicles_gets_converted_ones_at_the_hi_level(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from ivri.sumo_networks import get_scenario

    src = get_scenario("crossing:peak").sumocfg
    routes = ET.parse(src.parent / "crossing.peak.rou.xml")
    root = routes.getroot()
    for el in list(root):
        if el.get("vClass") == "emergency" or el.get("type") == "emergency":
            root.remove(el)
    routes.write(tmp_path / "mine.rou.xml")
    mine = tmp_path / "mine.sumocfg"
    mine.write_text(f'<configuration><input><net-file value="{src.parent / "crossing.net.xml"}"/>'
                    '<route-files value="mine.rou.xml"/></input></configuration>', encoding="utf-8")
    data = tomllib.loads(resources.files("ivri.national").joinpath("parameters.toml").read_text(encoding="utf-8"))
    data["parameters"]["type_share"]["mine"] = {"value": 0.05, "low": 0.0, "high": 0.1, "unit": "share",
                                                 "source": "test"}
    sweep = build_sweep(parse_parameters(data), scenarios=["crossing"], networks=[mine], seeds=[1],
                        features=["g40"])
    ev = {(c.itype, c.level): j.emergency_per_h for c, j in sweep.cells.items() if c.arm == "kar"}
    assert ev[("mine", "hi")] == 3.0 and ev[("mine", "lo")] == 0.0
    assert ev[("crossing", "hi")] is None  # the bundled demand keeps its own emergency vehicles
    assert any(n.startswith("mine: the demand has no emergency vehicles") for n in sweep.notes)


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
        job_key(_job(warmup_s=30.0), fp, "scen"),
        job_key(_job(emergency_per_h=0.0), fp, "scen"),
        job_key(_job(params='{"green_s":30}'), fp, "scen"),
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


_RUN_ONE_JOB = """
import json, sys
from ivri.national.runs import execute
from ivri.national.sweep import Job
rec = execute(Job(scenario="crossing:short", controller="actuated+greenflow+bus+glosa+schwung+rain", seed=42,
                  end_s=60.0, shares=(("cyclist", 0.1),), rain_mm_h=2.0, warmup_s=10.0, emergency_per_h=3.0))
assert rec["simulated_s"] > 0
print(json.dumps(sorted(m.__file__ for n, m in list(sys.modules.items())
                        if n.split(".")[0] in ("ivri", "controllers") and getattr(m, "__file__", None))))
"""


@pytest.mark.sumo
def test_every_module_a_run_imports_is_in_the_cache_key() -> None:
    # A record must not outlive the code that made it: run one short job of the G40 package
    # with rain in a fresh interpreter and check that each ivri module it loaded is hashed into
    # the fingerprint.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _RUN_ONE_JOB], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = {Path(f).resolve() for f in json.loads(done.stdout.strip().splitlines()[-1])}
    packages = run_source_files()
    root = packages[0][0]
    hashed = {p.resolve() for _, files in packages for p in files}
    assert len(loaded) > 20 and root / "engine.py" in hashed
    # the cache and the job order are loaded with runs.py but do not shape a record
    bookkeeping = {root / "national" / "cache.py", root / "national" / "schedule.py"}
    missing = sorted(str(p) for p in loaded - hashed - bookkeeping)
    assert not missing, f"modules a run imports but the cache key does not hash: {missing}"


def test_run_cache_round_trip_and_counts(tmp_path: Path) -> None:
    cache = RunCache(tmp_path / "c")
    assert cache.get("k") is None and cache.misses == 1
    cache.put("k", {"a": 1})
    assert cache.get("k") == {"a": 1} and cache.hits == 1
    assert len(cache) == 1 and not list((tmp_path / "c").glob(".tmp-*"))
    (tmp_path / "c" / "broken.json").write_text("{", encoding="utf-8")
    assert cache.get("broken") is None


def test_exported_runs_load_into_another_cache(tmp_path: Path) -> None:
    key_a, key_b = "a" * 64, "b" * 64
    records = {key_b: {"vehicle_loss_hours": 2.5, "stops": 7}, key_a: {"vehicle_loss_hours": 1.0}}
    path = export_runs(tmp_path / "runs.jsonl.gz", records)
    again = export_runs(tmp_path / "again.jsonl.gz", dict(reversed(records.items())))
    assert path.read_bytes() == again.read_bytes()  # same runs, same file (no time stamp, key order)
    cache = RunCache(tmp_path / "c")
    cache.put(key_a, {"vehicle_loss_hours": 1.0})
    assert cache.load(path) == 1  # key_a was there already
    assert cache.get(key_b) == {"vehicle_loss_hours": 2.5, "stops": 7} and len(cache) == 2


def test_a_malformed_runs_file_names_its_line_and_adds_nothing(tmp_path: Path) -> None:
    import gzip

    good = json.dumps({"key": "c" * 64, "record": {"vehicle_loss_hours": 1.0}})
    for bad, why in ((good + "\n{not json\n", "line 2"),
                     (json.dumps({"key": "short", "record": {"vehicle_loss_hours": 1.0}}) + "\n", "line 1"),
                     (good + "\n" + json.dumps({"key": "d" * 64, "record": {"stops": 3}}) + "\n", "line 2")):
        path = tmp_path / "runs.jsonl.gz"
        path.write_bytes(gzip.compress(bad.encode()))
        cache = RunCache(tmp_path / "c")
        with pytest.raises(ConfigError, match=why):
            cache.load(path)
        assert len(cache) == 0
    (tmp_path / "plain.jsonl.gz").write_text(good, encoding="utf-8")  # not gzip
    with pytest.raises(ConfigError, match="plain.jsonl.gz: cannot read runs"):
        RunCache(tmp_path / "c").load(tmp_path / "plain.jsonl.gz")


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


def _failing_run(job: Job) -> dict[str, Any]:
    if job.seed == 2:
        raise ValueError("broken network")
    return _fake_run(job)


@pytest.mark.filterwarnings(*_DASK_FILTERS)
def test_run_jobs_raises_on_a_failed_run_unless_told_to_go_on(tmp_path: Path) -> None:
    from dask.distributed import Client, LocalCluster

    jobs = [_job(seed=s) for s in (1, 2, 3)]
    failed: list[tuple[int, str]] = []
    with (LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
          Client(cluster) as client):
        with pytest.raises(ValueError, match="broken network"):
            run_jobs(jobs, RunCache(tmp_path / "a"), client, fn=_failing_run)
        results, stats = run_jobs(jobs, RunCache(tmp_path / "b"), client, fn=_failing_run,
                                  on_error=lambda job, exc: failed.append((job.seed, str(exc))))
    assert failed == [(2, "broken network")]
    assert sorted(j.seed for j in results) == [1, 3]
    assert len(RunCache(tmp_path / "b")) == 2  # the failed run is not cached




def test_profiles_set_the_hours_of_each_day_type() -> None:
    from ivri.national.profiles import hours_by_day_type, parse_profiles

    flat = [0.1] * 6 + [0.5] * 2 + [1.0] * 2 + [0.5] * 10 + [0.1] * 4
    prof = parse_profiles({"source": "test", "weekday": {"days_per_year": 200, "weights": flat},
                           "weekend": {"days_per_year": 100, "weights": [0.3] * 12 + [0.0] * 12}})
    hours = hours_by_day_type(prof)
    assert hours == {"weekday_peak": 400, "weekday_offpeak": 2400, "weekend": 1200, "night": 2000 + 1200}
    data = _bundled()
    p = parse_parameters(data)
    assert sum(p.value(f"day_hours.{d}") for d in p.day_types) == pytest.approx(365 * 24)
    assert "[profiles]" in p["day_hours.night"].source
    with pytest.raises(ConfigError, match=r"\[profiles\].*weights.*24 hourly weights"):
        parse_parameters({**data, "profiles": {**data["profiles"], "weekend": {"days_per_year": 100,
                                                                               "weights": [1.0] * 23}}})


def test_progress_log_for_a_log_file_is_throttled_and_estimates_from_simulated_runs() -> None:
    from ivri.national.cli import _ProgressLog

    log = _ProgressLog(total=10, cached=4, started=0.0)
    # the cached runs come first and at once: no line, and they do not set the rate
    assert [log.line(k, 1.0) for k in range(1, 5)] == [None] * 4
    assert log.line(5, 30.0) is None  # within a minute of the last line
    # 2 runs simulated in 120 s since the cache was read: 60 s a run, 4 runs to go
    assert log.line(6, 121.0) == "runs 6/10 (4 from the cache), 2 min elapsed, about 4 min to go"
    assert log.line(7, 150.0) is None
    assert log.line(10, 200.0) == "runs 10/10 (4 from the cache), 3 min elapsed"


def test_progress_log_weighs_the_runs_left_by_their_expected_cost() -> None:
    from ivri.national.cli import _ProgressLog
    from ivri.national.schedule import expected_cost

    grid, crossing = _job(scenario="grid:peak", end_s=8100.0), _job(scenario="crossing:offpeak", end_s=8100.0)
    assert expected_cost(grid) > 4 * expected_cost(crossing)  # measured: 29 s against 5 s
    costs = {grid: 30.0, crossing: 5.0, _job(seed=1): 5.0, _job(seed=2): 5.0}
    log = _ProgressLog(total=4, cached=0, started=0.0, costs=costs)
    # the dear run came first and took 60 s: the three cheap ones left take about 30 s, not 180 s
    assert log.line(1, 60.0, grid) == "runs 1/4 (0 from the cache), 1 min elapsed, about 30 s to go"
