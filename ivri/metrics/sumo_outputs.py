"""The SUMO options that make a run produce what :mod:`ivri.metrics` reads.

One tripinfo file per run, with every vehicle in it: the ones that arrived, the ones still
driving at the end and the ones still waiting to enter (their depart delay is part of the
vehicle-loss hours), each with an emissions device so that fuel is known for every trip.
"""

from __future__ import annotations

from pathlib import Path

from ivri.metrics.health import STATISTICS_FILENAME, SUMMARY_FILENAME, SUMMARY_PERIOD_S

__all__ = ["TRIPINFO_FILENAME", "statistics_path", "summary_path", "sumo_output_options", "tripinfo_path"]

TRIPINFO_FILENAME = "tripinfo.xml"


def tripinfo_path(out_dir: Path) -> Path:
    """Where :func:`sumo_output_options` makes SUMO write the tripinfo file."""
    return Path(out_dir) / TRIPINFO_FILENAME


def statistics_path(out_dir: Path) -> Path:
    """Where :func:`sumo_output_options` makes SUMO write its end-of-run statistics."""
    return Path(out_dir) / STATISTICS_FILENAME


def summary_path(out_dir: Path) -> Path:
    """Where :func:`sumo_output_options` makes SUMO write its periodic summary."""
    return Path(out_dir) / SUMMARY_FILENAME


def sumo_output_options(out_dir: Path) -> list[str]:
    """SUMO command-line options for the metrics, writing into ``out_dir`` (created if missing).

    Works for ``sumo`` on the command line and for ``libsumo.start`` / ``traci.start``.
    Options given on the command line override a ``.sumocfg``, so each is set explicitly,
    also where it repeats SUMO's default, to undo a scenario config that changed it:

    - ``--tripinfo-output`` FILE: one ``<tripinfo>`` per vehicle, ``<personinfo>`` per person.
    - ``--tripinfo-output.write-unfinished``: vehicles and persons still travelling at the end
      (otherwise a jammed run looks good: its worst trips are missing).
    - ``--tripinfo-output.write-undeparted`` (present in SUMO 1.28): vehicles that never got in, with
      their depart delay.
    - ``--device.emissions.probability 1``: an emissions device on every vehicle, which adds
      ``<emissions fuel_abs=... CO2_abs=... NOx_abs=.../>`` (mg) to each tripinfo.
    - ``--emissions.volumetric-fuel false``: fuel as mass in mg, SUMO's default since 1.14;
      ivri converts it to litres per fuel type itself.
    - ``--human-readable-time false``: times as seconds (the parser copes with h:m:s anyway).
    - ``--statistic-output`` FILE: teleports by reason, collisions, emergency braking and the
      vehicles never inserted (:mod:`ivri.metrics.health`).
    - ``--summary-output`` FILE every ``SUMMARY_PERIOD_S`` s: the insertion backlog over time.

    The persons' ``<personinfo>`` must stay in the same file: do not set
    ``--personinfo-output`` in the scenario config.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # SUMO does not create missing output folders
    return [
        "--tripinfo-output", str(tripinfo_path(out)),
        "--tripinfo-output.write-unfinished", "true",
        "--tripinfo-output.write-undeparted", "true",
        "--device.emissions.probability", "1",
        "--emissions.volumetric-fuel", "false",
        "--human-readable-time", "false",
        "--statistic-output", str(statistics_path(out)),
        "--summary-output", str(summary_path(out)),
        "--summary-output.period", str(SUMMARY_PERIOD_S),
    ]  # fmt: skip
