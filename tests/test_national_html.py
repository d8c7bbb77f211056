"""The national HTML report: self-contained, every section, the G40 comparison with its
minimum detectable effect; and, where chromium exists, a headless screenshot of it."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from ivri.national.report import HTML_SECTIONS, build_result, write_report
from ivri.national.runs import RunStats


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.svgs = 0
        self.external: list[str] = []
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id"):
            self.ids.append(a["id"] or "")
        if tag == "svg":
            self.svgs += 1
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            v = a.get(key) or ""
            if v and not v.startswith("#") and not v.startswith("http://www.w3.org"):
                self.external.append(v)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from test_national_extrapolate import _table

    params, table = _table()
    res = build_result(table, params, {}, RunStats(jobs=0), quick=False, mc_draws=300)
    out = tmp_path_factory.mktemp("national")
    write_report(res, out)
    return out, res


def test_html_report_is_self_contained_with_every_section(report: tuple[Path, dict[str, Any]]) -> None:
    out, res = report
    html = (out / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    assert tuple(page.ids) == HTML_SECTIONS
    assert page.svgs >= 4 and page.scripts == 0 and page.external == []
    text = " ".join(page.text)
    # the G40 figures, the simulated ones and the minimum detectable effect side by side
    assert "467 k" in text and "17.00 M" in text and "minimum detectable effect" in text
    assert "(a) G40's scope: information services + emergency priority" in text
    assert "(c) converting fixed time (Webster) to actuation" in text
    # a line the sweep left out is named as such, not silently missing (this sample has no "full")
    assert "full" not in res["lines"]
    assert "(b) the full package" in text and "not run (add full to --features)" in text
    # the page's links name each section in full, short of a trailing parenthesis
    assert escape("(a) G40's scope, (b) the full package, (c) the fixed-time conversion") + "</a>" in html
    assert ">Effect per feature</a>" in html
    # every parameter with its source
    for name, p in res["parameters"]["parameters"].items():
        assert name in text
        assert p["source"][:40] in text
    # the power table reports each seed-paired effect with its interval
    assert re.search(r"seeds needed", text)
    # how the headline settles with the seeds: one row per prefix of the seeds, G40's line on it
    running = res["g40_comparison"]["veh_h"]["running"]
    assert [r["seeds"] for r in running] == list(range(2, len(res["seeds"]) + 1))
    assert "after the first n seeds" in text and f"{len(res['seeds'])} seeds" in text
    assert "KAR" in text and "Webster" in text


def test_markdown_says_the_same(report: tuple[Path, dict[str, Any]]) -> None:
    out, res = report
    md = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("The result next to the G40 estimate", "Which parts of the G40 figures the simulation supports",
                    "(a) G40's scope, (b) the full package, (c) the fixed-time conversion",
                    "Statistical power", "Every assumption with its source", "Fixed-time plans (Webster)"):
        assert f"## {heading}" in md
    assert res["g40_comparison"]["veh_h"]["mde"] > 0


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_html_report_renders_in_a_headless_browser(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = report
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1200,1600",
             (out / "report.html").resolve().as_uri()],
            capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # a rendered page, not a blank one: many distinct colours (text, the charts' blue and red)
    import numpy as np
    from PIL import Image  # matplotlib's dependency

    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (1600, 1200, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_method_says_how_real_world_networks_are_run(report: tuple[Path, dict[str, Any]]) -> None:
    from ivri.national.report import _method

    _, res = report
    assert not any("real-world" in m for m in _method(res))  # no real-world type, no sentence
    span_s = res["end_s"] - res["warmup_s"]
    real = {**res, "variants": [*res["variants"], "real"],
            "runs": [{"window_s": span_s}, {"window_s": 2700.0}, {"window_s": 2700.0}]}
    runs_line = next(m for m in _method(real) if m.startswith("Runs:"))
    assert "(2700 s counted)" in runs_line and "3 of its cars an hour" in runs_line
