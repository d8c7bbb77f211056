"""Scaling of the national sweep on Dask: the same runs on 1 and on 2 workers.

    python benchmarks/sweep_scaling.py [--scenarios crossing,tjunction] [--features greenflow,all]
                                       [--seeds 42,43] [--end 600] [--no-quick]
                                       [--out benchmark-results/sweep_scaling]

For n = 1 and n = 2 it starts a LocalCluster (n_workers=n, threads_per_worker=1, processes),
warms every worker up with one 30-s SUMO run (imports, numba's cached kernels: the same for
both), and times the sweep through :func:`ivri.national.runs.run_jobs` with a fresh, empty
cache, so every run is simulated. Parallel efficiency = T1 / (2 x T2); the target on 2 cores
is >= 0.85. Then it times ``python -m ivri.national --quick`` with a fresh cache (cluster
start included), the figure CI pays.

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


def timed_sweep(jobs: list[Job], workers: int) -> dict[str, Any]:
    from dask.distributed import Client, LocalCluster

    with (tempfile.TemporaryDirectory(prefix="ivri-scaling-") as tmp,
          LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                       dashboard_address=":0") as cluster,
          Client(cluster) as client):
        client.wait_for_workers(workers)
        warm = client.run(_warm_up)
        started = time.perf_counter()
        results, stats = run_jobs(jobs, RunCache(Path(tmp) / "cache"), client)
        wall = time.perf_counter() - started
    assert stats.misses == len(jobs), "the cache must be fresh"
    return {"workers": workers, "wall_s": round(wall, 2), "runs": len(results),
            "sum_of_run_wall_s": round(stats.simulated_wall_s, 2),
            "warm_up_s": {k: round(v, 2) for k, v in warm.items()}}


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
    parser.add_argument("--features", default="greenflow,all")
    parser.add_argument("--seeds", default="42,43")
    parser.add_argument("--end", type=float, default=600.0, help="stop every run at this time [s]")
    parser.add_argument("--no-quick", action="store_true", help="skip timing `ivri national --quick`")
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/sweep_scaling"))
    args = parser.parse_args()

    sweep = build_sweep(load_parameters(), quick=True, scenarios=args.scenarios.split(","),
                        features=args.features.split(","), seeds=[int(s) for s in args.seeds.split(",")],
                        end_s=args.end)
    jobs = sweep.jobs
    print(f"sweep: {len(jobs)} runs ({args.scenarios}, :short to {args.end:.0f} s, "
          f"features {args.features}, seeds {args.seeds}); load average {os.getloadavg()}")
    rows = []
    for n in (1, 2):
        r = timed_sweep(jobs, n)
        rows.append(r)
        print(f"  {n} worker(s): {r['wall_s']:.1f} s wall, sum of run times {r['sum_of_run_wall_s']:.1f} s")
    t1, t2 = rows[0]["wall_s"], rows[1]["wall_s"]
    efficiency = t1 / (2 * t2)
    verdict = "meets" if efficiency >= 0.85 else "misses"
    print(f"speed-up {t1 / t2:.2f} x, parallel efficiency {efficiency:.2f} ({verdict} the 0.85 target)")
    result: dict[str, Any] = {"software": software_fingerprint(), "jobs": len(jobs), "runs": rows,
                              "speedup": round(t1 / t2, 3), "parallel_efficiency": round(efficiency, 3),
                              "cpu_count": os.cpu_count(), "load_average_after": os.getloadavg()}
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
