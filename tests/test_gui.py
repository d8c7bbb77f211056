"""`ivri run --gui`: sumo-gui under a virtual display, end to end, with a screenshot through TraCI.

Runs where ``xvfb-run`` exists (`.ci/run` installs it from the system packages).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_cli import assert_clean_error, ivri

needs_display = pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")


@pytest.mark.sumo
@needs_display
def test_gui_run_completes_its_outputs_and_takes_a_screenshot(tmp_path: Path) -> None:
    out, shot = tmp_path / "out", tmp_path / "shot.png"
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", sys.executable, "-m", "ivri", "run", "crossing:short",
           "-c", "actuated+greenflow", "--gui", "--gui-delay", "0", "--end", "200", "--gui-screenshot", str(shot),
           "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    # sumo-gui quit at the end and closed its outputs before they were read.
    root = ET.parse(out / "actuated_greenflow" / "tripinfo.xml").getroot()
    assert len(root.findall("tripinfo")) > 50
    assert (out / "report.html").is_file()
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width > 300 and height > 200 and len(png) > 5_000


def test_gui_options_need_gui() -> None:
    assert_clean_error(ivri("run", "crossing:short", "--gui-delay", "100"), "--gui")
    assert_clean_error(ivri("run", "crossing:short", "--gui", "--gui-delay", "-5"), "--gui-delay")


class _Recorder:
    """Records the TraCI calls made on it (``conn.poi.setParameter(...)`` -> ("poi", "setParameter", args))."""

    def __init__(self, calls: list[tuple[str, str, tuple]], domain: str = "") -> None:
        self._calls, self._domain = calls, domain

    def __getattr__(self, name: str):
        if not self._domain:
            return _Recorder(self._calls, name)

        def call(*args, **kwargs):
            self._calls.append((self._domain, name, args))
            if name == "getControlledLanes":
                return ("W_C_0", "E_C_0")
            if name == "getShape":
                return ((0.0, 0.0), (10.0, 5.0) if args[0] == "W_C_0" else (30.0, -5.0))
            return None
        return call


def _rows(status: int, cls: int, token: int = 7) -> SimpleNamespace:
    from ivri.controllers.priority import request_keys

    return SimpleNamespace(keys=request_keys(np.array([token]), np.array([0]), 1), status=np.array([status], np.int8),
                           intersection=np.array([0]), group=np.array([1]), cls=np.array([cls], np.int8))


def test_gui_view_changes_reach_sumo_only_when_something_changed() -> None:
    from ivri.controllers.arbiter import Status
    from ivri.controllers.priority import PriorityClass
    from ivri.controllers.v2x import Role, V2XObservation

    from ivri.sumo.gui import HIGHLIGHT, VIEW_MARGIN_M, GuiView

    calls: list[tuple[str, str, tuple]] = []
    net = SimpleNamespace(intersection_ids=("C",), group_ids=(("fc01", "fc02"),))
    v2x = SimpleNamespace(track_equipped=False, equipped_new=[("ev_0", int(Role.EMERGENCY), False)],
                          obs=V2XObservation.from_rows([{"token": 7, "intersection": 0, "distance_m": 300.0}]),
                          vehicle_id=lambda tok: {7: "ev_0"}.get(tok))
    view = GuiView(_Recorder(calls), net, ["C"], v2x)
    assert v2x.track_equipped
    m = VIEW_MARGIN_M  # around the stop lines (10, 5) and (30, -5); the label at their centre
    assert ("gui", "setBoundary", ("View #0", 10.0 - m, -5.0 - m, 30.0 + m, 5.0 + m)) in calls
    assert ("poi", "add", ("ivri_label_C", 20.0, 0.0, (0, 0, 0, 0))) in calls
    calls.clear()

    def step(tracked: SimpleNamespace | None) -> list[tuple[str, str, tuple]]:
        calls.clear()
        view.update(10.0, 600.0, 1.0, tracked)
        return list(calls)

    emergency = int(PriorityClass.EMERGENCY)
    made = step(_rows(Status.PREPARING, emergency))
    assert ("vehicle", "setColor", ("ev_0", (30, 90, 255, 255))) in made       # equipped: its class colour
    assert ("vehicle", "highlight", ("ev_0", HIGHLIGHT)) in made              # acted on: circled
    assert ("poi", "setParameter", ("ivri_label_C", "ivri", "emergency fc02: granted")) in made
    assert step(_rows(Status.GRANTED, emergency)) == []                       # nothing new: no TraCI call
    assert step(_rows(Status.QUEUED, emergency)) == [
        ("polygon", "remove", ("ev_0_hl0",)),
        ("poi", "setParameter", ("ivri_label_C", "ivri", "emergency fc02: requested"))]
    assert step(_rows(Status.QUEUED, emergency)) == []
    assert step(None) == []
