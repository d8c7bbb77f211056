"""Per-intersection effects from run results: baseline minus treatment, per intersection-hour.

For every intersection type, scenario variant, weather, baseline (fixed-time, actuated) and
feature, and for every seed (paired: baseline and treatment share the seed, so the same
demand), the saving per signalised intersection and simulated hour:

====================  =================================================================
``veh_h``             vehicle-loss hours (timeLoss + departDelay of road motor vehicles)
``petrol_kg``         petrol burnt [kg] (litres follow with the parameter file's density)
``diesel_kg``         diesel burnt [kg]
``co2_kg``            CO2 [kg]
``cyclist_h``         cyclists' time loss + depart delay [h]
``ev_s_per_passage``  emergency vehicles' time lost, per emergency passage of a stop line [s]
====================  =================================================================

Positive numbers are savings. A network with ``n`` signalised intersections divides by ``n``:
the corridor and the grid give effects per intersection of their kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ivri.national.sweep import BASELINES, Cell, Job, Sweep

__all__ = ["METRICS", "EffectTable", "compute_effects"]

METRICS = ("veh_h", "petrol_kg", "diesel_kg", "co2_kg", "cyclist_h")


@dataclass
class EffectTable:
    """Effects per intersection-hour, each an array over the sweep's seeds."""

    sweep: Sweep
    #: (itype, variant, weather, baseline, feature) -> metric -> array over seeds
    effects: dict[tuple[str, str, str, str, str], dict[str, np.ndarray]]
    #: (itype, variant) -> emergency passages per intersection-hour in the simulation, per seed
    ev_rate: dict[tuple[str, str], np.ndarray]
    #: (itype, variant, weather, arm) -> metric -> per intersection-hour level, per seed
    levels: dict[tuple[str, str, str, str], dict[str, np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def n_seeds(self) -> int:
        return len(self.sweep.seeds)

    def get(self, itype: str, variant: str, weather: str, baseline: str, feature: str) -> dict[str, np.ndarray]:
        return self.effects[(itype, variant, weather, baseline, feature)]

    def to_json(self) -> list[dict[str, Any]]:
        rows = []
        for (t, v, w, b, f), m in sorted(self.effects.items()):
            rows.append({"type": t, "variant": v, "weather": w, "baseline": b, "feature": f,
                         "per_intersection_hour": {k: [round(float(x), 6) for x in a] for k, a in m.items()}})
        return rows


def _per_int_hour(rec: dict[str, Any]) -> tuple[float, float]:
    return rec["simulated_s"] / 3600.0, float(rec["n_intersections"])


def compute_effects(sweep: Sweep, results: dict[Job, dict[str, Any]]) -> EffectTable:
    """Build the effect table from the records of every job of ``sweep``."""
    notes: list[str] = []

    def rec(cell: Cell) -> dict[str, Any]:
        return results[sweep.cells[cell]]

    effects: dict[tuple[str, str, str, str, str], dict[str, np.ndarray]] = {}
    levels: dict[tuple[str, str, str, str], dict[str, np.ndarray]] = {}
    ev_rate: dict[tuple[str, str], np.ndarray] = {}
    keys = sorted({(c.itype, c.variant) for c in sweep.cells})
    for t, v in keys:
        rates = []
        for s in sweep.seeds:
            base = rec(Cell(t, v, "dry", "actuated", s))
            hours, n = _per_int_hour(base)
            rates.append(base["emergency_passages"] / (hours * n))
        ev_rate[(t, v)] = np.array(rates)
        for w in ("dry", "rain"):
            for arm in sweep.arms:
                vals: dict[str, list[float]] = {m: [] for m in (*METRICS, "ev_lost_s", "ev_passages")}
                for s in sweep.seeds:
                    r = rec(Cell(t, v, w, arm, s))
                    hours, n = _per_int_hour(r)
                    vals["veh_h"].append(r["vehicle_loss_hours"] / (hours * n))
                    vals["petrol_kg"].append(r["petrol_kg"] / (hours * n))
                    vals["diesel_kg"].append(r["diesel_kg"] / (hours * n))
                    vals["co2_kg"].append(r["co2_kg"] / (hours * n))
                    vals["cyclist_h"].append(r["cyclist_loss_h"] / (hours * n))
                    vals["ev_lost_s"].append(r["emergency_time_lost_s"])
                    vals["ev_passages"].append(r["emergency_passages"])
                levels[(t, v, w, arm)] = {k: np.array(a, dtype=float) for k, a in vals.items()}
            for b in BASELINES:
                lb = levels[(t, v, w, b)]
                for f in sweep.features:
                    lf = levels[(t, v, w, f)]
                    eff = {m: lb[m] - lf[m] for m in METRICS}
                    passages = lb["ev_passages"]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        per = np.where(passages > 0, (lb["ev_lost_s"] - lf["ev_lost_s"]) / passages, 0.0)
                    eff["ev_s_per_passage"] = per
                    effects[(t, v, w, b, f)] = eff
        if not np.all(ev_rate[(t, v)] > 0):
            notes.append(f"{t}:{v}: no emergency passage in some seed's baseline run; the "
                         "emergency effect of that seed counts as zero")
    return EffectTable(sweep=sweep, effects=effects, ev_rate=ev_rate, levels=levels, notes=notes)
