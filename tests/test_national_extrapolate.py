"""The national arithmetic on known inputs: warm-up windows, paired seeds, emergency levels,
the conversion line, fuel for vehicles waiting to enter; and the counted window of a run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivri.national.effects import CONVERSION_LINE, compute_effects
from ivri.national.extrapolate import national, per_intersection_year
from ivri.national.parameters import load_parameters
from ivri.national.power import mde
from ivri.national.sweep import Job, build_sweep

SEEDS = (1, 2, 3)
#: demand noise common to every arm of a seed (paired seeds cancel it)
COMMON = {1: 0.0, 2: 4.0, 3: -4.0}
#: noise of the G40 arm only (what the paired difference keeps): mean 0, sd 0.3
OWN = {1: 0.3, 2: -0.3, 3: 0.0}
WINDOW_S = 3600.0  # counted; the warm-up before it is simulated but not in the records


def _veh_h(arm: str, level: str, seed: int) -> float:
    base = {"webster": 15.0, "actuated": 10.0, "kar": 10.0, "g40": 9.0, "schwung": 9.5}[arm]
    if level == "hi" and arm in ("kar", "g40"):
        base += {"kar": 2.0, "g40": 1.0}[arm]  # emergency vehicles cost the baseline more
    if level == "share" and arm == "schwung":
        base -= 0.5  # at the second cyclist share (0.3) schwung saves 1.0 instead of 0.5
    return base + COMMON[seed] + (OWN[seed] if arm == "g40" else 0.0)


def _record(arm: str, level: str, seed: int) -> dict[str, Any]:
    g40 = arm == "g40"
    return {
        "window_s": WINDOW_S, "simulated_s": 4200.0, "n_intersections": 1,
        "vehicle_loss_hours": _veh_h(arm, level, seed), "limit_loss_hours": _veh_h(arm, level, seed) + 1.0,
        "depart_delay_hours": 0.5 if g40 else 1.0, "stops": 100 - (10 if g40 else 0),
        "petrol_kg": 5.0 - (0.742 if g40 else 0.0), "diesel_kg": 1.0, "co2_kg": 20.0,
        "cyclist_loss_h": 2.0, "emergency_time_lost_s": 30.0 if (level == "hi" and not g40) else 0.0,
        "emergency_trips": 3 if level == "hi" else 0,
        "emergency_passages": round(3 * 4200 / 3600) if level == "hi" else 0,
    }


def _runs(scenarios: tuple[str, ...] = ("crossing",), wall_s: dict[str, float] | None = None
          ) -> tuple[Any, Any, dict[Job, dict[str, Any]]]:
    """Parameters, sweep and known records (with ``wall_s[scenario]`` as each run's wall time)."""
    params = load_parameters()
    sweep = build_sweep(params, scenarios=list(scenarios), features=["g40", "schwung"], seeds=list(SEEDS),
                        warmup_s=600.0, span_s=WINDOW_S)
    cell_of = {}
    for cell, job in sweep.cells.items():
        cell_of.setdefault(job, cell)
    results: dict[Job, dict[str, Any]] = {
        job: {**_record(c.arm, c.level, c.seed), "wall_time_s": (wall_s or {}).get(c.itype, 0.0)}
        for job, c in cell_of.items()}
    return params, sweep, results


def _table() -> tuple[Any, Any]:
    params, sweep, results = _runs()
    return params, compute_effects(sweep, results)


def test_paired_seeds_cancel_the_common_noise_and_leave_the_treatments() -> None:
    _, table = _table()
    e = table.get("crossing", "peak", "dry", "lo", "g40")["veh_h"]
    assert e == pytest.approx([1.0 - 0.3, 1.0 + 0.3, 1.0])
    assert table.get("crossing", "peak", "dry", "hi", "g40")["veh_h"] == pytest.approx([1.7, 2.3, 2.0])
    assert table.get("crossing", "peak", "rain", "lo", CONVERSION_LINE)["veh_h"] == pytest.approx([5.0] * 3)
    row = next(r for r in table.power() if r["feature"] == "g40" and r["level"] == "lo")
    # the levels vary by +/- 4 h between seeds; the paired difference only by its own 0.3
    assert row["mean"] == pytest.approx(1.0) and row["sd"] == pytest.approx(0.3)
    assert row["mde"] == pytest.approx(mde(0.3, 3))
    assert row["low"] < 1.0 < row["high"]
    assert table.ev_rate[("crossing", "peak", "lo")] == pytest.approx([0.0] * 3)
    assert table.ev_rate[("crossing", "peak", "hi")] == pytest.approx([4 / (4200 / 3600)] * 3)


def test_national_figures_by_hand() -> None:
    params, table = _table()
    p = params.values()
    days = table.sweep.day_variant
    weighted = sum(p[f"day_hours.{d}"] * p[f"day_scale.{d}"] for d in days)
    hours = sum(p[f"day_hours.{d}"] for d in days)
    # the emergency part is interpolated between 0 and the simulated rate, at the real one
    x_real = p["emergency.passages_per_intersection_year"] / hours
    x_hi = 4 / (4200 / 3600)
    e_g40 = 1.0 + (2.0 - 1.0) * x_real / x_hi
    got = per_intersection_year(table, p, "crossing", "g40")
    assert got["veh_h"] == pytest.approx(e_g40 * weighted)
    assert got["stops"] == pytest.approx(10.0 * weighted)
    # fuel: 1 L of petrol x fleet factor + 0.5 h of depart delay x the idle rate, per int-hour
    assert got["fuel_l"] == pytest.approx((1.0 * p["fuel.fleet_factor"] + 0.5 * p["fuel.idle_l_per_h"]) * weighted)
    # emergency time: 10 s per trip saved at 'hi', for the real passages of the year
    assert got["ev_h"] == pytest.approx(p["emergency.passages_per_intersection_year"] * 10.0 / 3600.0)
    nat = national(table, p, "g40")
    assert nat["veh_h"] == pytest.approx(p["national.intersections"] * p["national.rollout_share"] * e_g40 * weighted)
    # the conversion line scales with the fixed-time share, not the roll-out
    conv = national(table, p, CONVERSION_LINE)
    assert conv["veh_h"] == pytest.approx(p["national.intersections"] * p["baseline.fixed_time_share"] * 5.0 * weighted)
    assert conv["ev_h"] == 0.0
    # schwung ran at two cyclist shares, 0.1 (saving 0.5) and 0.3 (saving 1.0): at 0.2 the
    # effect is interpolated between them (0.75), not scaled through zero (which would say 1.0)
    assert table.sweep.share_levels["schwung"] == pytest.approx(0.3)
    s = per_intersection_year(table, {**p, "equipped.cyclist": 0.2}, "crossing", "schwung")
    assert s["veh_h"] == pytest.approx(0.75 * weighted)
    assert per_intersection_year(table, p, "crossing", "schwung")["veh_h"] == pytest.approx(0.5 * weighted)


def _tripinfo(tmp_path: Path) -> Path:
    rows = [
        # depart, departDelay, duration, routeLength, timeLoss, waitingCount, fuel mg, type
        (100.0, 0.0, 60.0, 500.0, 20.0, 1, 50000.0, "car"),        # departs in the warm-up
        (650.0, 10.0, 80.0, 500.0, 30.0, 2, 60000.0, "car"),       # wanted 640: counted
        (598.0, 5.0, 70.0, 500.0, 25.0, 1, 40000.0, "car_diesel"),  # wanted 593: in the warm-up
        (700.0, 0.0, 90.0, 600.0, 40.0, 3, 30000.0, "bike"),       # a cyclist, counted
    ]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<tripinfos>"]
    for k, (d, dd, dur, length, loss, stops, fuel, vt) in enumerate(rows):
        lines.append(f'<tripinfo id="v{k}" depart="{d}" departDelay="{dd}" arrival="{d + dur}" duration="{dur}" '
                     f'routeLength="{length}" timeLoss="{loss}" waitingTime="1" waitingCount="{stops}" vType="{vt}" '
                     f'vaporized=""><emissions CO2_abs="1000000" fuel_abs="{fuel}"/></tripinfo>')
    # still waiting to enter at the end (1000 s): wanted at 1000 - 300 = 700, counted
    lines.append('<tripinfo id="u" depart="-1" departDelay="300" arrival="-1" duration="-1" routeLength="0" '
                 'timeLoss="0" waitingTime="0" waitingCount="0" vType="car" vaporized=""/>')
    lines.append("</tripinfos>")
    path = tmp_path / "tripinfo.xml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_window_counts_trips_that_want_to_depart_after_the_warm_up(tmp_path: Path) -> None:
    from ivri.metrics.tripinfo import read_tripinfo
    from ivri.national.window import window_metrics

    modes = {"car": "car", "car_diesel": "car", "bike": "bicycle"}
    fuels = {"car": "petrol", "car_diesel": "diesel", "bike": "none"}
    w = window_metrics(read_tripinfo(_tripinfo(tmp_path)), modes, fuels, 600.0, 1000.0, 10.0)
    assert w["motor_trips"] == 2 and w["window_s"] == 400.0
    assert w["vehicle_loss_hours"] == pytest.approx((30 + 10 + 300) / 3600)
    assert w["depart_delay_hours"] == pytest.approx((10 + 300) / 3600)
    # against the speed limit (10 m/s): 80 s - 500 m / 10 m/s = 30 s, plus the depart delays
    assert w["limit_loss_hours"] == pytest.approx((30 + 10 + 300) / 3600)
    assert w["stops"] == 2
    assert w["petrol_kg"] == pytest.approx(0.06) and w["diesel_kg"] == 0.0
    assert w["cyclist_trips"] == 1 and w["cyclist_loss_h"] == pytest.approx(40 / 3600)
    nothing = window_metrics(read_tripinfo(_tripinfo(tmp_path)), modes, fuels, 0.0, 1000.0, 10.0)
    assert nothing["motor_trips"] == 4 and not math.isnan(nothing["co2_kg"])
    assert np.isclose(nothing["stops"], 4)


def test_a_network_without_emergency_vehicles_keeps_its_lo_effect() -> None:
    params, table = _table()
    for key in list(table.ev_rate):
        table.ev_rate[key] = np.zeros(len(SEEDS))  # no passages at either level
    p = params.values()
    weighted = sum(p[f"day_hours.{d}"] * p[f"day_scale.{d}"] for d in table.sweep.day_variant)
    got = per_intersection_year(table, p, "crossing", "g40")["veh_h"]
    assert np.isfinite(got) and got == pytest.approx(1.0 * weighted)


def test_seeds_go_where_the_spread_is_large_and_runs_are_cheap() -> None:
    from ivri.national.report import allocation_for_fraction_of_g40, national_over_seeds

    # one type: its spread is the national figure's spread over seeds
    params, sweep, results = _runs(wall_s={"crossing": 10.0})
    table = compute_effects(sweep, results)
    alloc = allocation_for_fraction_of_g40(table, params, results, "g40")
    assert alloc is not None
    sd = float(national_over_seeds(table, params.values(), "g40").std(ddof=1))
    assert alloc["strata"]["crossing"]["sd"] == pytest.approx(sd)
    # the runs of one seed of g40 and its baseline (kar), at both emergency levels and every variant
    n_runs = len({j for c, j in sweep.cells.items() if c.arm in ("kar", "g40")}) / len(SEEDS)
    assert alloc["strata"]["crossing"]["cost_per_seed"] == pytest.approx(10.0 * n_runs)
    assert alloc["strata"]["crossing"]["seeds"] == alloc["uniform_seeds"]  # one stratum: nothing to shift

    # two types with the same runs per intersection but for a run costing 4x as much on one: per
    # unit of spread (its share of the country scales it) it gets half the seeds
    params, sweep, results = _runs(("crossing", "tjunction"), {"crossing": 10.0, "tjunction": 40.0})
    alloc = allocation_for_fraction_of_g40(compute_effects(sweep, results), params, results, "g40")
    assert alloc is not None
    a, b = alloc["strata"]["crossing"], alloc["strata"]["tjunction"]
    assert a["seeds"] / b["seeds"] == pytest.approx(2.0 * a["sd"] / b["sd"], rel=0.01)
    assert alloc["optimal_cost"] < alloc["uniform_cost"]
    # stand-in runs without a wall time: nothing to allocate by
    params, sweep, results = _runs()
    assert allocation_for_fraction_of_g40(compute_effects(sweep, results), params, results, "g40") is None
