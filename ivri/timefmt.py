"""SUMO's time format, parsed one way everywhere: configs, SUMO's outputs, input series.

Every time the project reads goes through :func:`parse_time_s`, which hands the value to
SUMO's own Python parser, ``sumolib.miscutils.parseTime``, after checking the two things it
lets through that SUMO itself (``string2time`` in ``src/utils/common/SUMOTime.cpp``) rejects or
reads differently. Accepted: plain seconds (``"90"``, ``"3600.5"``), ``h:m:s``
(``"1:00:00"``) and ``d:h:m:s`` (``"1:0:00:00"``), with a leading ``-`` for negative times as
``--human-readable-time`` outputs write them (``"-00:01:02.50"``). Not a SUMO time:

* two fields, ``"01:30"`` (1 min 30 s or 1 h 30 min?): SUMO refuses to guess, and so does
  ``parseTime``; five or more fields, which ``parseTime`` would read from the right;
* a sign inside a field (``"1:-5:00"``); ``parseTime`` also reads ``"-1:00:00"`` as +1 h
  (it negates the already negative hours), so the sign is taken off before it sees the value;
* ``nan``, ``inf`` and SUMO's special words (``"triggered"``, ``"begin"``, ...), which are
  not a number of seconds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

__all__ = ["parse_time_s"]


@functools.cache
def _sumolib_parse_time() -> Callable[[str], float | None]:
    # Imported on first use: sumolib pulls in much of the standard library (http, xml.dom,
    # argparse), and importing the engine or the SUMO bridge loads no SUMO package.
    from sumolib.miscutils import parseTime

    return parseTime


def parse_time_s(value: str, *, what: str = "time") -> float:
    """Seconds from a SUMO time value (see the module docstring).

    Raises :class:`ValueError` naming ``what`` and the value when it is not a finite SUMO time.
    """
    text = value.strip()
    negative = text.startswith("-")
    if ":" in text:
        fields = text[1:].split(":") if negative else text.split(":")
        if len(fields) not in (3, 4):
            raise ValueError(f"{what} {value!r} is not a SUMO time: give seconds, h:m:s or d:h:m:s")
        if any(not f.strip() or f.strip()[0] in "+-" for f in fields):
            raise ValueError(f"{what} {value!r} is not a SUMO time: a field is empty or signed")
        text = ":".join(fields)
    try:
        seconds = _sumolib_parse_time()(text)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a SUMO time: {text!r} has a field that is not a number") from None
    if seconds is None or not math.isfinite(seconds):
        raise ValueError(f"{what} {value!r} is not a finite number of seconds")
    return -seconds if negative and ":" in text else float(seconds)
