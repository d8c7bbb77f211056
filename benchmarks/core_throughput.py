"""Throughput of the signal-timing core on a synthetic national network.

    python benchmarks/core_throughput.py [--intersections 6000] [--groups 16] [--ticks 2000]

The Netherlands has about 5,500 signalised intersections (FACTS.md); this network has 6,000,
each a four-stage Dutch plan of 16 signal groups (12 vehicle and cycle groups, 4 pedestrian
groups; groups of different stages conflict, with intergreens of 3-12 s). Request and demand
streams are precomputed, so the clock measures the core, not a random generator: in the
realistic stream each intersection requests one stage for 25 s (a busy hour), in the
adversarial one a new random stage every tick (every group's intergreens are checked every
tick). Printed side by side in one run: the numba kernel alone on both streams,
`SignalCore.advance` as a run calls it (shape checks and the conflict monitor included), and
the plain-Python reference on a slice.

Target (issue 3): at least 50 million signal-group updates per second on one core, i.e. one
national tick under 2 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from ivri.config import IntersectionConfig
from ivri.core.compile import compile_network
from ivri.core.engine import SignalCore
from ivri.core.kernel import advance_kernel, build_conflict_sets
from ivri.core.state import initial_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from naive import naive_advance

TARGET_UPDATES_PER_S = 50e6
N_STREAM = 64  # distinct request patterns, cycled
HOLD_TICKS = 25  # the realistic stream keeps a pattern this many ticks (a stage of 25 s)


def four_stage_template(n_groups: int, seed: int = 7) -> IntersectionConfig:
    """A Dutch four-stage intersection: groups of one stage run together, others conflict."""
    rng = np.random.default_rng(seed)
    n_stages = 4
    stage_of = [g % n_stages for g in range(n_groups)]
    ped = {g for g in range(n_groups) if g >= n_groups - 4}
    groups = [{"id": f"fc{g:02d}", "mode": "pedestrian" if g in ped else "motor",
               "amber_s": 0.0 if g in ped else 3.0, "min_green_s": 6.0 if g in ped else 5.0,
               "max_green_s": 20.0 if g in ped else 40.0, "max_wait_s": 240.0}
              for g in range(n_groups)]
    conflicts = []
    for a in range(n_groups):
        for b in range(a + 1, n_groups):
            if stage_of[a] != stage_of[b]:
                ig = [float(rng.uniform(3.0, 6.0)) + (6.0 if x in ped else 0.0) for x in (a, b)]
                ig = [max(v, groups[x]["amber_s"]) for v, x in zip(ig, (a, b))]
                conflicts.append({"between": [f"fc{a:02d}", f"fc{b:02d}"], "intergreen_s": ig})
    stages = [[f"fc{g:02d}" for g in range(n_groups) if stage_of[g] == s] for s in range(n_stages)]
    return IntersectionConfig(id="template", signal_groups=groups, conflicts=conflicts, stages=stages)


def request_stream(shape: tuple[int, int], seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Requests that follow a stage each, with noise; demand on most groups (a busy hour)."""
    rng = np.random.default_rng(seed)
    n_i, n_g = shape
    stage = rng.integers(0, 4, size=(N_STREAM, n_i, 1))
    request = (np.arange(n_g)[None, None, :] % 4 == stage) ^ (rng.random((N_STREAM, n_i, n_g)) < 0.05)
    demand = rng.random((N_STREAM, n_i, n_g)) < 0.7
    return np.ascontiguousarray(request), np.ascontiguousarray(demand)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intersections", type=int, default=6000)
    parser.add_argument("--groups", type=int, default=16)
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--dt", type=float, default=1.0)
    args = parser.parse_args()

    template = four_stage_template(args.groups)
    xs = [template.model_copy(update={"id": f"vri{i:05d}"}) for i in range(args.intersections)]
    started = time.perf_counter()
    net = compile_network(xs)
    compile_s = time.perf_counter() - started
    request, demand = request_stream(net.timing.valid.shape)
    n_updates = args.intersections * args.groups * args.ticks

    # The kernel alone, as the engine calls it, on both streams.
    core = SignalCore(net, args.dt)
    sets = build_conflict_sets(core._timing)
    changed = np.zeros(args.intersections, dtype=np.bool_)
    no_hold = np.zeros(net.timing.valid.shape, dtype=np.bool_)
    kernel_s = {}
    for label, hold in (("realistic", HOLD_TICKS), ("adversarial", 1)):
        sig = initial_state(net)
        advance_kernel(core._timing, sets, sig, request[0], demand[0], no_hold, args.dt, args.dt,
                       changed)
        started = time.perf_counter()
        for k in range(args.ticks):
            p = (k // hold) % N_STREAM
            advance_kernel(core._timing, sets, sig, request[p], demand[p], no_hold,
                           (k + 2) * args.dt, args.dt, changed)
        kernel_s[label] = time.perf_counter() - started

    # SignalCore.advance: shape checks and the conflict monitor every tick.
    core.advance(request[0], demand[0])
    started = time.perf_counter()
    for k in range(args.ticks):
        p = (k // HOLD_TICKS) % N_STREAM
        core.advance(request[p], demand[p])
    engine_s = time.perf_counter() - started

    # The plain-Python reference on a slice (it would take hours on the whole network).
    n_small, t_small = 50, 50
    small = compile_network(xs[:n_small])
    sig_py = initial_state(small)
    ch_py = np.zeros(n_small, dtype=np.bool_)
    started = time.perf_counter()
    for k in range(t_small):
        naive_advance(small.timing, sig_py, request[k % N_STREAM, :n_small],
                      demand[k % N_STREAM, :n_small], (k + 1) * args.dt, args.dt, ch_py)
    naive_s = time.perf_counter() - started
    naive_rate = n_small * args.groups * t_small / naive_s
    state_bytes = sum(a.nbytes for a in core.signals) + sum(a.nbytes for a in core._timing)

    engine_rate = n_updates / engine_s
    rows = [(f"advance_kernel, {label} stream", n_updates / secs, secs) for label, secs in kernel_s.items()]
    rows.append(("SignalCore.advance, realistic", engine_rate, engine_s))
    print(f"synthetic national network: {args.intersections} intersections x {args.groups} signal "
          f"groups, {args.ticks} ticks of {args.dt} s; one core; "
          f"NUMBA_DISABLE_JIT={os.environ.get('NUMBA_DISABLE_JIT', '0')}")
    print(f"compile configs -> arrays: {compile_s:.2f} s; state + timing arrays: {state_bytes / 1e6:.1f} MB")
    print(f"{'':<38}{'updates/s':>14}{'ms/tick':>10}{'vs target':>11}")
    for label, rate, secs in rows:
        print(f"{label:<38}{rate:>14,.0f}{1e3 * secs / args.ticks:>10.3f}{rate / TARGET_UPDATES_PER_S:>10.2f}x")
    print(f"{'plain Python reference (slice)':<38}{naive_rate:>14,.0f}"
          f"{1e3 * args.intersections * args.groups / naive_rate:>10.1f}{naive_rate / TARGET_UPDATES_PER_S:>10.4f}x")
    best = n_updates / kernel_s["realistic"]
    print(f"numba speed-up over plain Python: {best / naive_rate:,.0f}x; target "
          f"{TARGET_UPDATES_PER_S / 1e6:.0f} M updates/s (national tick < 2 ms) on the realistic stream: "
          f"kernel {'met' if best >= TARGET_UPDATES_PER_S else 'NOT met'}, SignalCore.advance "
          f"{'met' if engine_rate >= TARGET_UPDATES_PER_S else 'NOT met'}")


if __name__ == "__main__":
    main()
