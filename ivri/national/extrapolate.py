"""From per-intersection effects to a national figure per year, with Monte Carlo and tornado.

For a feature ``f`` and an intersection type ``t`` (per signalised intersection, per year)::

    E_t = sum over day types d:   hours_d * scale_d
          * sum over weather w:   (1 - r) for dry, r for rain            r = rain-hour share
          * sum over baseline b:  phi for fixed time, 1 - phi for actuated
          * e_f(t, variant_d, w, b)                      (effect per intersection-hour)

    national_f = N * rollout * sum over t: share_t / sum(shares) * E_t

Equipped shares: the runs use the parameter file's central shares; the Monte Carlo scales an
application's effect by ``sampled share / simulated share`` (linear in the share, an
assumption). GreenFlow's effect on general traffic is also scaled by the ratio of real
emergency passages per intersection-hour (``emergency.passages_per_intersection_year`` /
hours of the year) to the simulated ones (the bundled demand has 3 emergency vehicles an
hour: far more than reality). ``all`` is corrected the same way, term by term::

    e_all' = e_all + sum over single features f: (k_f - 1) * e_f

Emergency time saved per intersection per year = passages per year * equipped share /
simulated share * (hour-weighted mean over day types of the saving per passage * scale_d).

Fuel in litres = petrol kg / petrol density + diesel kg / diesel density (parameter file).

Every function takes the parameters as a mapping of name -> float or numpy array (one value
per Monte Carlo draw), and the seed choice per type as None (mean over seeds) or an integer
array (one seed index per draw): the same code gives the central value, the draws and the
tornado.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ivri.national.effects import METRICS, EffectTable
from ivri.national.parameters import ParameterSet
from ivri.national.sweep import ALL, BASELINES, EQUIPPED_KIND, TREATMENT_BASE

__all__ = [
    "OUTPUTS",
    "headline_feature",
    "monte_carlo",
    "national",
    "per_intersection_year",
    "summarise",
    "tornado",
]

#: Outputs per year: vehicle-loss hours, litres of fuel, kg CO2, cyclist hours, emergency hours.
OUTPUTS = ("veh_h", "fuel_l", "co2_kg", "cyclist_h", "ev_h")

Value = float | np.ndarray
Params = Mapping[str, Value]
SeedPick = Mapping[str, np.ndarray | int | None] | None


def _pick(arr: np.ndarray, idx: np.ndarray | int | None) -> Value:
    return float(arr.mean()) if idx is None else arr[idx]


def _scale(table: EffectTable, p: Params, itype: str, variant: str, feature: str,
           idx: np.ndarray | int | None) -> Value:
    """The factor k_f of a single feature's effect on general traffic."""
    kind = EQUIPPED_KIND.get(feature)
    if kind is None:
        return 1.0
    sim_share = table.sweep.shares.get(kind, 0.0)
    share_ratio = p[f"equipped.{kind}"] / sim_share if sim_share > 0 else 1.0
    if feature != "greenflow":
        return share_ratio
    hours = sum(p[f"day_hours.{d}"] for d in table.sweep.day_variant)
    real_rate = p["emergency.passages_per_intersection_year"] / hours
    sim_rate = _pick(table.ev_rate[(itype, variant)], idx)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.asarray(sim_rate) > 0, real_rate / np.maximum(sim_rate, 1e-12), 0.0)
    return share_ratio * (ratio if np.ndim(ratio) else float(ratio))


def _effect(table: EffectTable, p: Params, itype: str, variant: str, weather: str, baseline: str,
            feature: str, idx: np.ndarray | int | None) -> dict[str, Value]:
    # Only an application's increment over its own base (vehicle-actuated) scales with its
    # share; the gain of actuation over a fixed-time baseline does not:
    #   e'(b) = e(b) + (k_f - 1) * e(actuated)   (for "all": summed over the single features)
    e = table.get(itype, variant, weather, baseline, feature)
    out: dict[str, Value] = {m: _pick(e[m], idx) for m in (*METRICS, "ev_s_per_passage")}
    parts = [f for f in table.sweep.features if f != ALL and f in EQUIPPED_KIND] if feature == ALL \
        else ([feature] if feature in EQUIPPED_KIND else [])
    for f in parts:
        k = _scale(table, p, itype, variant, f, idx)
        increment = table.get(itype, variant, weather, TREATMENT_BASE, f)
        for m in METRICS:
            out[m] = out[m] + (k - 1.0) * _pick(increment[m], idx)
    return out


def per_intersection_year(table: EffectTable, p: Params, itype: str, feature: str,
                          seeds: SeedPick = None) -> dict[str, Value]:
    """Annual effect of ``feature`` at one intersection of type ``itype`` (savings > 0)."""
    idx = None if seeds is None else seeds.get(itype)
    r = p["weather.rain_hour_share"]
    phi = p["baseline.fixed_time_share"]
    days = table.sweep.day_variant
    hours_total = sum(p[f"day_hours.{d}"] for d in days)
    acc: dict[str, Value] = {m: 0.0 for m in (*METRICS, "ev_s_per_passage")}
    for day, variant in days.items():
        hours, scale = p[f"day_hours.{day}"], p[f"day_scale.{day}"]
        for weather, ww in (("dry", 1.0 - r), ("rain", r)):
            for baseline, wb in zip(BASELINES, (phi, 1.0 - phi), strict=True):
                e = _effect(table, p, itype, variant, weather, baseline, feature, idx)
                for m in METRICS:
                    acc[m] = acc[m] + hours * scale * ww * wb * e[m]
                acc["ev_s_per_passage"] = (acc["ev_s_per_passage"]
                                           + hours / hours_total * scale * ww * wb * e["ev_s_per_passage"])
    ev_share = 1.0
    if feature in ("greenflow", ALL):
        sim = table.sweep.shares.get("emergency", 0.0)
        ev_share = p["equipped.emergency"] / sim if sim > 0 else 1.0
    fuel_l = (acc["petrol_kg"] * 1000.0 / p["fuel.density_petrol_g_per_l"]
              + acc["diesel_kg"] * 1000.0 / p["fuel.density_diesel_g_per_l"])
    return {
        "veh_h": acc["veh_h"],
        "fuel_l": fuel_l,
        "co2_kg": acc["co2_kg"],
        "cyclist_h": acc["cyclist_h"],
        "ev_h": p["emergency.passages_per_intersection_year"] * ev_share * acc["ev_s_per_passage"] / 3600.0,
    }


def type_weights(table: EffectTable, p: Params) -> dict[str, Value]:
    """Shares of the simulated types, renormalised to sum 1."""
    raw = {t: p[f"type_share.{t}"] for t in table.sweep.types}
    total = sum(raw.values())
    return {t: v / total for t, v in raw.items()}


def national(table: EffectTable, p: Params, feature: str, seeds: SeedPick = None) -> dict[str, Value]:
    """National annual effect of ``feature`` (see the module docstring)."""
    n = p["national.intersections"] * p["national.rollout_share"]
    weights = type_weights(table, p)
    out: dict[str, Value] = dict.fromkeys(OUTPUTS, 0.0)
    for t, w in weights.items():
        e = per_intersection_year(table, p, t, feature, seeds)
        for k in OUTPUTS:
            out[k] = out[k] + n * w * e[k]
    return out


def headline_feature(table: EffectTable) -> str:
    return ALL if ALL in table.sweep.features else table.sweep.features[-1]


def monte_carlo(table: EffectTable, params: ParameterSet, n: int = 4000, rng_seed: int = 20210301
                ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """``n`` draws of every uncertain parameter and of the seed of each type.

    Returns per feature the arrays of national outputs, and a description of the draws.
    """
    rng = np.random.default_rng(rng_seed)
    p: dict[str, Value] = dict(params.values())
    for name in params.uncertain():
        p[name] = params[name].sample(rng, n)
    seeds = {t: rng.integers(0, table.n_seeds, n) for t in table.sweep.types}
    draws: dict[str, dict[str, np.ndarray]] = {}
    for f in table.sweep.features:
        res = national(table, p, f, seeds)
        draws[f] = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() for k, v in res.items()}
    info = {"draws": n, "rng_seed": rng_seed, "varied": params.uncertain(),
            "seed_resampling": f"one of {table.n_seeds} seed(s) per intersection type and draw "
                               "(baseline and treatment paired)",
            "distributions": {k: params[k].distribution for k in params.uncertain()}}
    return draws, info


def summarise(central: Mapping[str, Value], draws: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Central value, mean and 5 / 50 / 95 percentiles per output."""
    out = {}
    for k in OUTPUTS:
        d = draws[k]
        out[k] = {"central": float(central[k]), "mean": float(d.mean()),
                  "p5": float(np.percentile(d, 5)), "p50": float(np.percentile(d, 50)),
                  "p95": float(np.percentile(d, 95))}
    return out


def tornado(table: EffectTable, params: ParameterSet, feature: str,
            outputs: tuple[str, ...] = ("veh_h", "fuel_l")) -> list[dict[str, Any]]:
    """One parameter at a time at its low and high end (the others central), plus the seed.

    Rows sorted by the swing of the first output, largest first.
    """
    central = params.values()
    base = national(table, central, feature)
    rows = []
    for name in params.uncertain():
        lo = national(table, {**central, name: params[name].low}, feature)
        hi = national(table, {**central, name: params[name].high}, feature)
        rows.append({"name": name, "low_value": params[name].low, "high_value": params[name].high,
                     **{f"{k}_low": float(lo[k]) for k in outputs},
                     **{f"{k}_high": float(hi[k]) for k in outputs}})
    if table.n_seeds > 1:
        per_seed = [national(table, central, feature, dict.fromkeys(table.sweep.types, i))
                    for i in range(table.n_seeds)]
        row: dict[str, Any] = {"name": "simulation seed", "low_value": None, "high_value": None}
        for k in outputs:
            vals = [float(r[k]) for r in per_seed]
            row[f"{k}_low"], row[f"{k}_high"] = min(vals), max(vals)
        rows.append(row)
    for r in rows:
        r["swing"] = {k: abs(r[f"{k}_high"] - r[f"{k}_low"]) for k in outputs}
        r["central"] = {k: float(base[k]) for k in outputs}
    rows.sort(key=lambda r: r["swing"][outputs[0]], reverse=True)
    return rows
