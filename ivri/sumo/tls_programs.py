"""SUMO's own traffic-light programs switched to its actuated or delay-based type: fair references.

A SUMO user who wants better control than the fixed programs of a network switches the
programs' ``type`` to ``actuated`` (gap control on induction loops) or ``delay_based``
(the time loss of approaching vehicles, from lane-area detectors), keeping the phases (SUMO
documentation, Simulation/Traffic_Lights). The way that keeps every phase of every program
and needs no rebuilt network is an additional file with one ``<tlLogic>`` per traffic light:
the same id, a new ``programID``, the new ``type`` and the same phases. SUMO uses the last
program loaded for a traffic light, and builds the detectors of actuated and delay-based
programs itself when it loads them (loops ``detector-gap`` before the stop line, lane-area
detectors up to ``detectorRange``), as for a network built with
``netconvert --tls.default-type actuated``.

Variable phase lengths need ``minDur`` and ``maxDur``. Phases that have them keep them; a
main green phase without them gets netconvert's defaults for generated actuated programs,
``--tls.min-dur`` 5 s and ``--tls.max-dur`` 50 s, widened so that the program's own duration
stays inside (a 60 s green of a static plan may still last 60 s). Amber and all-red phases
keep their fixed duration, and so do clearing phases: a green phase that follows a green
phase without amber and only ends some of its greens (a pedestrian clearance, as netconvert
builds it) is part of the change, not a stage.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from ivri.errors import NetworkError

__all__ = ["MAX_DUR_S", "MIN_DUR_S", "SUMO_TLS_TYPES", "read_programs", "write_typed_programs"]

#: The ``type`` values of SUMO's tlLogic that the references switch to.
SUMO_TLS_TYPES = ("actuated", "delay_based")
#: netconvert's ``--tls.min-dur`` and ``--tls.max-dur`` defaults (SUMO 1.28).
MIN_DUR_S = 5.0
MAX_DUR_S = 50.0


def read_programs(files: Iterable[Path]) -> dict[str, ET.Element]:
    """The program each traffic light runs at the start: the last ``<tlLogic>`` per id in ``files``.

    ``files`` in SUMO's load order (the network, then the additional files). The network is
    streamed: only ``<tlLogic>`` elements are kept.
    """
    programs: dict[str, ET.Element] = {}
    for path in files:
        try:
            for _, el in ET.iterparse(path, events=("end",)):
                if el.tag == "tlLogic":
                    programs[el.get("id", "")] = el
                elif el.tag in ("edge", "junction", "connection", "lane", "request"):
                    el.clear()  # a city network is large; only the programs are needed
        except ET.ParseError as exc:
            raise NetworkError(f"cannot read traffic-light programs from {path}: {exc}") from None
        except OSError as exc:
            raise NetworkError(f"cannot read {path}: {exc.strerror or exc}") from None
    return programs


def _seconds(text: str | None) -> float | None:
    return None if text is None else float(text)


def _fmt(seconds: float) -> str:
    return f"{seconds:g}"


def _greens(state: str) -> set[int]:
    return {i for i, c in enumerate(state) if c in "Gg"}


def _is_green_phase(state: str) -> bool:
    return any(c in "Gg" for c in state) and not any(c in "yYu" for c in state)


def _main_green(previous: str, state: str) -> bool:
    """A green phase that is a stage, not the clearing step of the green before it."""
    if not _is_green_phase(state):
        return False
    clearing = _is_green_phase(previous) and _greens(state) < _greens(previous)
    return not clearing


def _typed(program: ET.Element, tls_type: str) -> ET.Element:
    out = ET.Element("tlLogic", {
        "id": program.get("id", ""),
        "type": tls_type,
        "programID": f"ivri-{tls_type}",
        "offset": program.get("offset", "0"),
    })
    same_type = program.get("type", "static") == tls_type
    states = [c.get("state", "") for c in program if c.tag == "phase"]
    k = -1
    for child in program:
        if child.tag == "param" and same_type:
            # The program's own tuning (max-gap, detector-gap...) holds for its own type only.
            ET.SubElement(out, "param", dict(child.attrib))
        elif child.tag == "phase":
            attrs = dict(child.attrib)
            k += 1
            duration = _seconds(attrs.get("duration"))
            if _main_green(states[k - 1] if k > 0 else states[-1], states[k]) and duration is not None and "minDur" not in attrs and "maxDur" not in attrs:
                attrs["minDur"] = _fmt(min(MIN_DUR_S, duration))
                attrs["maxDur"] = _fmt(max(MAX_DUR_S, duration))
            ET.SubElement(out, "phase", attrs)
    return out


def write_typed_programs(sources: Iterable[Path], tls_type: str, out_path: Path) -> int:
    """Write an additional file that switches every traffic light in ``sources`` to ``tls_type``.

    ``sources``: the network file, then the scenario's additional files, in SUMO's load order.
    Returns the number of programs written. Raises :class:`~ivri.errors.NetworkError` when
    the sources hold no traffic light, and ``ValueError`` for a type SUMO does not have here.
    """
    if tls_type not in SUMO_TLS_TYPES:
        raise ValueError(f"tls type {tls_type!r}; valid: {', '.join(SUMO_TLS_TYPES)}")
    sources = [Path(p) for p in sources]
    programs = read_programs(sources)
    if not programs:
        raise NetworkError(f"no traffic-light program in {', '.join(str(p) for p in sources)}")
    root = ET.Element("additional")
    for tls_id in sorted(programs):
        root.append(_typed(programs[tls_id], tls_type))
    ET.indent(root)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out_path, encoding="UTF-8", xml_declaration=True)
    return len(programs)
