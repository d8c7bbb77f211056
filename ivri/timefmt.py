"""SUMO's time format, parsed one way everywhere: configs, tripinfo outputs, input series.

SUMO (``string2time`` in ``src/utils/common/SUMOTime.cpp``, and ``sumolib.miscutils.parseTime``)
reads a time as plain seconds (``"90"``, ``"3600.5"``), as ``h:m:s`` (``"1:00:00"``) or as
``d:h:m:s`` (``"1:0:00:00"``); ``--human-readable-time`` outputs write the same forms with a
leading ``-`` for negative times (``"-00:01:02.50"``). Two fields are *not* a SUMO time: SUMO
rejects ``"01:30"``, because it could mean 1 min 30 s or 1 h 30 min; so does this parser.
"""

from __future__ import annotations

import math

__all__ = ["parse_time_s"]

# Seconds per field of "d:h:m:s", from the right.
_SCALES_S = (1.0, 60.0, 3600.0, 86400.0)


def parse_time_s(value: str, *, what: str = "time") -> float:
    """Seconds from a SUMO time value (see the module docstring).

    Raises :class:`ValueError` naming ``what`` and the value when it is not a finite SUMO time.
    """
    text = value.strip()
    try:
        seconds = float(text)  # the common case first: tripinfo files hold millions of these
    except ValueError:
        fields = text.lstrip("-").split(":")
        if len(fields) not in (3, 4):
            raise ValueError(
                f"{what} {value!r} is not a SUMO time: give seconds, h:m:s or d:h:m:s"
            ) from None
        try:
            seconds = sum(float(f) * s for f, s in zip(reversed(fields), _SCALES_S))
        except ValueError:
            raise ValueError(f"{what} {value!r} is not a SUMO time: {text!r} has a field that is not a number") from None
        if text.startswith("-"):
            seconds = -seconds
    if not math.isfinite(seconds):
        raise ValueError(f"{what} {value!r} is not a finite number of seconds")
    return seconds
