"""Run the sweep's jobs on Dask, with the on-disk cache in front.

The client looks every job up in the cache first; only the misses go to the cluster (a
``LocalCluster`` by default, or an existing scheduler). Each worker runs SUMO in a temporary
folder and returns a small record (aggregates only: no vehicle or person identities); the
client writes it to the cache as soon as it arrives, so an interrupted sweep keeps what it
finished.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivri.errors import ConfigError
from ivri.national.cache import RunCache, job_key, scenario_digest, software_fingerprint
from ivri.national.schedule import expected_cost
from ivri.national.sweep import Job
from ivri.runner import run_dir_of

__all__ = ["RunStats", "cluster_client", "execute", "run_jobs", "slim_record"]

ProgressFn = Callable[[int, int, Job, dict[str, Any]], None]
#: The cache key of a job from the software fingerprint and its scenario's content digest.
KeyFn = Callable[[Any, dict[str, str], str], str]
#: Called instead of raising when a run fails (the job and its exception); the others go on.
ErrorFn = Callable[[Any, BaseException], None]


def slim_record(rec: dict[str, Any], window: dict[str, Any]) -> dict[str, Any]:
    """What the estimate needs from a run record and the KPIs of its counted window."""
    safety = rec.get("safety") or {}
    return {
        "scenario": rec["scenario"],
        "controller": rec["controller"],
        "seed": rec["seed"],
        "sumo_version": rec["sumo_version"],
        "simulated_s": rec["simulated_s"],
        "wall_time_s": rec["wall_time_s"],
        "n_intersections": max(len(rec.get("by_intersection") or {}), 1),
        # The whole run (warm-up included), for reference and the emergency-passage rate.
        "run_vehicle_loss_hours": rec["vehicle_loss_hours"],
        "emergency_passages": int(safety.get("emergency_passages", 0)),
        "teleports": (rec.get("health") or {}).get("teleports"),
        # The counted window: every figure of the estimate comes from here.
        **window,
    }


def execute(job: Job) -> dict[str, Any]:
    """Run one job in a temporary folder (on a worker) and return its slim record.

    The scenario is copied with its demand stretched to the run's end (and its emergency
    vehicles thinned to the job's rate) where that is needed; only trips that want to depart
    after the warm-up are counted (:mod:`ivri.national.window`).
    """
    from ivri.metrics import tripinfo_path
    from ivri.metrics.tripinfo import read_tripinfo
    from ivri.national.demand import prepare_scenario
    from ivri.national.window import reference_speed_mps, window_metrics
    from ivri.runner import RunSpec, resolve_scenario, run_controller
    from ivri.sumo.sumocfg import read_sumocfg

    tmp = Path(tempfile.mkdtemp(prefix="ivri-national-"))
    try:
        rain = None
        if job.rain_mm_h is not None:
            rain = tmp / "rain.csv"
            # A step series: the value holds from t = 0 to the end of the run.
            rain.write_text(f"time_s,rain_mm_h\n0,{job.rain_mm_h}\n", encoding="utf-8")
        _, sumocfg = resolve_scenario(job.scenario)
        cfg = read_sumocfg(sumocfg)
        begin = cfg.begin_s
        scen_end = cfg.end_s if cfg.end_s is not None else begin + 3600.0
        want_end = begin + (job.end_s if job.end_s is not None else scen_end - begin)
        scenario = job.scenario
        # Only demand that starts at 0 (the bundled scenarios) is extended past its end; a
        # real-world hour stays that hour.
        extend = begin == 0.0 and want_end > scen_end + 1e-9
        if not extend:
            want_end = min(want_end, scen_end)
        if extend or job.emergency_per_h is not None:
            path, _ = prepare_scenario(sumocfg, tmp / "scenario", want_end, job.emergency_per_h)
            scenario = str(path)
        rec = run_controller(RunSpec(scenario=scenario, controller=job.controller, seed=job.seed,
                                     out_dir=tmp / "run", end_s=want_end, v2x=True,
                                     v2x_shares=dict(job.shares), rain=rain,
                                     controller_params=job.controller_params()))
        run_dir = run_dir_of(tmp / "run", job.controller)
        window = window_metrics(read_tripinfo(tripinfo_path(run_dir)), rec["vtype_modes"],
                                rec["vtype_fuels"], begin + job.warmup_s, want_end,
                                reference_speed_mps(cfg.net_file))
        return slim_record(rec, window)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class RunStats:
    jobs: int = 0
    hits: int = 0
    misses: int = 0
    wall_s: float = 0.0
    simulated_wall_s: float = 0.0
    workers: int = 0
    scheduler: str = ""
    keys: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "cache_hits": self.hits, "simulated": self.misses,
                "wall_s": round(self.wall_s, 2), "sum_of_run_wall_s": round(self.simulated_wall_s, 2),
                "workers": self.workers, "scheduler": self.scheduler}


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A Dask client: on ``scheduler`` when given, else on a fresh LocalCluster of
    ``workers`` single-threaded processes (libsumo allows one simulation per process)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError(f"the national estimate runs on dask, which is not installed ({exc}); "
                          "pip install 'ivri[national]'") from None

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                       dashboard_address=":0") as cluster,
          Client(cluster) as client):
        yield client


def run_jobs(
    jobs: list[Job],
    cache: RunCache,
    client: Any | None,
    *,
    progress: ProgressFn | None = None,
    fn: Callable[[Job], dict[str, Any]] = execute,
    key: KeyFn = job_key,
    on_error: ErrorFn | None = None,
) -> tuple[dict[Job, dict[str, Any]], RunStats]:
    """Results of ``jobs``: cached ones from disk, the rest computed on ``client``.

    ``client`` may be None only when everything is cached. ``fn`` is the function that runs a
    job on a worker (tests pass a stand-in); ``key`` makes a job's cache key (other benchmarks
    pass their own jobs, with ``scenario``, ``controller``, ``end_s`` and ``label``). A failed
    run raises, unless ``on_error`` is given: then it is told and the other runs go on, and the
    failed job has no result.
    """
    started = time.perf_counter()
    fingerprint = software_fingerprint()
    digests: dict[str, str] = {}
    stats = RunStats(jobs=len(jobs))
    results: dict[Job, dict[str, Any]] = {}
    todo: list[tuple[Job, str]] = []
    for job in jobs:
        if job.scenario not in digests:
            digests[job.scenario] = scenario_digest(job.scenario)
        k = key(job, fingerprint, digests[job.scenario])
        stats.keys[job.label] = k
        rec = cache.get(k)
        if rec is None:
            todo.append((job, k))
        else:
            results[job] = rec
            stats.hits += 1
            if progress is not None:
                progress(len(results), len(jobs), job, rec)
    stats.misses = len(todo)
    if todo:
        if client is None:
            raise RuntimeError("runs are missing from the cache and no Dask client was given")
        from dask.distributed import as_completed

        stats.workers = len(client.scheduler_info().get("workers", {}))
        stats.scheduler = str(client.scheduler.address)
        # Longest first (peak before off-peak, grids before crossings), so that the
        # workers finish together.
        todo.sort(key=lambda jk: expected_cost(jk[0]), reverse=True)
        futures = {client.submit(fn, job, key=f"ivri-run-{k}", pure=False): (job, k) for job, k in todo}
        for fut in as_completed(futures):
            job, k = futures[fut]
            if on_error is None:
                rec = fut.result()
            else:
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - the caller asked to go on past a failed run
                    on_error(job, exc)
                    continue
            cache.put(k, rec)
            results[job] = rec
            stats.simulated_wall_s += float(rec.get("wall_time_s", 0.0))
            if progress is not None:
                progress(len(results), len(jobs), job, rec)
    stats.wall_s = time.perf_counter() - started
    return results, stats
