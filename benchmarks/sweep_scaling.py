"""Scaling of the national sweep on Dask, its cache, and the full run's size and wall time.

    python benchmarks/sweep_scaling.py [--scenarios crossing,tjunction] [--features g40]
                                       [--seeds 42,43] [--warmup 120] [--span 480] [--no-quick]
                                       [--no-estimate] [--out benchmark-results/sweep_scaling]

1. The full run (the defaults of ``ivri national``): its task count.
2. A small sweep (the :short variant, warm-up and span as given) on a LocalCluster of 1 and of
   2 workers (threads_per_worker=1, processes), each worker warmed up with one 30-s SUMO run
   (imports, numba's cached kernels: the same for both), with a fresh, empty cache, so every
   run is simulated. Parallel efficiency = T1 / (2 x T2); the target on 2 cores is >= 0.85.
3. The same sweep again on the 2-worker cache: the cache hit rate of a rerun (should be 1).
4. Unless ``--no-estimate``: one 300-s run per bundled type (the peak variant, today's light)
   measures wall seconds per simulated second; the full run's wall time on 2 workers is the
   sum over its jobs of (that rate x simulated seconds) / (2 x the measured efficiency).
5. Unless ``--no-quick``: ``python -m ivri.national --quick`` with a fresh cache (cluster start
   included), the figure CI pays.

The machine must be otherwise idle for the numbers to mean anything: the script prints the
load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ivri.national.cache import RunCache, software_fingerprint
from ivri.national.parameters import load_parameters
from ivri.national.runs import run_jobs
from ivri.national.sweep import Job, build_sweep


def _warm_up() -> float:
    """One short run in this worker process (imports and JIT caches), outside the timing."""
    from ivri.national.runs import execute

    started = time.perf_counter()
    execute(Job("crossing:short", "actuated", 1, 30.0, (), None))
    return time.perf_counter() - started


def timed_sweep(jobs: list[Job], workers: int, cache_dir: Path) -> dict[str, Any]:
    from dask.distributed import Client, LocalCluster

    with (LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                       dashboard_address=":0") as cluster,
          Client(cluster) as client):
        client.wait_for_workers(workers)
        warm = client.run(_warm_up)
        started = time.perf_counter()
        results, stats = run_jobs(jobs, RunCache(cache_dir), client)
        wall = time.perf_counter() - started
    if stats.misses != len(jobs):
        raise RuntimeError("the cache must be fresh")
    return {"workers": workers, "wall_s": round(wall, 2), "runs": len(results),
            "sum_of_run_wall_s": round(stats.simulated_wall_s, 2),
            "warm_up_s": {k: round(v, 2) for k, v in warm.items()}}


def rerun_hit_rate(jobs: list[Job], cache_dir: Path) -> dict[str, Any]:
    """The same jobs again on a filled cache: every one should be a hit (no cluster needed)."""
    started = time.perf_counter()
    _, stats = run_jobs(jobs, RunCache(cache_dir), None)
    return {"hits": stats.hits, "misses": stats.misses, "hit_rate": stats.hits / max(len(jobs), 1),
            "wall_s": round(time.perf_counter() - started, 2)}


def wall_per_simulated_second() -> dict[str, float]:
    """One 300-s peak run of today's light per bundled type: wall seconds per simulated second."""
    from ivri.national.runs import execute

    params = load_parameters()
    out = {}
    for t in build_sweep(params, features=["g40"], seeds=[42]).jobs:
        if _rate_key(t) in out:
            continue
        sweep = build_sweep(params, scenarios=[_rate_key(t)], features=["g40"], seeds=[42], warmup_s=60.0,
                            span_s=240.0)
        job = next(j for c, j in sweep.cells.items() if c.arm == "g40" and c.level == "hi"
                   and c.variant in ("peak", "real"))
        rec = execute(job)
        out[_rate_key(t)] = rec["wall_time_s"] / rec["simulated_s"]
    return out


def _rate_key(job: Job) -> str:
    """Bundled type name, or the whole ``realworld:NAME``."""
    return job.scenario if job.scenario.startswith("realworld:") else job.scenario.partition(":")[0]


def _simulated_s(job: Job) -> float:
    """Seconds a job simulates (real-world runs stop at their scenario's end)."""
    if job.scenario.startswith("realworld:"):
        from ivri.runner import resolve_scenario
        from ivri.sumo.sumocfg import read_sumocfg

        cfg = read_sumocfg(resolve_scenario(job.scenario)[1])
        return min(job.end_s or 3600.0, (cfg.end_s or cfg.begin_s + 3600.0) - cfg.begin_s)
    return job.end_s or 3600.0


def full_run_estimate(rate: dict[str, float], efficiency: float, workers: int = 2) -> dict[str, Any]:
    """Task count and wall time of ``ivri national`` with its defaults, from measured rates."""
    sweep = build_sweep(load_parameters())
    jobs = sweep.jobs
    cpu_s = sum(rate[_rate_key(j)] * _simulated_s(j)
                # the off-peak variant carries 40 % of the peak demand: cheaper to simulate
                * (0.6 if j.scenario.endswith(":offpeak") else 1.0) for j in jobs)
    wall = cpu_s / (workers * max(min(efficiency, 1.0), 0.1))
    return {"jobs": len(jobs), "seeds": len(sweep.seeds), "types": list(sweep.types),
            "features": list(sweep.features), "warmup_s": sweep.warmup_s, "end_s": sweep.end_s,
            "sum_of_run_s": round(cpu_s), "wall_s_on_2_workers": round(wall),
            "wall_h_on_2_workers": round(wall / 3600, 1)}


def timed_quick() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ivri-quick-") as tmp:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "ivri.national", "--quick", "--out", f"{tmp}/out",
                               "--cache", f"{tmp}/cache", "--workers", "2"],
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    return {"wall_s": round(wall, 2), "exit_code": proc.returncode,
            "tail": proc.stderr.strip().splitlines()[-3:] if proc.returncode else []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="crossing,tjunction")
    parser.add_argument("--features", default="g40")
    parser.add_argument("--seeds", default="42,43")
    parser.add_argument("--warmup", type=float, default=120.0, help="warm-up of every run [s]")
    parser.add_argument("--span", type=float, default=480.0, help="counted seconds after the warm-up")
    parser.add_argument("--no-quick", action="store_true", help="skip timing `ivri national --quick`")
    parser.add_argument("--no-estimate", action="store_true", help="skip the per-type rates and the full-run estimate")
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/sweep_scaling"))
    args = parser.parse_args()

    full_jobs = len(build_sweep(load_parameters()).jobs)
    print(f"full run (ivri national defaults): {full_jobs} tasks")
    sweep = build_sweep(load_parameters(), quick=True, scenarios=args.scenarios.split(","),
                        features=args.features.split(","), seeds=[int(s) for s in args.seeds.split(",")],
                        warmup_s=args.warmup, end_s=args.warmup + args.span)
    jobs = sweep.jobs
    print(f"small sweep: {len(jobs)} runs ({args.scenarios}, :short, {args.warmup:.0f} s warm-up + "
          f"{args.span:.0f} s counted, features {args.features}, seeds {args.seeds}); load average {os.getloadavg()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ivri-scaling-") as tmp:
        for n in (1, 2):
            r = timed_sweep(jobs, n, Path(tmp) / f"cache{n}")
            rows.append(r)
            print(f"  {n} worker(s): {r['wall_s']:.1f} s wall, sum of run times {r['sum_of_run_wall_s']:.1f} s")
        rerun = rerun_hit_rate(jobs, Path(tmp) / "cache2")
    print(f"  rerun on the cache: {rerun['hits']}/{len(jobs)} hits (hit rate {rerun['hit_rate']:.2f}) "
          f"in {rerun['wall_s']:.1f} s")
    t1, t2 = rows[0]["wall_s"], rows[1]["wall_s"]
    efficiency = t1 / (2 * t2)
    verdict = "meets" if efficiency >= 0.85 else "misses"
    print(f"speed-up {t1 / t2:.2f} x, parallel efficiency {efficiency:.2f} ({verdict} the 0.85 target)")
    result: dict[str, Any] = {"software": software_fingerprint(), "full_run_tasks": full_jobs,
                              "jobs": len(jobs), "runs": rows, "rerun": rerun,
                              "speedup": round(t1 / t2, 3), "parallel_efficiency": round(efficiency, 3),
                              "cpu_count": os.cpu_count(), "load_average_after": os.getloadavg()}
    if not args.no_estimate:
        rate = wall_per_simulated_second()
        est = full_run_estimate(rate, efficiency)
        result["wall_per_simulated_s"] = {k: round(v, 5) for k, v in rate.items()}
        result["full_run"] = est
        print("wall s per simulated s: " + ", ".join(f"{k} {v:.4f}" for k, v in rate.items()))
        print(f"full run: {est['jobs']} tasks, about {est['wall_h_on_2_workers']} h on 2 workers "
              f"(sum of run times {est['sum_of_run_s'] / 3600:.1f} h)")
    if not args.no_quick:
        q = timed_quick()
        result["quick"] = q
        print(f"`ivri national --quick` (fresh cache, 2 workers): {q['wall_s']:.1f} s, exit {q['exit_code']}")
    print(f"load average after: {os.getloadavg()}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep_scaling.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"wrote {args.out / 'sweep_scaling.json'}")


if __name__ == "__main__":
    main()
