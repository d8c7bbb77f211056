"""The national estimate's outputs: ``national.json``, ``report.md`` and ``report.html``.

The HTML page is self-contained (styles and SVG charts inline, no scripts, no external
files); ``report.md`` says the same in Markdown with the charts as SVG files beside it.
"""

from __future__ import annotations

import json
import math
import re
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ivri.national.effects import CONVERSION_LINE, EffectTable
from ivri.national.extrapolate import (
    OUTPUTS,
    headline_feature,
    lines,
    monte_carlo,
    national,
    per_intersection_year,
    summarise,
    tornado,
)
from ivri.national.parameters import ParameterSet
from ivri.national.power import (
    ALPHA,
    POWER,
    effect_of_differences,
    optimal_allocation,
    running_effects,
    seeds_needed,
)
from ivri.national.runs import RunStats
from ivri.national.svg import bars_svg, intervals_svg, tornado_svg
from ivri.national.sweep import BASELINE, PACKAGES, Job

__all__ = ["HTML_SECTIONS", "allocation_for_fraction_of_g40", "build_result", "g40_per_intersection_hour",
           "national_over_seeds", "seeds_for_fraction_of_g40", "write_report"]

_LABEL = {
    "veh_h": "vehicle-loss hours",
    "limit_h": "loss vs speed limit [h]",
    "stops": "stops",
    "fuel_l": "fuel [L]",
    "co2_kg": "CO2 [kg]",
    "cyclist_h": "cyclist delay [h]",
    "ev_h": "emergency-vehicle time [h]",
}
_LINE_TEXT = {
    "g40": "(a) G40's scope: information services + emergency priority",
    "g40_cyclists": "(a) G40's scope with cyclist priority",
    "full": "(b) the full package",
    CONVERSION_LINE: "(c) converting fixed time (Webster) to actuation",
}
_SEEDS_CHART_TEXT = ("How the headline settles as seeds are added: the mean of the national figure computed "
                     "from each seed alone, over the first n seeds in seed order, with its 90 % t interval "
                     "(the spread over seeds only; the Monte Carlo interval above adds the parameters').")
#: Section ids of the HTML page, in order (tests check that every one is there).
HTML_SECTIONS = ("summary", "verdict", "lines", "features", "types", "power", "tornado", "method",
                 "assumptions", "webster", "runs", "notes")


def g40_per_intersection_hour(p: dict[str, float], sweep_days: dict[str, str]) -> float:
    """G40's vehicle-loss hours per intersection-hour of the weighted year (the effect to resolve)."""
    hours = sum(p[f"day_hours.{d}"] * p[f"day_scale.{d}"] for d in sweep_days)
    return p["reference.g40_vehicle_loss_hours"] / (p["national.intersections"] * p["national.rollout_share"] * hours)


def national_over_seeds(table: EffectTable, p: dict[str, float], feature: str, output: str = "veh_h") -> np.ndarray:
    """The national figure computed from each seed alone (all types on the same seed index)."""
    return np.array([float(national(table, p, feature, dict.fromkeys(table.sweep.types, i))[output])
                     for i in range(table.n_seeds)])


def seeds_for_fraction_of_g40(table: EffectTable, params: ParameterSet, feature: str,
                              fraction: float = 0.25, alpha: float = ALPHA, power: float = POWER
                              ) -> list[dict[str, Any]]:
    """Per type and variant: how many paired seeds resolve ``fraction`` x G40's effect per
    intersection-hour, given the seed-to-seed spread of ``feature``'s paired difference."""
    p = params.values()
    target = fraction * g40_per_intersection_hour(p, table.sweep.day_variant)
    out = []
    for row in table.power("veh_h"):
        if row["feature"] != feature or row["level"] != "lo":
            continue
        sd = row["sd"]
        n = seeds_needed(target, sd, alpha, power) if math.isfinite(sd) else None
        out.append({"type": row["type"], "variant": row["variant"], "target_per_int_h": target,
                    "sd_diff": sd, "seeds_needed": n, "seeds_run": row["n"]})
    return out


def allocation_for_fraction_of_g40(table: EffectTable, params: ParameterSet, results: dict[Job, dict[str, Any]],
                                   feature: str, fraction: float = 0.25) -> dict[str, Any] | None:
    """Seeds per intersection type that resolve ``fraction`` x G40's hours nationally at least
    core time (:func:`~ivri.national.power.optimal_allocation`), next to the same seeds for every type.

    A type's spread is that of its contribution to the national figure over its seeds (the
    other types at their mean); its cost per seed, the measured wall time of the runs one seed
    of ``feature`` and its baseline take there (both emergency levels, every variant). None
    with fewer than two seeds."""
    if table.n_seeds < 2:
        return None
    p = params.values()
    sd: dict[str, float] = {}
    cost: dict[str, float] = {}
    for t in table.sweep.types:
        contrib = np.array([float(national(table, p, feature, {t: i})["veh_h"]) for i in range(table.n_seeds)])
        sd[t] = float(contrib.std(ddof=1))
        jobs = {job for cell, job in table.sweep.cells.items()
                if cell.itype == t and cell.arm in (BASELINE, feature)}
        cost[t] = sum(float(results[j].get("wall_time_s") or 0.0) for j in jobs if j in results) / table.n_seeds
        if not cost[t] > 0.0:
            return None  # stand-in runs without a wall time (tests): nothing to allocate by
    out = optimal_allocation(sd, cost, fraction * params.value("reference.g40_vehicle_loss_hours"))
    out["fraction_of_g40"] = fraction
    return out


def build_result(table: EffectTable, params: ParameterSet, results: dict[Job, dict[str, Any]],
                 stats: RunStats, *, quick: bool, mc_draws: int = 4000) -> dict[str, Any]:
    """Every figure of the estimate, ready for JSON."""
    from ivri.national.cache import software_fingerprint

    sweep = table.sweep
    p = params.values()
    head = headline_feature(table)
    all_lines = lines(table)
    per_type = {t: {f: {k: float(v) for k, v in per_intersection_year(table, p, t, f).items()}
                    for f in all_lines} for t in sweep.types}
    draws, mc_info = monte_carlo(table, params, n=mc_draws)
    nat: dict[str, Any] = {}
    for f in all_lines:
        nat[f] = summarise(national(table, p, f), draws[f])
        by_seed = effect_of_differences(national_over_seeds(table, p, f))
        nat[f]["seeds"] = {"n": by_seed.n, "mean": by_seed.mean, "sd": by_seed.sd,
                           "low": by_seed.low, "high": by_seed.high, "mde": by_seed.mde}
    g40 = {"veh_h": params.value("reference.g40_vehicle_loss_hours"),
           "fuel_l": params.value("reference.g40_fuel_litres")}
    comparison: dict[str, Any] = {}
    for k, ref in g40.items():
        s = nat[head][k]
        by_seed = national_over_seeds(table, p, head, k)
        over_seeds = effect_of_differences(by_seed)
        comparison[k] = {"g40": ref, "central": s["central"], "p5": s["p5"], "p95": s["p95"],
                         "ratio_central": s["central"] / ref, "ratio_p5": s["p5"] / ref,
                         "ratio_p95": s["p95"] / ref, "g40_inside_90": s["p5"] <= ref <= s["p95"],
                         "mde": over_seeds.mde, "sd_over_seeds": over_seeds.sd}
        if k == "veh_h":
            # The estimate after 2, 3, ... seeds in seed order, for the chart of how it settles.
            comparison[k]["running"] = [{"seeds": e.n, "mean": e.mean, "low": e.low, "high": e.high}
                                        for e in running_effects(by_seed)]
    sd_nat = comparison["veh_h"]["sd_over_seeds"]
    quarter = 0.25 * g40["veh_h"]
    comparison["veh_h"]["seeds_for_quarter_g40"] = (
        seeds_needed(quarter, sd_nat) if math.isfinite(sd_nat) and sd_nat > 0 else None)
    runs = [{"job": {"scenario": j.scenario, "controller": j.controller, "seed": j.seed, "end_s": j.end_s,
                     "warmup_s": j.warmup_s, "emergency_per_h": j.emergency_per_h, "rain_mm_h": j.rain_mm_h},
             "key": stats.keys.get(j.label),
             **{k: r.get(k) for k in ("vehicle_loss_hours", "limit_loss_hours", "stops", "motor_trips",
                                      "emergency_trips", "emergency_passages", "n_intersections",
                                      "simulated_s", "window_s", "wall_time_s", "sumo_version", "teleports")}}
            for j, r in results.items()]
    target = g40_per_intersection_hour(p, sweep.day_variant)
    return {
        "quick": quick,
        "software": software_fingerprint(),
        "headline_feature": head,
        "specs": sweep.specs,
        "packages": {k: list(v) for k, v in PACKAGES.items() if k in sweep.features},
        "features": list(sweep.features),
        "lines": list(all_lines),
        "types": list(sweep.types),
        "variants": list(sweep.variants),
        "day_types": sweep.day_variant,
        "seeds": list(sweep.seeds),
        "warmup_s": sweep.warmup_s,
        "end_s": sweep.end_s,
        "equipped_shares_simulated": sweep.shares,
        "emergency_low_per_h": sweep.emergency_low_per_h,
        "parameters": params.to_json(),
        "type_weights_central": {t: params.value(f"type_share.{t}") / sum(
            params.value(f"type_share.{u}") for u in sweep.types) for t in sweep.types},
        "per_intersection_year": per_type,
        "national": nat,
        "g40_comparison": comparison,
        "g40_per_intersection_hour": target,
        "power": {"alpha": ALPHA, "power": POWER, "rows": table.power("veh_h"),
                  "seeds_for_quarter_g40": seeds_for_fraction_of_g40(table, params, head),
                  "allocation_for_quarter_g40": allocation_for_fraction_of_g40(table, params, results, head)},
        "monte_carlo": mc_info,
        "tornado": tornado(table, params, head),
        "webster": sweep.webster,
        "effects_per_intersection_hour": table.to_json(),
        "ev_passages_per_intersection_hour_simulated": {f"{t}:{v}:{lv}": [float(x) for x in a]
                                                        for (t, v, lv), a in table.ev_rate.items()},
        "runs": runs,
        "run_stats": stats.to_dict(),
        "notes": [*sweep.notes, *table.notes],
    }


# -- text ------------------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:,.2f} M"
    if ax >= 1e4:
        return f"{x / 1e3:,.0f} k"
    if ax >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _verdict(res: dict[str, Any]) -> list[str]:
    """Plain sentences: where the simulation supports the G40 figures and where it does not."""
    c = res["g40_comparison"]
    head = res["headline_feature"]
    out = []
    for k, what in (("veh_h", "vehicle-loss hours"), ("fuel_l", "litres of fuel")):
        d = c[k]
        m = (f"; the seeds resolve effects of {_fmt(d['mde'])} or more (minimum detectable effect)"
             if math.isfinite(d["mde"]) else "; one seed gives no measure of the noise (no minimum "
             "detectable effect): the interval holds the parameters' uncertainty only")
        if d["p5"] <= 0.0 <= d["p95"]:
            out.append(f"{what}: not established. The 90 % interval of {head} ({_fmt(d['p5'])} to "
                       f"{_fmt(d['p95'])}) includes zero (central {_fmt(d['central'])}, "
                       f"{d['ratio_central']:.2f} x G40's {_fmt(d['g40'])}){m}: the simulation neither "
                       "supports nor refutes G40 here.")
        elif d["g40_inside_90"]:
            out.append(f"{what}: supported. G40's {_fmt(d['g40'])} lies inside the 90 % interval "
                       f"({_fmt(d['p5'])} to {_fmt(d['p95'])}){m}.")
        elif d["p95"] < d["g40"]:
            out.append(f"{what}: not supported. The simulation gives {_fmt(d['central'])} (90 %: "
                       f"{_fmt(d['p5'])} to {_fmt(d['p95'])}), {d['ratio_central']:.2f} x G40's "
                       f"{_fmt(d['g40'])}; even the top of the interval stays below it{m}.")
        else:
            out.append(f"{what}: G40 is conservative. The simulation gives {_fmt(d['central'])} (90 %: "
                       f"{_fmt(d['p5'])} to {_fmt(d['p95'])}), above G40's {_fmt(d['g40'])}{m}.")
    conv = res["national"].get(CONVERSION_LINE)
    if conv is not None:
        out.append(f"The conversion of fixed-time lights (timed to demand by Webster's method) to "
                   f"actuation is worth {_fmt(conv['veh_h']['central'])} vehicle-loss hours a year (90 %: "
                   f"{_fmt(conv['veh_h']['p5'])} to {_fmt(conv['veh_h']['p95'])}); it is not an iVRI "
                   "application and is not counted in any package.")
    q = res["power"]["seeds_for_quarter_g40"]
    need = [r["seeds_needed"] for r in q if r["seeds_needed"] is not None]
    if need:
        out.append(f"Power: a quarter of G40's effect is {_fmt(res['g40_per_intersection_hour'] / 4)} h per "
                   f"intersection-hour; with the seed-to-seed spread of {head}'s paired difference "
                   f"measured here (without emergency vehicles), resolving it takes {min(need):,} to "
                   f"{max(need):,} paired seeds per type and day variant ({len(res['seeds'])} were run).")
    nat_need = c["veh_h"].get("seeds_for_quarter_g40")
    if nat_need is not None:
        out.append(f"The national figure, emergency part included, varies by {_fmt(c['veh_h']['sd_over_seeds'])} "
                   f"h a year from seed to seed: resolving a quarter of G40 (116,750 h) nationally takes "
                   f"{nat_need:,} seeds.")
    alloc = res["power"].get("allocation_for_quarter_g40")
    if alloc is not None:
        out.append(f"Seeds need not be the same for every type: giving more to the types whose share of the "
                   f"national figure varies most and whose runs are cheap (Neyman allocation) resolves a quarter "
                   f"of G40 with {alloc['optimal_cost'] / 3600:,.0f} core-hours instead of "
                   f"{alloc['uniform_cost'] / 3600:,.0f} ({alloc['uniform_seeds']:,} seeds for every type); "
                   "seeds per type in the power section.")
    if res["quick"]:
        out.append("This is a --quick run: 4-minute windows of the short variant stand for every day "
                   "type. Do not quote these numbers.")
    return out


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines_ = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines_ += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines_) + "\n"


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _with_interval(d: dict[str, float]) -> str:
    """``central (p5 to p95)`` of one output's summary."""
    return f"{_fmt(d['central'])} ({_fmt(d['p5'])} to {_fmt(d['p95'])})"


def _tables(res: dict[str, Any]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The report's tables, shared by the Markdown and the HTML."""
    c = res["g40_comparison"]
    nat = res["national"]
    t: dict[str, tuple[list[str], list[list[str]]]] = {}
    t["summary"] = (["per year", "simulation: central", "90 % interval", "minimum detectable effect",
                     "G40 (2021)", "central / G40"],
                    [[_LABEL[k], _fmt(c[k]["central"]), f"{_fmt(c[k]['p5'])} to {_fmt(c[k]['p95'])}",
                      _fmt(c[k]["mde"]), _fmt(c[k]["g40"]), f"{c[k]['ratio_central']:.3g}"]
                     for k in ("veh_h", "fuel_l")])

    def line_row(f: str) -> list[str]:
        if f not in res["lines"]:
            # A line the sweep left out is named, so that a reader does not take its absence
            # for an effect of zero.
            return [_LINE_TEXT[f], f"not run (add {f} to --features)", "", "", "", ""]
        n = nat[f]
        return [_LINE_TEXT[f], _with_interval(n["veh_h"]), _fmt(n["seeds"]["mde"]),
                _with_interval(n["fuel_l"]), _fmt(n["stops"]["central"]), _fmt(n["limit_h"]["central"])]

    t["lines"] = (["line", "vehicle-loss hours (90 %)", "min. detectable", "fuel [L] (90 %)",
                   "stops", "loss vs speed limit [h]"],
                  [line_row(f) for f in _LINE_TEXT if f in res["lines"] or f != CONVERSION_LINE])
    t["features"] = (["feature", *[_LABEL[k] for k in OUTPUTS]],
                     [[f, *[_with_interval(nat[f][k]) for k in OUTPUTS]] for f in res["lines"]])
    t["types"] = (["type", "line", *[_LABEL[k] for k in OUTPUTS]],
                  [[ty, f, *[_fmt(v[k]) for k in OUTPUTS]]
                   for ty, byf in res["per_intersection_year"].items() for f, v in byf.items()])
    t["power"] = (["type", "variant", "EV level", "line", "baseline [h/int-h]", "effect [h/int-h]",
                   "90 % interval", "sd of difference", "MDE (80 % power)", "seeds"],
                  [[r["type"], r["variant"], r["level"], r["feature"], _fmt(r["baseline_level"]),
                    _fmt(r["mean"]), f"{_fmt(r['low'])} to {_fmt(r['high'])}", _fmt(r["sd"]), _fmt(r["mde"]),
                    str(r["n"])] for r in res["power"]["rows"]])
    t["quarter"] = (["type", "variant", "quarter of G40 [h/int-h]", "sd of difference", "seeds needed", "seeds run"],
                    [[r["type"], r["variant"], _fmt(r["target_per_int_h"]), _fmt(r["sd_diff"]),
                      "-" if r["seeds_needed"] is None else f"{r['seeds_needed']:,}", str(r["seeds_run"])]
                     for r in res["power"]["seeds_for_quarter_g40"]])
    alloc = res["power"].get("allocation_for_quarter_g40")
    t["allocation"] = (["type", "sd of its national share per seed [h/yr]", "core-s per seed", "seeds (allocated)",
                        "seeds (same for all)"],
                       [[ty, _fmt(a["sd"]), f"{a['cost_per_seed']:,.0f}", f"{a['seeds']:,}",
                         f"{alloc['uniform_seeds']:,}"] for ty, a in alloc["strata"].items()] if alloc else [])
    t["tornado"] = (["parameter", "low", "high", "veh-h at low", "veh-h at high", "litres at low", "litres at high"],
                    [[r["name"], _fmt(r["low_value"]), _fmt(r["high_value"]), _fmt(r["veh_h_low"]),
                      _fmt(r["veh_h_high"]), _fmt(r["fuel_l_low"]), _fmt(r["fuel_l_high"])] for r in res["tornado"]])
    t["assumptions"] = (["parameter", "value", "range", "distribution", "unit", "source"],
                        [[k, f"{q['value']:g}", f"{q['low']:g} - {q['high']:g}", q["distribution"], q["unit"],
                          q["source"]] for k, q in res["parameters"]["parameters"].items()])
    t["webster"] = (["scenario", "intersection", "cycle [s]", "Y", "lost time L [s]", "stage greens [s]", "offset [s]"],
                    [[sc, x, _fmt(w["cycle_s"][x]), _fmt(w["Y"][x]), _fmt(w["L_s"][x]),
                      ", ".join(f"{g:.0f}" for g in w["stage_green_s"][x]), _fmt(w["offset_s"][x])]
                     for sc, w in res["webster"].items() for x in w["cycle_s"]])
    return t


def _method(res: dict[str, Any]) -> list[str]:
    specs = res["specs"]
    span_s = res["end_s"] - res["warmup_s"]
    real_world = ""
    if "real" in res["variants"]:
        # Their demand is one real hour: the count ends with it, and emergency vehicles are
        # added from their own cars (the sweep's note names the networks).
        shorter = sorted({r["window_s"] for r in res["runs"] if r["window_s"] < span_s - 1.0})
        ev_per_h = res["parameters"]["parameters"]["calibration.emergency_high_per_h"]["value"]
        real_world = (" The real-world networks keep their own hour of demand after the same warm-up, so their "
                      "count ends with it" + (f" ({', '.join(f'{w:.0f}' for w in shorter)} s counted)" if shorter else "")
                      + f"; their demand has no emergency vehicles, so at level hi {ev_per_h:g} of its cars an "
                      "hour drive their own routes as emergency vehicles.")
    return [
        (f"Baseline (the counterfactual): today's vehicle-actuated light with KAR-style emergency and bus "
        f"pre-emption, `{specs.get(BASELINE, '')}` with the emergency request cut to the KAR check-in distance "
        f"({res['parameters']['parameters']['baseline.kar_checkin_m']['value']:g} m) and the bus request horizon "
        "to the same distance at 50 km/h. Every feature and package is measured against it."),
        "Packages: " + "; ".join(f"{k} = baseline + {', '.join(v)}" for k, v in res["packages"].items()) + ".",
        ("The conversion line compares a fixed-time plan timed to the scenario's own flows by Webster's method "
        "(optimum cycle (1.5 L + 5) / (1 - Y), greens in proportion to the critical flow ratios, one cycle and "
        "green-wave offsets on networks with several lights) with plain vehicle-actuated control, and is "
        "scaled by the share of today's lights that run fixed time."),
        (f"Runs: {res['warmup_s']:.0f} s of warm-up that is not counted, then {span_s:.0f} s "
        "counted; only trips that want to depart after the warm-up count (each with all it lost up to the end). "
        "Scenario demand is stationary and is repeated past the bundled hour." + real_world),
        (f"Seeds: {len(res['seeds'])} common random numbers (baseline and treatment on the same seed); effects "
        f"are paired differences with a t interval; the minimum detectable effect is (t(1-a/2) + t(power)) x "
        f"sd / sqrt(n) at a = {res['power']['alpha']}, power {res['power']['power']}."),
        ("Emergency vehicles: arms with emergency priority run with none (level lo) and with the scenario's "
        "(level hi, about 3 an hour); the effect is interpolated to the real passage rate."),
        ("Vehicle-loss hours: SUMO timeLoss + departDelay of road motor vehicles (against each vehicle's desired "
        "speed); beside it the loss against the speed limit, as Rijkswaterstaat counts it (reference speed = "
        "the network's length-weighted speed limit). Stops: SUMO waitingCount. Fuel: SUMO's HBEFA4 model in "
        "mg, converted with the parameter file's densities (diesel 836 g/L, SUMO's own), times a fleet factor "
        "for the Dutch Euro-class mix, plus idling of vehicles waiting to enter (depart delay x idle rate)."),
        (f"Monte Carlo: {res['monte_carlo']['draws']} draws of every uncertain parameter (triangular unless "
        f"stated), type shares renormalised; {res['monte_carlo']['seed_resampling']}."),
    ]


def _svgs(res: dict[str, Any]) -> dict[str, str]:
    head = res["headline_feature"]
    c = res["g40_comparison"]
    nat = res["national"]
    out = {
        "intervals_veh_h": intervals_svg(
            "National vehicle-loss hours per year: central and 90 % interval",
            [(f, nat[f]["veh_h"]["central"], nat[f]["veh_h"]["p5"], nat[f]["veh_h"]["p95"]) for f in res["lines"]],
            "vehicle-loss hours per year (saved > 0)", ("G40 467,000 h", c["veh_h"]["g40"])),
        "intervals_fuel_l": intervals_svg(
            "National fuel per year: central and 90 % interval",
            [(f, nat[f]["fuel_l"]["central"], nat[f]["fuel_l"]["p5"], nat[f]["fuel_l"]["p95"]) for f in res["lines"]],
            "litres per year (saved > 0)", ("G40 17 M L", c["fuel_l"]["g40"])),
        "tornado": tornado_svg(
            f"What moves {head}'s vehicle-loss hours (one parameter at a time)",
            [(r["name"], r["veh_h_low"], r["veh_h_high"]) for r in res["tornado"][:14]],
            res["tornado"][0]["central"]["veh_h"] if res["tornado"] else c["veh_h"]["central"],
            "vehicle-loss hours per year", ("G40", c["veh_h"]["g40"])),
        "types": bars_svg(
            f"{head}: vehicle-loss hours saved per intersection per year, by type",
            [(t, res["per_intersection_year"][t][head]["veh_h"]) for t in res["types"]],
            "hours per intersection per year"),
    }
    running = c["veh_h"].get("running") or []
    if len(running) >= 2:
        out["seeds_veh_h"] = intervals_svg(
            f"{head}: national vehicle-loss hours per year after the first n seeds (90 % t interval over seeds)",
            [(f"{r['seeds']} seeds", r["mean"], r["low"], r["high"]) for r in running],
            "vehicle-loss hours per year (saved > 0), central parameters", ("G40 467,000 h", c["veh_h"]["g40"]))
    return out


def _html(res: dict[str, Any], tables: dict[str, tuple[list[str], list[list[str]]]], svgs: dict[str, str]) -> str:
    sw = res["software"]
    head = res["headline_feature"]

    def table(name: str) -> str:
        return _html_table(*tables[name])

    sections = {
        "summary": ("The result next to the G40 estimate",
                    (f"<p>Headline: <b>{escape(head)}</b>, {escape(_LINE_TEXT.get(head, head))}, against today's "
                    f"light with KAR pre-emption. Central values at central parameters; 90 % intervals from the "
                    f"Monte Carlo; the minimum detectable effect from the spread over seeds.</p>{table('summary')}")),
        "verdict": ("Which parts of the G40 figures the simulation supports",
                    "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in _verdict(res)) + "</ul>"),
        "lines": ("(a) G40's scope, (b) the full package, (c) the fixed-time conversion",
                  table("lines") + svgs["intervals_veh_h"] + svgs["intervals_fuel_l"]),
        "features": ("Effect per feature (per year, 90 % interval)", table("features")),
        "types": ("Per intersection type (per intersection per year, central)", svgs["types"] + table("types")),
        "power": ("Statistical power",
                  "<p>Paired differences per intersection-hour of the counted window (dry weather), their "
                  "90 % interval and minimum detectable effect; below, the seeds that resolve a quarter of "
                  "G40's effect per intersection-hour; last, the seeds per type that resolve a quarter of G40's "
                  "hours nationally at least core time.</p>" + table("power") + table("quarter")
                  + (table("allocation") if tables["allocation"][1] else "")
                  + (f"<p>{escape(_SEEDS_CHART_TEXT)}</p>" + svgs["seeds_veh_h"] if "seeds_veh_h" in svgs else "")),
        "tornado": ("Which parameters matter (tornado)", svgs["tornado"] + table("tornado")),
        "method": ("Method", "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in _method(res)) + "</ul>"),
        "assumptions": ("Every assumption with its source", table("assumptions")),
        "webster": ("Fixed-time plans (Webster)", table("webster")),
        "runs": ("Runs", (f"<p>{res['run_stats']['jobs']} runs: {res['run_stats']['cache_hits']} from the cache, "
                 f"{res['run_stats']['simulated']} simulated on {res['run_stats']['workers'] or '-'} Dask worker(s) "
                 f"in {res['run_stats']['wall_s']:.0f} s. ivri {escape(sw['ivri'])}, SUMO {escape(sw['sumo'])}, "
                 f"source {escape(sw['source'])}; seeds {escape(str(res['seeds']))}; parameters "
                 f"{escape(res['parameters']['path'])} (digest {escape(res['parameters']['digest'])}). Every run "
                 "with its figures and cache key is in national.json; its whole record in runs.jsonl.gz, which "
                 "<code>ivri national --reuse</code> loads into a cache.</p>")),
        "notes": ("Notes", "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in res["notes"] or ["none"]) + "</ul>"),
    }
    assert tuple(sections) == HTML_SECTIONS
    # The link text is the title without a trailing parenthesis ("Effect per feature (per year, ...)").
    nav = " · ".join(f'<a href="#{k}">{escape(re.sub(r" [(][^()]*[)]$", "", v[0]))}</a>'
                     for k, v in sections.items())
    body = "".join(f'<section id="{k}"><h2>{escape(title)}</h2>{html}</section>' for k, (title, html) in sections.items())
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:.8em 0;font-size:13px;width:100%}"
             "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
             "th{background:#f0f3f7}section{margin-bottom:2em}nav{font-size:13px;margin-bottom:1em}"
             "h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:2px solid #3b78c2;padding-bottom:.2em}"
             "svg{max-width:100%;margin:.5em 0}")
    quick = "<p><b>A --quick smoke run: do not quote these numbers.</b></p>" if res["quick"] else ""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>National effect of intelligent traffic lights (iVRI)</title>"
            f"<style>{style}</style></head><body>"
            "<h1>National effect of intelligent traffic lights (iVRI), from simulation</h1>"
            f"{quick}<nav>{nav}</nav>{body}</body></html>")


def write_report(res: dict[str, Any], out: Path) -> list[Path]:
    """Write ``national.json``, ``report.md``, ``report.html`` and the SVG charts into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "national.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    tables = _tables(res)
    svgs = _svgs(res)
    svg_paths = []
    for name, svg in svgs.items():
        path = out / f"{name}.svg"
        path.write_text(svg, encoding="utf-8")
        svg_paths.append(path)
    (out / "report.html").write_text(_html(res, tables, svgs), encoding="utf-8")
    sw = res["software"]
    md = [
        "# National effect of intelligent traffic lights (iVRI), from simulation",
        "",
        (f"ivri {sw['ivri']}, SUMO {sw['sumo']}, engine source hash {sw['source']}, parameters "
        f"{res['parameters']['path']} (digest {res['parameters']['digest']}). {len(res['seeds'])} seed(s); "
        f"types {', '.join(res['types'])}; warm-up {res['warmup_s']:.0f} s, counted "
        f"{res['end_s'] - res['warmup_s']:.0f} s. The same report as a page: report.html."),
        "",
        "## The result next to the G40 estimate",
        "",
        _md_table(*tables["summary"]),
        "## Which parts of the G40 figures the simulation supports",
        "",
        *[f"- {s}" for s in _verdict(res)],
        "",
        "## (a) G40's scope, (b) the full package, (c) the fixed-time conversion",
        "",
        _md_table(*tables["lines"]),
        "![vehicle-loss hours](intervals_veh_h.svg) ![fuel](intervals_fuel_l.svg)",
        "",
        "## Effect per feature (per year, 90 % interval)",
        "",
        _md_table(*tables["features"]),
        "## Per intersection type (per intersection per year)",
        "",
        _md_table(*tables["types"]),
        "![types](types.svg)",
        "",
        "## Statistical power",
        "",
        _md_table(*tables["power"]),
        _md_table(*tables["quarter"]),
        "",
        _md_table(*tables["allocation"]) if tables["allocation"][1] else "",
        *([_SEEDS_CHART_TEXT, "", "![seeds](seeds_veh_h.svg)", ""] if "seeds_veh_h" in svgs else []),
        "## Which parameters matter (tornado)",
        "",
        "![tornado](tornado.svg)",
        "",
        _md_table(*tables["tornado"]),
        "## Method",
        "",
        *[f"- {s}" for s in _method(res)],
        "",
        "## Every assumption with its source",
        "",
        _md_table(*tables["assumptions"]),
        "## Fixed-time plans (Webster)",
        "",
        _md_table(*tables["webster"]),
        "## Notes",
        "",
        *([f"- {n}" for n in res["notes"]] or ["- none"]),
        "",
        "## Runs",
        "",
        (f"{res['run_stats']['jobs']} runs: {res['run_stats']['cache_hits']} from the cache, "
         f"{res['run_stats']['simulated']} simulated on {res['run_stats']['workers'] or '-'} Dask worker(s) "
         f"in {res['run_stats']['wall_s']:.0f} s. Every run with its figures and cache key is in national.json; "
         "its whole record in runs.jsonl.gz, which `ivri national --reuse` loads into a cache."),
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(md), encoding="utf-8")
    return [path, out / "report.html", out / "national.json", *svg_paths]
