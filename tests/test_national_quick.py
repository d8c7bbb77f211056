"""`ivri national --quick` end to end: SUMO runs on a Dask LocalCluster, report, cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sumo


def _national(out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # A subprocess: the LocalCluster's worker processes and their logging stay out of pytest.
    return subprocess.run(
        [sys.executable, "-m", "ivri.national", "--quick", "--workers", "2", "--draws", "500",
         "--out", str(out), "--cache", str(cache), *extra],
        capture_output=True, text=True, timeout=600, check=False,
    )


def test_quick_end_to_end_and_rerun_from_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _national(tmp_path / "a", cache)
    assert first.returncode == 0, first.stderr[-3000:]
    # not a terminal: a plain progress line instead of the live bar
    assert "runs 12/12 (0 from the cache)" in first.stderr
    out = tmp_path / "a"
    for name in ("report.md", "report.html", "national.json", "runs.jsonl.gz", "tornado.svg", "types.svg",
                 "intervals_veh_h.svg", "intervals_fuel_l.svg"):
        assert (out / name).is_file(), name
    res = json.loads((out / "national.json").read_text(encoding="utf-8"))
    assert res["quick"] is True and res["seeds"] == [42]
    assert res["software"]["sumo"] and res["software"]["ivri"]
    assert res["run_stats"]["jobs"] == 12 and res["run_stats"]["simulated"] == 12
    head = res["national"][res["headline_feature"]]
    for k in ("veh_h", "limit_h", "stops", "fuel_l", "co2_kg", "cyclist_h", "ev_h"):
        assert head[k]["p5"] <= head[k]["p95"]
    assert res["headline_feature"] == "g40" and "conversion" in res["national"]
    assert res["g40_comparison"]["veh_h"]["g40"] == 467000
    assert all(r["simulated_s"] == pytest.approx(300.0) and r["window_s"] == pytest.approx(240.0)
               for r in res["runs"])
    # the fixed-time line runs Webster plans timed to each scenario's flows
    assert set(res["webster"]) == {"crossing:short", "tjunction:short"}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "467 k" in report and "Which parts of the G40 figures the simulation supports" in report
    assert "parameters.toml" in report

    second = _national(tmp_path / "b", cache)
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads((tmp_path / "b" / "national.json").read_text(encoding="utf-8"))
    if again["software"] == res["software"]:
        assert again["run_stats"]["cache_hits"] == 12 and again["run_stats"]["simulated"] == 0
        assert "runs 12/12 (12 from the cache)" in second.stderr
        assert again["national"] == res["national"]
        # the runs travel with the report: a new cache that loads them simulates nothing
        third = _national(tmp_path / "c", tmp_path / "empty", "--reuse", str(out / "runs.jsonl.gz"))
        assert third.returncode == 0, third.stderr[-3000:]
        assert "reused 12 new run(s)" in third.stderr
        reused = json.loads((tmp_path / "c" / "national.json").read_text(encoding="utf-8"))
        assert reused["run_stats"]["simulated"] == 0 and reused["national"] == res["national"]
    else:  # the engine's source changed between the two runs (someone edits the tree): all misses
        assert again["run_stats"]["simulated"] == 12
