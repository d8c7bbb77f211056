"""What the engine costs on top of SUMO: `ivri run` vs plain `sumo`, with a breakdown.

All runs simulate the same network and demand with the same seed and the same outputs
(tripinfo with emissions). Plain `sumo` runs SUMO's own (actuated) programs as a
subprocess; `ivri run` runs in this process (numba kernels compiled and cached by a warm-up
run first, so the figure is the steady-state loop, not the one-off JIT). Runs alternate so
that machine noise hits all of them alike; the median of the repeats is reported.

Rows, to tell controller quality from engine overhead:

* ``actuated`` (libsumo, and TraCI unless ``--skip-traci``): the run the target is about;
* ``actuated, no stop-line loops``: the same with only the extension loop per lane
  (``SumoBridge(stopline_loops=False)``), what one E1 loop per lane costs;
* ``fixed-time``: the same detectors and subscriptions, a controller that ignores them;
* ``sumo-native via engine``: SUMO's own programs inside ivri (incoming lanes subscribed
  for the per-intersection queue measure, no detectors, no actuation).

Columns: wall time (SUMO start, loop and KPIs), its ratio to plain SUMO, the CPU time and its
ratio, the seconds inside
SUMO's ``simulationStep`` (where SUMO also evaluates the subscriptions), the seconds reading
the subscription results into arrays, the rest (controller, core, actuation, start-up,
KPIs; with TraCI the subscription results arrive with the step's reply and count as step
time), and the vehicle-loss hours: more vehicles in the network make SUMO's steps slower,
so a worse controller costs SUMO time that is not engine overhead.

    python benchmarks/sumo_overhead.py [--scenario grid] [--repeats 3] [--end 3600] [--skip-traci]

Target (issue 3): ivri/plain <= 1.25 on the grid scenario with libsumo. The CPU seconds
(user + system of the process, and of SUMO's process for plain sumo and TraCI) are printed
beside the wall time: on a shared machine the wall time also counts waiting for a core, the
CPU time much less so.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ivri.sumo.bridge as bridge_module
from ivri.metrics import sumo_output_options
from ivri.runner import RunSpec, resolve_scenario, run_controller
from ivri.sumo.connection import sumo_binary, sumo_version

TARGET_RATIO = 1.25


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_plain_sumo(sumocfg: Path, seed: int, end_s: float | None, out_dir: Path) -> tuple[float, float]:
    """Wall time and CPU time of SUMO alone, with its own (actuated) programs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sumo_binary(), "-c", str(sumocfg), "--seed", str(seed), "--no-step-log",
           *sumo_output_options(out_dir)]
    if end_s is not None:
        cmd += ["--end", str(end_s)]
    started, cpu_started = time.perf_counter(), _children_cpu_s()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, _children_cpu_s() - cpu_started


class _Recorded(bridge_module.SumoBridge):
    """The run's bridge, remembered after close so its step timings can be read."""

    last: _Recorded | None = None
    stopline_loops_default = True

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("stopline_loops", self.stopline_loops_default)
        super().__init__(*args, **kwargs)
        _Recorded.last = self


def time_ivri(scenario: str, backend: str, seed: int, end_s: float | None, out_dir: Path,
              controller: str = "actuated", stopline_loops: bool = True) -> dict[str, float]:
    """Wall time of `ivri run SCENARIO --controller ...` (SUMO start and KPIs included), its
    parts (SUMO steps, subscription reads) and the vehicle-loss hours of the run."""
    spec = RunSpec(scenario=scenario, controller=controller, seed=seed, out_dir=out_dir,
                   backend=backend, end_s=end_s)
    original = bridge_module.SumoBridge
    bridge_module.SumoBridge = _Recorded  # run_controller imports it from the module at call time
    _Recorded.stopline_loops_default = stopline_loops
    try:
        started, cpu_started = time.perf_counter(), time.process_time() + _children_cpu_s()
        record = run_controller(spec)
        wall_s = time.perf_counter() - started
        cpu_s = time.process_time() + _children_cpu_s() - cpu_started  # TraCI: SUMO is a child
    finally:
        bridge_module.SumoBridge = original
    b = _Recorded.last
    assert b is not None
    return {"wall_s": wall_s, "cpu_s": cpu_s, "step_s": b.sumo_step_s, "read_s": b.read_s,
            "vlh": record["vehicle_loss_hours"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="grid")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--end", type=float, default=None, help="simulated seconds (default: the scenario's end)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-traci", action="store_true")
    args = parser.parse_args()

    label, sumocfg = resolve_scenario(args.scenario)
    backends = ["libsumo"] if args.skip_traci else ["libsumo", "traci"]
    # (label, controller, backend, stop-line loops)
    runs = [(f"actuated, {b}", "actuated", b, True) for b in backends]
    runs += [("actuated, libsumo, no stop-line loops", "actuated", "libsumo", False),
             ("fixed-time, libsumo", "fixed-time", "libsumo", True),
             ("sumo-native via engine, libsumo", "sumo-native", "libsumo", True)]
    with tempfile.TemporaryDirectory(prefix="ivri-bench-") as tmp:
        tmp_dir = Path(tmp)
        time_ivri(args.scenario, "libsumo", args.seed, 60.0, tmp_dir / "warmup")  # JIT + cache
        plain: list[tuple[float, float]] = []
        ours: dict[str, list[dict[str, float]]] = {r[0]: [] for r in runs}
        for r in range(args.repeats):
            plain.append(time_plain_sumo(sumocfg, args.seed, args.end, tmp_dir / f"plain{r}"))
            for k, (run_label, ctrl, b, stopline) in enumerate(runs):
                ours[run_label].append(time_ivri(args.scenario, b, args.seed, args.end,
                                                 tmp_dir / f"run{k}_{r}", ctrl, stopline))

    plain_s = statistics.median(p[0] for p in plain)
    plain_cpu_s = statistics.median(p[1] for p in plain)
    print(f"scenario {label} ({sumocfg.name}), seed {args.seed}, SUMO {sumo_version()}, "
          f"{args.repeats} repeats, medians; python {sys.version.split()[0]}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'run':<50}{'wall s':>8}{'ratio':>7}{'cpu s':>8}{'ratio':>7}{'step s':>8}{'read s':>8}"
          f"{'rest s':>8}{'veh-loss h':>12}")
    print(f"{'plain sumo (own actuated programs)':<50}{plain_s:>8.2f}{1.0:>7.2f}{plain_cpu_s:>8.2f}{1.0:>7.2f}")
    for run_label, *_ in runs:
        m = {k: statistics.median(x[k] for x in ours[run_label]) for k in ("wall_s", "cpu_s", "step_s", "read_s")}
        rest = m["wall_s"] - m["step_s"] - m["read_s"]
        vlh = ours[run_label][0]["vlh"]
        verdict = ("" if run_label != "actuated, libsumo" else
                   ("  meets target" if m["wall_s"] / plain_s <= TARGET_RATIO
                    else f"  ABOVE target {TARGET_RATIO}"))
        print(f"{'ivri run, ' + run_label:<50}{m['wall_s']:>8.2f}{m['wall_s'] / plain_s:>7.2f}"
              f"{m['cpu_s']:>8.2f}{m['cpu_s'] / plain_cpu_s:>7.2f}"
              f"{m['step_s']:>8.2f}{m['read_s']:>8.2f}{rest:>8.2f}{vlh:>12.1f}{verdict}")


if __name__ == "__main__":
    main()
