"""The national estimate's outputs: ``national.json``, ``report.md`` and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ivri.national.effects import EffectTable
from ivri.national.extrapolate import (
    OUTPUTS,
    headline_feature,
    monte_carlo,
    national,
    per_intersection_year,
    summarise,
    tornado,
)
from ivri.national.parameters import ParameterSet
from ivri.national.runs import RunStats
from ivri.national.sweep import ALL, Job

__all__ = ["build_result", "write_report"]

_LABEL = {
    "veh_h": "vehicle-loss hours",
    "fuel_l": "fuel [L]",
    "co2_kg": "CO2 [kg]",
    "cyclist_h": "cyclist delay [h]",
    "ev_h": "emergency-vehicle time [h]",
}


def build_result(table: EffectTable, params: ParameterSet, results: dict[Job, dict[str, Any]],
                 stats: RunStats, *, quick: bool, mc_draws: int = 4000) -> dict[str, Any]:
    """Every figure of the estimate, ready for JSON."""
    from ivri.national.cache import software_fingerprint

    sweep = table.sweep
    central_p = params.values()
    head = headline_feature(table)
    per_type = {
        t: {f: {b: {k: float(v) for k, v in per_intersection_year(
            table, {**central_p, **({"baseline.fixed_time_share": phi} if phi is not None else {})},
            t, f).items()} for b, phi in (("mix", None), ("fixed-time", 1.0), ("actuated", 0.0))}
            for f in sweep.features}
        for t in sweep.types
    }
    draws, mc_info = monte_carlo(table, params, n=mc_draws)
    nat = {}
    for f in sweep.features:
        central = national(table, central_p, f)
        nat[f] = summarise(central, draws[f])
        nat[f]["vs_actuated_only"] = {k: float(v) for k, v in national(
            table, {**central_p, "baseline.fixed_time_share": 0.0}, f).items()}
        nat[f]["vs_fixed_time_only"] = {k: float(v) for k, v in national(
            table, {**central_p, "baseline.fixed_time_share": 1.0}, f).items()}
    g40 = {"veh_h": params.value("reference.g40_vehicle_loss_hours"),
           "fuel_l": params.value("reference.g40_fuel_litres")}
    comparison = {}
    for k, ref in g40.items():
        s = nat[head][k]
        comparison[k] = {"g40": ref, "central": s["central"], "p5": s["p5"], "p95": s["p95"],
                         "ratio_central": s["central"] / ref, "ratio_p5": s["p5"] / ref,
                         "ratio_p95": s["p95"] / ref, "g40_inside_90": s["p5"] <= ref <= s["p95"]}
    hd = draws[head]
    with np.errstate(divide="ignore", invalid="ignore"):
        lph = hd["fuel_l"] / hd["veh_h"]
    lph = lph[np.isfinite(lph)]
    comparison["litres_per_veh_h"] = {
        "g40": g40["fuel_l"] / g40["veh_h"],
        "central": nat[head]["fuel_l"]["central"] / nat[head]["veh_h"]["central"]
        if nat[head]["veh_h"]["central"] else None,
        "p5": float(np.percentile(lph, 5)) if lph.size else None,
        "p95": float(np.percentile(lph, 95)) if lph.size else None,
    }
    runs = [{"job": {"scenario": j.scenario, "controller": j.controller, "seed": j.seed, "end_s": j.end_s,
                     "rain_mm_h": j.rain_mm_h}, "key": stats.keys.get(j.label),
             **{k: r.get(k) for k in ("vehicle_loss_hours", "fuel_litres", "co2_kg", "emergency_time_lost_s",
                                      "emergency_passages", "cyclist_loss_h", "n_intersections",
                                      "simulated_s", "wall_time_s", "sumo_version")}}
            for j, r in results.items()]
    return {
        "quick": quick,
        "software": software_fingerprint(),
        "headline_feature": head,
        "all_spec": sweep.all_spec,
        "features": list(sweep.features),
        "types": list(sweep.types),
        "variants": list(sweep.variants),
        "day_types": sweep.day_variant,
        "seeds": list(sweep.seeds),
        "end_s": sweep.end_s,
        "equipped_shares_simulated": sweep.shares,
        "parameters": params.to_json(),
        "type_weights_central": {t: params.value(f"type_share.{t}") / sum(
            params.value(f"type_share.{u}") for u in sweep.types) for t in sweep.types},
        "per_intersection_year": per_type,
        "national": nat,
        "g40_comparison": comparison,
        "monte_carlo": mc_info,
        "tornado": tornado(table, params, head),
        "effects_per_intersection_hour": table.to_json(),
        "ev_passages_per_intersection_hour_simulated": {f"{t}:{v}": [float(x) for x in a]
                                                        for (t, v), a in table.ev_rate.items()},
        "runs": runs,
        "run_stats": stats.to_dict(),
        "notes": [*sweep.notes, *table.notes],
    }


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:,.2f} M"
    if ax >= 1e4:
        return f"{x / 1e3:,.0f} k"
    if ax >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _verdict(res: dict[str, Any]) -> list[str]:
    """Plain sentences: where the simulation supports the G40 figures and where it does not."""
    c = res["g40_comparison"]
    out = []
    for k, what in (("veh_h", "vehicle-loss hours"), ("fuel_l", "litres of fuel")):
        d = c[k]
        if d["p5"] <= 0.0 <= d["p95"]:
            out.append(f"- **{what}: not established.** The simulated 90 % interval ({_fmt(d['p5'])} to "
                       f"{_fmt(d['p95'])}) includes zero: the simulation cannot tell a saving from a "
                       f"loss here (central {_fmt(d['central'])}, {d['ratio_central']:.2f} x the G40 "
                       f"figure of {_fmt(d['g40'])}), so it neither supports nor refutes G40.")
        elif d["g40_inside_90"]:
            out.append(f"- **{what}: supported.** The G40 figure ({_fmt(d['g40'])}) lies inside the "
                       f"simulated 90 % interval ({_fmt(d['p5'])} to {_fmt(d['p95'])}); the central "
                       f"value is {d['ratio_central']:.2f} x G40.")
        elif d["p95"] < d["g40"]:
            out.append(f"- **{what}: not supported.** The simulation gives {_fmt(d['central'])} "
                       f"(90 %: {_fmt(d['p5'])} to {_fmt(d['p95'])}), {d['ratio_central']:.2f} x the "
                       f"G40 figure of {_fmt(d['g40'])}: even the top of the interval stays below it.")
        else:
            out.append(f"- **{what}: G40 is conservative.** The simulation gives {_fmt(d['central'])} "
                       f"(90 %: {_fmt(d['p5'])} to {_fmt(d['p95'])}), above the G40 figure of "
                       f"{_fmt(d['g40'])} ({d['ratio_central']:.2f} x).")
    lph = c["litres_per_veh_h"]
    if lph["central"] is not None:
        out.append(f"- **Fuel per vehicle-loss hour:** the G40 pair implies {lph['g40']:.1f} L per hour "
                   f"saved; the simulation gives {lph['central']:.1f} L/h (90 %: {_fmt(lph['p5'])} to "
                   f"{_fmt(lph['p95'])}). An idling car burns about 0.6 L/h (FACTS.md): fuel savings of "
                   "the G40 size need avoided stops and accelerations (speed advice, trucks) or a wider "
                   "scope than these intersections.")
    head = res["headline_feature"]
    nat = res["national"][head]
    act, ft = nat["vs_actuated_only"]["veh_h"], nat["vs_fixed_time_only"]["veh_h"]
    out.append(f"- **Baseline matters:** against vehicle-actuated control only, the package saves "
               f"{_fmt(act)} vehicle-loss hours a year; against fixed-time control only, {_fmt(ft)}. "
               "A large part of any saving over fixed time is the actuation itself, not the iVRI "
               "applications.")
    if "glosa" not in res["all_spec"].split("+"):
        out.append("- **Information services (speed advice, time-to-green) are not simulated** "
                   "(no glosa application in this version), yet they are the first item of the G40 "
                   "package and the likeliest source of the fuel figure: that part of the estimate "
                   "has no support from these runs.")
    else:
        out.append("- **Information services**: speed advice (glosa) is simulated as one feature and "
                   f"in the combination, with {res['equipped_shares_simulated'].get('car', 0):.0%} of "
                   "drivers equipped; time-to-green displays for other road users are not.")
    top = [r["name"] for r in res["tornado"][:3]]
    if top:
        out.append(f"- **What matters most** for the vehicle-loss hours (tornado): {', '.join(top)}.")
    if res["quick"]:
        out.append("- **This is a --quick run**: 5-minute runs of the short variant stand for every "
                   "day type. Do not quote these numbers.")
    return out


def _plot_tornado(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["tornado"][:12]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.45 * max(len(rows), 4) + 1.6))
    for ax, (k, scale, unit) in zip(axes, (("veh_h", 1e3, "thousand vehicle-loss hours / year"),
                                           ("fuel_l", 1e6, "million litres / year")), strict=True):
        names = [r["name"] for r in rows][::-1]
        lo = np.array([r[f"{k}_low"] for r in rows][::-1]) / scale
        hi = np.array([r[f"{k}_high"] for r in rows][::-1]) / scale
        c = rows[0]["central"][k] / scale if rows else 0.0
        y = np.arange(len(rows))
        ax.barh(y, lo - c, left=c, color="tab:blue", label="parameter at low end")
        ax.barh(y, hi - c, left=c, color="tab:orange", label="parameter at high end")
        ax.axvline(c, color="k", lw=0.8)
        g40 = res["g40_comparison"][k]["g40"] / scale
        ax.axvline(g40, color="tab:red", ls="--", lw=1, label="G40 estimate")
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xlabel(unit)
        ax.set_title(_LABEL[k])
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"What moves the national estimate ({res['headline_feature']}; one parameter at a time)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_effects(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feats, types = res["features"], res["types"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    width = 0.8 / max(len(types), 1)
    for ax, k in zip(axes, ("veh_h", "fuel_l", "cyclist_h"), strict=True):
        for i, t in enumerate(types):
            vals = [res["per_intersection_year"][t][f]["mix"][k] for f in feats]
            ax.bar(np.arange(len(feats)) + i * width, vals, width, label=t)
        ax.set_xticks(np.arange(len(feats)) + width * (len(types) - 1) / 2, feats, rotation=30, fontsize=8)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"{_LABEL[k]} saved per intersection per year")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_distribution(res: dict[str, Any], draws_path: Path) -> None:
    """Kept small: the 90 % intervals of every feature, next to G40."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feats = res["features"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
    for ax, (k, scale, unit) in zip(axes, (("veh_h", 1e3, "thousand h / year"),
                                           ("fuel_l", 1e6, "million L / year")), strict=True):
        for i, f in enumerate(feats):
            s = res["national"][f][k]
            ax.plot([s["p5"] / scale, s["p95"] / scale], [i, i], color="tab:blue", lw=3)
            ax.plot(s["central"] / scale, i, "ko")
        ax.axvline(res["g40_comparison"][k]["g40"] / scale, color="tab:red", ls="--", label="G40")
        ax.set_yticks(range(len(feats)), feats)
        ax.set_xlabel(unit)
        ax.set_title(f"national {_LABEL[k]}: central and 90 % interval")
        # linear within a tenth of the G40 figure, logarithmic beyond (results span decades)
        ax.set_xscale("symlog", linthresh=res["g40_comparison"][k]["g40"] / scale / 10)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(draws_path, dpi=110)
    plt.close(fig)


def write_report(res: dict[str, Any], out: Path) -> list[Path]:
    """Write ``national.json``, ``report.md`` and the plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "national.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    _plot_tornado(res, out / "tornado.png")
    _plot_effects(res, out / "effects.png")
    _plot_distribution(res, out / "intervals.png")
    head = res["headline_feature"]
    sw = res["software"]
    c = res["g40_comparison"]
    md = [
        "# National effect of intelligent traffic lights (iVRI), reproduced from simulation",
        "",
        f"ivri {sw['ivri']}, SUMO {sw['sumo']}, engine source hash {sw['source']}, parameters "
        f"{res['parameters']['path']} (digest {res['parameters']['digest']}). Seeds {res['seeds']}; "
        f"types {', '.join(res['types'])}; variants {', '.join(res['variants'])}"
        + (f"; runs stopped at {res['end_s']:.0f} s" if res["end_s"] else "") + ".",
        "",
        (f"Headline: **{head}** = `{res['all_spec'] if head == ALL else 'actuated+' + head}` against "
        "today's mix of fixed-time and vehicle-actuated control."),
        "",
        "## Result next to the G40 estimate",
        "",
        _table(["per year", "simulation: central", "90 % interval", "G40 (2021)", "ratio central / G40",
                "ratio interval / G40"],
               [[_LABEL[k], _fmt(c[k]["central"]), f"{_fmt(c[k]['p5'])} to {_fmt(c[k]['p95'])}",
                 _fmt(c[k]["g40"]), f"{c[k]['ratio_central']:.3g}",
                 f"{c[k]['ratio_p5']:.3g} to {c[k]['ratio_p95']:.3g}"] for k in ("veh_h", "fuel_l")]),
        "## Where the simulation supports the estimate, and where it does not",
        "",
        *_verdict(res),
        "",
        "## National effect per feature (per year)",
        "",
        "Central value (central parameters, mean over seeds) and the 90 % interval of the Monte Carlo.",
        "",
        _table(["feature", *[_LABEL[k] for k in OUTPUTS]],
               [[f, *[f"{_fmt(s[k]['central'])} ({_fmt(s[k]['p5'])} to {_fmt(s[k]['p95'])})" for k in OUTPUTS]]
                for f, s in res["national"].items()]),
        "CO2 in kg; positive = saved. ![intervals](intervals.png)",
        "",
        "## Per intersection per year",
        "",
        ("Against the baseline mix (fixed-time share from the parameter file), central parameters, "
        "mean over seeds; the last two columns: vehicle-loss hours against each baseline alone."),
        "",
        _table(["type", "feature", *[_LABEL[k] for k in OUTPUTS], "veh-h vs fixed-time", "veh-h vs actuated"],
               [[t, f, *[_fmt(v["mix"][k]) for k in OUTPUTS], _fmt(v["fixed-time"]["veh_h"]),
                 _fmt(v["actuated"]["veh_h"])]
                for t, byf in res["per_intersection_year"].items() for f, v in byf.items()]),
        "![effects](effects.png)",
        "",
        "## Which parameters matter (tornado)",
        "",
        ("Each parameter at the low and the high end of its range, the others at their value; "
        "'simulation seed' is the range over seeds."),
        "",
        "![tornado](tornado.png)",
        "",
        _table(["parameter", "low", "high", "veh-h at low", "veh-h at high", "litres at low", "litres at high"],
               [[r["name"], _fmt(r["low_value"]), _fmt(r["high_value"]), _fmt(r["veh_h_low"]),
                 _fmt(r["veh_h_high"]), _fmt(r["fuel_l_low"]), _fmt(r["fuel_l_high"])]
                for r in res["tornado"]]),
        "## Method",
        "",
        "- Day types map onto scenario variants: " + ", ".join(
            f"{d} -> :{v}" for d, v in res["day_types"].items())
        + ". Rain hours run the rain application with a constant rain series "
        f"({res['parameters']['parameters']['weather.rain_mm_h']['value']} mm/h) from the start; "
        "controllers without it are the same in rain and dry (the simulation has no weather effect "
        "on demand or driving).",
        ("- Effects are baseline minus treatment per signalised intersection and simulated hour, "
        "paired by seed; the corridor and grid divide by their number of signalised intersections."),
        ("- National = intersections x roll-out share x sum over types of the renormalised type "
        "share x the annual effect per intersection (day-type hours x day-type scale, rain-hour "
        "share, fixed-time share of the baseline)."),
        ("- Equipped shares: the runs use the central shares; the Monte Carlo scales each "
        "application's effect linearly with its share. GreenFlow's effect on other traffic is "
        "rescaled from the simulated emergency passages per hour to the real ones "
        "(emergency.passages_per_intersection_year); 'all' is corrected term by term."),
        (f"- Monte Carlo: {res['monte_carlo']['draws']} draws, distributions as in the parameter file "
        "(triangular low/value/high unless stated), type shares renormalised in each draw; "
        f"{res['monte_carlo']['seed_resampling']}."),
        ("- Vehicle-loss hours are SUMO timeLoss + departDelay of road motor vehicles against each "
        "vehicle's desired speed, not Rijkswaterstaat's reference speed. Fuel from SUMO's HBEFA4 "
        "emission model, converted to litres with the densities of the parameter file."),
        "",
        "## Notes",
        "",
        *([f"- {n}" for n in res["notes"]] or ["- none"]),
        "",
        "## Parameters",
        "",
        _table(["parameter", "value", "range", "distribution", "unit", "source"],
               [[k, f"{p['value']:g}", f"{p['low']:g} - {p['high']:g}", p["distribution"], p["unit"],
                 p["source"]] for k, p in res["parameters"]["parameters"].items()]),
        "## Runs",
        "",
        (f"{res['run_stats']['jobs']} runs: {res['run_stats']['cache_hits']} from the cache, "
        f"{res['run_stats']['simulated']} simulated on {res['run_stats']['workers'] or '-'} Dask worker(s) "
        f"in {res['run_stats']['wall_s']:.0f} s (sum of run times {res['run_stats']['sum_of_run_wall_s']:.0f} s). "
        "Every run with its figures and cache key is in national.json."),
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(md), encoding="utf-8")
    return [path, out / "national.json", out / "tornado.png", out / "effects.png", out / "intervals.png"]
