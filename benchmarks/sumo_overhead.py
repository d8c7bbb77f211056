"""What the engine costs on top of SUMO: `ivri run` with vehicle-actuated control vs plain `sumo`.

Both sides simulate the same network and demand with the same seed and the same outputs
(tripinfo with emissions). Plain `sumo` runs SUMO's own actuated programs as a subprocess;
`ivri` runs in this process (numba kernels compiled and cached by a warm-up run first, so the
figure is the steady-state loop, not the one-off JIT). Runs alternate so that machine noise
hits both sides alike; the median of the repeats is reported.

    python benchmarks/sumo_overhead.py [--scenario grid] [--repeats 3] [--end 3600]

Target (issue 3): ivri/plain <= 1.25 on the grid scenario with libsumo. TraCI is reported too.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ivri.metrics import sumo_output_options
from ivri.runner import RunSpec, resolve_scenario, run_controller
from ivri.sumo.connection import sumo_binary, sumo_version

TARGET_RATIO = 1.25


def time_plain_sumo(sumocfg: Path, seed: int, end_s: float | None, out_dir: Path) -> float:
    """Wall time of SUMO alone, with its own (actuated) programs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sumo_binary(), "-c", str(sumocfg), "--seed", str(seed), "--no-step-log",
           *sumo_output_options(out_dir)]
    if end_s is not None:
        cmd += ["--end", str(end_s)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_ivri(scenario: str, backend: str, seed: int, end_s: float | None, out_dir: Path,
              controller: str = "actuated") -> tuple[float, float]:
    """Wall time of `ivri run SCENARIO --controller ...` (SUMO start and KPIs included), and
    the vehicle-loss hours of the run (more vehicles in the network make SUMO's steps slower)."""
    spec = RunSpec(scenario=scenario, controller=controller, seed=seed, out_dir=out_dir,
                   backend=backend, end_s=end_s)
    started = time.perf_counter()
    record = run_controller(spec)
    return time.perf_counter() - started, record["vehicle_loss_hours"]


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
    with tempfile.TemporaryDirectory(prefix="ivri-bench-") as tmp:
        tmp_dir = Path(tmp)
        time_ivri(args.scenario, "libsumo", args.seed, 60.0, tmp_dir / "warmup")  # JIT + cache
        plain: list[float] = []
        # The engine with SUMO's own programs (subscriptions + KPIs only) and with fixed time
        # separate the engine's overhead from the controller's effect on SUMO's step time.
        runs = [(f"actuated, {b}", "actuated", b) for b in backends]
        runs += [("sumo-native via engine, libsumo", "sumo-native", "libsumo"),
                 ("fixed-time, libsumo", "fixed-time", "libsumo")]
        ours: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in runs}
        for r in range(args.repeats):
            plain.append(time_plain_sumo(sumocfg, args.seed, args.end, tmp_dir / f"plain{r}"))
            for run_label, ctrl, b in runs:
                ours[run_label].append(time_ivri(args.scenario, b, args.seed, args.end,
                                             tmp_dir / f"{ctrl}{b}{r}", ctrl))

    plain_s = statistics.median(plain)
    print(f"scenario {label} ({sumocfg.name}), seed {args.seed}, SUMO {sumo_version()}, "
          f"{args.repeats} repeats, medians; python {sys.version.split()[0]}")
    print(f"{'run':<44}{'wall s':>8}{'ratio':>8}{'veh-loss h':>12}")
    print(f"{'plain sumo (own actuated programs)':<44}{plain_s:>8.2f}{1.0:>8.2f}")
    for run_label, _, _ in runs:
        wall_s = statistics.median(t for t, _ in ours[run_label])
        vlh = ours[run_label][0][1]
        verdict = ("" if run_label != "actuated, libsumo" else
                   ("  meets target" if wall_s / plain_s <= TARGET_RATIO
                    else f"  ABOVE target {TARGET_RATIO}"))
        print(f"{'ivri run, ' + run_label:<44}{wall_s:>8.2f}{wall_s / plain_s:>8.2f}{vlh:>12.1f}{verdict}")


if __name__ == "__main__":
    main()
