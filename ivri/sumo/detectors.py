"""Detectors for the signal groups, written as a SUMO additional file.

Every incoming lane of a vehicle signal group (motor, bicycle, bus, tram) gets two E1 loops
(``inductionLoop``, ids prefixed ``ivri_``), as in Dutch practice:

* a stop-line loop ("koplus") 1.5 m before the lane end. SUMO stops the first vehicle at a
  red light with its front about 1.0 m before the lane end, so a point loop at exactly 1 m
  would miss it; 1.5 m is covered by any waiting car or bicycle. It sees the queue
  discharge, which keeps a green extended while the queue still leaves; its detections
  count 1 s later in the gap than the extension loop's (a shorter gap time, as Dutch
  practice gives the koplus: :data:`~ivri.sumo.observe.STOPLINE_GAP_LAG_S`);
* an extension loop ("verweglus") 40 m upstream, or at the lane start on a shorter lane
  (left out when the lane is too short to hold both loops apart): arrivals that extend.
  Loops are placed by distance from the stop line: where the stop-line lane is shorter,
  the lanes upstream of it through unsignalised nodes
  (:func:`~ivri.sumo.network.upstream_lanes`) get an extension loop 40 m before the stop
  line (or at their start). Approach edges of a few metres between an unsignalised node and
  the stop line are common in imported and joined networks; a stop-line lane shorter than a
  car is logged (its queue stands upstream, where the observer measures it).

Every exit lane of a group (the outgoing lanes of its straight links, or of all its links
for a turn-only group: :attr:`~ivri.sumo.network.TlsLinkMap.exit_lanes`) gets an exit loop ("exit", :data:`EXIT_LOOP_M` past its
start, further on through unsignalised nodes when the lane is shorter): a vehicle standing
over it means the exit is blocked, and a green into it moves nobody.

The road users on the approach come from the lane's vehicle count (read per lane):
an E2 zone per lane added measurable step time for a tie-breaker only.

What a loop costs: SUMO moves every vehicle past its loops, and evaluates each subscribed
loop every step; reading the results costs again per loop. On grid:peak (216 loops) the
108 stop-line loops cost 0.5 s of a 6.4 s run. ``write_detectors(stopline=False)`` (and
``SumoBridge(stopline_loops=False)``) leaves them out; demand then comes from the halting
vehicle (SUMO stops the first vehicle ~1 m before the lane end, and halting counts it) or
from a recent extension-loop detection, and the gap from the extension loop alone. With
the actuated controller that changed the vehicle-loss hours by -6 % to +7 % per bundled
scenario (mean of seeds 1-3: better on grid and on corridor and tjunction peak, worse on
crossing and on corridor and tjunction off-peak), so the stop-line loop stays by default.

Outputs go to ``NUL`` (SUMO's null device on every platform) with a one-day period: the
bridge reads the detectors in memory (libsumo's getters, or TraCI subscriptions), never
through files. Lanes shared by
several groups get one loop that counts for each of them. Lanes that admit only pedestrians
are skipped. Ids that the scenario's own additional files already use are avoided with a
numeric suffix.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from ivri.errors import NetworkError
from ivri.sumo.network import TlsLinkMap, find_lane, read_net, upstream_lanes

__all__ = [
    "DETECTOR_PREFIX",
    "EXIT_LOOP_M",
    "EXTENSION_DISTANCE_M",
    "STOPLINE_OFFSET_M",
    "Detector",
    "detector_ids_in",
    "exit_loop_spot",
    "write_detectors",
]

DETECTOR_PREFIX = "ivri_"
STOPLINE_OFFSET_M = 1.5
EXTENSION_DISTANCE_M = 40.0
_PERIOD_S = 86400

#: An exit loop sits this far past the start of an outgoing lane: a vehicle standing over it
#: leaves no room for one more car (5 m long, 2.5 m gap) to leave the junction.
EXIT_LOOP_M = 7.0
#: A stop-line lane shorter than this holds no car: the queue stands upstream.
CAR_LENGTH_M = 5.0
_BIKE_CLASSES = frozenset({"bicycle", "moped", "scooter", "pedestrian"})

log = logging.getLogger("ivri.sumo")
_SHORT_LANES_REPORTED: set[str] = set()

DetectorKind = Literal["stopline", "extension", "exit"]

_DETECTOR_TAGS = {"inductionLoop", "e1Detector", "laneAreaDetector", "e2Detector", "instantInductionLoop",
                  "entryExitDetector", "e3Detector"}


@dataclass(frozen=True)
class Detector:
    """One detector that the bridge placed, and the signal groups it serves."""

    id: str
    lane: str
    kind: DetectorKind
    pos_m: float                               # position on the lane
    targets: tuple[tuple[int, int], ...]       # (intersection index, group index) pairs


def detector_ids_in(files: Iterable[str | Path]) -> set[str]:
    """Ids of the detectors already defined in SUMO additional files (unreadable files are skipped)."""
    ids: set[str] = set()
    for f in files:
        try:
            for _, el in ET.iterparse(str(f), events=("start",)):
                if el.tag in _DETECTOR_TAGS and "id" in el.attrib:
                    ids.add(el.attrib["id"])
        except (ET.ParseError, OSError):
            continue
    return ids


def exit_loop_spot(net: Any, lane_id: str, at_m: float = EXIT_LOOP_M) -> tuple[str, float] | None:
    """(lane, position) of the exit loop ``at_m`` past the start of outgoing lane ``lane_id``.

    A lane shorter than that continues through unsignalised nodes (internal lanes count for
    the distance, loops go on normal lanes only); the loop then sits on the next normal lane
    (the first one where several follow). None for a lane that is not in the network or that
    admits only pedestrians.
    """
    lane = find_lane(net, lane_id)
    if lane is None or set(lane.getPermissions()) <= {"pedestrian"}:
        return None
    walked = 0.0
    for _ in range(8):
        length = float(lane.getLength())
        internal = lane.getID().startswith(":")
        if not internal and walked + length >= at_m:
            return lane.getID(), round(max(at_m - walked, 0.1), 2)
        nxt = [c for c in lane.getOutgoing()
               if not c.getTLSID() and c.getToLane().getEdge().getFunction() not in ("walkingarea", "crossing")]
        if not nxt:  # the lane ends at a signal or at the network's edge: as far as it goes
            return None if internal else (lane.getID(), round(max(length - 0.5, 0.1), 2))
        walked += length
        via = nxt[0].getViaLaneID()
        lane = (find_lane(net, via) if via else None) or nxt[0].getToLane()
    return None


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out in taken:
        out, n = f"{name}_{n}", n + 1
    taken.add(out)
    return out


def write_detectors(
    link_maps: Sequence[TlsLinkMap],
    net: str | Path | Any,
    path: str | Path,
    *,
    taken_ids: Iterable[str] = (),
    extension_m: float = EXTENSION_DISTANCE_M,
    stopline_offset_m: float = STOPLINE_OFFSET_M,
    stopline: bool = True,
    exit_m: float = EXIT_LOOP_M,
) -> list[Detector]:
    """Write the detectors of all intersections into the additional file ``path``.

    ``link_maps[i]`` belongs to intersection ``i``; its ``in_lanes[g]`` are the lanes of group
    ``g``. ``net`` is the network (path or :func:`~ivri.sumo.network.read_net` result), used
    for lane lengths. ``stopline=False`` leaves the stop-line loops out: one loop per lane, the
    extension loop. Returns the detectors in file order.
    """
    if isinstance(net, (str, Path)):
        net = read_net(net)
    taken = set(taken_ids)
    targets: dict[str, list[tuple[int, int]]] = {}
    # Lanes upstream of a short approach: (targets, distance of the lane's end to the stop line).
    upstream: dict[str, tuple[list[tuple[int, int]], float]] = {}
    exits: dict[tuple[str, float], list[tuple[int, int]]] = {}
    for i, lm in enumerate(link_maps):
        for g, lanes in enumerate(lm.in_lanes):
            for lane in lanes:
                targets.setdefault(lane, []).append((i, g))
            if not lanes:
                continue
            for lane, offset in upstream_lanes(net, lanes, extension_m):
                if lane.startswith(":") or lane in lanes:
                    continue  # loops go on normal lanes only
                tg, off = upstream.get(lane, ([], offset))
                tg.append((i, g))
                upstream[lane] = (tg, min(off, offset))
            for out in (lm.exit_lanes[g] if lm.exit_lanes else lm.out_lanes[g]):
                spot = exit_loop_spot(net, out, exit_m)
                if spot is not None:
                    exits.setdefault(spot, []).append((i, g))

    detectors: list[Detector] = []
    too_short: list[str] = []
    for lane_id, tg in targets.items():
        lane = find_lane(net, lane_id)
        if lane is None:
            raise NetworkError(f"detectors: lane {lane_id!r} is not in the network")
        if lane_id.startswith(":") or set(lane.getPermissions()) <= {"pedestrian"}:
            continue
        length = float(lane.getLength())
        if length < CAR_LENGTH_M and not set(lane.getPermissions()) <= _BIKE_CLASSES:
            too_short.append(f"{lane_id} ({length:.1f} m)")
        stop_pos = max(0.0, length - stopline_offset_m)
        ext_pos = max(0.0, length - extension_m)
        if stopline:
            detectors.append(Detector(_unique(f"{DETECTOR_PREFIX}sl_{lane_id}", taken), lane_id,
                                      "stopline", round(stop_pos, 2), tuple(tg)))
        if stop_pos - ext_pos >= 1.0 or not stopline:
            detectors.append(Detector(_unique(f"{DETECTOR_PREFIX}ext_{lane_id}", taken), lane_id,
                                      "extension", round(ext_pos, 2), tuple(tg)))
    for lane_id, (tg, offset) in upstream.items():
        lane = find_lane(net, lane_id)
        if lane is None or set(lane.getPermissions()) <= {"pedestrian"}:
            continue
        # By distance from the stop line: extension_m upstream of it, or the lane's start.
        pos = max(0.0, float(lane.getLength()) - (extension_m - offset))
        detectors.append(Detector(_unique(f"{DETECTOR_PREFIX}ext_{lane_id}", taken), lane_id,
                                  "extension", round(pos, 2), tuple(tg)))
    for (lane_id, pos), tg in exits.items():
        detectors.append(Detector(_unique(f"{DETECTOR_PREFIX}exit_{lane_id}", taken), lane_id,
                                  "exit", round(pos, 2), tuple(tg)))
    listed = ", ".join(too_short[:10]) + (" ..." if len(too_short) > 10 else "")
    if too_short and listed not in _SHORT_LANES_REPORTED:
        # Once per process: a sweep writes the same network's detectors for hundreds of runs.
        _SHORT_LANES_REPORTED.add(listed)
        log.warning("stop-line lanes shorter than a car (%.0f m), their queue is measured upstream: %s",
                    CAR_LENGTH_M, listed)

    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             "<!-- written by ivri.sumo.detectors: read in memory, outputs discarded -->",
             "<additional>"]
    for d in detectors:
        lines.append(f'    <inductionLoop id={quoteattr(d.id)} lane={quoteattr(d.lane)} '
                     f'pos="{d.pos_m:.2f}" period="{_PERIOD_S}" file="NUL" friendlyPos="true"/>')
    lines.append("</additional>")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return detectors
