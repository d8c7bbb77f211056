"""Derive signal groups, conflicts, intergreen times and stages from any SUMO network.

SUMO has no signal groups: a traffic light (tls) is a string of link states, one character
per *link index*, switched by a program of phases. :func:`derive_intersections` turns each
traffic light into an :class:`~ivri.config.IntersectionConfig` the way a Dutch or German
traffic engineer would draw it up, and a :class:`TlsLinkMap` that the bridge uses to turn
signal-group states back into SUMO state strings.

Signal groups
    Links of the same incoming edge, the same mode and the same green pattern over all phases
    of the tls's program form one group ('G' and 'g' both count as green; 'y', 'r', 's', 'u',
    'o', 'O' as not green). A crossing is a pedestrian group; lanes that admit only bicycles
    (and mopeds) give bicycle groups, bus lanes bus groups, tram tracks tram groups. Links
    whose state never changes in the program (always red, always green, or "off") get no
    group: they keep that state. Ids are ``<edge>_<directions>`` (``W_C_sr`` = through and
    right from edge ``W_C``; SUMO's direction letters ``l``, ``s``, ``r``, ``t``, ``L``,
    ``R``) and ``ped_<crossing>`` (``ped_C_c0``); bus and tram groups, and bicycle groups on
    roads that also carry cars, get a ``_bus`` / ``_tram`` / ``_bike`` suffix; a number makes
    an id unique where needed.

Conflicts and partial conflicts
    Two links conflict when SUMO's right-of-way table of the junction (``<request foes=...>``)
    marks them as foes. Junction link indices differ from tls link indices: each connection
    is mapped to its junction index through its internal lane (the junction's ``intLanes``
    are in junction index order; a crossing is its own internal lane), falling back to
    SUMO's ordering (incoming lanes, then each lane's connections) for networks built
    without internal links. Two groups *conflict* when a pair of their links are foes and
    the network's own program never shows both green. When the program does run foes
    together (a permissive left turn, right turners and the parallel crossing), the pair is
    a *partial conflict*: allowed together, and the yielding link shows 'g' instead of 'G'
    while the partner group is green or amber. The yielding side is the one SUMO's
    ``response`` bits (or the program's own 'g') say must yield; :attr:`TlsLinkMap.yield_to`
    records it. A user's own configuration (:func:`link_maps_for_configs`) may declare more
    groups compatible than the network's program runs together only where the link that
    gives way is a turn (a permissive left or right turn); two straight streams, or straight
    traffic and a crossing, must be declared a conflict.

Merges and clustered junctions
    One traffic light often controls several nodes (SUMO's joined junctions, ``cluster_...``
    ids): the derivation reads the right-of-way table of every node of the tls, so groups,
    conflicts and intergreens come out the same way as for a single node. Where two foe links
    merge onto one lane, SUMO's own programs sometimes show both 'G' (SUMO warns of an
    "unsafe green"). ivri keeps such a pair a *partial conflict* (green together, as the
    program runs them; separating them would cost a stage for a conflict that give-way
    settles) and makes one of them give way: the turning stream yields to the straight one,
    as Dutch practice and SUMO's 'g' have it; between two straight or two turning streams,
    the one with the higher link index. :attr:`TlsLinkMap.merges` lists these pairs and
    ``ivri derive`` states the rule.

Approaches
    A group's queue and arrivals are measured on its stop-line lanes and on the lanes
    upstream of them through unsignalised nodes (internal lanes included) up to
    :data:`APPROACH_DETECTION_M` from the stop line (:func:`upstream_lanes`,
    :meth:`TlsLinkMap.approach_lanes`): approach edges of a few metres hold no car.

Intergreen times (Dutch CROW / German RiLSA practice)
    For every conflicting pair, leaving group A and entering group B, and every pair of foe
    links a in A and b in B, the conflict point is where the paths of a and b cross: their
    shapes through the junction's internal lanes (for a crossing, the crossing's centre line).
    When the shapes do not cross (streams that merge, or that SUMO keeps apart where they
    run side by side into one road), the conflict point is where they come closest. When
    there are no internal lanes (a network built with ``--no-internal-links``), the leaving
    stream must clear the whole junction (the diagonal of its outline) and the entering
    stream is assumed to be at the conflict point at once. Then

    * clearing time ``t_clear = (s_clear + vehicle length) / v_clear``, with ``s_clear``
      the distance from a's stop line to the conflict point, vehicle length 6 m (car),
      12 m (bus), 30 m (tram), 2 m (bicycle), 0 (pedestrian) and ``v_clear`` 10 m/s for
      motor vehicles (lower on turns: the speed SUMO allows on the internal lane), 5 m/s
      for cyclists, 1.2 m/s for pedestrians;
    * approach time ``t_approach = s_approach / v_approach``, ``s_approach`` the distance
      from b's stop line to the conflict point, ``v_approach`` 40 km/h for motor vehicles
      (a flying start, the conservative assumption), 5 m/s for cyclists, 1.5 m/s for
      pedestrians;
    * ``intergreen(A -> B) = max(amber_A, amber_A + t_clear - t_approach)``: the leaving
      vehicle passes the stop line at the end of amber at the latest (Dutch practice),
      taken over all foe link pairs and rounded up to 0.1 s.

    A pedestrian group has no amber (0 s). A pedestrian who stepped onto the crossing at the
    last moment of green may have to walk from either kerb, so the clearing distance is the
    longer side ``max(d, L - d)`` plus 1.5 m (to be clear of the vehicle path), at most the
    crossing length ``L``; an entering pedestrian starts from the nearer kerb,
    ``min(d, L - d)``. Pedestrians cross in both directions, so these are the worst cases.

Timing defaults
    Amber is the duration of the program's yellow phase(s) for the group (3 s when the
    program has none; 0 for pedestrians). Minimum green: motor 6 s, bicycle 5 s, pedestrian
    6 s, bus and tram 4 s. Maximum green: motor 60 s, bus and tram 40 s, bicycle 25 s, pedestrian
    20 s, or the largest ``maxDur`` of the phases in which the group is green when the
    program is actuated and that is longer than the minimum green. Minimum red 1 s; maximum
    wait 120 s (pedestrians 90 s), at least 1.25 times the longest cycle of the stage plan
    but never more than 180 s (:mod:`ivri.wait_floor`).

Stages
    The distinct sets of green groups of the program's main phases (phases with some green
    and no yellow, longer than :data:`TRANSITION_MAX_S` or extendable beyond it: shorter ones
    are transitions), in program order, keeping only sets that are not contained in another.
    (Keeping a protected-turn phase that is a subset of the phase where the turn is
    permissive as a stage of its own, entered when the stage's other groups are done, cost
    vehicle-loss hours on a real 7-light network: 34 -> 38-47 veh-h.) A group that is green in no main phase (only in transitions) gets one more stage, filled
    with every group that does not conflict with it, so that every group is in a stage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivri.config import ConflictConfig, IntersectionConfig, NetworkConfig, SignalGroupConfig
from ivri.errors import ConfigError, NetworkError
from ivri.wait_floor import with_wait_floor

__all__ = [
    "APPROACH_SPEED_MPS",
    "CLEAR_SPEED_MPS",
    "VEHICLE_LENGTH_M",
    "TlsLinkMap",
    "derive_intersections",
    "link_foes",
    "link_maps_for_configs",
    "read_net",
]

# --- assumptions of the intergreen method (see the module docstring) -----------------------
CLEAR_SPEED_MPS = {"motor": 10.0, "bus": 10.0, "tram": 10.0, "bicycle": 5.0, "pedestrian": 1.2}
APPROACH_SPEED_MPS = {"motor": 40.0 / 3.6, "bus": 40.0 / 3.6, "tram": 40.0 / 3.6, "bicycle": 5.0,
                      "pedestrian": 1.5}
VEHICLE_LENGTH_M = {"motor": 6.0, "bus": 12.0, "tram": 30.0, "bicycle": 2.0, "pedestrian": 0.0}
#: Extra distance a clearing pedestrian walks past the conflict point (half a car lane).
PED_CLEAR_MARGIN_M = 1.5
#: Junction size assumed when a junction has no outline.
DEFAULT_JUNCTION_SIZE_M = 20.0
#: How far upstream of the stop line a group's queue and arrivals are measured (through
#: unsignalised nodes; see :func:`upstream_lanes`).
APPROACH_DETECTION_M = 60.0

DEFAULT_AMBER_S = {"motor": 3.0, "bus": 3.0, "tram": 3.0, "bicycle": 3.0, "pedestrian": 0.0}
MIN_GREEN_S = {"motor": 6.0, "bus": 4.0, "tram": 4.0, "bicycle": 5.0, "pedestrian": 6.0}
# Motor 60 s: with 40 s, the main stage of a light whose side road calls rarely maxed out at
# every call and permissive left turners behind it queued into the through lanes (measured
# on ingolstadt7, seeds 42-46: 38.1 -> 31.7 vehicle-loss hours, gridlocked runs 2 -> 0;
# ingolstadt21 seeds 42-43: 95.9 -> 94.4; 80 s gave 110.7 there). Crossing, corridor, grid
# and cologne8 did not change.
MAX_GREEN_S = {"motor": 60.0, "bus": 40.0, "tram": 40.0, "bicycle": 25.0, "pedestrian": 20.0}
MIN_RED_S = 1.0
MAX_WAIT_S = {"motor": 120.0, "bus": 120.0, "tram": 120.0, "bicycle": 120.0, "pedestrian": 90.0}
#: A phase with green and no yellow this short [s] (and no longer maxDur) is a transition.
TRANSITION_MAX_S = 4.0

_GREEN = frozenset("Gg")
_DIR_ORDER = "lLsRrt"
_BIKE_CLASSES = frozenset({"bicycle", "moped", "scooter"})
_TRAM_CLASSES = frozenset({"tram", "rail_urban", "rail", "rail_electric", "rail_fast", "subway",
                           "cable_car"})
_BUS_CLASSES = frozenset({"bus", "coach", "taxi", "emergency", "authority", "army", "vip",
                          "bicycle"})


@dataclass(frozen=True, eq=False)
class TlsLinkMap:
    """How the signal groups of one intersection map onto the link indices of its SUMO tls.

    Group indices are the positions in the intersection's ``signal_groups`` (the core's
    columns).
    """

    tls_id: str
    n_links: int
    group_of_link: np.ndarray                  # int32[n_links]; -1: the link has no group
    fixed_state: str                            # per link: what a link without group shows
    yield_to: tuple[tuple[int, ...], ...]       # per link: partner groups it gives way to ('g' while they run)
    in_lanes: tuple[tuple[str, ...], ...]       # per group: incoming lanes (empty for pedestrians)
    out_lanes: tuple[tuple[str, ...], ...]      # per group: lanes the group feeds
    crossings: tuple[tuple[str, ...], ...]      # per group: crossing edges (pedestrian groups)
    waiting_areas: tuple[tuple[str, ...], ...]  # per group: walking areas at either end of its crossings
    junctions: tuple[str, ...] = ()             # the junctions this tls controls
    group_ids: tuple[str, ...] = field(default=())
    #: per group: lanes upstream of its stop-line lanes, through unsignalised nodes (internal
    #: lanes included), as far as :data:`APPROACH_DETECTION_M` from the stop line; with the
    #: ``in_lanes`` they are where the group's queue stands (see :func:`upstream_lanes`).
    upstream_lanes: tuple[tuple[str, ...], ...] = field(default=())
    #: link index pairs (a, b) of foe links that merge onto one lane and run green together;
    #: a gives way to b (see "Merges" in the module docstring).
    merges: tuple[tuple[int, int], ...] = field(default=())
    #: per group: the outgoing lanes whose blocking blocks the group: those of its straight
    #: links, or all its outgoing lanes when it has none (a turn-only group).
    exit_lanes: tuple[tuple[str, ...], ...] = field(default=())

    def approach_lanes(self, g: int) -> tuple[str, ...]:
        """The stop-line lanes of group ``g`` and the lanes upstream of them."""
        up = self.upstream_lanes[g] if self.upstream_lanes else ()
        return self.in_lanes[g] + tuple(x for x in up if x not in self.in_lanes[g])

    @property
    def n_groups(self) -> int:
        return len(self.in_lanes)


# --------------------------------------------------------------------------------------------
# Reading the network


def read_net(net_file: str | Path) -> Any:
    """Read a ``.net.xml`` with sumolib (internal lanes, pedestrian connections, programs).

    Raises :class:`~ivri.errors.NetworkError` naming the file when it is missing or corrupt.
    """
    path = Path(net_file)
    if not path.is_file():
        raise NetworkError(f"SUMO network {path} does not exist")
    try:
        import sumolib
    except ImportError as exc:
        raise NetworkError(f"sumolib is needed to read {path}: {exc}") from None
    try:
        return sumolib.net.readNet(str(path), withInternal=True, withPedestrianConnections=True,
                                   withPrograms=True)
    except Exception as exc:  # noqa: BLE001 - lxml, sax and sumolib raise many types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NetworkError(f"SUMO network {path} cannot be read: {first}") from None


def _as_net(net: Any) -> tuple[Any, str]:
    if isinstance(net, (str, Path)):
        return read_net(net), str(net)
    return net, "the network"


# --------------------------------------------------------------------------------------------
# Link-level facts of one traffic light


@dataclass
class _Link:
    index: int
    conns: list[Any]
    mode: str = "motor"
    edge: str = ""
    dirs: str = ""
    in_lanes: list[str] = field(default_factory=list)
    out_lanes: list[str] = field(default_factory=list)
    crossing: str | None = None
    walking_areas: list[str] = field(default_factory=list)
    path: np.ndarray | None = None        # float[n, 2] from the stop line through the junction
    path_speed_mps: float = math.inf
    junction_size_m: float = DEFAULT_JUNCTION_SIZE_M


@dataclass
class _TlsFacts:
    tls_id: str
    states: list[str]               # per phase
    durations: list[float]
    max_durs: list[float]           # -1 where absent
    actuated: bool
    links: list[_Link]
    green: np.ndarray               # bool[L, P]
    yellow: np.ndarray              # bool[L, P]
    foes: np.ndarray                # bool[L, L]
    yields: np.ndarray              # bool[L, L]: link l must yield to link m (response bits)
    junctions: tuple[str, ...]
    net: Any = None                 # the sumolib network (for walks upstream of the stop lines)

    @property
    def n_links(self) -> int:
        return len(self.links)

    @property
    def main_phases(self) -> list[int]:
        return [p for p, s in enumerate(self.states) if any(c in _GREEN for c in s) and "y" not in s]

    def static_char(self, link: int) -> str | None:
        """The state of a link that never changes in the program (None if it changes)."""
        chars = {s[link] for s in self.states}
        g = self.green[link]
        if g.all():
            return "G" if "G" in chars else "g"
        if not g.any():  # never green: the network never lets it go
            if chars <= {"O", "o"}:
                return "O" if "O" in chars else "o"
            return "r"
        return None


def _bit(bits: str, k: int) -> bool:
    """SUMO's request strings list link 0 last."""
    return 0 <= k < len(bits) and bits[len(bits) - 1 - k] == "1"


def find_lane(net: Any, lane_id: str) -> Any | None:
    """The sumolib lane, or None when the file does not have it (e.g. no internal lanes)."""
    edge_id, _, index = lane_id.rpartition("_")
    if not net.hasEdge(edge_id) or not index.isdigit():
        return None
    lanes = net.getEdge(edge_id).getLanes()
    k = int(index)
    return lanes[k] if k < len(lanes) else None


def _via_chain(net: Any, conn: Any) -> list[Any]:
    """The internal lanes a connection runs through, in driving order (empty without them)."""
    out: list[Any] = []
    via = conn.getViaLaneID()
    while via and len(out) < 16:
        lane = find_lane(net, via)
        if lane is None:
            break
        out.append(lane)
        nxt = lane.getOutgoing()
        via = nxt[0].getViaLaneID() if nxt else ""
    return out


def upstream_lanes(net: Any, lane_ids: Iterable[str], reach_m: float = 60.0) -> list[tuple[str, float]]:
    """Lanes upstream of the stop-line lanes ``lane_ids``, as ``(lane id, offset)`` pairs.

    The walk goes back through unsignalised nodes only (a connection controlled by any
    traffic light is another stop line) and takes the internal lanes of those nodes too,
    as long as the lane's downstream end is less than ``reach_m`` from the stop line.
    ``offset`` is the distance from the lane's downstream end to the stop line. Real
    networks (OSM imports, joined junctions) often have approach edges of a few metres
    between an unsignalised node and the stop line: the queue of such an approach stands
    upstream, where the stop-line lane alone sees nothing.
    """
    out: dict[str, float] = {}
    frontier = []
    for lid in lane_ids:
        lane = find_lane(net, lid)
        if lane is not None:
            frontier.append((lane, float(lane.getLength())))
            out.setdefault(lid, 0.0)
    while frontier:
        lane, start_m = frontier.pop()  # start_m: distance from the lane's start to the stop line
        if start_m >= reach_m:
            continue
        for c in lane.getIncomingConnections():
            src = c.getFromLane()
            if src.getID().startswith(":") or c.getTLSID():
                continue
            if src.getEdge().getFunction() in ("walkingarea", "crossing"):
                continue
            offset = start_m
            for via in reversed(_via_chain(net, c)):
                if via.getID() not in out:
                    out[via.getID()] = offset
                offset += float(via.getLength())
            if src.getID() in out and out[src.getID()] <= offset:
                continue
            out[src.getID()] = offset
            frontier.append((src, offset + float(src.getLength())))
    return [(lid, off) for lid, off in out.items() if off > 0.0 or lid.startswith(":")]


def _junction_indices(net: Any, node: Any) -> dict[int, int]:
    """Junction link index of every connection of ``node``, keyed by ``id(connection)``."""
    out: dict[int, int] = {}
    int_lanes = [x for x in (node.getInternal() or []) if x]
    pos = {lane_id: k for k, lane_id in enumerate(int_lanes)}
    conns = node.getConnections()
    # Walking areas are incoming "lanes" of the junction too (their connections to crossings).
    for lane_id in node._incLanes:  # sumolib keeps the attribute only privately
        lane = find_lane(net, lane_id) if lane_id.startswith(":") else None
        if lane is not None:
            conns.extend(lane.getOutgoing())
    if pos:
        for c in conns:
            to_lane = c.getToLane()
            if to_lane.getEdge().getFunction() == "crossing":
                k = pos.get(to_lane.getID())
                if k is not None:
                    out[id(c)] = k
                continue
            via = c.getViaLaneID()
            seen = 0
            while via and seen < 16:
                if via in pos:
                    out[id(c)] = pos[via]
                    break
                lane = find_lane(net, via)
                nxt = lane.getOutgoing() if lane is not None else []
                via = nxt[0].getViaLaneID() if nxt else ""
                seen += 1
        if out:
            return out
    # No internal lanes: SUMO's order (sumolib.net.node.Node.getLinkIndex, computed once).
    k = 0
    for lane_id in node._incLanes:
        lane = find_lane(net, lane_id)
        for c in lane.getOutgoing() if lane is not None else ():
            f_from = c.getFromLane().getEdge().getFunction()
            f_to = c.getToLane().getEdge().getFunction()
            if f_to == "walkingarea" or (f_from == "walkingarea" and f_to != "crossing"):
                continue
            out[id(c)] = k
            k += 1
    return out


def _link_mode(conn: Any) -> str:
    to_edge = conn.getToLane().getEdge()
    if to_edge.getFunction() == "crossing":
        return "pedestrian"
    allowed = set(conn.getFromLane().getPermissions()) & set(conn._allowed)
    allowed.discard("pedestrian")
    if not allowed:
        return "motor"
    if allowed <= _BIKE_CLASSES and "bicycle" in allowed:
        return "bicycle"
    if allowed <= _TRAM_CLASSES:
        return "tram"
    if allowed <= _BUS_CLASSES and "bus" in allowed:
        return "bus"
    return "motor"


def _shape_xy(shape: Sequence[Sequence[float]]) -> np.ndarray:
    return np.asarray([(p[0], p[1]) for p in shape], dtype=np.float64).reshape(-1, 2)


def _vehicle_path(net: Any, conn: Any) -> tuple[np.ndarray | None, float]:
    """The shape of a connection through the junction (its chain of internal lanes) and the
    lowest speed SUMO allows along it."""
    via = conn.getViaLaneID()
    pts: list[np.ndarray] = []
    speed = math.inf
    seen = 0
    while via and seen < 16:
        lane = find_lane(net, via)
        if lane is None:  # internal lanes not in the file
            break
        pts.append(_shape_xy(lane.getShape()))
        speed = min(speed, lane.getSpeed())
        nxt = lane.getOutgoing()
        via = nxt[0].getViaLaneID() if nxt else ""
        seen += 1
    if not pts:
        return None, speed
    path = np.concatenate(pts)
    keep = np.ones(len(path), dtype=bool)
    keep[1:] = np.any(np.abs(np.diff(path, axis=0)) > 1e-9, axis=1)
    path = path[keep]
    return (path if len(path) >= 2 else None), speed


def _junction_size(node: Any) -> float:
    shape = node.getShape()
    if not shape:
        return DEFAULT_JUNCTION_SIZE_M
    xy = _shape_xy(shape)
    return float(max(np.hypot(*(xy.max(axis=0) - xy.min(axis=0))), 1.0))


def _tls_facts(net: Any, tls: Any, program_id: str | None, source: str) -> _TlsFacts:
    tls_id = tls.getID()
    programs = tls.getPrograms()
    if not programs:
        raise NetworkError(f"{source}: traffic light {tls_id!r} has no program")
    if program_id is None:
        program = next(iter(programs.values()))
    elif program_id in programs:
        program = programs[program_id]
    else:
        raise NetworkError(
            f"{source}: traffic light {tls_id!r} has no program {program_id!r} "
            f"(it has {sorted(programs)})"
        )
    phases = program.getPhases()
    if not phases:
        raise NetworkError(f"{source}: program {program._id!r} of traffic light {tls_id!r} has no phases")
    states = [p.state for p in phases]
    n_links = len(states[0])
    if any(len(s) != n_links for s in states):
        raise NetworkError(f"{source}: traffic light {tls_id!r} has phases of different lengths")

    # All connections of this tls, by link index (linkIndex2: the reverse walk over a crossing).
    by_link: list[list[Any]] = [[] for _ in range(n_links)]
    nodes: dict[str, Any] = {}
    edges = {c[0].getEdge() for c in tls.getConnections()}
    for edge in sorted(edges, key=lambda e: e.getID()):
        for lane in edge.getLanes():
            for c in lane.getOutgoing():
                if c.getTLSID() != tls_id:
                    continue
                for k in (c.getTLLinkIndex(), c.getTLLinkIndex2()):
                    if k is None or k < 0:
                        continue
                    if k >= n_links:
                        raise NetworkError(
                            f"{source}: traffic light {tls_id!r}: link index {k} beyond its "
                            f"program's {n_links} states"
                        )
                    by_link[k].append(c)
                node = c.getJunction()
                nodes[node.getID()] = node

    jidx: dict[int, int] = {}
    for node in nodes.values():
        jidx.update(_junction_indices(net, node))

    links: list[_Link] = []
    for k, conns in enumerate(by_link):
        link = _Link(index=k, conns=conns)
        if conns:
            c0 = conns[0]
            link.mode = _link_mode(c0)
            link.dirs = "".join(sorted({c.getDirection() for c in conns},
                                       key=lambda d: _DIR_ORDER.find(d)))
            link.junction_size_m = _junction_size(c0.getJunction())
            if link.mode == "pedestrian":
                crossing = c0.getToLane().getEdge()
                link.crossing = crossing.getID()
                link.edge = crossing.getID()
                was = {c.getFromLane().getEdge().getID() for c in conns}
                for lane in crossing.getLanes():
                    was.update(o.getToLane().getEdge().getID() for o in lane.getOutgoing())
                for inc in crossing.getIncoming():
                    was.add(inc.getID())
                link.walking_areas = sorted(w for w in was if net.getEdge(w).getFunction() == "walkingarea")
                link.path = _shape_xy(c0.getToLane().getShape())
                link.path_speed_mps = math.inf
            else:
                link.edge = c0.getFromLane().getEdge().getID()
                link.path, link.path_speed_mps = _vehicle_path(net, c0)
            for c in conns:
                if link.mode != "pedestrian":
                    lid = c.getFromLane().getID()
                    if lid not in link.in_lanes:
                        link.in_lanes.append(lid)
                    oid = c.getToLane().getID()
                    if oid not in link.out_lanes:
                        link.out_lanes.append(oid)
        links.append(link)

    n = n_links
    foes = np.zeros((n, n), dtype=bool)
    yields = np.zeros((n, n), dtype=bool)
    for a in range(n):
        for ca in by_link[a]:
            ja = jidx.get(id(ca))
            if ja is None:
                continue
            node = ca.getJunction()
            foe_bits = node._foes.get(ja, "")
            resp_bits = node._prohibits.get(ja, "")
            for b in range(n):
                if b == a:
                    continue
                for cb in by_link[b]:
                    if cb.getJunction() is not node:
                        continue
                    jb = jidx.get(id(cb))
                    if jb is None or jb == ja:
                        continue
                    if _bit(foe_bits, jb):
                        foes[a, b] = foes[b, a] = True
                    if _bit(resp_bits, jb):
                        yields[a, b] = True
    # A response bit without a foe bit happens (yielding to merging streams); count it as foe.
    foes |= yields | yields.T

    green = np.array([[s[k] in _GREEN for s in states] for k in range(n)], dtype=bool).reshape(n, len(states))
    yellow = np.array([[s[k] == "y" for s in states] for k in range(n)], dtype=bool).reshape(n, len(states))
    return _TlsFacts(
        tls_id=tls_id,
        states=states,
        durations=[float(p.duration) for p in phases],
        max_durs=[float(p.maxDur) if p.maxDur is not None else -1.0 for p in phases],
        actuated=program.getType() not in ("static", ""),
        links=links,
        green=green,
        yellow=yellow,
        foes=foes,
        yields=yields,
        junctions=tuple(sorted(nodes)),
        net=net,
    )


# --------------------------------------------------------------------------------------------
# Geometry


def _arc_lengths(path: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])


def _crossing_points(a: np.ndarray, b: np.ndarray) -> list[tuple[float, float]]:
    """Arc-length positions (along a, along b) of every point where polylines a and b cross."""
    sa, sb = _arc_lengths(a), _arc_lengths(b)
    p, r = a[:-1], np.diff(a, axis=0)            # segments of a: p + t r
    q, s = b[:-1], np.diff(b, axis=0)            # segments of b: q + u s
    rxs = r[:, None, 0] * s[None, :, 1] - r[:, None, 1] * s[None, :, 0]
    qp = q[None, :, :] - p[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (qp[..., 0] * s[None, :, 1] - qp[..., 1] * s[None, :, 0]) / rxs
        u = (qp[..., 0] * r[:, None, 1] - qp[..., 1] * r[:, None, 0]) / rxs
    ok = (np.abs(rxs) > 1e-12) & (t >= -1e-9) & (t <= 1 + 1e-9) & (u >= -1e-9) & (u <= 1 + 1e-9)
    out = []
    for i, j in zip(*np.nonzero(ok), strict=True):
        la = sa[i] + t[i, j] * (sa[i + 1] - sa[i])
        lb = sb[j] + u[i, j] * (sb[j + 1] - sb[j])
        out.append((float(la), float(lb)))
    return out


def _project(points: np.ndarray, path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each point to the polyline and the arc length of its projection."""
    s = _arc_lengths(path)
    p, d = path[:-1], np.diff(path, axis=0)
    seg2 = np.maximum((d * d).sum(axis=1), 1e-18)
    rel = points[:, None, :] - p[None, :, :]
    t = np.clip((rel * d[None]).sum(axis=2) / seg2[None], 0.0, 1.0)
    foot = p[None] + t[..., None] * d[None]
    dist = np.hypot(*(points[:, None, :] - foot).transpose(2, 0, 1))
    j = dist.argmin(axis=1)
    rows = np.arange(len(points))
    return dist[rows, j], s[j] + t[rows, j] * (s[j + 1] - s[j])


def _conflict_positions(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(distance along a, distance along b) to the conflict point of two paths.

    Conservative when the paths cross more than once: the last crossing along the clearing
    path a, the first along the approaching path b. Paths that do not cross conflict where
    they come closest.
    """
    pts = _crossing_points(a, b)
    if pts:
        return max(x for x, _ in pts), min(y for _, y in pts)
    da, sb_at_a = _project(a, b)
    db, sa_at_b = _project(b, a)
    sa = _arc_lengths(a)
    sbv = _arc_lengths(b)
    ia, ib = int(da.argmin()), int(db.argmin())
    if da[ia] <= db[ib]:
        return float(sa[ia]), float(sb_at_a[ia])
    return float(sa_at_b[ib]), float(sbv[ib])


def _ceil_tenth(x: float) -> float:
    return math.ceil(x * 10.0 - 1e-6) / 10.0


def _intergreen_s(leave: _Link, enter: _Link, amber_s: float, leave_mode: str, enter_mode: str) -> float:
    """Intergreen time from the end of green of link ``leave`` to the start of green of ``enter``."""
    pos = None
    if leave.path is not None and enter.path is not None:
        pos = _conflict_positions(leave.path, enter.path)
    if pos is None:
        # No usable geometry: clear the whole junction, and the entering stream is already there.
        s_clear, s_approach = max(leave.junction_size_m, enter.junction_size_m), 0.0
        ped_len = s_clear
    else:
        s_clear, s_approach = pos
        ped_len = float(_arc_lengths(leave.path)[-1]) if leave.path is not None else s_clear
    if leave_mode == "pedestrian":
        length = ped_len
        s_clear = min(length, max(s_clear, length - s_clear) + PED_CLEAR_MARGIN_M)
        t_clear = s_clear / CLEAR_SPEED_MPS["pedestrian"]
    else:
        v = min(CLEAR_SPEED_MPS[leave_mode], leave.path_speed_mps)
        t_clear = (s_clear + VEHICLE_LENGTH_M[leave_mode]) / max(v, 0.5)
    if enter_mode == "pedestrian" and pos is not None and enter.path is not None:
        length = float(_arc_lengths(enter.path)[-1])
        s_approach = min(s_approach, length - s_approach)
    t_approach = max(s_approach, 0.0) / APPROACH_SPEED_MPS[enter_mode]
    return _ceil_tenth(max(amber_s, amber_s + t_clear - t_approach))


# --------------------------------------------------------------------------------------------
# Groups


@dataclass
class _Group:
    id: str
    mode: str
    links: list[int]


def _form_groups(facts: _TlsFacts) -> tuple[list[_Group], dict[int, str]]:
    """Group the links that change state; return the groups and the fixed char of the others."""
    fixed: dict[int, str] = {}
    keyed: dict[tuple[Any, ...], list[int]] = {}
    for link in facts.links:
        k = link.index
        if not link.conns:
            fixed[k] = facts.states[0][k] if facts.states[0][k] in "Oo" else "r"
            continue
        static = facts.static_char(k)
        if static is not None:
            fixed[k] = static
            continue
        key = (link.edge, link.mode, tuple(facts.green[k].tolist()))
        keyed.setdefault(key, []).append(k)
    groups: list[_Group] = []
    taken: set[str] = set()
    modes_of_edge: dict[str, set[str]] = {}
    for edge, mode, _ in keyed:
        modes_of_edge.setdefault(edge, set()).add(mode)
    for (edge, mode, _), members in sorted(keyed.items(), key=lambda kv: min(kv[1])):
        if mode == "pedestrian":
            base = "ped_" + edge.lstrip(":")
        else:
            dirs = "".join(sorted({d for m in members for d in facts.links[m].dirs},
                                  key=lambda d: _DIR_ORDER.find(d)))
            base = f"{edge}_{dirs or 'x'}"
            # A bus lane or a cycle lane on a road with car lanes: say which is which.
            if mode != "motor" and (len(modes_of_edge[edge]) > 1 or mode in ("bus", "tram")):
                base = f"{base}_{'bike' if mode == 'bicycle' else mode}"
        gid, n = base, 2
        while gid in taken:
            gid, n = f"{base}_{n}", n + 1
        taken.add(gid)
        groups.append(_Group(gid, mode, sorted(members)))
    return groups, fixed


def _amber_s(facts: _TlsFacts, links: list[int], mode: str) -> float:
    if mode == "pedestrian":
        return 0.0
    y = facts.yellow[links].any(axis=0)
    if not y.any():
        return DEFAULT_AMBER_S[mode]
    n = len(y)
    best = 0.0
    start = int(np.argmin(y)) if not y.all() else 0  # begin the cyclic scan at a non-yellow phase
    run = 0.0
    for step in range(n):
        p = (start + step) % n
        if y[p]:
            run += facts.durations[p]
            best = max(best, run)
        else:
            run = 0.0
    return float(min(max(best, 0.0), 10.0))


def _max_green_s(facts: _TlsFacts, links: list[int], mode: str, min_green_s: float) -> float:
    default = MAX_GREEN_S[mode]
    if not facts.actuated:
        return default
    g = facts.green[links].all(axis=0)
    durs = [facts.max_durs[p] for p in range(len(g)) if g[p] and facts.max_durs[p] > 0]
    if durs and max(durs) > min_green_s:
        return float(min(max(durs), 600.0))
    return default


def _stages(facts: _TlsFacts, groups: list[_Group], conflict: np.ndarray) -> list[tuple[str, ...]]:
    # Short phases without yellow are transitions between stages, not stages (a 3 s phase
    # that became a stage of its own took 107 s of stage time on a real network).
    phases = [p for p in facts.main_phases if not _is_transition(facts, p)]
    sets: list[frozenset[int]] = []
    for p in phases:
        s = frozenset(gi for gi, g in enumerate(groups) if facts.green[g.links[0], p])
        if s and s not in sets:
            sets.append(s)
    maximal = [s for s in sets if not any(s < t for t in sets)]
    # A group that is green only in transition phases (with some yellow) would never be
    # served by a stage-based controller: give it a stage of its own, filled greedily with
    # every group that does not conflict with it.
    covered = set().union(*maximal) if maximal else set()
    for gi in range(len(groups)):
        if gi in covered:
            continue
        stage = {gi}
        for other in sorted(range(len(groups)), key=lambda k: (k in covered, k)):
            if other not in stage and not any(conflict[other, k] for k in stage):
                stage.add(other)
        maximal.append(frozenset(stage))
        covered |= stage
    return [tuple(groups[gi].id for gi in sorted(s)) for s in maximal]


def _is_transition(facts: _TlsFacts, p: int) -> bool:
    """A short fixed phase (at most :data:`TRANSITION_MAX_S`) that the program cannot extend."""
    return facts.durations[p] <= TRANSITION_MAX_S and facts.max_durs[p] <= TRANSITION_MAX_S


def _yield_matrix(facts: _TlsFacts) -> np.ndarray:
    """bool[L, L]: link l gives way to link m when both are green (SUMO's response bits, or
    the program itself showing l as 'g' while m is green)."""
    n = facts.n_links
    shows_g = np.array([[s[k] == "g" for s in facts.states] for k in range(n)], dtype=bool).reshape(n, -1)
    by_program = (shows_g.astype(np.int32) @ facts.green.T.astype(np.int32)) > 0
    return facts.foes & (facts.yields | by_program)


def _check_permissive(facts: _TlsFacts, a: int, b: int, ymat: np.ndarray, ga: str, gb: str,
                      where: str) -> None:
    """A user config may let foe links run together that the network's program keeps apart
    only as a permissive *turn*: the link that gives way must be a turning vehicle stream.
    Two straight streams, or straight traffic across a crossing, must be declared a conflict.
    """
    yielding = [k for k, other in ((a, b), (b, a)) if ymat[k, other]]
    turning = [k for k in yielding
               if facts.links[k].mode != "pedestrian" and facts.links[k].dirs
               and set(facts.links[k].dirs) <= set("lLrRt")]
    if not turning:
        raise ConfigError(
            f"{where}: signal groups {ga!r} and {gb!r} are not in conflict, but their SUMO links "
            f"{a} and {b} cross, the network's own program never shows them green together and "
            "neither is a turn that gives way: declare the conflict"
        )


def _merge_yields(facts: _TlsFacts, group_of: np.ndarray, conflict: np.ndarray,
                  ymat: np.ndarray) -> list[tuple[int, int]]:
    """Foe links of compatible groups that merge onto one lane and that neither gives way
    on: (a, b) pairs, a yields to b. The turning link yields to the straight one; between
    two turns or two straight links, the one with the higher link index yields."""
    out: list[tuple[int, int]] = []
    for a, b in zip(*np.nonzero(np.triu(facts.foes, 1)), strict=True):
        ga, gb = group_of[a], group_of[b]
        if ga < 0 or gb < 0 or ga == gb or conflict[ga, gb] or ymat[a, b] or ymat[b, a]:
            continue
        la, lb = facts.links[a], facts.links[b]
        if not set(la.out_lanes) & set(lb.out_lanes):
            continue
        turn_a = bool(la.dirs) and set(la.dirs) <= set("lLrRt")
        turn_b = bool(lb.dirs) and set(lb.dirs) <= set("lLrRt")
        out.append((int(a), int(b)) if turn_a and not turn_b else (int(b), int(a)))
    return out


def _link_map(facts: _TlsFacts, groups: list[tuple[str, str, list[int]]], fixed: dict[int, str],
              conflict: np.ndarray, check: bool, where: str) -> TlsLinkMap:
    """Build the link map for ``groups`` (id, mode, links) with the group ``conflict`` matrix."""
    n = facts.n_links
    group_of = np.full(n, -1, dtype=np.int32)
    for gi, (_, _, links) in enumerate(groups):
        group_of[links] = gi
    ymat = _yield_matrix(facts)
    together = (facts.green.astype(np.int32) @ facts.green.T.astype(np.int32)) > 0
    merges = _merge_yields(facts, group_of, conflict, ymat)
    for a, b in merges:
        ymat[a, b] = True
    yield_to: list[tuple[int, ...]] = []
    for a in range(n):
        ga = group_of[a]
        partners: set[int] = set()
        if ga >= 0:
            for b in np.nonzero(facts.foes[a])[0]:
                gb = group_of[b]
                if gb < 0 or gb == ga or conflict[ga, gb]:
                    continue
                if ymat[a, b]:
                    partners.add(int(gb))
                if check and not together[a, b] and b > a:
                    _check_permissive(facts, a, b, ymat, groups[ga][0], groups[gb][0], where)
        yield_to.append(tuple(sorted(partners)))
    chars = ["r"] * n
    for k, c in fixed.items():
        chars[k] = c
    in_lanes, out_lanes, crossings, waits = [], [], [], []
    upstream: list[tuple[str, ...]] = []
    exits: list[tuple[str, ...]] = []
    for _, mode, links in groups:
        il: list[str] = []
        ol: list[str] = []
        cr: list[str] = []
        wa: list[str] = []
        for k in links:
            lk = facts.links[k]
            il += [x for x in lk.in_lanes if x not in il]
            ol += [x for x in lk.out_lanes if x not in ol]
            if lk.crossing and lk.crossing not in cr:
                cr.append(lk.crossing)
            wa += [x for x in lk.walking_areas if x not in wa]
        in_lanes.append(tuple(il))
        straight = [x for k in links if "s" in facts.links[k].dirs for x in facts.links[k].out_lanes]
        exits.append(tuple(dict.fromkeys(straight)) if straight else tuple(ol))
        upstream.append(tuple(x for x, _ in upstream_lanes(facts.net, il, APPROACH_DETECTION_M))
                        if facts.net is not None and mode != "pedestrian" else ())
        out_lanes.append(tuple(ol))
        crossings.append(tuple(cr))
        waits.append(tuple(wa))
    return TlsLinkMap(
        tls_id=facts.tls_id,
        n_links=n,
        group_of_link=group_of,
        fixed_state="".join(chars),
        yield_to=tuple(yield_to),
        in_lanes=tuple(in_lanes),
        out_lanes=tuple(out_lanes),
        crossings=tuple(crossings),
        waiting_areas=tuple(waits),
        junctions=facts.junctions,
        group_ids=tuple(g[0] for g in groups),
        upstream_lanes=tuple(upstream),
        merges=tuple(merges),
        exit_lanes=tuple(exits),
    )


def _derive_one(facts: _TlsFacts) -> tuple[IntersectionConfig, TlsLinkMap] | None:
    groups, fixed = _form_groups(facts)
    if not groups:
        return None
    ng = len(groups)
    gmask = np.zeros((ng, facts.n_links), dtype=bool)
    for gi, g in enumerate(groups):
        gmask[gi, g.links] = True
    gi_green = np.array([facts.green[g.links[0]] for g in groups])          # [G, P]
    together = (gi_green.astype(np.int32) @ gi_green.T.astype(np.int32)) > 0
    foe_groups = (gmask.astype(np.int32) @ facts.foes.astype(np.int32) @ gmask.T.astype(np.int32)) > 0
    conflict = foe_groups & ~together
    np.fill_diagonal(conflict, False)

    configs = []
    amber = {}
    for g in groups:
        amber[g.id] = _amber_s(facts, g.links, g.mode)
        min_g = MIN_GREEN_S[g.mode]
        configs.append(SignalGroupConfig(
            id=g.id,
            mode=g.mode,  # type: ignore[arg-type]
            amber_s=amber[g.id],
            min_green_s=min_g,
            max_green_s=_max_green_s(facts, g.links, g.mode, min_g),
            min_red_s=MIN_RED_S,
            max_wait_s=MAX_WAIT_S[g.mode],
            sumo_links=tuple(g.links),
            lanes=tuple(
                dict.fromkeys(
                    x for k in g.links
                    for x in ([facts.links[k].crossing] if g.mode == "pedestrian" else facts.links[k].in_lanes)
                    if x
                )
            ),
        ))
    conflicts = []
    for a in range(ng):
        for b in range(a + 1, ng):
            if not conflict[a, b]:
                continue
            ga, gb = groups[a], groups[b]
            ig = []
            for leave, enter in ((ga, gb), (gb, ga)):
                worst = amber[leave.id]
                for la in leave.links:
                    for lb in enter.links:
                        if facts.foes[la, lb]:
                            worst = max(worst, _intergreen_s(facts.links[la], facts.links[lb],
                                                             amber[leave.id], leave.mode, enter.mode))
                ig.append(worst)
            conflicts.append(ConflictConfig(between=(ga.id, gb.id), intergreen_s=(ig[0], ig[1])))
    stages = tuple(_stages(facts, groups, conflict))
    # The core's anti-starvation must not pre-empt a regular cycle (see ivri.wait_floor).
    configs = with_wait_floor(configs, conflicts, stages)
    x = IntersectionConfig(
        id=facts.tls_id,
        tls_id=facts.tls_id,
        signal_groups=tuple(configs),
        conflicts=tuple(conflicts),
        stages=stages,
    )
    lm = _link_map(facts, [(g.id, g.mode, g.links) for g in groups], fixed, conflict, check=False,
                   where=facts.tls_id)
    return x, lm


# --------------------------------------------------------------------------------------------
# Public functions


def derive_intersections(
    net: str | Path | Any, *, program_id: str | None = None, tls_ids: Iterable[str] | None = None,
) -> tuple[list[IntersectionConfig], list[TlsLinkMap]]:
    """One :class:`~ivri.config.IntersectionConfig` and one :class:`TlsLinkMap` per traffic light.

    ``net`` is a ``.net.xml`` path or a network read by :func:`read_net`. ``program_id``
    picks the program the groups are read from (default: each tls's first program);
    ``tls_ids`` limits the derivation to these traffic lights. Traffic lights whose program
    never switches anything (no signal group) are left out. Intersection ids are the tls
    ids. Raises :class:`~ivri.errors.NetworkError` for a missing or corrupt network, or one
    without traffic lights.
    """
    net, source = _as_net(net)
    lights = sorted(net.getTrafficLights(), key=lambda t: t.getID())
    if tls_ids is not None:
        wanted = set(tls_ids)
        lights = [t for t in lights if t.getID() in wanted]
    if not lights:
        raise NetworkError(f"{source} has no traffic lights")
    configs: list[IntersectionConfig] = []
    maps: list[TlsLinkMap] = []
    for tls in lights:
        if not tls.getPrograms():
            continue  # a rail signal: SUMO builds its logic itself, there is nothing to time
        out = _derive_one(_tls_facts(net, tls, program_id, source))
        if out is not None:
            configs.append(out[0])
            maps.append(out[1])
    if not configs:
        raise NetworkError(f"{source} has no traffic light whose program switches any signal")
    return configs, maps


def link_foes(net: str | Path | Any, tls_id: str) -> np.ndarray:
    """bool ``[n_links, n_links]``: the tls link pairs whose paths conflict (SUMO's foes).

    For checks independent of the signal groups, e.g. that SUMO never shows two foe links
    both 'G'.
    """
    net, source = _as_net(net)
    known = {t.getID(): t for t in net.getTrafficLights()}
    if tls_id not in known:
        raise NetworkError(f"{source} has no traffic light {tls_id!r}")
    return _tls_facts(net, known[tls_id], None, source).foes.copy()


def link_maps_for_configs(
    config: NetworkConfig | Sequence[IntersectionConfig], net: str | Path | Any, *,
    program_id: str | None = None,
) -> list[TlsLinkMap]:
    """Link maps for intersections that the user configured (instead of derived ones).

    Each intersection drives the tls named by its ``tls_id`` (or, without one, its ``id``).
    Groups without ``lanes`` take the incoming lanes of their ``sumo_links``; links in no
    group keep the state they never change in the program, else red. Raises
    :class:`~ivri.errors.ConfigError` for an unknown tls id, a link index beyond the tls's
    links, a link in two groups, or two non-conflicting groups with crossing links that the
    network's program never runs together and of which neither is a turn that gives way.
    """
    xs = config.intersections if isinstance(config, NetworkConfig) else tuple(config)
    net, source = _as_net(net)
    known = {t.getID(): t for t in net.getTrafficLights()}
    maps = []
    for x in xs:
        tls_id = x.tls_id or x.id
        if tls_id not in known:
            raise ConfigError(
                f"intersection {x.id!r}: the network has no traffic light {tls_id!r}"
                + (f" (it has {', '.join(sorted(known)[:20])})" if known else "")
            )
        facts = _tls_facts(net, known[tls_id], program_id, source)
        owner: dict[int, str] = {}
        groups = []
        for g in x.signal_groups:
            for k in g.sumo_links:
                if not 0 <= k < facts.n_links:
                    raise ConfigError(
                        f"intersection {x.id!r}: signal group {g.id!r} names SUMO link {k}, but "
                        f"traffic light {tls_id!r} has links 0..{facts.n_links - 1}"
                    )
                if k in owner:
                    raise ConfigError(
                        f"intersection {x.id!r}: SUMO link {k} is in signal groups {owner[k]!r} and {g.id!r}"
                    )
                owner[k] = g.id
            groups.append((g.id, g.mode, list(g.sumo_links)))
        index = {g.id: i for i, g in enumerate(x.signal_groups)}
        conflict = np.zeros((len(groups), len(groups)), dtype=bool)
        for c in x.conflicts:
            a, b = index[c.between[0]], index[c.between[1]]
            conflict[a, b] = conflict[b, a] = True
        fixed = {}
        for k in range(facts.n_links):
            if k not in owner:
                fixed[k] = facts.static_char(k) or "r"
        lm = _link_map(facts, groups, fixed, conflict, check=True, where=f"intersection {x.id!r}")
        # The user's lanes win where given (they may name lanes SUMO does not connect directly).
        in_lanes = tuple(
            tuple(g.lanes) if g.lanes and g.mode != "pedestrian" else lm.in_lanes[i]
            for i, g in enumerate(x.signal_groups)
        )
        maps.append(TlsLinkMap(
            tls_id=tls_id, n_links=lm.n_links, group_of_link=lm.group_of_link,
            fixed_state=lm.fixed_state, yield_to=lm.yield_to, in_lanes=in_lanes,
            out_lanes=lm.out_lanes, crossings=lm.crossings, waiting_areas=lm.waiting_areas,
            junctions=lm.junctions, group_ids=tuple(x.group_ids()),
            upstream_lanes=tuple(
                tuple(lane for lane, _ in upstream_lanes(net, g.lanes, APPROACH_DETECTION_M))
                if g.lanes and g.mode != "pedestrian" else lm.upstream_lanes[i]
                for i, g in enumerate(x.signal_groups)
            ),
            merges=lm.merges,
            exit_lanes=lm.exit_lanes,
        ))
    return maps
