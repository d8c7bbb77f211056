"""Per-intersection effects from run results: baseline minus treatment, per intersection-hour.

For every intersection type, scenario variant, weather, emergency level and arm, and for every
seed (paired: baseline and treatment share the seed, so the same demand), the saving per
signalised intersection and counted hour (the window after the warm-up):

=====================  ================================================================
``veh_h``              vehicle-loss hours (timeLoss + departDelay of road motor vehicles)
``limit_h``            loss against the speed limit (Rijkswaterstaat style) + departDelay
``depart_delay_h``     the part of ``veh_h`` spent waiting to enter (idling, see fuel)
``stops``              stops of motor vehicles (SUMO waitingCount)
``petrol_kg``          petrol burnt [kg] (litres follow with the parameter file's density)
``diesel_kg``          diesel burnt [kg]
``co2_kg``             CO2 [kg]
``cyclist_h``          cyclists' time loss + depart delay [h]
``ev_s_per_trip``      emergency vehicles' time lost per emergency trip [s] (level "hi")
=====================  ================================================================

Features and packages are measured against ``kar`` (today's light with KAR priority); the
conversion line is ``webster`` (fixed time timed to demand) minus ``actuated``. Positive
numbers are savings. A network with ``n`` signalised intersections divides by ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ivri.national.power import paired_effect
from ivri.national.sweep import BASELINE, CONVERSION, SHARE_LEVEL, Cell, Job, Sweep

__all__ = ["CONVERSION_LINE", "METRICS", "EffectTable", "compute_effects"]

METRICS = ("veh_h", "limit_h", "depart_delay_h", "stops", "petrol_kg", "diesel_kg", "co2_kg", "cyclist_h")
#: The name of the conversion line in the effect table.
CONVERSION_LINE = "conversion"

_FIELD = {"veh_h": "vehicle_loss_hours", "limit_h": "limit_loss_hours", "depart_delay_h": "depart_delay_hours",
          "stops": "stops", "petrol_kg": "petrol_kg", "diesel_kg": "diesel_kg", "co2_kg": "co2_kg",
          "cyclist_h": "cyclist_loss_h"}


@dataclass
class EffectTable:
    """Effects per intersection-hour, each an array over the sweep's seeds."""

    sweep: Sweep
    #: (itype, variant, weather, level, feature) -> metric -> array over seeds
    effects: dict[tuple[str, str, str, str, str], dict[str, np.ndarray]]
    #: (itype, variant, level) -> emergency passages per intersection-hour in the baseline runs
    ev_rate: dict[tuple[str, str, str], np.ndarray]
    #: (itype, variant, weather, level, arm) -> metric -> per intersection-hour level, per seed
    levels: dict[tuple[str, str, str, str, str], dict[str, np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: itype -> signalised intersections of its network
    n_intersections: dict[str, int] = field(default_factory=dict)
    #: (level, feature) -> ((baseline arm, its level), (treatment arm, its level))
    pairs: dict[tuple[str, str], tuple[tuple[str, str], tuple[str, str]]] = field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return len(self.sweep.seeds)

    def get(self, itype: str, variant: str, weather: str, level: str, feature: str) -> dict[str, np.ndarray]:
        return self.effects[(itype, variant, weather, level, feature)]

    def has(self, itype: str, variant: str, weather: str, level: str, feature: str) -> bool:
        return (itype, variant, weather, level, feature) in self.effects

    def power(self, metric: str = "veh_h", weather: str = "dry") -> list[dict[str, Any]]:
        """Paired effect, interval and minimum detectable effect per type, variant, level and line."""
        rows = []
        for (t, v, w, lv, f), m in sorted(self.effects.items()):
            if w != weather or metric not in m:
                continue
            (b_arm, b_lv), (t_arm, t_lv) = self.pairs[(lv, f)]
            b = self.levels[(t, v, w, b_lv, b_arm)][metric]
            tr = self.levels[(t, v, w, t_lv, t_arm)][metric]
            e = paired_effect(b, tr)
            rows.append({"type": t, "variant": v, "level": lv, "feature": f, "metric": metric,
                         "baseline_level": float(b.mean()), **e.to_dict()})
        return rows

    def to_json(self) -> list[dict[str, Any]]:
        rows = []
        for (t, v, w, lv, f), m in sorted(self.effects.items()):
            rows.append({"type": t, "variant": v, "weather": w, "level": lv, "feature": f,
                         "per_intersection_hour": {k: [round(float(x), 6) for x in a] for k, a in m.items()}})
        return rows


def _norm(rec: dict[str, Any]) -> float:
    """Intersection-hours of the counted window."""
    return rec["window_s"] / 3600.0 * float(rec["n_intersections"])


def compute_effects(sweep: Sweep, results: dict[Job, dict[str, Any]]) -> EffectTable:
    """Build the effect table from the records of every job of ``sweep``."""
    notes: list[str] = []
    effects: dict[tuple[str, str, str, str, str], dict[str, np.ndarray]] = {}
    levels: dict[tuple[str, str, str, str, str], dict[str, np.ndarray]] = {}
    ev_rate: dict[tuple[str, str, str], np.ndarray] = {}
    keys = sorted({(c.itype, c.variant) for c in sweep.cells})
    n_int = {c.itype: int(results[j]["n_intersections"]) for c, j in sweep.cells.items()}
    pairs: dict[tuple[str, str], tuple[tuple[str, str], tuple[str, str]]] = {
        ("lo", CONVERSION_LINE): ((CONVERSION[0], "lo"), (CONVERSION[1], "lo"))}
    for f in sweep.features:
        for lv in sweep.levels_of(f):
            # At the second share the baseline is unchanged, unless it has the application too (bus).
            b_lv = "lo" if lv == SHARE_LEVEL and f != "bus" else lv
            pairs[(lv, f)] = ((BASELINE, b_lv), (f, lv))
    for t, v in keys:
        for w in ("dry", "rain"):
            for arm in sweep.arms:
                for lv in sweep.levels_of(arm):
                    vals: dict[str, list[float]] = {m: [] for m in (*METRICS, "ev_lost_s", "ev_trips")}
                    for s in sweep.seeds:
                        r = results[sweep.cells[Cell(t, v, w, lv, arm, s)]]
                        ih = _norm(r)
                        for m in METRICS:
                            vals[m].append(r[_FIELD[m]] / ih)
                        vals["ev_lost_s"].append(r["emergency_time_lost_s"])
                        vals["ev_trips"].append(r["emergency_trips"])
                    levels[(t, v, w, lv, arm)] = {k: np.array(a, dtype=float) for k, a in vals.items()}
            for lv in ("lo", "hi"):
                if w == "dry" and (t, v, w, lv, BASELINE) in levels:
                    rates = [results[sweep.cells[Cell(t, v, "dry", lv, BASELINE, s)]] for s in sweep.seeds]
                    ev_rate[(t, v, lv)] = np.array([r["emergency_passages"] / (r["simulated_s"] / 3600.0
                                                                                * r["n_intersections"])
                                                    for r in rates])
            for (lv, name), ((b_arm, b_lv), (t_arm, t_lv)) in pairs.items():
                lb, lt = levels[(t, v, w, b_lv, b_arm)], levels[(t, v, w, t_lv, t_arm)]
                eff = {m: lb[m] - lt[m] for m in METRICS}
                trips = lb["ev_trips"]
                with np.errstate(divide="ignore", invalid="ignore"):
                    eff["ev_s_per_trip"] = np.where(trips > 0, lb["ev_lost_s"] / np.maximum(trips, 1)
                                                    - lt["ev_lost_s"] / np.maximum(lt["ev_trips"], 1), 0.0)
                effects[(t, v, w, lv, name)] = eff
    for (t, v, lv), a in sorted(ev_rate.items()):
        if lv == "hi" and not np.all(a > 0):
            notes.append(f"{t}:{v}: some 'hi' level baseline runs had no emergency passage (the demand has "
                         "no or few emergency vehicles): no emergency effect is interpolated for it")
    return EffectTable(sweep=sweep, effects=effects, ev_rate=ev_rate, levels=levels, notes=notes,
                       n_intersections=n_int, pairs=pairs)
