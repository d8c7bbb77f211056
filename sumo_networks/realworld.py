"""Real-world test networks with their own demand, fetched from the package index, not bundled.

The RESCO benchmark networks (Ault and Sharon, NeurIPS 2021 Datasets and Benchmarks) are cut
from two real-city SUMO scenarios and ship with their own one-hour demand and the
scenarios' own traffic-light programs. They come inside the wheel of ``sumo-rl`` 1.4.5 on
PyPI (MIT licence for the package); the data keeps the licence of the scenario it comes from
(see README.md in this folder):

- ``cologne*``: TAPASCologne (DLR; road network from OpenStreetMap, demand from TAPAS),
  Creative Commons BY-NC-SA 3.0: name the source, no commercial use.
- ``ingolstadt*``: InTAS, the Ingolstadt Traffic Scenario (Technische Hochschule
  Ingolstadt), GNU GPL v3.0.

Neither licence fits the project's own, so the files are never committed: :func:`fetch`
downloads the wheel with ``pip download --no-deps sumo-rl==1.4.5``, checks its SHA-256 and
unpacks only the networks into a cache folder (``$IVRI_REALWORLD_DIR``, else
``$XDG_CACHE_HOME/ivri/realworld`` or ``~/.cache/ivri/realworld``)::

    ivri fetch-realworld                    # the default test set
    ivri run realworld:cologne8 --compare actuated,sumo-actuated
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ivri.errors import ConfigError

__all__ = [
    "DEFAULT_SET",
    "ENV_DIR",
    "NETWORKS",
    "SUMO_RL_SHA256",
    "SUMO_RL_VERSION",
    "RealWorldNetwork",
    "download_wheel",
    "fetch",
    "realworld_dir",
    "realworld_sumocfg",
    "unpack_networks",
]

SUMO_RL_VERSION = "1.4.5"
#: SHA-256 of sumo_rl-1.4.5-py3-none-any.whl as PyPI serves it (checked 2026-12-03).
SUMO_RL_SHA256 = "322d090e6a66d97cc9b265c0b6fa092687bc6b35965fe5f53f678878d1987660"
#: Where the networks are inside the wheel.
WHEEL_PREFIX = "sumo_rl/nets/RESCO/"
ENV_DIR = "IVRI_REALWORLD_DIR"
#: Written next to each unpacked network: where it came from and under which licence.
SOURCE_FILENAME = "SOURCE.txt"

_COLOGNE = ("TAPASCologne (DLR; OpenStreetMap network, TAPAS demand) via RESCO / sumo-rl 1.4.5",
            "CC BY-NC-SA 3.0 (name the source; no commercial use)")
_INGOLSTADT = ("InTAS, Ingolstadt Traffic Scenario (Technische Hochschule Ingolstadt) via RESCO / sumo-rl 1.4.5",
               "GPL-3.0")


@dataclass(frozen=True)
class RealWorldNetwork:
    """One network of the test set, as RESCO cut it."""

    name: str
    city: str
    traffic_lights: int
    period: str
    source: str
    licence: str


NETWORKS: dict[str, RealWorldNetwork] = {
    n.name: n
    for n in (
        RealWorldNetwork("cologne1", "Cologne", 1, "07:00-08:00", *_COLOGNE),
        RealWorldNetwork("cologne3", "Cologne", 3, "07:00-08:00", *_COLOGNE),
        RealWorldNetwork("cologne8", "Cologne", 8, "07:00-08:00", *_COLOGNE),
        RealWorldNetwork("ingolstadt1", "Ingolstadt", 1, "16:00-17:00", *_INGOLSTADT),
        RealWorldNetwork("ingolstadt7", "Ingolstadt", 7, "16:00-17:00", *_INGOLSTADT),
        RealWorldNetwork("ingolstadt21", "Ingolstadt", 21, "16:00-17:00", *_INGOLSTADT),
    )
}
#: The networks of the controller benchmark.
DEFAULT_SET = ("cologne3", "cologne8", "ingolstadt7", "ingolstadt21")


def realworld_dir() -> Path:
    """The cache folder of the unpacked networks (see the module docstring)."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ivri" / "realworld"


def _check_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        raise ConfigError(f"unknown real-world network(s) {', '.join(unknown)}; valid: {', '.join(NETWORKS)}")
    return names


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def unpack_networks(wheel: Path, names: Iterable[str], dest: Path) -> dict[str, Path]:
    """Unpack the networks ``names`` from a sumo-rl wheel into ``dest/<name>/``.

    Only the files of those networks are extracted (nothing else of the package), each
    network into a temporary folder first and then moved into place, so an interrupted run
    leaves no half network. Returns each network's ``.sumocfg``. Raises
    :class:`~ivri.errors.ConfigError` when the wheel is not a zip file, lacks a network, or
    holds a path that would leave its folder.
    """
    names = _check_names(names)
    dest = Path(dest)
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{wheel} is not a readable wheel: {exc}") from None
    digest = _sha256(Path(wheel))  # named in every network's SOURCE.txt
    out: dict[str, Path] = {}
    with archive:
        members = archive.namelist()
        for name in names:
            prefix = f"{WHEEL_PREFIX}{name}/"
            files = [m for m in members if m.startswith(prefix) and not m.endswith("/")]
            if not any(m.endswith(".sumocfg") for m in files):
                raise ConfigError(f"{wheel} holds no {prefix}*.sumocfg: not the sumo-rl {SUMO_RL_VERSION} wheel?")
            dest.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest))
            try:
                for member in files:
                    rel = PurePosixPath(member[len(prefix):])
                    if rel.is_absolute() or ".." in rel.parts:
                        raise ConfigError(f"{wheel}: member {member!r} leaves its folder")
                    target = tmp.joinpath(*rel.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(member) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                info = NETWORKS[name]
                (tmp / SOURCE_FILENAME).write_text(
                    f"{name}: {info.city}, {info.traffic_lights} traffic light(s), demand {info.period}\n"
                    f"source: {info.source}\nlicence: {info.licence}\n"
                    f"unpacked from {Path(wheel).name} (sha256 {digest})\n",
                    encoding="utf-8")
                tmp.chmod(0o755)  # mkdtemp makes it private; the network is ordinary data
                final = dest / name
                if final.exists():
                    shutil.rmtree(final)
                tmp.rename(final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            out[name] = next(final.glob("*.sumocfg"))
    return out


def download_wheel(folder: Path) -> Path:
    """Download the sumo-rl wheel with pip into ``folder`` and check its SHA-256."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"sumo_rl-{SUMO_RL_VERSION}-py3-none-any.whl"
    if not wheel.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               f"sumo-rl=={SUMO_RL_VERSION}", "-d", str(folder), "--quiet"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not wheel.is_file():
            raise ConfigError(f"pip could not download sumo-rl=={SUMO_RL_VERSION}: "
                              f"{(done.stderr or done.stdout).strip().splitlines()[-1:] or 'no output'}")
    digest = _sha256(wheel)
    if digest != SUMO_RL_SHA256:
        raise ConfigError(f"{wheel} has SHA-256 {digest}, expected {SUMO_RL_SHA256}: not the "
                          f"published sumo-rl {SUMO_RL_VERSION} wheel; delete it and fetch again")
    return wheel


def fetch(names: Iterable[str] = DEFAULT_SET, *, dest: Path | None = None,
          wheel: Path | None = None) -> dict[str, Path]:
    """Make the networks ``names`` available in ``dest`` (default :func:`realworld_dir`).

    Networks already unpacked are kept; the others come from ``wheel`` (a local copy of the
    sumo-rl wheel) or from a download. Returns each network's ``.sumocfg``.
    """
    names = _check_names(names)
    dest = realworld_dir() if dest is None else Path(dest)
    found = {n: next((dest / n).glob("*.sumocfg"), None) for n in names}
    missing = [n for n, cfg in found.items() if cfg is None]
    if missing:
        source = Path(wheel) if wheel is not None else download_wheel(dest / "wheels")
        found.update(unpack_networks(source, missing, dest))
    return {n: Path(found[n]) for n in names}  # type: ignore[arg-type]  # all found now


def realworld_sumocfg(name: str, dest: Path | None = None) -> Path:
    """The ``.sumocfg`` of a fetched network; a clear error when it was not fetched yet."""
    _check_names([name])
    folder = (realworld_dir() if dest is None else Path(dest)) / name
    cfg = next(folder.glob("*.sumocfg"), None) if folder.is_dir() else None
    if cfg is None:
        raise ConfigError(f"real-world network {name!r} is not in {folder.parent}: run "
                          f"`ivri fetch-realworld {name}` first (downloads sumo-rl {SUMO_RL_VERSION} "
                          "from PyPI and unpacks the network)")
    return cfg
