"""Each priority application on and off, side by side, same scenarios and seeds.

    python benchmarks/priority.py [--scenarios crossing,tjunction,corridor,grid,PATH.sumocfg]
                                  [--seeds 42,...,51] [--variants peak,offpeak] [--workers 2]
                                  [--arms off,greenflow,...] [--end S | --duration S]
                                  [--out benchmark-results/priority] [--quick] [--no-cache]

Bundled scenario names get each ``--variants`` suffix; a path to a ``.sumocfg`` (the real-world
test set, e.g. RESCO cologne3) runs as it is. Every arm runs with the same seeds (common
random numbers: the same demand and the same equipped road users), so each arm is compared
with the baseline seed by seed: the tables give the mean paired difference and its 95 %
interval (Student t over the seeds).

Besides the applications it runs ``cv-actuated`` (connected-vehicle actuated control) at
equipped shares of 0, 10, 25, 50 and 100 % of the motor vehicles (arms ``cv0`` ... ``cv100``)
and GLOSA on ``actuated`` and on ``cv-actuated`` (whose committed forecast it advises on),
with stops and fuel of the equipped and the other cars. Person-delay counts persons, not
vehicles: each mode's time loss times its persons per vehicle
(:data:`ivri.controllers.priority.PERSONS`).

For every scenario and seed it runs the vehicle-actuated controller without applications
(the baseline, with V2X emulation on so that the same road users are measured), and then
with each application alone and with all of them together, on the same demand and seed:

=============  ===========================================  ========================================
application    measured                                     target
=============  ===========================================  ========================================
greenflow      emergency vehicles' time lost, stops, and    time lost >= 60 % lower; no red
               stop-line passages at red or amber; the      passages below saturation
               vehicle-loss hours of everyone else
schwung        app cyclists' mean stops and delay; other    stops >= 30 % fewer, delay >= 25 %
               cyclists' and cars' delay                    lower
rain           cyclist and car delay of trips that depart   cyclist delay >= 25 % lower in rain,
               while it rains, and in the dry hour before   car delay <= +10 % in rain, no effect
               (a shower from 20 to 40 min, 3 mm/h)         when dry
crosswalk      slow crossers with the app still on the      zero with Crosswalk (the count without
               crossing when a conflicting stream gets      it is reported)
               green
bus, truck     their delay and stops; cost to others       reported
=============  ===========================================  ========================================

Runs go through dask.distributed (a LocalCluster with ``--workers`` processes) and are cached
on disk (``~/.cache/ivri/benchmark-priority``) by scenario content, arm, seed, end and the
engine's source, so an interrupted benchmark resumes where it stopped and
a rerun after a change simulates only what the change touches. A run that fails is reported
with its error and left out of the tables; the others go on. ``--duration S`` stops each run
S seconds after its own scenario's begin (real-world networks begin at their own clock time,
e.g. 07:00). It writes
``priority.json`` (every figure, the SUMO version, seeds and parameters), ``priority.md``
(the table) and PNG plots into ``--out``. ``--quick`` runs the short variant of the crossing
with one seed, to check that everything works.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ivri.runner import RunSpec, run_controller, run_dir_of
from ivri.sumo.connection import sumo_version

BASE = "actuated"
#: Share of motor vehicles equipped in the cv-actuated arms (percent).
CV_SHARES = (0, 10, 25, 50, 100)
#: Share of cars equipped in the GLOSA arms (the runner's default for GLOSA).
GLOSA_SHARE = 0.2
APPS = {
    "greenflow": "actuated+greenflow",
    "schwung": "actuated+schwung",
    "rain": "actuated+rain",
    "crosswalk": "actuated+crosswalk",
    "bus": "actuated+bus",
    "truck": "actuated+truck",
    "all": "actuated+greenflow+schwung+crosswalk+bus+truck+rain",
    **{f"cv{p}": "cv-actuated" for p in CV_SHARES},
    "glosa": "actuated+glosa",
    "cvglosa": "cv-actuated+glosa",
}


def arm_shares(name: str) -> dict[str, float] | None:
    """The V2X shares of an arm: cv arms equip that share of every motor kind; GLOSA arms a
    share of the cars (the baseline uses the same car share, so that the same cars are
    "equipped" in both and their stops and fuel can be compared)."""
    if name.startswith("cv") and name[2:].isdigit():
        p = int(name[2:]) / 100.0
        return {"car": p, "bus": p, "truck": p, "emergency": p}
    if name == "cvglosa":
        return {"car": 0.25}
    return {"car": GLOSA_SHARE}


def equipped_car_split(tripinfo: Path, vtype_modes: dict[str, str], share: float, seed: int
                       ) -> dict[str, dict[str, float | None]]:
    """Mean stops and fuel [L] per arrived car trip, equipped (as the V2X emulation picks them)
    and other. Fuel: SUMO writes mg; cars are petrol in the bundled scenarios (742 g/L)."""
    from ivri.metrics.fuel import FUEL_DENSITY_G_PER_L, FUEL_PETROL
    from ivri.sumo.v2x import equipped_mask

    ids, stops, fuel = [], [], []
    for _, el in ET.iterparse(str(tripinfo), events=("end",)):
        if el.tag == "tripinfo":
            if vtype_modes.get(el.get("vType", "")) == "car" and float(el.get("arrival", "-1")) >= 0.0:
                em = el.find("emissions")
                ids.append(el.get("id", ""))
                stops.append(float(el.get("waitingCount", "0")))
                fuel.append(float(em.get("fuel_abs", "0")) if em is not None else 0.0)
            el.clear()
    eq = equipped_mask(ids, share, seed, "car")
    density = FUEL_DENSITY_G_PER_L[FUEL_PETROL]
    out: dict[str, dict[str, float | None]] = {}
    for key, m in (("equipped", eq), ("others", ~eq)):
        idx = [i for i in range(len(ids)) if m[i]]
        out[key] = {"trips": float(len(idx)),
                    "stops": statistics.fmean(stops[i] for i in idx) if idx else None,
                    "fuel_l": statistics.fmean(fuel[i] for i in idx) / 1000.0 / density if idx else None}
    return out
#: The shower of the rain runs, as fractions of the run: dry, rain, dry.
RAIN_FROM, RAIN_TO, RAIN_MM_H = 1 / 3, 2 / 3, 3.0


def write_rain_csv(path: Path, begin_s: float, end_s: float) -> tuple[float, float]:
    """A dry-wet-dry series; returns the shower's start and end [s]."""
    span = end_s - begin_s
    t0, t1 = begin_s + RAIN_FROM * span, begin_s + RAIN_TO * span
    path.write_text(f"time_s,rain_mm_h\n{begin_s:.0f},0\n{t0:.0f},{RAIN_MM_H}\n{t1:.0f},0\n", encoding="utf-8")
    return t0, t1


def window_delays(tripinfo: Path, modes: dict[str, str], windows: dict[str, tuple[float, float]]
                  ) -> dict[str, dict[str, float | None]]:
    """Mean time loss per mode of arrived trips by the window their departure falls in."""
    sums: dict[tuple[str, str], list[float]] = {}
    for _, el in ET.iterparse(str(tripinfo), events=("end",)):
        if el.tag != "tripinfo":
            continue
        mode = modes.get(el.get("vType", ""))
        dep, arr = float(el.get("depart", "-1")), float(el.get("arrival", "-1"))
        if mode in ("car", "bicycle") and dep >= 0 and arr >= 0:
            for w, (a, b) in windows.items():
                if a <= dep < b:
                    sums.setdefault((w, mode), []).append(float(el.get("timeLoss", "0")))
        el.clear()
    return {w: {m: (statistics.fmean(sums[(w, m)]) if sums.get((w, m)) else None)
                for m in ("car", "bicycle")} for w in windows}


def run_end(scenario: str, end_s: float | None, duration_s: float | None) -> float | None:
    """The end of a scenario's runs: ``duration_s`` after its begin, else ``end_s``."""
    if duration_s is None:
        return end_s
    from ivri.runner import resolve_scenario
    from ivri.sumo.sumocfg import read_sumocfg

    return read_sumocfg(resolve_scenario(scenario)[1]).begin_s + duration_s


#: Bumped when what :func:`one_run` measures or returns changes (invalidates the cache; the
#: tables and plots may change freely).
RECORD_VERSION = 1


@dataclass(frozen=True)
class ArmRun:
    """One run of the benchmark: an arm on a scenario with a seed (a job for
    :func:`ivri.national.runs.run_jobs`)."""

    scenario: str
    arm: str
    controller: str
    seed: int
    end_s: float | None

    @property
    def label(self) -> str:
        return f"{self.scenario} · {self.arm} · seed {self.seed}"


def run_key(job: ArmRun, software: dict[str, str], scenario_digest: str) -> str:
    """Cache key of one run: the job, the scenario's files, the engine's source and RECORD_VERSION."""
    import hashlib

    data = {"job": [job.scenario, job.arm, job.controller, job.seed, job.end_s, arm_shares(job.arm),
                    RAIN_FROM, RAIN_TO, RAIN_MM_H],
            "software": software, "scenario": scenario_digest, "record": RECORD_VERSION}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def one_run(job: ArmRun, out: Path) -> dict[str, Any]:
    """One SUMO run and the figures the table needs (aggregates only; runs on a worker)."""
    from ivri.runner import resolve_scenario
    from ivri.sumo.sumocfg import read_sumocfg

    scenario, name, controller, seed, end_s = job.scenario, job.arm, job.controller, job.seed, job.end_s

    _, cfg_path = resolve_scenario(scenario)
    cfg = read_sumocfg(cfg_path)
    begin, end = cfg.begin_s, end_s if end_s is not None else cfg.end_s
    label = Path(scenario).stem if scenario.endswith(".sumocfg") else scenario.replace(":", "_")
    run_dir = out / label / str(seed) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    t0, t1 = write_rain_csv(run_dir / "rain.csv", begin, end)
    shares = arm_shares(name)
    rec = run_controller(RunSpec(
        scenario=scenario, controller=controller, seed=seed, out_dir=run_dir, v2x=True, end_s=end_s,
        rain=run_dir / "rain.csv" if "rain" in controller.split("+") else None, v2x_shares=shares,
    ))
    tripinfo = run_dir_of(run_dir, controller) / "tripinfo.xml"
    # Dry: the first part of the run, before rain mode could switch on; rain: the shower.
    windows = {"dry": (begin, t0 - 60.0), "rain": (t0, t1)}
    m = rec["by_mode"]
    return {
        "scenario": scenario, "app": name, "controller": controller, "seed": seed,
        "vehicle_loss_hours": rec["vehicle_loss_hours"],
        "fuel_litres": rec["fuel_litres"],
        "emergency_time_lost_s": rec["emergency_time_lost_s"],
        "emergency_trips": m["emergency"]["trips"],
        "emergency_stops": rec["emergency_stops"],
        "emergency_loss_h": m["emergency"]["time_loss_s"] / 3600.0,
        "v2x": rec["v2x"],
        "safety": rec["safety"],
        "cyclist_app": rec["cyclist_app"],
        "modes": {k: {"mean_delay_s": v["mean_delay_s"], "mean_stops": v["mean_stops"], "trips": v["trips"],
                      "time_loss_s": v["time_loss_s"]} for k, v in m.items()},
        "windows": window_delays(tripinfo, rec["vtype_modes"], windows),
        "decisions": rec.get("decisions", {}),
        "person_delay_h": person_delay_h(m),
        "cars": equipped_car_split(tripinfo, rec["vtype_modes"], shares.get("car", 0.0), seed),
        "wall_time_s": rec["wall_time_s"],
        "sumo_version": rec["sumo_version"],
    }


def person_delay_h(by_mode: dict[str, dict[str, Any]]) -> float:
    """Person-hours of delay: each mode's time loss times its persons per vehicle."""
    from ivri.controllers.priority import PERSONS

    persons = {"car": PERSONS["car"], "bus": PERSONS["bus"], "truck": PERSONS["truck"],
               "bicycle": PERSONS["bicycle"], "pedestrian": PERSONS["pedestrian"], "emergency": 2.0}
    return sum(v["time_loss_s"] * persons.get(k, 1.0) for k, v in by_mode.items()) / 3600.0


def paired(runs: list[dict[str, Any]], base: str, arm: str, get: Callable[[dict[str, Any]], float | None],
           relative: bool = True) -> dict[str, float | None]:
    """Mean paired difference arm - base over the seeds both have, in percent of the base mean
    (``relative``) or absolute, with its 95 % interval (Student t); None where undefined."""
    from scipy import stats

    b = {r["seed"]: get(r) for r in runs if r["app"] == base}
    a = {r["seed"]: get(r) for r in runs if r["app"] == arm}
    seeds = [k for k in b if k in a and a[k] is not None and b[k] is not None]
    if not seeds:
        return {"n": 0, "mean": None, "lo": None, "hi": None}
    d = [a[k] - b[k] for k in seeds]
    scale = 100.0 / statistics.fmean(b[k] for k in seeds) if relative else 1.0
    if relative and not math.isfinite(scale):
        return {"n": len(seeds), "mean": None, "lo": None, "hi": None}
    m = statistics.fmean(d) * scale
    if len(d) < 2:
        return {"n": 1, "mean": m, "lo": None, "hi": None}
    half = float(stats.t.ppf(0.975, len(d) - 1)) * statistics.stdev(d) / math.sqrt(len(d)) * abs(scale)
    return {"n": len(d), "mean": m, "lo": m - half, "hi": m + half}


def ci(x: dict[str, float | None], unit: str = " %") -> str:
    if x["mean"] is None:
        return "-"
    if x["lo"] is None:
        return f"{x['mean']:+.1f}{unit} (n=1)"
    return f"{x['mean']:+.1f}{unit} [{x['lo']:+.1f}, {x['hi']:+.1f}]"


def pct(new: float | None, old: float | None) -> float | None:
    """Relative change new vs old in percent (None when undefined)."""
    if new is None or old is None or old == 0:
        return None
    return 100.0 * (new - old) / old


def mean(rows: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None]) -> float | None:
    vals = [v for v in (get(r) for r in rows) if v is not None]
    return statistics.fmean(vals) if vals else None


def fmt(x: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def measures(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario: every measure of the module docstring, baseline vs application."""
    out = []
    for scenario in sorted({r["scenario"] for r in runs}):
        by = {a: [r for r in runs if r["scenario"] == scenario and r["app"] == a] for a in ["off", *APPS]}
        off = by["off"]

        def others_loss_h(rows: list[dict[str, Any]]) -> float | None:
            return mean(rows, lambda run: run["vehicle_loss_hours"] - run["emergency_loss_h"])

        row: dict[str, Any] = {"scenario": scenario, "seeds": sorted(r["seed"] for r in off)}
        gf = by["greenflow"]
        row["emergency"] = {
            "trips": sum(r["emergency_trips"] for r in off),
            "lost_s_off": mean(off, lambda r: r["emergency_time_lost_s"] / max(r["emergency_trips"], 1)),
            "lost_s_on": mean(gf, lambda r: r["emergency_time_lost_s"] / max(r["emergency_trips"], 1)),
            "stops_off": sum(r["emergency_stops"] for r in off),
            "stops_on": sum(r["emergency_stops"] for r in gf),
            "red_passages_off": sum(r["safety"]["emergency_red_passages"] for r in off),
            "red_passages_on": sum(r["safety"]["emergency_red_passages"] for r in gf),
            "amber_passages_on": sum(r["safety"]["emergency_amber_passages"] for r in gf),
            "passages_on": sum(r["safety"]["emergency_passages"] for r in gf),
            "others_loss_h_off": others_loss_h(off),
            "others_loss_h_on": others_loss_h(gf),
        }
        row["emergency"]["lost_change_pct"] = pct(row["emergency"]["lost_s_on"], row["emergency"]["lost_s_off"])
        sw = by["schwung"]
        row["schwung"] = {
            "app_trips": sum(r["cyclist_app"]["equipped"]["trips"] for r in sw),
            "stops_off": mean(off, lambda r: r["cyclist_app"]["equipped"]["mean_stops"]),
            "stops_on": mean(sw, lambda r: r["cyclist_app"]["equipped"]["mean_stops"]),
            "delay_off": mean(off, lambda r: r["cyclist_app"]["equipped"]["mean_time_loss_s"]),
            "delay_on": mean(sw, lambda r: r["cyclist_app"]["equipped"]["mean_time_loss_s"]),
            "other_bikes_delay_off": mean(off, lambda r: r["cyclist_app"]["others"]["mean_time_loss_s"]),
            "other_bikes_delay_on": mean(sw, lambda r: r["cyclist_app"]["others"]["mean_time_loss_s"]),
            "car_delay_off": mean(off, lambda r: r["modes"]["car"]["mean_delay_s"]),
            "car_delay_on": mean(sw, lambda r: r["modes"]["car"]["mean_delay_s"]),
        }
        s = row["schwung"]
        s["stops_change_pct"] = pct(s["stops_on"], s["stops_off"])
        s["delay_change_pct"] = pct(s["delay_on"], s["delay_off"])
        s["car_delay_change_pct"] = pct(s["car_delay_on"], s["car_delay_off"])
        rn = by["rain"]
        row["rain"] = {
            w: {m: {"off": mean(off, lambda r, w=w, m=m: r["windows"][w][m]),
                    "on": mean(rn, lambda r, w=w, m=m: r["windows"][w][m])} for m in ("bicycle", "car")}
            for w in ("rain", "dry")
        }
        for w in ("rain", "dry"):
            for m in ("bicycle", "car"):
                d = row["rain"][w][m]
                d["change_pct"] = pct(d["on"], d["off"])
        cw = by["crosswalk"]
        row["crosswalk"] = {
            "slow_app_crossings": sum(r["safety"]["slow_crossings_with_app"] for r in cw),
            "slow_app_caught_off": sum(r["safety"]["slow_caught_with_app"] for r in off),
            "slow_app_caught_on": sum(r["safety"]["slow_caught_with_app"] for r in cw),
            "slow_no_app_caught_on": sum(r["safety"]["slow_caught_without_app"] for r in cw),
            "ped_delay_off": mean(off, lambda r: r["modes"]["pedestrian"]["mean_delay_s"]),
            "ped_delay_on": mean(cw, lambda r: r["modes"]["pedestrian"]["mean_delay_s"]),
            "car_delay_off": mean(off, lambda r: r["modes"]["car"]["mean_delay_s"]),
            "car_delay_on": mean(cw, lambda r: r["modes"]["car"]["mean_delay_s"]),
        }
        for mode in ("bus", "truck"):
            rows_on = by[mode]
            row[mode] = {
                "delay_off": mean(off, lambda r, mode=mode: r["modes"][mode]["mean_delay_s"]),
                "delay_on": mean(rows_on, lambda r, mode=mode: r["modes"][mode]["mean_delay_s"]),
                "stops_off": mean(off, lambda r, mode=mode: r["modes"][mode]["mean_stops"]),
                "stops_on": mean(rows_on, lambda r, mode=mode: r["modes"][mode]["mean_stops"]),
                "veh_loss_h_off": mean(off, lambda r: r["vehicle_loss_hours"]),
                "veh_loss_h_on": mean(rows_on, lambda r: r["vehicle_loss_hours"]),
            }
        al = by["all"]
        row["all"] = {"veh_loss_h_off": mean(off, lambda r: r["vehicle_loss_hours"]),
                      "veh_loss_h_on": mean(al, lambda r: r["vehicle_loss_hours"]),
                      "emergency_lost_s_on": mean(al, lambda r: r["emergency_time_lost_s"] / max(r["emergency_trips"], 1)),
                      "slow_app_caught_on": sum(r["safety"]["slow_caught_with_app"] for r in al),
                      "red_passages_on": sum(r["safety"]["emergency_red_passages"] for r in al)}
        mine = [r for r in runs if r["scenario"] == scenario]
        row["paired"] = {
            arm: {"veh_loss": paired(mine, "off", arm, lambda r: r["vehicle_loss_hours"]),
                  "person_delay": paired(mine, "off", arm, lambda r: r["person_delay_h"]),
                  "fuel": paired(mine, "off", arm, lambda r: r["fuel_litres"])}
            for arm in APPS if by[arm]
        }
        row["glosa"] = {
            arm: {f"{who}_{what}": paired(mine, "off" if arm == "glosa" else "cv25", arm,
                                          lambda r, who=who, what=what: r["cars"][who][what])
                  for who in ("equipped", "others") for what in ("stops", "fuel_l")}
            for arm in ("glosa", "cvglosa") if by[arm]
        }
        out.append(row)
    return out


def verdict(x: dict[str, float | None] | float | None, target: float, lower_is_better: bool = True) -> str:
    """'met' or 'missed' by the mean against a target ('-' when not measured)."""
    m = x["mean"] if isinstance(x, dict) else x
    if m is None:
        return "-"
    return "met" if (m <= target if lower_is_better else m >= target) else "missed"


def no_worse(x: dict[str, float | None]) -> str:
    """'no worse' when the interval reaches zero or below, 'worse' when it lies above zero."""
    if x["mean"] is None:
        return "-"
    return "worse" if (x["lo"] if x["lo"] is not None else x["mean"]) > 0.0 else "no worse"


def target_table(rows: list[dict[str, Any]]) -> Table:
    """Each target of the benchmark per scenario: the measured figure and whether it is met
    (by the mean; the interval shows how sure that is)."""
    t = Table(title="Against the targets (paired differences to plain actuated, mean [95 % interval]; "
                    "met/missed by the mean)")
    for c in ("scenario", "all apps: motor veh-h <= +3 %", "all apps: person-delay < 0",
              "GreenFlow: EV lost <= -60 %, 0 red (alone; in all)", "Schwung: app delay <= -25 %", "Crosswalk: 0 caught",
              "cv25: veh-h <= -5 %", "GLOSA: equipped stops <= -15 %, fuel < 0, others no worse"):
        t.add_column(c, justify="left" if c == "scenario" else "right")
    for r in rows:
        p, e, sw, cw = r["paired"], r["emergency"], r["schwung"], r["crosswalk"]
        nothing = {"mean": None, "lo": None, "hi": None}
        al = p.get("all", {}).get("veh_loss", nothing)
        ap = p.get("all", {}).get("person_delay", nothing)
        cv = p.get("cv25", {}).get("veh_loss", nothing)
        gl = r["glosa"].get("glosa")
        ev = "-" if e["lost_change_pct"] is None else (
            f"{e['lost_change_pct']:+.0f} %, {e['red_passages_on']} red: "
            f"{'met' if e['lost_change_pct'] <= -60.0 and e['red_passages_on'] == 0 else 'missed'}")
        in_all = pct(r["all"]["emergency_lost_s_on"], e["lost_s_off"]) if e["trips"] else None
        if in_all is not None:
            ev += f"; in all {in_all:+.0f} %, {r['all']['red_passages_on']} red"
        schwung = "-" if sw["delay_change_pct"] is None else (
            f"{sw['delay_change_pct']:+.0f} %: {verdict(sw['delay_change_pct'], -25.0)}")
        crosswalk = "-" if not cw["slow_app_crossings"] else (
            f"{cw['slow_app_caught_on']} of {cw['slow_app_crossings']}: "
            f"{'met' if cw['slow_app_caught_on'] == 0 else 'missed'}")
        glosa = "-"
        if gl is not None and gl["equipped_stops"]["mean"] is not None:
            ok = (verdict(gl["equipped_stops"], -15.0) == "met" and verdict(gl["equipped_fuel_l"], 0.0) == "met"
                  and no_worse(gl["others_stops"]) == no_worse(gl["others_fuel_l"]) == "no worse")
            glosa = (f"{ci(gl['equipped_stops'])}, fuel {ci(gl['equipped_fuel_l'])}, others "
                     f"{no_worse(gl['others_stops'])}/{no_worse(gl['others_fuel_l'])}: {'met' if ok else 'missed'}")
        t.add_row(r["scenario"], f"{ci(al)}: {verdict(al, 3.0)}", f"{ci(ap)}: {verdict(ap, 0.0)}" if ap["mean"] is not None
                  and ap["mean"] != 0.0 else ci(ap), ev, schwung, crosswalk, f"{ci(cv)}: {verdict(cv, -5.0)}", glosa)
    return t


def tables(rows: list[dict[str, Any]]) -> list[Table]:
    """The measures as rich tables (also written as Markdown)."""
    t1 = Table(title="GreenFlow for BlueLights: emergency vehicles (mean per vehicle) and everyone else")
    for c in ("scenario", "EVs", "lost s off", "lost s on", "change", "stops off/on", "red passages off/on",
              "amber on", "others veh-h off", "others veh-h on"):
        t1.add_column(c, justify="left" if c == "scenario" else "right")
    for r in rows:
        e = r["emergency"]
        t1.add_row(r["scenario"], str(e["trips"]), fmt(e["lost_s_off"]), fmt(e["lost_s_on"]),
                   fmt(e["lost_change_pct"], "+.0f", " %"), f"{e['stops_off']}/{e['stops_on']}",
                   f"{e['red_passages_off']}/{e['red_passages_on']}", str(e["amber_passages_on"]),
                   fmt(e["others_loss_h_off"], ".2f"), fmt(e["others_loss_h_on"], ".2f"))
    t2 = Table(title="Schwung: cyclists with the app (mean per trip) and the others")
    for c in ("scenario", "app trips", "stops off", "stops on", "change", "delay s off", "delay s on", "change",
              "other bikes s off/on", "car delay change"):
        t2.add_column(c, justify="left" if c == "scenario" else "right")
    for r in rows:
        s = r["schwung"]
        t2.add_row(r["scenario"], str(s["app_trips"]), fmt(s["stops_off"], ".2f"), fmt(s["stops_on"], ".2f"),
                   fmt(s["stops_change_pct"], "+.0f", " %"), fmt(s["delay_off"]), fmt(s["delay_on"]),
                   fmt(s["delay_change_pct"], "+.0f", " %"),
                   f"{fmt(s['other_bikes_delay_off'])}/{fmt(s['other_bikes_delay_on'])}",
                   fmt(s["car_delay_change_pct"], "+.0f", " %"))
    t3 = Table(title="Rain mode: mean time loss of trips departing during the shower and in the dry part before")
    for c in ("scenario", "bike rain off", "bike rain on", "change", "car rain off", "car rain on", "change",
              "bike dry change", "car dry change"):
        t3.add_column(c, justify="left" if c == "scenario" else "right")
    for r in rows:
        w = r["rain"]
        t3.add_row(r["scenario"], fmt(w["rain"]["bicycle"]["off"]), fmt(w["rain"]["bicycle"]["on"]),
                   fmt(w["rain"]["bicycle"]["change_pct"], "+.0f", " %"), fmt(w["rain"]["car"]["off"]),
                   fmt(w["rain"]["car"]["on"]), fmt(w["rain"]["car"]["change_pct"], "+.0f", " %"),
                   fmt(w["dry"]["bicycle"]["change_pct"], "+.1f", " %"), fmt(w["dry"]["car"]["change_pct"], "+.1f", " %"))
    t4 = Table(title="Crosswalk: slow crossers with the app on the crossing when a conflicting stream got green")
    for c in ("scenario", "slow app crossings", "caught without Crosswalk", "caught with Crosswalk",
              "slow, no app, caught", "ped delay s off/on", "car delay s off/on"):
        t4.add_column(c, justify="left" if c == "scenario" else "right")
    for r in rows:
        c = r["crosswalk"]
        t4.add_row(r["scenario"], str(c["slow_app_crossings"]), str(c["slow_app_caught_off"]),
                   str(c["slow_app_caught_on"]), str(c["slow_no_app_caught_on"]),
                   f"{fmt(c['ped_delay_off'])}/{fmt(c['ped_delay_on'])}",
                   f"{fmt(c['car_delay_off'])}/{fmt(c['car_delay_on'])}")
    t5 = Table(title="Bus and truck priority (mean per trip) and the cost to everyone (vehicle-loss hours)")
    for c in ("scenario", "bus delay s off/on", "bus stops off/on", "veh-h off/on (bus)", "truck delay s off/on",
              "truck stops off/on", "veh-h off/on (truck)", "all apps veh-h off/on"):
        t5.add_column(c, justify="left" if c == "scenario" else "right")
    for r in rows:
        b, k, a = r["bus"], r["truck"], r["all"]
        t5.add_row(r["scenario"], f"{fmt(b['delay_off'])}/{fmt(b['delay_on'])}",
                   f"{fmt(b['stops_off'], '.2f')}/{fmt(b['stops_on'], '.2f')}",
                   f"{fmt(b['veh_loss_h_off'], '.2f')}/{fmt(b['veh_loss_h_on'], '.2f')}",
                   f"{fmt(k['delay_off'])}/{fmt(k['delay_on'])}",
                   f"{fmt(k['stops_off'], '.2f')}/{fmt(k['stops_on'], '.2f')}",
                   f"{fmt(k['veh_loss_h_off'], '.2f')}/{fmt(k['veh_loss_h_on'], '.2f')}",
                   f"{fmt(a['veh_loss_h_off'], '.2f')}/{fmt(a['veh_loss_h_on'], '.2f')}")
    t6 = Table(title="Every arm against plain actuated: paired difference over the seeds, mean [95 % interval]")
    for c in ("scenario", "arm", "controller", "vehicle-loss h", "person-delay h", "fuel L"):
        t6.add_column(c, justify="left" if c in ("scenario", "arm", "controller") else "right")
    for r in rows:
        for arm, d in r["paired"].items():
            t6.add_row(r["scenario"], arm, APPS[arm], ci(d["veh_loss"]), ci(d["person_delay"]), ci(d["fuel"]))
    t7 = Table(title="GLOSA: cars' stops and fuel per trip, equipped and others (glosa vs actuated; "
                     "cvglosa vs cv-actuated at 25 %), paired difference [95 % interval]")
    for c in ("scenario", "arm", "equipped stops", "equipped fuel", "other stops", "other fuel"):
        t7.add_column(c, justify="left" if c in ("scenario", "arm") else "right")
    for r in rows:
        for arm, d in r["glosa"].items():
            t7.add_row(r["scenario"], arm, ci(d["equipped_stops"]), ci(d["equipped_fuel_l"]),
                       ci(d["others_stops"]), ci(d["others_fuel_l"]))
    return [target_table(rows), t1, t2, t3, t4, t5, t6, t7]


def markdown(table: Table) -> str:
    """A rich table as a Markdown table."""
    cols = [c.header for c in table.columns]
    cells = [list(c.cells) for c in table.columns]
    lines = [f"### {table.title}", "", "| " + " | ".join(map(str, cols)) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(cells[j][i]) for j in range(len(cols))) + " |" for i in range(len(cells[0]))]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """Bar charts of the headline measure of each application, off vs on, per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("emergency time lost [s/vehicle]", lambda r: (r["emergency"]["lost_s_off"], r["emergency"]["lost_s_on"])),
        ("app cyclists' stops [per trip]", lambda r: (r["schwung"]["stops_off"], r["schwung"]["stops_on"])),
        ("app cyclists' delay [s]", lambda r: (r["schwung"]["delay_off"], r["schwung"]["delay_on"])),
        ("cyclist delay in rain [s]", lambda r: (r["rain"]["rain"]["bicycle"]["off"], r["rain"]["rain"]["bicycle"]["on"])),
        ("car delay in rain [s]", lambda r: (r["rain"]["rain"]["car"]["off"], r["rain"]["rain"]["car"]["on"])),
        ("slow app crossers caught [count]", lambda r: (r["crosswalk"]["slow_app_caught_off"],
                                                        r["crosswalk"]["slow_app_caught_on"])),
        ("bus delay [s]", lambda r: (r["bus"]["delay_off"], r["bus"]["delay_on"])),
        ("vehicle-loss hours, all apps", lambda r: (r["all"]["veh_loss_h_off"], r["all"]["veh_loss_h_on"])),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    names = [r["scenario"] for r in rows]
    x = range(len(rows))
    drawn = []
    for ax, (title, get) in zip(axes.flat, panels, strict=True):
        vals = [get(r) for r in rows]
        if not any(v[0] or v[1] for v in vals):
            # Empty axes would read as "zero"; say that nothing was measured instead.
            ax.text(0.5, 0.5, "not measured here\n(no such road users, or the arm was not run)",
                    ha="center", va="center", fontsize=9, color="0.4", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=9)
            continue
        ax.bar([i - 0.2 for i in x], [v[0] or 0 for v in vals], 0.4, label="off", color="0.6")
        ax.bar([i + 0.2 for i in x], [v[1] or 0 for v in vals], 0.4, label="on", color="tab:green")
        ax.set_xticks(list(x), names, rotation=20, fontsize=8)
        ax.set_title(title, fontsize=9)
        drawn.append(ax)
    if drawn:
        drawn[0].legend()
    fig.suptitle("priority applications off vs on (same seeds)")
    fig.tight_layout()
    path = out / "priority.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="crossing,tjunction,corridor,grid")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--variants", default="peak", help="bundled variants, e.g. peak,offpeak")
    parser.add_argument("--arms", default=",".join(["off", *APPS]), help="arms to run (off: the baseline)")
    parser.add_argument("--workers", type=int, default=2)
    ends = parser.add_mutually_exclusive_group()
    ends.add_argument("--end", type=float, default=None, help="stop every run at this time [s]")
    ends.add_argument("--duration", type=float, default=None,
                      help="stop each run this long after its scenario's begin [s]")
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/priority"))
    parser.add_argument("--quick", action="store_true", help="crossing:short, one seed")
    parser.add_argument("--reuse", type=Path, action="append", default=[],
                        help="priority.json of an earlier run: its runs of (scenario, arm, seed) not run "
                             "again now join the tables (same SUMO version and --end)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="run cache folder (default ~/.cache/ivri/benchmark-priority)")
    parser.add_argument("--no-cache", action="store_true", help="simulate every run again")
    args = parser.parse_args()
    if args.quick:
        args.scenarios, args.seeds, args.variants = "crossing", "42", "short"
    seeds = [int(s) for s in args.seeds.split(",")]
    scenarios = [s if s.endswith(".sumocfg") or ":" in s else f"{s}:{v}"
                 for s in args.scenarios.split(",") for v in args.variants.split(",")]
    scenarios = list(dict.fromkeys(scenarios))
    arms = [a for a in args.arms.split(",") if a]
    unknown = set(arms) - {"off", *APPS}
    if unknown:
        parser.error(f"unknown arm(s) {sorted(unknown)}; valid: off, {', '.join(APPS)}")
    everything = {"off": BASE, **APPS}
    if ":" in str(args.out):
        # SUMO reads an output file name with a colon as host:port.
        parser.error(f"--out {args.out}: SUMO cannot write into a path with ':'")
    end_of = {sc: run_end(sc, args.end, args.duration) for sc in scenarios}
    jobs = [ArmRun(sc, name, everything[name], seed, end_of[sc]) for sc in scenarios for seed in seeds for name in arms]
    out = args.out.resolve()
    console = Console(width=180)

    from functools import partial

    from rich.markup import escape
    from rich.progress import Progress

    from ivri.national.cache import RunCache, default_cache_dir
    from ivri.national.runs import cluster_client, run_jobs

    cache_dir = args.cache or default_cache_dir().parent / "benchmark-priority"
    if args.no_cache:
        cache_dir = Path(tempfile.mkdtemp(prefix="ivri-priority-cache-"))
    runs: list[dict[str, Any]] = []
    failed: list[str] = []
    if jobs:
        def progress(done: int, total: int, job: ArmRun, rec: dict[str, Any]) -> None:
            bar.update(task, completed=done, description=(
                f"{total} runs · last {job.label}: {rec['vehicle_loss_hours']:.1f} veh-h"))

        def on_error(job: ArmRun, exc: BaseException) -> None:
            failed.append(f"{job.label}: {type(exc).__name__}: {exc}")
            bar.console.print(f"  [red]failed[/red] {escape(failed[-1])}")

        with cluster_client(workers=args.workers) as client, Progress(console=console) as bar:
            task = bar.add_task(f"{len(jobs)} runs on {args.workers} workers", total=len(jobs))
            results, stats = run_jobs(jobs, RunCache(cache_dir), client, progress=progress,
                                      fn=partial(one_run, out=out), key=run_key, on_error=on_error)
        runs = list(results.values())
        console.print(f"{len(jobs)} runs: {stats.hits} from the cache ({cache_dir}), {stats.misses} simulated "
                      f"in {stats.wall_s / 60:.1f} min")
    if args.no_cache:
        shutil.rmtree(cache_dir, ignore_errors=True)
    done = {(r["scenario"], r["app"], r["seed"]) for r in runs}
    for path in args.reuse:
        old = json.loads(path.read_text(encoding="utf-8"))["runs"]
        runs += [r for r in old if (r["scenario"], r["app"], r["seed"]) not in done]
        done = {(r["scenario"], r["app"], r["seed"]) for r in runs}
    rows = measures(runs)
    scen = sorted({r["scenario"] for r in runs})
    if jobs:
        span = f"end {args.end if args.duration is None else f'begin + {args.duration:g} s'}"
    else:
        span = "runs joined from " + ", ".join(str(p) for p in args.reuse) + " (their own end times)"
    md = [(f"# Priority applications on and off\n\nScenarios {scen}, seeds {sorted({r['seed'] for r in runs})}, "
           f"{span}, SUMO {sumo_version()}, baseline {BASE!r}.\n")]
    if failed:
        md.append("Failed runs (left out of the tables):\n\n" + "\n".join(f"* {f}" for f in failed) + "\n")
    for t in tables(rows):
        console.print(t)
        md.append(markdown(t))
    out.mkdir(parents=True, exist_ok=True)
    (out / "priority.md").write_text("\n".join(md), encoding="utf-8")
    (out / "priority.json").write_text(json.dumps({"sumo_version": sumo_version(), "seeds": seeds,
                                                   "scenarios": scenarios, "applications": APPS,
                                                   "measures": rows, "runs": runs}, indent=1), encoding="utf-8")
    for p in plot(rows, out):
        console.print(f"wrote {p}")
    console.print(f"wrote {out / 'priority.md'} and {out / 'priority.json'}")


if __name__ == "__main__":
    main()
