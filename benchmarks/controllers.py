"""Controllers side by side on every bundled scenario: vehicle-loss hours and delay per mode.

    python benchmarks/controllers.py [--scenarios crossing,tjunction,corridor,grid]
                                     [--controllers fixed-time,actuated,max-pressure,sumo-native]
                                     [--seeds 42,43] [--variant peak] [--out DIR]

Every controller runs the same network, demand and seeds in one invocation. The question the
table answers (issue 3): does the engine's vehicle-actuated control lose no more vehicle-hours
than SUMO's own actuated programs (`sumo-native`)? The last column is the ratio to sumo-native.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ivri.metrics import plot_comparison, write_kpis_json
from ivri.runner import RunSpec, run_controller
from ivri.sumo.connection import sumo_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="crossing,tjunction,corridor,grid")
    parser.add_argument("--controllers", default="fixed-time,actuated,max-pressure,sumo-native")
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--variant", default="peak")
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/controllers"))
    args = parser.parse_args()

    controllers = args.controllers.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    console = Console(width=140)
    table = Table(title=f"vehicle-loss hours per scenario ({args.variant}; seeds {seeds}; "
                        f"SUMO {sumo_version()}; mean over seeds)")
    for col in ("scenario", "controller", "veh-loss h", "car s", "bike s", "ped s", "bus s",
                "emergency s", "fuel L", "stops", "vs sumo-native"):
        table.add_column(col, justify="left" if col in ("scenario", "controller") else "right")
    all_records = []
    for scenario in args.scenarios.split(","):
        name = f"{scenario}:{args.variant}"
        rows: dict[str, list[dict]] = {}
        for ctrl in controllers:
            for seed in seeds:
                rec = run_controller(RunSpec(scenario=name, controller=ctrl, seed=seed,
                                             out_dir=args.out / scenario / str(seed)))
                rows.setdefault(ctrl, []).append(rec)
                all_records.append(rec)
                console.print(f"  {name} {ctrl} seed {seed}: {rec['vehicle_loss_hours']:.1f} veh-h "
                              f"({rec['wall_time_s']:.1f} s)")

        def mean(ctrl: str, key: str, mode: str | None = None,
                 rows: dict[str, list[dict]] = rows) -> float:
            vals = [(r["by_mode"][mode]["mean_time_loss_s"] or 0.0) if mode else r[key] for r in rows[ctrl]]
            return statistics.fmean(vals)

        ref = mean("sumo-native", "vehicle_loss_hours") if "sumo-native" in rows else None
        for ctrl in controllers:
            vlh = mean(ctrl, "vehicle_loss_hours")
            table.add_row(name, ctrl, f"{vlh:.1f}", f"{mean(ctrl, '', 'car'):.1f}",
                          f"{mean(ctrl, '', 'bicycle'):.1f}", f"{mean(ctrl, '', 'pedestrian'):.1f}",
                          f"{mean(ctrl, '', 'bus'):.1f}", f"{mean(ctrl, '', 'emergency'):.1f}",
                          f"{mean(ctrl, 'fuel_litres'):.0f}", f"{mean(ctrl, 'stops'):.0f}",
                          "" if ref is None else f"{vlh / ref:.2f}")
        plot_comparison([r for rs in rows.values() for r in rs], args.out / f"{scenario}.png",
                        title=f"{name}, seeds {seeds}")
    write_kpis_json(all_records, args.out / "kpis.json")
    console.print(table)
    console.print(f"mean time loss per trip in s per mode; results in {args.out}")


if __name__ == "__main__":
    main()
