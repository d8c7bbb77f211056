"""The one place that opens SUMO: libsumo in this process by default, TraCI over a socket as an option.

Everything else in ivri talks to SUMO through the handle that :func:`start_sumo` returns:
the ``libsumo`` module itself or a ``traci.Connection``. Both expose the same domains
(``handle.simulation``, ``handle.trafficlight``, ``handle.lane``, ...) and ``close()``, so no
other module needs to know which one runs. libsumo, traci and sumolib are imported lazily,
here only, so ``import ivri`` and the core tests work without SUMO installed.

* ``libsumo`` runs SUMO inside this process: about the speed of plain ``sumo``, but only one
  simulation per process at a time.
* ``traci`` starts a ``sumo`` (or ``sumo-gui``) process and talks over a socket: slower per
  call, but several runs can coexist, and it is the only way to watch a run in ``sumo-gui``.

The binaries come from ``SUMO_HOME`` when it is set, else from the ``eclipse-sumo`` wheel
(``sumo.SUMO_HOME``), else ``sumolib.checkBinary`` / ``PATH``.

When SUMO does not start, :class:`~ivri.errors.SimulationError` carries SUMO's own error
lines: libsumo's output is captured at the file-descriptor level while it starts; a TraCI
SUMO process gets its stderr in a temporary file (its warnings during the run therefore do
not reach the console: pass ``--error-log FILE`` to keep them, as the bridge does).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from ivri.errors import SimulationError

__all__ = [
    "Backend",
    "SumoConnection",
    "close_sumo",
    "libsumo_running",
    "start_sumo",
    "sumo_binary",
    "sumo_version",
]

Backend = Literal["libsumo", "traci"]

#: The handle of a running simulation: the ``libsumo`` module or a ``traci.Connection``.
SumoConnection = Any

_labels = itertools.count()


def _sumo_home() -> Path | None:
    """SUMO_HOME from the environment, else the folder of the eclipse-sumo wheel."""
    env = os.environ.get("SUMO_HOME")
    if env and Path(env).is_dir():
        return Path(env)
    try:
        import sumo  # the eclipse-sumo wheel

        return Path(sumo.SUMO_HOME)
    except (ImportError, AttributeError):
        return None


def sumo_binary(gui: bool = False) -> str:
    """Path of the ``sumo`` (or ``sumo-gui``) executable.

    Raises :class:`~ivri.errors.SimulationError` when none can be found.
    """
    name = "sumo-gui" if gui else "sumo"
    home = _sumo_home()
    if home is not None:
        for candidate in (home / "bin" / name, home / "bin" / f"{name}.exe"):
            if candidate.is_file():
                return str(candidate)
    try:
        import sumolib

        found = sumolib.checkBinary(name)
        if found and (Path(found).is_file() or shutil.which(found)):
            return found
    except (ImportError, SystemExit):
        pass
    found = shutil.which(name)
    if found:
        return found
    raise SimulationError(
        f"cannot find the {name} executable: install SUMO (pip install 'ivri[sumo]') "
        "or set SUMO_HOME"
    )


def sumo_version() -> str:
    """The SUMO version, e.g. ``"1.28.0"`` (from the Python bindings, without starting SUMO)."""
    for mod in ("sumolib", "libsumo", "traci"):
        try:
            module = __import__(mod)
        except ImportError:
            continue
        version = getattr(module, "__version__", None) or getattr(getattr(module, "version", None),
                                                                  "__version__", None)
        if version:
            return str(version)
    try:
        import importlib.metadata as md

        return md.version("eclipse-sumo")
    except Exception:  # noqa: BLE001 - any failure means "unknown"
        return "unknown"


def libsumo_running() -> bool:
    """True while a libsumo simulation is open in this process (libsumo allows only one)."""
    if "libsumo" not in sys.modules:
        return False
    import libsumo

    try:
        return bool(libsumo.simulation.isLoaded())
    except Exception:  # noqa: BLE001 - a broken libsumo state counts as "not running"
        return False


@contextlib.contextmanager
def _captured_output() -> Iterator[Path]:
    """Send this process's C-level stdout and stderr to a temporary file while the block runs.

    libsumo prints SUMO's error messages (``Error: File ... is not accessible``) straight to
    file descriptor 2 and raises only ``TraCIException('Process Error')``; capturing the
    descriptor is the only way to put SUMO's own words into the exception.
    """
    fd, name = tempfile.mkstemp(prefix="ivri-sumo-start-", suffix=".log")
    saved = []
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for target in (1, 2):
            saved.append((target, os.dup(target)))
            os.dup2(fd, target)
        yield Path(name)
    finally:
        for target, copy in saved:
            os.dup2(copy, target)
            os.close(copy)
        os.close(fd)


def _sumo_message(text: str) -> str:
    """The error lines of SUMO's output, joined into one line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    picked = errors or [ln for ln in lines if not ln.startswith(("Warning:", "Retrying", "Quitting"))][-3:]
    return "; ".join(picked) if picked else "no message from SUMO"


def start_sumo(
    args: list[str],
    *,
    backend: Backend = "libsumo",
    gui: bool = False,
    label: str | None = None,
) -> SumoConnection:
    """Start SUMO with the command-line ``args`` (without the binary) and return the handle.

    ``gui=True`` runs ``sumo-gui`` and therefore always uses TraCI. ``label`` names a TraCI
    connection (a unique one is made up when not given). Raises
    :class:`~ivri.errors.SimulationError` with SUMO's own message when SUMO does not start,
    and when a libsumo simulation is already open in this process.
    """
    args = [str(a) for a in args]
    if gui:
        backend = "traci"
    if backend == "libsumo":
        return _start_libsumo(args)
    if backend == "traci":
        return _start_traci(args, gui=gui, label=label)
    raise SimulationError(f"unknown SUMO backend {backend!r} (use 'libsumo' or 'traci')")


def _start_libsumo(args: list[str]) -> SumoConnection:
    try:
        import libsumo
    except ImportError as exc:
        raise SimulationError(f"libsumo is not installed ({exc}); pip install 'ivri[sumo]', or use the traci backend") from None
    if libsumo_running():
        raise SimulationError(
            "a libsumo simulation is already running in this process (libsumo allows one at a "
            "time): close it first, or use the traci backend"
        )
    with _captured_output() as log:
        try:
            libsumo.start([sumo_binary(), *args])
            failed = None
        except Exception as exc:  # noqa: BLE001 - libsumo raises SWIG types; re-raised below
            failed = exc
    text = log.read_text(errors="replace")
    log.unlink(missing_ok=True)
    if failed is not None:
        with contextlib.suppress(Exception):
            libsumo.close()
        raise SimulationError(f"SUMO did not start: {_sumo_message(text) if text.strip() else failed}")
    if text.strip():
        # Warnings while loading (e.g. about public transport routing) go back to stderr,
        # where SUMO would have printed them.
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
    return libsumo


def _start_traci(args: list[str], *, gui: bool, label: str | None) -> SumoConnection:
    try:
        import traci
        from sumolib.miscutils import getFreeSocketPort
    except ImportError as exc:
        raise SimulationError(f"traci is not installed ({exc}); pip install 'ivri[sumo]'") from None
    label = label or f"ivri-{os.getpid()}-{next(_labels)}"
    port = getFreeSocketPort()
    cmd = [sumo_binary(gui), *args, "--remote-port", str(port)]
    if gui:
        # Run at once instead of waiting for the play button, and quit when the simulation
        # ends, so that the outputs are written and closed before anything reads them.
        cmd += ["--start", "--quit-on-end"]
    # SUMO's own words go to its stderr, also for errors in the options (before any log
    # file is open). traci.start would only say "could not connect", and retries by
    # starting SUMO again: start the process here, with stderr in a file, and connect.
    fd, name = tempfile.mkstemp(prefix="ivri-sumo-", suffix=".log")
    log = Path(name)
    try:
        proc = subprocess.Popen(cmd, stderr=fd)
    except OSError as exc:
        os.close(fd)
        log.unlink(missing_ok=True)
        raise SimulationError(f"SUMO did not start: {exc}") from None
    os.close(fd)
    try:
        # Poll every 0.1 s for up to two minutes (a big network loads slowly); traci prints a
        # line per retry, which is noise here.
        with contextlib.redirect_stdout(io.StringIO()):
            return traci.connect(port, numRetries=1200, host="localhost", proc=proc,
                                 waitBetweenRetries=0.1, label=label)
    except Exception as exc:  # noqa: BLE001 - TraCIException, FatalTraCIError, OSError
        with contextlib.suppress(Exception):
            proc.wait(timeout=5.0)
        if proc.poll() is None:
            proc.kill()
        text = log.read_text(errors="replace")
        raise SimulationError(f"SUMO did not start: {_sumo_message(text) if text.strip() else exc}") from None
    finally:
        # SUMO keeps writing warnings there; on POSIX the open file survives unlinking (they
        # are also in the run's --error-log).
        with contextlib.suppress(OSError):
            log.unlink()


def close_sumo(conn: SumoConnection, *, wait: bool = True) -> None:
    """Close a handle from :func:`start_sumo`; errors while closing are ignored (SUMO may be gone)."""
    if conn is None:
        return
    with contextlib.suppress(Exception):
        if getattr(conn, "__name__", "") == "libsumo":
            conn.close()
        else:
            conn.close(wait)
