"""From per-intersection effects to a national figure per year, with Monte Carlo and tornado.

For a feature or package ``f`` and an intersection type ``t`` (per signalised intersection,
per year)::

    E_t = sum over day types d:   hours_d * scale_d
          * sum over weather w:   (1 - r) for dry, r for rain            r = rain-hour share
          * e_f(t, variant_d, w)                          (effect per intersection-hour)

    national_f      = N * rollout * sum over t: share_t / sum(shares) * E_t
    national_conv   = N * phi     * sum over t: share_t / sum(shares) * E_t(conversion)

``phi`` is the share of today's lights that run fixed time; the conversion line is the effect
of replacing a demand-timed fixed-time plan (Webster) by vehicle actuation, and is no part of
any iVRI package.

Emergency rate (two levels instead of linear scaling). An arm with emergency priority is
simulated at the rate ``lo`` (no emergency vehicles by default) and ``hi`` (the scenario's,
about 3 an hour); its effect at the real rate ``x`` (passages per intersection-hour, times the
equipped share over the simulated one) is interpolated::

    e(x) = e_lo + (e_hi - e_lo) * (x - x_lo) / (x_hi - x_lo)

Equipped shares of the other applications: a single feature runs at the central share ``s1``
and at a second share ``s2`` (the other end of the parameter's range); at a sampled share ``s``
its effect is interpolated between the two, ``e_f(s) = e_1 + (e_2 - e_1) (s - s1) / (s2 - s1)``
(bus priority also times the share of lights on a bus line). Where no second share was run,
the effect scales linearly through zero, ``k_f = s / s1``. A package is corrected term by term
with its single features' effects where they were simulated::

    e_pkg' = e_pkg + sum over its features f:  e_f(s) - e_f(s1)

Fuel in litres = (petrol kg / petrol density + diesel kg / diesel density) x fleet factor
+ depart-delay hours x the idle rate (vehicles waiting to enter burn fuel that SUMO does not
count). Emergency-vehicle hours = passages per year x equipped ratio x the saving per
emergency trip at ``hi`` / the network's number of intersections.

Every function takes the parameters as a mapping of name -> float or numpy array (one value
per Monte Carlo draw), and the seed choice per type as None (mean over seeds) or an integer
array (one seed index per draw): the same code gives the central value, the draws and the
tornado.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ivri.national.effects import CONVERSION_LINE, METRICS, EffectTable
from ivri.national.parameters import ParameterSet
from ivri.national.sweep import EQUIPPED_KIND, PACKAGES, SHARE_LEVEL

__all__ = [
    "OUTPUTS",
    "headline_feature",
    "lines",
    "monte_carlo",
    "national",
    "per_intersection_year",
    "summarise",
    "tornado",
    "type_weights",
]

#: Outputs per year.
OUTPUTS = ("veh_h", "limit_h", "stops", "fuel_l", "co2_kg", "cyclist_h", "ev_h")

Value = float | np.ndarray
Params = Mapping[str, Value]
SeedPick = Mapping[str, np.ndarray | int | None] | None


def _pick(arr: np.ndarray, idx: np.ndarray | int | None) -> Value:
    return float(arr.mean()) if idx is None else arr[idx]


def _hours_total(table: EffectTable, p: Params) -> Value:
    return sum(p[f"day_hours.{d}"] for d in table.sweep.day_variant)


def _share_ratio(table: EffectTable, p: Params, feature: str) -> Value:
    kind = EQUIPPED_KIND.get(feature)
    if kind is None:
        return 1.0
    sim = table.sweep.shares.get(kind, 0.0)
    k = p[f"equipped.{kind}"] / sim if sim > 0 else 1.0
    if feature == "bus":
        k = k * p["calibration.bus_line_share"]
    return k


def _real_ev_rate(table: EffectTable, p: Params) -> Value:
    """Equipped emergency passages per intersection-hour in reality."""
    return p["emergency.passages_per_intersection_year"] / _hours_total(table, p) * _share_ratio(table, p, "greenflow")


def _effect(table: EffectTable, p: Params, itype: str, variant: str, weather: str, feature: str,
            idx: np.ndarray | int | None) -> dict[str, Value]:
    lo = table.get(itype, variant, weather, "lo", feature)
    out: dict[str, Value] = {m: _pick(lo[m], idx) for m in METRICS}
    out["ev_s_per_trip"] = 0.0
    if feature == CONVERSION_LINE:
        return out
    if table.has(itype, variant, weather, "hi", feature):
        hi = table.get(itype, variant, weather, "hi", feature)
        x_lo = _pick(table.ev_rate[(itype, variant, "lo")], idx)
        x_hi = _pick(table.ev_rate[(itype, variant, "hi")], idx)
        span = np.asarray(x_hi) - np.asarray(x_lo)
        # A network without emergency vehicles (some real-world demand) has no emergency part
        # to interpolate: its 'lo' effect stands.
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(span > 1e-9, (_real_ev_rate(table, p) - x_lo) / np.where(span > 1e-9, span, 1.0), 0.0)
        if np.ndim(frac) == 0:
            frac = float(frac)
        for m in METRICS:
            out[m] = out[m] + (_pick(hi[m], idx) - out[m]) * frac
        out["ev_s_per_trip"] = _pick(hi["ev_s_per_trip"], idx)
    parts = PACKAGES.get(feature, (feature,))
    for f in parts:
        if f == "greenflow" or f not in EQUIPPED_KIND or not table.has(itype, variant, weather, "lo", f):
            continue
        single = table.get(itype, variant, weather, "lo", f)
        line = p["calibration.bus_line_share"] if f == "bus" else 1.0
        s2 = table.sweep.share_levels.get(f)
        if s2 is not None and table.has(itype, variant, weather, SHARE_LEVEL, f):
            # Two measured shares: interpolate between them (not through zero).
            kind = EQUIPPED_KIND[f]
            s1 = table.sweep.shares[kind]
            second = table.get(itype, variant, weather, SHARE_LEVEL, f)
            frac = (p[f"equipped.{kind}"] - s1) / (s2 - s1)
            for m in METRICS:
                e1 = _pick(single[m], idx)
                adjusted = (e1 + (_pick(second[m], idx) - e1) * frac) * line
                out[m] = out[m] + adjusted - e1
        else:
            k = _share_ratio(table, p, f)
            for m in METRICS:
                out[m] = out[m] + (k - 1.0) * _pick(single[m], idx)
    return out


def per_intersection_year(table: EffectTable, p: Params, itype: str, feature: str,
                          seeds: SeedPick = None) -> dict[str, Value]:
    """Annual effect of ``feature`` (or the conversion line) at one intersection of ``itype``."""
    idx = None if seeds is None else seeds.get(itype)
    r = p["weather.rain_hour_share"]
    fixed = table.sweep.fixed_variant.get(itype)
    acc: dict[str, Value] = dict.fromkeys(METRICS, 0.0)
    ev_s = 0.0
    hours_total = _hours_total(table, p)
    for day, variant in table.sweep.day_variant.items():
        hours, scale = p[f"day_hours.{day}"], p[f"day_scale.{day}"]
        for weather, ww in (("dry", 1.0 - r), ("rain", r)):
            e = _effect(table, p, itype, fixed or variant, weather, feature, idx)
            for m in METRICS:
                acc[m] = acc[m] + hours * scale * ww * e[m]
            ev_s = ev_s + hours / hours_total * ww * e["ev_s_per_trip"]
    n_int = _n_intersections(table, itype)
    fuel_l = ((acc["petrol_kg"] * 1000.0 / p["fuel.density_petrol_g_per_l"]
               + acc["diesel_kg"] * 1000.0 / p["fuel.density_diesel_g_per_l"]) * p["fuel.fleet_factor"]
              + acc["depart_delay_h"] * p["fuel.idle_l_per_h"])
    ev_h = 0.0
    if feature != CONVERSION_LINE:
        ev_h = (p["emergency.passages_per_intersection_year"] * _share_ratio(table, p, "greenflow")
                * ev_s / n_int / 3600.0)
    return {"veh_h": acc["veh_h"], "limit_h": acc["limit_h"], "stops": acc["stops"], "fuel_l": fuel_l,
            "co2_kg": acc["co2_kg"] * p["fuel.fleet_factor"], "cyclist_h": acc["cyclist_h"], "ev_h": ev_h}


def _n_intersections(table: EffectTable, itype: str) -> float:
    return float(table.n_intersections.get(itype, 1))


def type_weights(table: EffectTable, p: Params) -> dict[str, Value]:
    """Shares of the simulated types, renormalised to sum 1."""
    raw = {t: p[f"type_share.{t}"] for t in table.sweep.types}
    total = sum(raw.values())
    return {t: v / total for t, v in raw.items()}


def national(table: EffectTable, p: Params, feature: str, seeds: SeedPick = None) -> dict[str, Value]:
    """National annual effect of ``feature``, or of the conversion line (see the module docstring)."""
    share = p["baseline.fixed_time_share"] if feature == CONVERSION_LINE else p["national.rollout_share"]
    n = p["national.intersections"] * share
    out: dict[str, Value] = dict.fromkeys(OUTPUTS, 0.0)
    for t, w in type_weights(table, p).items():
        e = per_intersection_year(table, p, t, feature, seeds)
        for k in OUTPUTS:
            out[k] = out[k] + n * w * e[k]
    return out


def lines(table: EffectTable) -> tuple[str, ...]:
    """Everything the estimate reports: features, packages and the conversion line."""
    return (*table.sweep.features, CONVERSION_LINE)


def headline_feature(table: EffectTable) -> str:
    """G40's scope when simulated, else the last feature."""
    return "g40" if "g40" in table.sweep.features else table.sweep.features[-1]


def monte_carlo(table: EffectTable, params: ParameterSet, n: int = 4000, rng_seed: int = 20210301
                ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """``n`` draws of every uncertain parameter and of the seed of each type."""
    rng = np.random.default_rng(rng_seed)
    p: dict[str, Value] = dict(params.values())
    for name in params.uncertain():
        p[name] = params[name].sample(rng, n)
    seeds = {t: rng.integers(0, table.n_seeds, n) for t in table.sweep.types}
    draws: dict[str, dict[str, np.ndarray]] = {}
    for f in lines(table):
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
    unused = {f"type_share.{t}" for t in (k.partition(".")[2] for k in central if k.startswith("type_share."))
              if t not in table.sweep.types}
    for name in params.uncertain():
        if name in unused:  # the share of a type that was not simulated moves nothing
            continue
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
