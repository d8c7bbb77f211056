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


def time_ivri(scenario: str, backend: str, seed: int, end_s: float | None, out_dir: Path) -> float:
    """Wall time of `ivri run SCENARIO --controller actuated`, SUMO start and KPIs included."""
    spec = RunSpec(scenario=scenario, controller="actuated", seed=seed, out_dir=out_dir,
                   backend=backend, end_s=end_s)
    started = time.perf_counter()
    run_controller(spec)
    return time.perf_counter() - started


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
        ours: dict[str, list[float]] = {b: [] for b in backends}
        for r in range(args.repeats):
            plain.append(time_plain_sumo(sumocfg, args.seed, args.end, tmp_dir / f"plain{r}"))
            for b in backends:
                ours[b].append(time_ivri(args.scenario, b, args.seed, args.end, tmp_dir / f"{b}{r}"))

    plain_s = statistics.median(plain)
    print(f"scenario {label} ({sumocfg.name}), seed {args.seed}, SUMO {sumo_version()}, "
          f"{args.repeats} repeats, medians; python {sys.version.split()[0]}")
    print(f"{'run':<34}{'wall s':>10}{'ratio':>10}")
    print(f"{'plain sumo (own actuated programs)':<34}{plain_s:>10.2f}{1.0:>10.2f}")
    for b in backends:
        s = statistics.median(ours[b])
        verdict = "" if b != "libsumo" else ("  meets target" if s / plain_s <= TARGET_RATIO
                                             else f"  ABOVE target {TARGET_RATIO}")
        print(f"{'ivri run, actuated, ' + b:<34}{s:>10.2f}{s / plain_s:>10.2f}{verdict}")


if __name__ == "__main__":
    main()
