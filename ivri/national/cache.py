"""On-disk cache of run results, so that a rerun only simulates what changed.

The key of a run is a SHA-256 over:

* the job: scenario, controller spec, seed, end time, equipped shares, rain series;
* the scenario's content: the ``.sumocfg`` and every file it names (network, routes,
  additional files), so an edited network is a miss even under the same name;
* the software: the ivri version, the SUMO version and a hash of the engine's source
  (``ivri/core``, ``ivri/sumo``, ``ivri/metrics``, ``ivri/runner.py``, ``ivri/config.py``
  and the controllers). ``ivri/national`` itself is not part of it: changing the report or the
  extrapolation does not invalidate simulations.

Parameters that only the extrapolation uses (hours per day type, shares of types, ...) are
not part of the key; those that reach the simulation (equipped shares, rain intensity) are,
through the job.

One JSON file per run, ``<key>.json``, written atomically (temporary file + rename), so that a
crashed run never leaves a half-written entry.

A report's runs travel with it: :func:`export_runs` writes every record of the report under its
key into ``runs.jsonl.gz`` (one JSON object per line), and :meth:`RunCache.load` puts such a
file's records into a cache, so that seeds run on another machine, or in an earlier session,
count as cache hits. A record only ever matches the job, software and scenario content its
key was made from.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from ivri.errors import ConfigError
from ivri.national.sweep import Job

__all__ = ["RunCache", "default_cache_dir", "export_runs", "job_key", "run_source_files", "scenario_digest",
           "software_fingerprint"]

#: Sources of the ivri package that cannot change a run's record (relative to it): the report
#: side of the estimate, its cache and job order, the command line, the live gateway and the
#: TLCGen import. Every other module, and every module of the controllers package, is in the
#: cache key: leaving out one that a run does import would let a record outlive the code that
#: made it, so the list is of exclusions.
_NOT_RUN_SOURCES = ("__main__.py", "cli.py", "cosim.py", "gateway", "its", "tlcgen",
                    "national/__main__.py", "national/cli.py", "national/cache.py", "national/report.py",
                    "national/power.py", "national/extrapolate.py", "national/effects.py", "national/svg.py",
                    "national/schedule.py")
#: What a cache key looks like (a SHA-256 in hex).
_KEY = re.compile(r"[0-9a-f]{64}")
#: Bumped when the record that :func:`ivri.national.runs.execute` returns changes shape.
RECORD_VERSION = 2


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ivri" / "national"


def _hash_files(paths: list[Path], root: Path | None = None) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root) if root else p.name).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def run_source_files() -> list[tuple[Path, list[Path]]]:
    """The Python files a run's record depends on, per package root: the ivri package's
    (without :data:`_NOT_RUN_SOURCES`), the controllers' and the bundled scenarios' packages."""
    import ivri
    import ivri.controllers
    import ivri.sumo_networks

    root = Path(ivri.__file__).resolve().parent
    skip = [root / part for part in _NOT_RUN_SOURCES]
    out = [(root, [p for p in sorted(root.rglob("*.py")) if not any(p == s or s in p.parents for s in skip)])]
    for package in (ivri.controllers, ivri.sumo_networks):
        pkg_root = Path(package.__file__).resolve().parent
        out.append((pkg_root, sorted(pkg_root.rglob("*.py"))))
    return out


@lru_cache(maxsize=1)
def software_fingerprint() -> dict[str, str]:
    """ivri version, SUMO version and a hash of the source files a run depends on."""
    import ivri
    from ivri.sumo.connection import sumo_version

    h = hashlib.sha256()
    for root, files in run_source_files():
        h.update(_hash_files(files, root).encode())
    return {"ivri": ivri.__version__, "sumo": sumo_version(), "source": h.hexdigest()[:16],
            "record": str(RECORD_VERSION)}


def scenario_digest(scenario: str) -> str:
    """Hash of a scenario's ``.sumocfg`` and of every file it references."""
    from ivri.runner import resolve_scenario
    from ivri.sumo.sumocfg import read_sumocfg

    _, path = resolve_scenario(scenario)
    cfg = read_sumocfg(path)
    files = {Path(path), Path(cfg.net_file), *map(Path, cfg.route_files), *map(Path, cfg.additional_files)}
    return _hash_files(sorted(files))[:16]


def job_key(job: Job, fingerprint: dict[str, str], scenario_hash: str) -> str:
    """The cache key of a job under the given software and scenario content."""
    data = {"job": asdict(job), "software": fingerprint, "scenario_content": scenario_hash}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class RunCache:
    """A folder of finished run records, by key. Counts hits and misses of :meth:`get`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        try:
            record = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return record

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f)
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0

    def load(self, path: Path) -> int:
        """Put the records of a ``runs.jsonl.gz`` (see :func:`export_runs`) into this cache;
        returns how many were new. A malformed file raises :class:`ConfigError` naming its line
        and adds nothing."""
        entries: list[tuple[str, dict[str, Any]]] = []
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    try:
                        entry = json.loads(line)
                        key, record = entry["key"], entry["record"]
                    except (ValueError, KeyError, TypeError):
                        raise ConfigError(f"{path}, line {n}: not a run record "
                                          '({"key": ..., "record": {...}})') from None
                    if not (isinstance(key, str) and _KEY.fullmatch(key) and isinstance(record, dict)
                            and "vehicle_loss_hours" in record):
                        raise ConfigError(f"{path}, line {n}: not a run record (a 64-digit hex key and "
                                          "a record with vehicle_loss_hours)")
                    entries.append((key, record))
        except (OSError, EOFError) as exc:
            raise ConfigError(f"{path}: cannot read runs ({exc})") from None
        new = 0
        for key, record in entries:
            if not self.path(key).is_file():
                self.put(key, record)
                new += 1
        return new


def export_runs(path: Path, records: dict[str, dict[str, Any]]) -> Path:
    """Write ``{key: record}`` as ``runs.jsonl.gz`` (one ``{"key", "record"}`` per line, in key
    order, so that the same runs give the same file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # No name and no time stamp in the gzip header, so the file only changes when the runs do.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        for key in sorted(records):
            gz.write((json.dumps({"key": key, "record": records[key]}, sort_keys=True) + "\n").encode())
    return path
