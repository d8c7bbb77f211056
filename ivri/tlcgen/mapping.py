"""Where a TLCGen controller's signal groups and detectors are in a SUMO network.

A TLCGen file knows signal groups, not SUMO link indices; a SUMO network knows links and
lanes, not the engineer's numbering. The mapping file joins them (YAML, TOML or JSON)::

    tls_id: C                 # the SUMO traffic light the controller drives
    intersection_id: C        # optional: the intersection id in ivri (default: the tls id)
    groups:                   # ivri id ("fc" + TLCGen name) -> SUMO link indices [, lanes]
      fc02: {links: [1, 2]}
      fc31: {links: [20]}
    detectors:                # TLCGen detector name -> lane and distance before the stop line
      "02_1": {lane: N_C_0, distance_m: 1.5}
    allow_conflicts:          # pairs the engineer confirms may be green together although
      - [fc02, fc03]          # SUMO's junction marks their links as foes

:func:`propose_map` writes a first version from the network for the engineer to review.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ivri.config import load_model_file, write_data_file
from ivri.errors import ConfigError
from ivri.sumo.detectors import EXTENSION_DISTANCE_M, STOPLINE_OFFSET_M
from ivri.sumo.network import derive_intersections, read_net

from .reader import TlcController

__all__ = ["DetectorPlace", "GroupLinks", "TlcMap", "group_id", "load_tlc_map", "propose_map",
           "write_map"]


def group_id(tlc_name: str) -> str:
    """The ivri id of a TLCGen signal group: ``"02"`` -> ``"fc02"`` (CCOL's own prefix)."""
    return f"fc{tlc_name}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupLinks(_Strict):
    """The SUMO links (and optionally the incoming lanes) of one signal group."""

    links: tuple[int, ...] = ()
    lanes: tuple[str, ...] = ()


class DetectorPlace(_Strict):
    """A detector's lane and its distance before the stop line."""

    lane: str = Field(min_length=1)
    distance_m: float = Field(ge=0.0, le=1000.0)


class TlcMap(_Strict):
    """The mapping of one TLCGen controller onto one SUMO traffic light."""

    tls_id: str = Field(min_length=1)
    intersection_id: str | None = None
    groups: dict[str, GroupLinks] = {}
    detectors: dict[str, DetectorPlace] = {}
    allow_conflicts: tuple[tuple[str, str], ...] = ()


def load_tlc_map(path: str | Path) -> TlcMap:
    """Read a mapping file; :class:`~ivri.errors.ConfigError` names the file and the field."""
    return load_model_file(path, TlcMap, "TLCGen mapping file")


def write_map(mapping: TlcMap, path: str | Path, header: str = "") -> None:
    """Write ``mapping`` as YAML (``.yaml``/``.yml``) or JSON, with ``header`` as comment lines."""
    data = mapping.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("allow_conflicts", [])
    write_data_file(path, data, header)


# --------------------------------------------------------------------------------------------
# The proposal


_RIGHT, _STRAIGHT, _LEFT = "r", "s", "l"


def _turn(direction: str) -> str:
    """SUMO's link direction as right, straight or left (a U-turn counts as left)."""
    if direction in ("r", "R"):
        return _RIGHT
    if direction in ("l", "L", "t"):
        return _LEFT
    return _STRAIGHT


def _bearing_deg(dx: float, dy: float) -> float:
    """Compass bearing (0 = north, clockwise) of the vector (dx, dy)."""
    return math.degrees(math.atan2(dx, dy)) % 360.0


def _link_facts(net: Any, tls_id: str) -> dict[int, dict[str, Any]]:
    """Per link index: incoming lane, direction and where it comes from (bearing from the junction)."""
    tls = net.getTLS(tls_id)
    centre_x, centre_y = _centre(net, tls)
    facts: dict[int, dict[str, Any]] = {}
    for in_lane, out_lane, k in tls.getConnections():
        if k in facts:
            continue
        edge = in_lane.getEdge()
        if out_lane.getEdge().getFunction() == "crossing":
            shape = out_lane.getShape()
            mx = sum(p[0] for p in shape) / len(shape)
            my = sum(p[1] for p in shape) / len(shape)
            facts[k] = {"lane": out_lane.getEdge().getID(), "turn": _STRAIGHT, "crossing": True,
                        "bearing": _bearing_deg(mx - centre_x, my - centre_y)}
            continue
        shape = in_lane.getShape()
        # The approach's direction: from the junction back along the lane, 20 m or its start.
        far = shape[0]
        direction = next((c.getDirection() for c in in_lane.getOutgoing()
                          if c.getTLSID() == tls_id and c.getTLLinkIndex() == k), "s")
        facts[k] = {"lane": in_lane.getID(), "edge": edge.getID(), "turn": _turn(direction),
                    "crossing": False, "bearing": _bearing_deg(far[0] - centre_x, far[1] - centre_y)}
    return facts


def _centre(net: Any, tls: Any) -> tuple[float, float]:
    nodes = {c[0].getEdge().getToNode() for c in tls.getConnections()}
    xs = [n.getCoord()[0] for n in nodes]
    ys = [n.getCoord()[1] for n in nodes]
    return sum(xs) / len(xs), sum(ys) / len(ys)


def _arms(bearings: list[float]) -> list[float]:
    """The arms' bearings, clockwise from north: approaches within 45 degrees are one arm."""
    arms: list[float] = []
    for b in sorted(bearings):
        if arms and min(abs(b - arms[-1]), 360.0 - abs(b - arms[-1])) < 45.0:
            continue
        arms.append(b)
    if len(arms) > 1 and min(abs(arms[-1] - arms[0]), 360.0 - abs(arms[-1] - arms[0])) < 45.0:
        arms.pop()
    # Clockwise from north: an arm a little west of north (bearing 350) is the first.
    return sorted(arms, key=lambda a: (a + 45.0) % 360.0)


def _arm_of(bearing: float, arms: list[float]) -> int:
    return min(range(len(arms)), key=lambda k: min(abs(bearing - arms[k]), 360.0 - abs(bearing - arms[k])))


def propose_map(ctl: TlcController, net: Any, tls_id: str | None = None) -> tuple[TlcMap, list[str]]:
    """A first mapping of ``ctl`` onto a traffic light of ``net``, and notes for the review.

    The network's own signal groups (:func:`~ivri.sumo.network.derive_intersections`) give
    each link its mode; the links are sorted into arms by the bearing of their approach,
    clockwise from north, and matched with Dutch signal-group numbering (``docs/tlcgen.md``):
    motor traffic 01-12, three per arm (right, straight, left: 01/02/03 on the first arm,
    04/05/06 on the next), cyclists 21-28 and pedestrians 31-38, two per arm. A motor link
    whose own turn has no group goes to the group of its arm that uses its lane (a shared
    straight-and-right lane is one group in Dutch practice). ``ctl``'s group ``Type`` decides
    the mode; the numbering only places a group on an arm. Detectors go on their group's
    lanes (``Rijstrook``), stop-line loops 1.5 m and far loops 40 m before the stop line.
    """
    if isinstance(net, (str, Path)):
        net = read_net(net)
    configs, _ = derive_intersections(net, tls_ids=[tls_id] if tls_id else None)
    if tls_id is None:
        if len(configs) != 1:
            raise ConfigError(f"the network has {len(configs)} traffic lights "
                              f"({', '.join(c.tls_id or c.id for c in configs)}): name one with --tls")
        tls_id = configs[0].tls_id or configs[0].id
    elif not configs:
        raise ConfigError(f"the network has no traffic light {tls_id!r}")
    derived = configs[0]
    mode_of_link = {}
    for g in derived.signal_groups:
        for k in g.sumo_links:
            mode_of_link[k] = g.mode
    facts = _link_facts(net, tls_id)
    motor_bearings = [f["bearing"] for k, f in facts.items() if mode_of_link.get(k) in ("motor", "bus", "tram")]
    arms = _arms(motor_bearings or [f["bearing"] for f in facts.values()])
    links_by: dict[tuple[str, int], list[int]] = {}
    for k in sorted(mode_of_link):
        f = facts.get(k)
        if f is None:
            continue
        mode = mode_of_link[k]
        links_by.setdefault((mode, _arm_of(f["bearing"], arms)), []).append(k)

    notes = [(f"arms clockwise from north at bearings {', '.join(f'{b:.0f}' for b in arms)} degrees: "
              "arm 1 takes 01-03, 21/22, 31/32; check that this is the controller's arm 1")]
    assigned: dict[str, list[int]] = {}
    taken: set[int] = set()
    kind = {"Auto": "motor", "Fiets": "bicycle", "Voetganger": "pedestrian", "OV": "bus"}
    by_arm_motor: dict[int, list[tuple[str, str]]] = {}
    for sg in ctl.signal_groups:
        gid = group_id(sg.name)
        mode = kind.get(sg.type)
        try:
            number = int(sg.name)
        except ValueError:
            number = -1
        if mode == "motor" and 1 <= number <= 12:
            arm, turn = (number - 1) // 3, (_RIGHT, _STRAIGHT, _LEFT)[(number - 1) % 3]
            by_arm_motor.setdefault(arm, []).append((gid, turn))
            ks = [k for k in links_by.get(("motor", arm), []) if facts[k]["turn"] == turn]
        elif mode == "bicycle" and 21 <= number <= 28:
            arm = (number - 21) // 2
            pair = [g for g in ctl.signal_groups if g.name in (f"{21 + 2 * arm:02d}", f"{22 + 2 * arm:02d}")]
            ks = links_by.get(("bicycle", arm), [])
            if len(pair) == 2:  # two cycle groups on one arm: the even one straight and right
                want_left = number % 2 == 1
                ks = [k for k in ks if (facts[k]["turn"] == _LEFT) == want_left]
        elif mode == "pedestrian" and 31 <= number <= 38:
            ks = links_by.get(("pedestrian", (number - 31) // 2), [])
        elif mode == "bus":
            ks = [k for (m, _), kk in links_by.items() if m in ("bus", "tram") for k in kk]
        else:
            ks = []
        ks = [k for k in ks if k not in taken]
        taken.update(ks)
        assigned[gid] = ks
    # Motor links whose turn has no group of its own: to the arm's group that uses the lane.
    for arm, members in by_arm_motor.items():
        for k in links_by.get(("motor", arm), []):
            if k in taken:
                continue
            lane = facts[k]["lane"]
            sharing = [gid for gid, _ in members if any(facts[j]["lane"] == lane for j in assigned[gid])]
            straight = [gid for gid, t in members if t == _STRAIGHT]
            target = (sharing or straight or [None])[0]
            if target is not None:
                assigned[target].append(k)
                taken.add(k)
    groups = {}
    for sg in ctl.signal_groups:
        gid = group_id(sg.name)
        ks = sorted(assigned.get(gid, []))
        if not ks:
            notes.append(f"{gid} ({sg.type}): no SUMO link found; fill in its links by hand")
        groups[gid] = GroupLinks(links=tuple(ks))
    free = sorted(k for k in mode_of_link if k not in taken)
    if free:
        notes.append(f"SUMO links {free} of {tls_id} are in no signal group: they would stay red")

    detectors = {}
    for sg in ctl.signal_groups:
        gid = group_id(sg.name)
        lanes = sorted({facts[k]["lane"] for k in groups[gid].links if not facts[k]["crossing"]},
                       key=lambda lane: int(lane.rpartition("_")[2]) if lane.rpartition("_")[2].isdigit() else 0)
        for d in sg.detectors:
            if d.type not in ("Kop", "Lang", "Verweg"):
                continue
            if not lanes:
                notes.append(f"detector {d.name} of {gid}: the group has no lane to put it on")
                continue
            n = (d.lane_number or 1) - 1
            lane = lanes[min(max(n, 0), len(lanes) - 1)]
            distance = EXTENSION_DISTANCE_M if d.type == "Verweg" else STOPLINE_OFFSET_M
            detectors[d.name] = DetectorPlace(lane=lane, distance_m=distance)
    return TlcMap(tls_id=tls_id, groups=groups, detectors=detectors), notes
