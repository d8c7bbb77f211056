"""The core and the controllers type-check under mypy (configured in pyproject.toml:
``[tool.mypy]`` names the folders and the strictness)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_mypy_finds_nothing() -> None:
    # mypy's incremental cache (.mypy_cache, ignored by git) makes a second run take seconds.
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout, result.stdout
