"""``ivri national``: the national estimate from simulation, against the G40 figures.

Register it on the main app with ``app.command()(national)``; ``python -m ivri.national``
runs it on its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ivri.errors import ConfigError, IvriError

if TYPE_CHECKING:
    from ivri.national.sweep import Job

__all__ = ["national", "run_national"]

_err = Console(stderr=True)


def _fail(message: str) -> None:
    from rich.markup import escape

    # escape: messages name sections such as [profiles], which rich would read as markup
    _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _csv(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"empty list {text!r}")
    return items


class _ProgressLog:
    """Progress lines for a console that is not a terminal (a log file, a batch job).

    One line at most every :attr:`every_s` seconds and one at the end, with the runs done, how
    many came from the cache, and the time still to go: the time the simulated runs took so far
    per unit of their expected cost, times the expected cost of the runs still to do. (The jobs
    go out longest first, so a plain count of runs would overestimate early on.)
    """

    every_s: float = 60.0

    def __init__(self, total: int, cached: int, started: float, costs: Mapping[Job, float] | None = None) -> None:
        self.total = total
        self.cached = cached
        self.started = started
        self._costs = dict(costs or {})  # of the runs still to do
        self._cost_done = 0.0
        self._last = started
        self._sim_started: float | None = started if cached == 0 else None

    def line(self, done: int, now: float, job: Job | None = None) -> str | None:
        """The line to print after ``done`` runs, the last ``job``, at time ``now``
        (``perf_counter``), or None."""
        if done == self.cached and self._sim_started is None:
            self._sim_started = now  # the cached runs are read first, all at once
        if job is not None and done > self.cached and job in self._costs:
            self._cost_done += self._costs.pop(job)
        if done < self.total and now - self._last < self.every_s:
            return None
        self._last = now
        text = (f"runs {done}/{self.total} ({min(done, self.cached)} from the cache), "
                f"{_minutes(now - self.started)} elapsed")
        simulated = done - self.cached
        if simulated > 0 and done < self.total and self._sim_started is not None:
            spent = now - self._sim_started
            if self._cost_done > 0.0:
                left = spent * sum(self._costs.values()) / self._cost_done
            else:  # no costs given: at the rate of the runs so far
                left = spent / simulated * (self.total - done)
            text += f", about {_minutes(left)} to go"
        return text


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def run_national(
    out: Path,
    *,
    quick: bool = False,
    scheduler: str | None = None,
    workers: int = 2,
    params_file: Path | None = None,
    cache_dir: Path | None = None,
    scenarios: list[str] | None = None,
    networks: list[Path] | None = None,
    features: list[str] | None = None,
    seeds: list[int] | None = None,
    end_s: float | None = None,
    warmup_s: float | None = None,
    span_s: float | None = None,
    draws: int = 4000,
    reuse: list[Path] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """The whole estimate: sweep, runs (cached, on Dask), effects, extrapolation, report."""
    from ivri.national.cache import RunCache, default_cache_dir, export_runs
    from ivri.national.effects import compute_effects
    from ivri.national.parameters import load_parameters
    from ivri.national.report import build_result, write_report
    from ivri.national.runs import cluster_client, run_jobs
    from ivri.national.schedule import expected_cost
    from ivri.national.sweep import build_sweep

    console = console or _err
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    params = load_parameters(params_file)
    sweep = build_sweep(params, quick=quick, scenarios=scenarios, networks=networks,
                        features=features, seeds=seeds, end_s=end_s, warmup_s=warmup_s, span_s=span_s)
    jobs = sweep.jobs
    cache = RunCache(cache_dir or default_cache_dir())
    console.print(f"national estimate: {len(sweep.types)} type(s) x {len(sweep.variants)} variant(s) x "
                  f"{len(sweep.arms)} arm(s) x {len(sweep.seeds)} seed(s) = {len(jobs)} runs of "
                  f"{sweep.warmup_s:.0f} s warm-up + {sweep.end_s - sweep.warmup_s:.0f} s counted; "
                  f"cache {cache.folder}")
    for note in sweep.notes:
        console.print(f"[yellow]note:[/] {note}")
    for path in reuse or ():
        console.print(f"reused {cache.load(path)} new run(s) from {path}")
    from ivri.national.cache import job_key, scenario_digest, software_fingerprint

    started = time.perf_counter()
    fp = software_fingerprint()
    digests = {s: scenario_digest(s) for s in {j.scenario for j in jobs}}
    missing = [j for j in jobs if not cache.path(job_key(j, fp, digests[j.scenario])).is_file()]
    log = _ProgressLog(len(jobs), len(jobs) - len(missing), started, {j: expected_cost(j) for j in missing})
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console) as bar:
        task = bar.add_task("runs", total=len(jobs), last="")

        def report(done: int, total: int, job: Any, rec: dict[str, Any]) -> None:
            bar.update(task, completed=done, last=f"{job.label}: {rec['vehicle_loss_hours']:.2f} veh-h")
            if not console.is_terminal:
                # A run in the background or under a scheduler has no live bar: a line now and then.
                line = log.line(done, time.perf_counter(), job)
                if line:
                    console.print(line, highlight=False)

        if missing:
            with cluster_client(scheduler, workers) as client:
                results, stats = run_jobs(jobs, cache, client, progress=report)
        else:
            results, stats = run_jobs(jobs, cache, None, progress=report)
    table = compute_effects(sweep, results)
    res = build_result(table, params, results, stats, quick=quick, mc_draws=draws)
    res["wall_time_s"] = round(time.perf_counter() - started, 2)
    paths = write_report(res, out)
    paths.append(export_runs(out / "runs.jsonl.gz", {stats.keys[j.label]: r for j, r in results.items()}))
    c = res["g40_comparison"]
    console.print(f"{res['headline_feature']}: vehicle-loss hours {c['veh_h']['central']:,.0f} "
                  f"(90 %: {c['veh_h']['p5']:,.0f} to {c['veh_h']['p95']:,.0f}; minimum detectable "
                  f"{c['veh_h']['mde']:,.0f}) vs G40 467,000; fuel {c['fuel_l']['central']:,.0f} L "
                  f"(90 %: {c['fuel_l']['p5']:,.0f} to {c['fuel_l']['p95']:,.0f}; minimum detectable "
                  f"{c['fuel_l']['mde']:,.0f}) vs G40 17,000,000")
    need = c["veh_h"].get("seeds_for_quarter_g40")
    if need is not None:
        console.print(f"seeds that resolve a quarter of G40 nationally: {need} ({len(res['seeds'])} run)")
    conv = res["national"]["conversion"]["veh_h"]
    console.print(f"fixed-time (Webster) -> actuated conversion, its own line: {conv['central']:,.0f} "
                  f"vehicle-loss hours (90 %: {conv['p5']:,.0f} to {conv['p95']:,.0f})")
    console.print(f"{stats.hits} cached, {stats.misses} simulated; wrote " + ", ".join(str(p) for p in paths))
    return res


def national(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for report.md, national.json and plots")],
    quick: Annotated[bool, typer.Option("--quick", help="a reduced set for CI: crossing and T-junction, "
                     "short variant, 60 s warm-up + 240 s counted, one seed, the G40 package")] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="address of an existing Dask "
                         "scheduler (default: a LocalCluster)")] = None,
    workers: Annotated[int, typer.Option("--workers", help="LocalCluster worker processes")] = 2,
    params: Annotated[Path | None, typer.Option("--params", help="parameter file (TOML); default: the "
                      "bundled ivri/national/parameters.toml")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="run cache folder (default: "
                     "~/.cache/ivri/national)")] = None,
    scenarios: Annotated[str | None, typer.Option("--scenarios", help="comma-separated types: bundled "
                         "(crossing,tjunction,corridor,grid) and real-world ones (realworld:cologne3, ...; "
                         "fetch them with ivri fetch-realworld); default: the bundled ones and every "
                         "fetched real-world network")] = None,
    network: Annotated[list[Path] | None, typer.Option("--network", help="a .sumocfg of your own as one "
                       "more intersection type (needs type_share.<name> in --params); repeatable")] = None,
    features: Annotated[str | None, typer.Option("--features", help="comma-separated features and "
                        "packages, e.g. g40,g40_cyclists,full,greenflow (default: every feature and package)")] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help="comma-separated SUMO seeds, or a count N "
                     "for seeds 42..42+N-1 (default 20 seeds; --quick: 42)")] = None,
    warmup: Annotated[float | None, typer.Option("--warmup", help="seconds simulated but not counted at "
                      "the start of every run (default 900; --quick: 60)")] = None,
    span: Annotated[float | None, typer.Option("--span", help="seconds counted after the warm-up "
                    "(default 7200)")] = None,
    end: Annotated[float | None, typer.Option("--end", help="cap warm-up + span at this many seconds "
                                                            "(smoke runs)")] = None,
    draws: Annotated[int, typer.Option("--draws", help="Monte Carlo draws")] = 4000,
    reuse: Annotated[list[Path] | None, typer.Option("--reuse", help="the runs.jsonl.gz of an earlier "
                     "report: its runs count as cached where job, engine and scenario match "
                     "(seeds run elsewhere or earlier); repeatable")] = None,
) -> None:
    """Simulate representative intersections and extrapolate to the Netherlands: vehicle-loss
    hours, fuel, CO2, emergency-vehicle time and cyclist delay per year, with a 90 % interval,
    next to the G40 estimate (467,000 h, 17 M litres)."""
    try:
        seed_list = None
        if seeds is not None:
            try:
                seed_list = [int(s) for s in _csv(seeds) or []]
            except ValueError:
                raise ConfigError(f"--seeds {seeds!r}: use integers, e.g. 42,43,44, or a count") from None
            if len(seed_list) == 1 and "," not in seeds and 1 < seed_list[0] <= 1000:
                seed_list = list(range(42, 42 + seed_list[0]))
        if draws < 100:
            raise ConfigError("--draws must be at least 100")
        run_national(out, quick=quick, scheduler=scheduler, workers=workers, params_file=params,
                     cache_dir=cache, scenarios=_csv(scenarios), networks=network,
                     features=_csv(features), seeds=seed_list, end_s=end, warmup_s=warmup, span_s=span,
                     draws=draws, reuse=reuse)
    except IvriError as exc:
        _fail(str(exc))
