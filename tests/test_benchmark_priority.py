"""The statistics of the priority benchmark: paired differences over seeds and the target verdicts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("priority_benchmark", ROOT / "benchmarks" / "priority.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(app: str, seed: int, loss: float) -> dict[str, Any]:
    return {"app": app, "seed": seed, "vehicle_loss_hours": loss}


def test_paired_difference_is_taken_seed_by_seed(bench: ModuleType) -> None:
    # Seeds differ a lot from each other, the arm adds exactly 1 h to each: a paired
    # difference has no spread at all, an unpaired one would.
    base = [run("off", s, 10.0 * (s - 40)) for s in (41, 42, 43, 44)]
    arm = [run("all", s, 10.0 * (s - 40) + 1.0) for s in (41, 42, 43, 44)]
    d = bench.paired(base + arm, "off", "all", lambda r: r["vehicle_loss_hours"], relative=False)
    assert d["n"] == 4
    assert d["mean"] == pytest.approx(1.0)
    assert d["lo"] == pytest.approx(1.0) and d["hi"] == pytest.approx(1.0)
    rel = bench.paired(base + arm, "off", "all", lambda r: r["vehicle_loss_hours"])
    assert rel["mean"] == pytest.approx(100.0 * 1.0 / 25.0)  # base mean 25 h


def test_paired_difference_uses_only_seeds_both_arms_have(bench: ModuleType) -> None:
    runs = [run("off", 1, 10.0), run("off", 2, 20.0), run("off", 3, 30.0),
            run("all", 1, 12.0), run("all", 3, 36.0)]
    d = bench.paired(runs, "off", "all", lambda r: r["vehicle_loss_hours"], relative=False)
    assert d["n"] == 2
    assert d["mean"] == pytest.approx(4.0)
    # Student t with one degree of freedom: 12.706 * sd(2, 6) / sqrt(2) = 12.706 * 2
    assert d["hi"] - d["mean"] == pytest.approx(12.706 * 2.0, rel=1e-3)


def test_verdicts(bench: ModuleType) -> None:
    assert bench.verdict({"mean": 2.9, "lo": 1.0, "hi": 4.8}, 3.0) == "met"
    assert bench.verdict({"mean": 3.1, "lo": 1.0, "hi": 4.8}, 3.0) == "missed"
    assert bench.verdict(-26.0, -25.0) == "met"
    assert bench.verdict(None, -25.0) == "-"
    # Others are "no worse" while the interval reaches zero; worse when it lies above it.
    assert bench.no_worse({"mean": 1.0, "lo": -0.5, "hi": 2.5}) == "no worse"
    assert bench.no_worse({"mean": 1.0, "lo": 0.2, "hi": 1.8}) == "worse"


def test_run_key_tells_jobs_apart(bench: ModuleType) -> None:
    def key(seed: int = 42, end_s: float = 600.0, arm: str = "all", ctl: str = "actuated+greenflow",
            software: str = "a", scenario: str = "s") -> str:
        return bench.run_key(bench.ArmRun("crossing:short", arm, ctl, seed, end_s), {"source": software}, scenario)

    assert key() == key()
    assert key() != key(seed=43)
    assert key() != key(end_s=300.0)
    assert key() != key(arm="cv25", ctl="cv-actuated")
    assert key() != key(software="b")  # the engine's source changed
    assert key() != key(scenario="t")  # the scenario's files changed
