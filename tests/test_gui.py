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
