"""ivri's controllers against the best control SUMO itself offers, on bundled and real city networks.

    python benchmarks/controllers.py [--seeds 42,43,44,45,46] [--out docs/results/controllers]
                                     [--scenarios crossing,tjunction,corridor,grid] [--variant peak]
                                     [--realworld cologne3,cologne8,ingolstadt7,ingolstadt21]
                                     [--controllers fixed-time,actuated,max-pressure]
                                     [--references sumo-native,sumo-actuated,sumo-delay-based]
                                     [--span SECONDS] [--workers 2] [--scheduler ADDRESS]
                                     [--cache DIR | --no-cache]

Every network runs under every controller and every SUMO reference with the same seeds:
the bundled scenarios (``--variant``, peak hour by default) and the real-world test set
(``ivri fetch-realworld``; fetched here when missing). The references are SUMO's own
programs as shipped (``sumo-native``) and switched to SUMO's actuated and delay-based types.

Per network it reports the vehicle-loss hours (timeLoss + departDelay of motor vehicles,
vehicles never inserted included) of each run choice, the best SUMO mode (lowest mean), the
paired difference of each ivri controller to it (mean over seeds and the 95 % t-interval),
the ratio ``actuated`` / best SUMO mode (target <= 1.0), max-pressure against
``sumo-actuated`` (target: not worse), and how many runs gridlocked (teleports or a growing
insertion backlog, :mod:`ivri.metrics.health`; target: none).

Runs go through dask.distributed (:func:`ivri.national.runs.cluster_client`, a LocalCluster
of ``--workers`` single-threaded processes or ``--scheduler``) and are cached on disk by
scenario content, controller, seed and engine source (:mod:`ivri.national.cache`), so a rerun
after a change simulates only what the change touches. Writes ``controllers.md`` (the
tables), ``controllers.json`` (every figure and every run's aggregates) into ``--out``.
Needs scipy for the t quantiles (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ivri.controllers import SUMO_REFERENCES
from ivri.sumo_networks.realworld import DEFAULT_SET, NETWORKS, fetch
from priority import markdown  # benchmarks/priority.py: a rich table as markdown
from rich.console import Console
from rich.table import Table

from ivri.national.cache import RunCache
from ivri.national.runs import cluster_client, run_jobs
from ivri.national.sweep import Job
from ivri.sumo.connection import sumo_version

IVRI_CONTROLLERS = ("fixed-time", "actuated", "max-pressure")
#: The ivri controller held to "at most the best SUMO mode", and the one held to "no worse than
#: SUMO's actuated".
HEADLINE, PRESSURE, PRESSURE_REFERENCE = "actuated", "max-pressure", "sumo-actuated"
CONFIDENCE = 0.95


def command_line_args() -> str:
    """This run's arguments for the report, without the output folder (where it was written)."""
    argv = sys.argv[1:]
    keep = [a for k, a in enumerate(argv)
            if not (a == "--out" or a.startswith("--out=") or (k > 0 and argv[k - 1] == "--out"))]
    return shlex.join(keep)


def _default_cache() -> Path:
    from ivri.national.cache import default_cache_dir

    return default_cache_dir().parent / "benchmark-controllers"


def _end(scenario: str, span_s: float | None) -> float | None:
    """The end time of a run that simulates the first ``span_s`` seconds (None: the whole run)."""
    if span_s is None:
        return None
    from ivri.runner import resolve_scenario
    from ivri.sumo.sumocfg import read_sumocfg

    return read_sumocfg(resolve_scenario(scenario)[1]).begin_s + span_s


def run_one(job: Job) -> dict[str, Any]:
    """One run on a worker, in a temporary folder; the aggregates that the report needs."""
    from ivri.runner import RunSpec, run_controller

    tmp = Path(tempfile.mkdtemp(prefix="ivri-bench-"))
    try:
        rec = run_controller(RunSpec(scenario=job.scenario, controller=job.controller, seed=job.seed,
                                     out_dir=tmp, end_s=job.end_s))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    car = rec["by_mode"].get("car", {})
    return {k: rec[k] for k in ("scenario", "controller", "seed", "sumo_version", "simulated_s",
                                "wall_time_s", "vehicle_loss_hours", "time_loss_hours",
                                "depart_delay_hours", "depart_delay_share", "fuel_litres", "stops",
                                "health", "sumocfg_notes")} | {
        "car_mean_delay_s": car.get("mean_delay_s"),
        "n_intersections": len(rec.get("by_intersection") or {}),
    }


def t_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and the two-sided t-interval of the mean (NaN bounds with fewer than two values)."""
    from scipy.stats import t as student_t

    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, math.nan, math.nan
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half


def summarise(records: list[dict[str, Any]], networks: list[tuple[str, str]], controllers: list[str],
              references: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    """One summary per network: means, best SUMO mode, paired differences, ratio, gridlocks."""
    by_key = {(r["scenario"], r["controller"], r["seed"]): r for r in records}
    out = []
    for label, scenario in networks:
        runs = {c: [by_key[(label, c, s)] for s in seeds if (label, c, s) in by_key]
                for c in (*controllers, *references)}
        vlh = {c: [r["vehicle_loss_hours"] for r in rs] for c, rs in runs.items() if rs}
        means = {c: statistics.fmean(v) for c, v in vlh.items()}
        refs = [c for c in references if c in means]
        best = min(refs, key=means.__getitem__) if refs else None
        entry: dict[str, Any] = {
            "network": label,
            "scenario": scenario,
            "traffic_lights": max((r["n_intersections"] for rs in runs.values() for r in rs), default=0),
            "seeds": seeds,
            "vehicle_loss_hours": {c: {"mean": means[c], "per_seed": vlh[c]} for c in vlh},
            "best_sumo": best,
            "gridlocked_runs": {c: sum(bool(r["health"]["gridlock"]) for r in rs) for c, rs in runs.items() if rs},
            "teleports_mean": {c: statistics.fmean(r["health"]["teleports"] for r in rs)
                               for c, rs in runs.items() if rs},
            "never_inserted_mean": {c: statistics.fmean(r["health"]["never_inserted"] for r in rs)
                                    for c, rs in runs.items() if rs},
            "depart_delay_share_mean": {c: statistics.fmean((r["depart_delay_share"] or 0.0) for r in rs)
                                        for c, rs in runs.items() if rs},
            "vs_best_sumo": {},
        }

        def paired(a: str, b: str, runs: dict[str, list[dict[str, Any]]] = runs) -> dict[str, Any] | None:
            pa = {r["seed"]: r["vehicle_loss_hours"] for r in runs.get(a, [])}
            pb = {r["seed"]: r["vehicle_loss_hours"] for r in runs.get(b, [])}
            common = [s for s in seeds if s in pa and s in pb]
            if not common:
                return None
            mean, lo, hi = t_interval([pa[s] - pb[s] for s in common])
            return {"mean": mean, "ci_low": None if math.isnan(lo) else lo,
                    "ci_high": None if math.isnan(hi) else hi, "n": len(common)}

        if best is not None:
            for c in controllers:
                if c in means:
                    entry["vs_best_sumo"][c] = paired(c, best)
            if HEADLINE in means and means[best] > 0:
                entry["ratio_actuated_to_best_sumo"] = means[HEADLINE] / means[best]
        if PRESSURE in means and PRESSURE_REFERENCE in means:
            entry["max_pressure_vs_sumo_actuated"] = paired(PRESSURE, PRESSURE_REFERENCE)
        out.append(entry)
    return out


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _diff(d: dict[str, Any] | None) -> str:
    if d is None:
        return "-"
    if d["ci_low"] is None:
        return f"{d['mean']:+.1f}"
    return f"{d['mean']:+.1f} [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]"


def tables(summary: list[dict[str, Any]], controllers: list[str], references: list[str]) -> list[Table]:
    """The report's tables (rich; also rendered to markdown)."""
    n_seeds = max((len(s["seeds"]) for s in summary), default=0)
    means = Table(title="vehicle-loss hours, mean over seeds (gridlocked runs of "
                        f"{n_seeds} in brackets)")
    means.add_column("network")
    means.add_column("TLs", justify="right")
    for c in (*controllers, *references):
        means.add_column(c, justify="right")
    means.add_column("best SUMO mode")
    means.add_column(f"{HEADLINE} / best SUMO", justify="right")
    for s in summary:
        cells = []
        for c in (*controllers, *references):
            v = s["vehicle_loss_hours"].get(c)
            g = s["gridlocked_runs"].get(c, 0)
            cells.append("-" if v is None else _num(v["mean"]) + (f" ({g})" if g else ""))
        ratio = s.get("ratio_actuated_to_best_sumo")
        means.add_row(s["network"], str(s["traffic_lights"]), *cells, s["best_sumo"] or "-",
                      "-" if ratio is None else f"{ratio:.2f}")

    diffs = Table(title=f"paired difference in vehicle-loss hours to the best SUMO mode: mean "
                        f"[{CONFIDENCE:.0%} t-interval over seeds]; negative = ivri loses less")
    diffs.add_column("network")
    for c in controllers:
        diffs.add_column(f"{c} - best SUMO", justify="right")
    diffs.add_column(f"{PRESSURE} - {PRESSURE_REFERENCE}", justify="right")
    for s in summary:
        diffs.add_row(s["network"], *(_diff(s["vs_best_sumo"].get(c)) for c in controllers),
                      _diff(s.get("max_pressure_vs_sumo_actuated")))

    health = Table(title="health, mean per run: teleports / vehicles never inserted / share of the "
                         "loss hours that is depart delay")
    health.add_column("network")
    for c in (*controllers, *references):
        health.add_column(c, justify="right")
    for s in summary:
        health.add_row(s["network"], *(
            "-" if c not in s["teleports_mean"] else
            f"{s['teleports_mean'][c]:.0f} / {s['never_inserted_mean'][c]:.0f} / "
            f"{100 * s['depart_delay_share_mean'][c]:.0f} %"
            for c in (*controllers, *references)))
    return [means, diffs, health]


def targets(summary: list[dict[str, Any]]) -> list[str]:
    """One line per network on the issue's targets."""
    out = []
    for s in summary:
        ratio = s.get("ratio_actuated_to_best_sumo")
        mp = s.get("max_pressure_vs_sumo_actuated")
        # Per controller: fixed-time's gridlocks (a plan not timed to demand) are not a miss
        # of the adaptive controllers that the zero-gridlock target is about.
        gridlocked = ", ".join(f"{c} {s['gridlocked_runs'][c]}" for c in IVRI_CONTROLLERS
                               if c in s["gridlocked_runs"]) or "-"
        out.append(
            f"- {s['network']}: actuated / best SUMO ({s['best_sumo']}) = "
            f"{'-' if ratio is None else f'{ratio:.2f}'} "
            f"({'met' if ratio is not None and ratio <= 1.0 else 'missed'}); "
            f"max-pressure vs sumo-actuated {_diff(mp)} "
            f"({'met' if mp is not None and mp['mean'] <= 0 else 'missed'}); "
            f"gridlocked runs: {gridlocked}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="crossing,tjunction,corridor,grid",
                        help="bundled scenarios ('none' for none)")
    parser.add_argument("--variant", default="peak")
    parser.add_argument("--realworld", default=",".join(DEFAULT_SET),
                        help=f"real-world networks ('none' for none); known: {', '.join(NETWORKS)}")
    parser.add_argument("--controllers", default=",".join(IVRI_CONTROLLERS))
    parser.add_argument("--references", default=",".join(SUMO_REFERENCES))
    parser.add_argument("--seeds", default="42,43,44,45,46")
    parser.add_argument("--span", type=float, default=None, help="simulate only the first SECONDS "
                        "of every scenario (for development; the default is the whole hour)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/controllers"))
    parser.add_argument("--cache", type=Path, default=None, help="run cache folder "
                        "(default ~/.cache/ivri/benchmark-controllers)")
    parser.add_argument("--no-cache", action="store_true", help="simulate every run again")
    args = parser.parse_args()

    def names(text: str) -> list[str]:
        return [] if text.strip().lower() == "none" else [n.strip() for n in text.split(",") if n.strip()]

    controllers, references = names(args.controllers), names(args.references)
    unknown = [r for r in references if r not in SUMO_REFERENCES]
    if unknown:
        parser.error(f"unknown reference(s) {unknown}; valid: {', '.join(SUMO_REFERENCES)}")
    seeds = [int(s) for s in names(args.seeds)]
    networks = [(s, f"{s}:{args.variant}") for s in names(args.scenarios)]
    realworld = names(args.realworld)
    if realworld:
        fetch(realworld)  # a no-op when they are in the cache folder already
        networks += [(n, f"realworld:{n}") for n in realworld]
    end_s = args.span  # for the report: the span, when one is given
    jobs = [Job(scenario, ctl, seed, _end(scenario, args.span), ()) for _, scenario in networks
            for ctl in (*controllers, *references) for seed in seeds]
    label_of = {scenario: label for label, scenario in networks}
    console = Console(width=200)
    cache_dir = args.cache or _default_cache()
    if args.no_cache:
        cache_dir = Path(tempfile.mkdtemp(prefix="ivri-bench-cache-"))
    started = time.perf_counter()

    def progress(done: int, total: int, job: Job, rec: dict[str, Any]) -> None:
        g = " GRIDLOCK" if rec["health"]["gridlock"] else ""
        console.print(f"  [{done}/{total}] {job.scenario} {job.controller} seed {job.seed}: "
                      f"{rec['vehicle_loss_hours']:.1f} veh-h ({rec['wall_time_s']:.0f} s){g}")

    with cluster_client(args.scheduler, args.workers) as client:
        results, stats = run_jobs(jobs, RunCache(cache_dir), client, progress=progress, fn=run_one)
    if args.no_cache:
        shutil.rmtree(cache_dir, ignore_errors=True)
    records = [{**results[j], "scenario": label_of[j.scenario]} for j in jobs]
    summary = summarise(records, networks, controllers, references, seeds)
    rendered = tables(summary, controllers, references)
    for t in rendered:
        console.print(t)
    goal_lines = targets(summary)
    for line in goal_lines:
        console.print(line)

    version = sumo_version()
    head = (f"# Controllers against SUMO's best built-in control\n\n"
            f"`python benchmarks/controllers.py {command_line_args()}`: bundled scenarios ({args.variant}) "
            f"{', '.join(names(args.scenarios)) or 'none'}; real-world networks "
            f"{', '.join(realworld) or 'none'} (RESCO, via sumo-rl 1.4.5: see "
            "sumo_networks/README.md); SUMO " + version + f"; {len(jobs)} runs, "
            f"{stats.misses} simulated on {stats.workers or args.workers} Dask workers in "
            f"{stats.wall_s / 60:.1f} min ({stats.hits} from the cache).\n\n"
            "Vehicle-loss hours: timeLoss + departDelay of motor vehicles, vehicles never "
            "inserted included. A run gridlocks when SUMO teleports a vehicle or the insertion "
            "backlog grows by 20 vehicles or more in the second half of the run.\n")
    md = [head, *(markdown(t) for t in rendered), "### Targets\n", *goal_lines, ""]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "controllers.md").write_text("\n".join(md), encoding="utf-8")
    (out / "controllers.json").write_text(json.dumps({
        "sumo_version": version, "seeds": seeds, "variant": args.variant, "span_s": end_s,
        "controllers": controllers, "references": references, "networks": dict(networks),
        "run_stats": stats.to_dict(), "wall_s": round(time.perf_counter() - started, 1),
        "summary": summary, "runs": records}, indent=1, allow_nan=False), encoding="utf-8")
    console.print(f"wrote {out / 'controllers.md'} and {out / 'controllers.json'}")


if __name__ == "__main__":
    main()
