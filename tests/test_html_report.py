"""report.html: one self-contained page per `ivri run --out DIR`, and quiet SUMO runs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_cli import ivri

SECTIONS = {"settings", "kpis", "comparison", "timeline", "decisions", "health"}


class _Page(HTMLParser):
    """Section ids, image sources, external references and the text of each section."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.images: list[str] = []
        self.external: list[str] = []
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self._current = a.get("id") or ""
            self.sections[self._current] = ""
        if tag == "img":
            self.images.append(a.get("src") or "")
        for key in ("src", "href"):
            if (a.get(key) or "").startswith(("http:", "https:", "//", "file:")):
                self.external.append(a[key] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self.sections[self._current] += data


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    result = ivri("run", "crossing:short", "--compare", "actuated,actuated+greenflow", "--end", "200",
                  "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "report.html" in result.stdout
    return out


@pytest.mark.sumo
def test_report_has_every_section_and_is_self_contained(out: Path) -> None:
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert set(page.sections) == SECTIONS
    assert not page.external
    # comparison plot + one timeline per ivri controller, all inlined PNGs
    assert len(page.images) == 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,iVBORw0KGgo")
    records = json.loads((out / "kpis.json").read_text())
    text = page.sections
    assert records[0]["sumo_version"] in text["settings"]
    assert "crossing:short" in text["settings"] and "--compare" in text["settings"]
    # KPI table: both controllers, and the second one's difference to the first
    for r in records:
        assert r["controller"] in text["kpis"]
    loss = records[1]["vehicle_loss_hours"] - records[0]["vehicle_loss_hours"]
    assert f"{loss:+,.2f}" in text["kpis"]
    assert "Intersection C" in text["timeline"]
    # the decision summary of `ivri log`: GreenFlow's emergency vehicle was requested and granted
    assert "emergency" in text["decisions"] and "grant rate" in text["decisions"]
    assert (out / "report.html").stat().st_size < 1_500_000


@pytest.mark.sumo
def test_bundled_scenario_run_leaves_sumo_log_empty(out: Path) -> None:
    for run in ("actuated", "actuated_greenflow"):
        assert (out / run / "sumo_errors.log").read_text() == ""
    assert all(r["sumo_warnings"] == 0 for r in json.loads((out / "kpis.json").read_text()))


@pytest.mark.sumo
def test_user_network_warnings_are_one_line_with_a_pointer(tmp_path: Path) -> None:
    """A network the project did not write, which SUMO warns about: one note, no flood."""
    from ivri.sumo_networks import get_scenario

    src = get_scenario("crossing:short").sumocfg.parent
    routes = (src / "crossing.peak.rou.xml").read_text()
    # A trip written out of order: SUMO warns that it ignores it.
    routes = re.sub(r'(<trip id="ev_0"[^>]*/>)', r'\1\n    <trip id="late" depart="5" from="W_C" to="C_E"/>', routes)
    (tmp_path / "city.rou.xml").write_text(routes)
    (tmp_path / "city.sumocfg").write_text(
        f'<configuration><input><net-file value="{src / "crossing.net.xml"}"/>'
        f'<route-files value="{tmp_path / "city.rou.xml"}"/><additional-files value="{src / "crossing.add.xml"}"/>'
        '</input><time><begin value="0"/><end value="200"/></time></configuration>')
    result = ivri("run", str(tmp_path / "city.sumocfg"), "-c", "actuated", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "Warning:" not in result.stderr + result.stdout
    log = tmp_path / "out" / "actuated" / "sumo_errors.log"
    assert "ignoring 'late'" in log.read_text()
    notes = [ln for ln in result.stderr.splitlines() if "sumo_errors.log" in ln]
    assert len(notes) == 1 and "warning" in notes[0]


def test_report_health_section_says_which_run_gridlocked(tmp_path: Path) -> None:
    from ivri.metrics.html_report import write_html_report

    calm = {"teleports": 0, "collisions": 0, "emergency_braking": 0, "never_inserted": 0, "backlog_max": 3,
            "backlog_mid": 0, "gridlock": False}
    jammed = {**calm, "teleports": 12, "teleports_jam": 12, "never_inserted": 140, "backlog_max": 140,
              "backlog_mid": 40, "gridlock": True}
    records = [{"scenario": "x", "controller": name, "seed": 1, "vehicle_loss_hours": h, "health": health}
               for name, h, health in (("sumo-native", 1.0, calm), ("actuated", 9.0, jammed))]
    (tmp_path / "comparison.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    page = _Page()
    page.feed(write_html_report(tmp_path, records).read_text(encoding="utf-8"))
    health = page.sections["health"]
    assert "actuated: GRIDLOCK: 12 vehicles teleported" in health
    assert "sumo-native: GRIDLOCK" not in health
    assert "140" in health  # vehicles never inserted
