"""Optional dependencies are extras: the engine imports without SUMO, MQTT or dask."""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OPTIONAL_EXTRAS = ("sumo", "mqtt", "national")

# Run in a fresh interpreter: a meta-path finder refuses the modules of the optional
# distributions, as if they were not installed, before anything of ivri is imported.
_BLOCKING = """
import sys
from importlib.abc import MetaPathFinder

BLOCKED = set({blocked!r})

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Absent())
{code}
"""


def _distribution_name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


def optional_distributions(extras: tuple[str, ...] = OPTIONAL_EXTRAS) -> set[str]:
    """The distributions the given extras add (dask's own extra included)."""
    declared = PYPROJECT["project"]["optional-dependencies"]
    names = {_distribution_name(r) for e in extras for r in declared[e]}
    if "dask" in names:
        names.add("distributed")  # dask[distributed]
    return names


def optional_modules(extras: tuple[str, ...] = OPTIONAL_EXTRAS) -> set[str]:
    """Top-level modules of the distributions of ``extras`` (from the installed metadata)."""
    wanted = optional_distributions(extras)
    return {m for m, dists in md.packages_distributions().items()
            if any(d.lower() in wanted for d in dists)}


def run_blocked(code: str, extras: tuple[str, ...] = OPTIONAL_EXTRAS) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter without the modules of ``extras``."""
    script = _BLOCKING.format(blocked=sorted(optional_modules(extras)), code=code)
    return subprocess.run([sys.executable, "-c", script], check=False, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_extras_are_declared() -> None:
    """The optional parts are extras, not requirements, and `[test]` pulls in all of them."""
    project = PYPROJECT["project"]
    required = {_distribution_name(r) for r in project["dependencies"]}
    optional = optional_distributions()
    assert {"eclipse-sumo", "libsumo", "traci", "aiomqtt", "asn1tools", "cryptography", "dask"} <= optional
    assert not required & optional
    assert f"ivri[{','.join(OPTIONAL_EXTRAS)}]" in project["optional-dependencies"]["test"]


def test_blocking_works() -> None:
    """The blocker itself: a blocked module really cannot be imported (else the next test
    would pass for nothing)."""
    assert {"libsumo", "traci", "aiomqtt", "asn1tools", "dask"} <= optional_modules()
    done = run_blocked("import libsumo")
    assert done.returncode != 0
    assert "blocked" in done.stderr


def test_imports_without_optional_dependencies() -> None:
    """`import ivri`, the core, the configs and the controllers touch no optional module."""
    done = run_blocked(
        "import ivri, ivri.core, ivri.config, ivri.controllers\n"
        "bad = sorted(m for m in sys.modules if m.partition('.')[0] in BLOCKED)\n"
        "assert not bad, bad\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_core_runs_without_optional_dependencies() -> None:
    """Not only the import: a network compiles and the core turns a requested group green."""
    done = run_blocked(
        "from ivri.config import ConflictConfig, IntersectionConfig, SignalGroupConfig\n"
        "from ivri.core.compile import compile_network\n"
        "from ivri.core.engine import SignalCore\n"
        "from ivri.core.idx import GREEN\n"
        "groups = (SignalGroupConfig(id='a'), SignalGroupConfig(id='b'))\n"
        "x = IntersectionConfig(id='J', signal_groups=groups,\n"
        "                       conflicts=(ConflictConfig(between=('a', 'b'), intergreen_s=(4.0, 4.0)),))\n"
        "net = compile_network([x])\n"
        "core = SignalCore(net, 1.0)\n"
        "request = net.full(False, bool)\n"
        "request[0, 0] = True\n"
        "core.advance(request)\n"
        "print(core.signals.state[0].tolist() == [GREEN, 0])\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"


@pytest.mark.sumo
def test_readme_run_needs_only_the_sumo_extra(tmp_path: Path) -> None:
    """The README's first command installs `.[sumo]`: `ivri run` works without the gateway's
    and the national estimate's dependencies (a short run)."""
    out = tmp_path / "out"
    done = run_blocked(
        "from ivri.cli import main\n"
        f"sys.argv = ['ivri', 'run', 'crossing:short', '--controller', 'actuated', '--end', '30', "
        f"'--out', {str(out)!r}]\n"
        "main()\n",
        extras=("mqtt", "national"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "kpis.json").is_file()


def test_a_missing_extra_is_named() -> None:
    """Without the national extra, the national estimate says what to install."""
    done = run_blocked(
        "from ivri.errors import ConfigError\n"
        "from ivri.national.runs import cluster_client\n"
        "try:\n"
        "    with cluster_client():\n"
        "        pass\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n",
        extras=("national",),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pip install 'ivri[national]'" in done.stdout


def test_the_gateway_names_its_missing_extra(tmp_path: Path) -> None:
    """Without the mqtt extra, `ivri gateway` says what to install instead of a traceback."""
    done = run_blocked(
        "from ivri.cli import main\n"
        f"sys.argv = ['ivri', 'gateway', '--config', {str(tmp_path / 'net.toml')!r}]\n"
        "main()\n",
        extras=("mqtt",),
    )
    assert done.returncode != 0
    assert "pip install 'ivri[mqtt]'" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
