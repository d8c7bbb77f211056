"""Fixed-time plans timed to demand: Webster's method on a scenario's flows, with offsets.

The fixed-time line of the national estimate compares vehicle-actuated control with a
fixed-time plan that a traffic engineer would set for the same demand, not with a plan that
gives every stage 20 s. Webster (1958, *Traffic signal settings*, Road Research Technical Paper
39; Webster & Cobbe 1966, *Traffic signals*, RRTP 56)::

    y_k  = max over the motor groups of stage k of  q_g / s_g      (critical flow ratio)
    Y    = sum_k y_k
    L    = sum_k l_k          l_k: lost time of stage k (here its intergreen transition)
    C0   = (1.5 L + 5) / (1 - Y)                                    (optimum cycle)
    g_k  = (C - L) * y_k / Y                                        (effective green)

``q_g`` is the motor flow of signal group ``g`` in pcu/h, read from the scenario's route files
(``<flow>``, ``<vehicle>``, ``<trip>``; from/to pairs are routed by shortest path with
sumolib); ``s_g`` = saturation flow per lane x the group's stop-line lanes. The cycle is kept
within [``c_min``, ``c_max``] (Webster's optimum grows without bound as Y approaches 1; 120 s is
the usual practical ceiling). Stages without motor flow (cyclists, pedestrians only) get
their minimum green from the ``fixed-time`` controller, which raises every green to the
groups' minimum green anyway.

Coordination. On a network with several intersections every intersection runs the largest
cycle of the network, and the offsets make a one-way green wave along the network's main
axis (the axis along which the intersections are spread the most): the start of green of
each intersection's busiest stage follows the first intersection's by the travel time
``distance / progression speed``, modulo the cycle.

The result is a set of parameters of the existing ``fixed-time`` controller
(``stage_green_s`` and ``offset_s``), see :func:`webster_params`.
"""

from __future__ import annotations

import contextlib
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivri.errors import ConfigError, NetworkError

__all__ = [
    "PCU",
    "WebsterPlan",
    "group_flows",
    "optimum_cycle_s",
    "progression_offsets",
    "split_greens",
    "webster_params",
    "webster_plan",
]

#: Passenger-car units per vehicle class (heavy vehicles count double; an assumption in line
#: with the usual heavy-vehicle equivalents of 1.5-2.5 in signal design).
PCU: dict[str, float] = {
    "passenger": 1.0, "private": 1.0, "taxi": 1.0, "evehicle": 1.0, "emergency": 1.0,
    "authority": 1.0, "army": 1.0, "vip": 1.0, "delivery": 1.0, "motorcycle": 0.4, "moped": 0.3,
    "truck": 2.0, "trailer": 2.5, "bus": 2.0, "coach": 2.0,
}


def optimum_cycle_s(lost_s: float, y_total: float, c_min: float = 30.0, c_max: float = 120.0) -> float:
    """Webster's optimum cycle ``(1.5 L + 5) / (1 - Y)``, kept within ``[c_min, c_max]``.

    ``Y >= 1`` (oversaturated) gives ``c_max``.
    """
    if lost_s < 0.0 or y_total < 0.0:
        raise ConfigError(f"webster: lost time and flow ratios must be >= 0, got L={lost_s}, Y={y_total}")
    if y_total >= 1.0:
        return float(c_max)
    return float(min(max((1.5 * lost_s + 5.0) / (1.0 - y_total), c_min), c_max))


def split_greens(cycle_s: float, lost_s: float, y: Iterable[float]) -> np.ndarray:
    """Effective greens ``(C - L) * y_k / Y`` (equal shares when no stage carries flow)."""
    ys = np.asarray(list(y), dtype=float)
    avail = max(cycle_s - lost_s, 0.0)
    total = ys.sum()
    if ys.size == 0:
        return ys
    if total <= 0.0:
        return np.full(ys.size, avail / ys.size)
    return avail * ys / total


def _is_motor(vclass: str) -> bool:
    return vclass not in ("bicycle", "pedestrian", "tram", "rail_urban", "rail", "rail_electric",
                          "rail_fast", "ship")


def _flow_count(a: Mapping[str, str], horizon_s: float) -> float:
    """Expected vehicles of one ``<flow>`` over its [begin, end] (SUMO's four ways to say it)."""
    from ivri.timefmt import parse_time_s

    begin = parse_time_s(a.get("begin", "0"))
    end = parse_time_s(a["end"]) if "end" in a else horizon_s
    span = max(end - begin, 0.0)
    if "number" in a:
        return float(a["number"])
    if "vehsPerHour" in a:
        return float(a["vehsPerHour"]) * span / 3600.0
    if "period" in a:
        p = a["period"].strip()
        if p.startswith("exp(") and p.endswith(")"):
            return float(p[4:-1]) * span  # Poisson arrivals with this rate per second
        return span / float(p)
    if "probability" in a:
        return float(a["probability"]) * span
    raise NetworkError(f"flow {a.get('id', '?')!r}: no number, vehsPerHour, period or probability")


@dataclass
class _Demand:
    #: (edge sequence, pcu per hour)
    paths: list[tuple[tuple[str, ...], float]] = field(default_factory=list)


def _read_demand(route_files: Iterable[Path], net: Any, horizon_s: float) -> _Demand:
    """Motor demand of the route files as edge paths with pcu per hour over ``horizon_s``."""
    vclass_of: dict[str, str] = {"DEFAULT_VEHTYPE": "passenger"}
    dist_members: dict[str, list[str]] = {}
    routes: dict[str, tuple[str, ...]] = {}
    demand = _Demand()
    hours = horizon_s / 3600.0
    path_cache: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def pcu_of(type_id: str | None) -> tuple[float, str]:
        t = type_id or "DEFAULT_VEHTYPE"
        if t in dist_members:
            vals = [pcu_of(m) for m in dist_members[t]]
            motor = [v for v in vals if _is_motor(v[1])]
            return (float(np.mean([v[0] for v in motor])), "passenger") if motor else (0.0, "bicycle")
        vc = vclass_of.get(t, "passenger")
        return PCU.get(vc, 1.0), vc

    def routed(frm: str, to: str, vclass: str) -> tuple[str, ...]:
        key = (frm, to, vclass)
        if key not in path_cache:
            try:
                e1, e2 = net.getEdge(frm), net.getEdge(to)
            except KeyError as exc:
                raise NetworkError(f"demand names an edge that is not in the network: {exc}") from None
            found, _ = net.getShortestPath(e1, e2, vClass=vclass)
            path_cache[key] = tuple(e.getID() for e in found) if found else ()
        return path_cache[key]

    for path in route_files:
        dist_stack: list[str] = []
        try:
            events = ET.iterparse(path, events=("start", "end"))
            for event, elem in events:
                tag = elem.tag
                if event == "start":
                    if tag == "vTypeDistribution":
                        dist_stack.append(elem.get("id", ""))
                        dist_members[dist_stack[-1]] = []
                    elif tag == "vType":
                        vclass_of[elem.get("id", "")] = elem.get("vClass", "passenger")
                        if dist_stack:
                            dist_members[dist_stack[-1]].append(elem.get("id", ""))
                    continue
                if tag == "vTypeDistribution":
                    dist_stack.pop()
                    if elem.get("vTypes"):
                        dist_members[elem.get("id", "")] = elem.get("vTypes", "").split()
                elif tag == "route" and elem.get("id"):
                    routes[elem.get("id", "")] = tuple(elem.get("edges", "").split())
                elif tag in ("flow", "vehicle", "trip"):
                    pcu, vclass = pcu_of(elem.get("type"))
                    if pcu <= 0.0 or not _is_motor(vclass):
                        continue
                    count = _flow_count(elem.attrib, horizon_s) if tag == "flow" else 1.0
                    child = elem.find("route")
                    if child is not None:
                        edges = tuple(child.get("edges", "").split())
                    elif elem.get("route"):
                        edges = routes.get(elem.get("route", ""), ())
                    elif elem.get("from") and elem.get("to"):
                        edges = routed(elem.get("from", ""), elem.get("to", ""), vclass)
                    else:
                        edges = ()
                    if len(edges) >= 2:
                        demand.paths.append((edges, pcu * count / hours))
                    elem.clear()
        except ET.ParseError as exc:
            raise NetworkError(f"route file {path} cannot be read: {exc}") from None
    return demand


def group_flows(sumocfg: Path) -> tuple[Any, list[Any], list[Any], dict[str, np.ndarray]]:
    """Motor flow per signal group [pcu/h] of every intersection of a scenario.

    Returns the sumolib network, the intersection configs and link maps (as the SUMO bridge
    derives them) and ``{intersection id: float[G]}``.
    """
    from ivri.sumo.network import derive_intersections, read_net
    from ivri.sumo.sumocfg import read_sumocfg

    cfg = read_sumocfg(sumocfg)
    net = read_net(cfg.net_file)
    configs, maps = derive_intersections(net)
    horizon = (cfg.end_s or 3600.0) - cfg.begin_s
    demand = _read_demand(cfg.route_files, net, max(horizon, 1.0))
    index = {m.tls_id: k for k, m in enumerate(maps)}
    flows = {x.id: np.zeros(len(x.signal_groups)) for x in configs}
    for edges, q in demand.paths:
        for a, b in itertools.pairwise(edges):
            try:
                conns = net.getEdge(a).getOutgoing().get(net.getEdge(b), [])
            except KeyError:
                continue
            hits = [(c.getTLSID(), c.getTLLinkIndex()) for c in conns if c.getTLSID() in index]
            for tls, link in hits:
                m = maps[index[tls]]
                g = int(m.group_of_link[link]) if 0 <= link < m.n_links else -1
                if g >= 0:
                    flows[configs[index[tls]].id][g] += q / len(hits)
    return net, configs, maps, flows


@dataclass(frozen=True)
class WebsterPlan:
    """The timing of one network: per intersection its stage greens, cycle and offset."""

    stage_green_s: dict[str, list[float]]
    offset_s: dict[str, float]
    cycle_s: dict[str, float]
    y_total: dict[str, float]
    lost_s: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        def r(d: dict[str, Any]) -> dict[str, Any]:
            return {k: (round(v, 2) if isinstance(v, float) else [round(x, 2) for x in v])
                    for k, v in d.items()}

        return {"stage_green_s": r(self.stage_green_s), "offset_s": r(self.offset_s),
                "cycle_s": r(self.cycle_s), "Y": r(self.y_total), "L_s": r(self.lost_s)}


def progression_offsets(positions: Mapping[str, tuple[float, float]], speed_mps: float,
                        cycle_s: float) -> dict[str, float]:
    """One-way green-wave offsets along the axis where the intersections spread the most:
    ``(distance from the first one / speed) mod cycle`` (0 for a single intersection)."""
    if speed_mps <= 0.0:
        raise ConfigError(f"webster: progression speed must be positive, got {speed_mps}")
    if len(positions) < 2:
        return dict.fromkeys(positions, 0.0)
    xy = np.array(list(positions.values()), dtype=float)
    axis = int(np.argmax(xy.max(axis=0) - xy.min(axis=0)))
    start = xy[:, axis].min()
    return {k: float(((p[axis] - start) / speed_mps) % cycle_s) for k, p in positions.items()}


def webster_plan(sumocfg: Path, *, saturation_pcu_h_lane: float = 1800.0, c_min: float = 30.0,
                 c_max: float = 120.0, progression_speed_mps: float | None = None) -> WebsterPlan:
    """Webster timing of every intersection of a scenario (see the module docstring).

    ``progression_speed_mps`` defaults to the mean speed limit of the motor lanes feeding
    the signal groups.
    """
    from ivri.controllers._common import transition_s
    from ivri.core.compile import compile_network
    from ivri.core.idx import MODE_CODES

    if saturation_pcu_h_lane <= 0.0:
        raise ConfigError(f"webster: saturation flow must be positive, got {saturation_pcu_h_lane}")
    net, configs, maps, flows = group_flows(Path(sumocfg))
    cn = compile_network(configs)
    t = cn.timing
    motor = np.isin(cn.mode, [MODE_CODES["motor"], MODE_CODES["bus"]])
    greens: dict[str, list[float]] = {}
    cycles: dict[str, float] = {}
    ys: dict[str, float] = {}
    lost: dict[str, float] = {}
    y_stage: dict[str, np.ndarray] = {}
    trans_of: dict[str, np.ndarray] = {}
    speeds: list[float] = []
    for i, x in enumerate(cn.intersection_ids):
        m = maps[i]
        n_s = int(cn.n_stages[i])
        n_g = len(configs[i].signal_groups)
        lanes = np.array([max(len(m.in_lanes[g]), 1) for g in range(n_g)], dtype=float)
        y_g = flows[x] / (saturation_pcu_h_lane * lanes)
        y_k = np.zeros(n_s)
        trans = np.zeros(n_s)
        for k in range(n_s):
            groups = cn.stages[i, k, :n_g] & t.valid[i, :n_g]
            sel = groups & motor[i, :n_g]
            y_k[k] = float(y_g[sel].max(initial=0.0))
            prev = cn.stages[i, (k - 1) % n_s] & t.valid[i]
            cur = cn.stages[i, k] & t.valid[i]
            trans[k] = transition_s(t, i, prev & ~cur, cur & ~prev)
        for g in range(n_g):
            for lane in m.in_lanes[g]:
                with contextlib.suppress(KeyError):  # a lane the network file lacks
                    speeds.append(float(net.getLane(lane).getSpeed()))
        y_stage[x] = y_k
        trans_of[x] = trans
        ys[x] = float(y_k.sum())
        lost[x] = float(trans.sum())
        cycles[x] = optimum_cycle_s(lost[x], ys[x], c_min, c_max)
    # A coordinated network runs one cycle: the longest.
    common = max(cycles.values())
    if len(cycles) > 1:
        cycles = dict.fromkeys(cycles, common)
    speed = progression_speed_mps or (float(np.mean(speeds)) if speeds else 50.0 / 3.6)
    offsets: dict[str, float] = {}
    positions = {}
    for i, x in enumerate(cn.intersection_ids):
        g = split_greens(cycles[x], lost[x], y_stage[x])
        greens[x] = [float(max(v, 1.0)) for v in g]
        node = net.getNode(maps[i].junctions[0]) if maps[i].junctions else None
        positions[x] = tuple(node.getCoord()[:2]) if node is not None else (0.0, 0.0)
    wave = progression_offsets(positions, speed, common)
    for i, x in enumerate(cn.intersection_ids):
        # The wave times the busiest stage; the controller's offset is where stage 0's green
        # starts, so shift by the busiest stage's green start within the cycle.
        n_s = int(cn.n_stages[i])
        k_main = int(np.argmax(y_stage[x])) if n_s else 0
        g = greens[x]
        start_main = sum(g[:k_main]) + float(trans_of[x][1:k_main + 1].sum())
        offsets[x] = float((wave[x] - start_main) % cycles[x]) if len(cycles) > 1 else 0.0
    return WebsterPlan(stage_green_s=greens, offset_s=offsets, cycle_s=cycles, y_total=ys, lost_s=lost)


def webster_params(sumocfg: Path, **kwargs: Any) -> dict[str, Any]:
    """Parameters of the ``fixed-time`` controller that run the Webster plan of a scenario."""
    plan = webster_plan(sumocfg, **kwargs)
    return {"stage_green_s": {k: [round(v, 1) for v in g] for k, g in plan.stage_green_s.items()},
            "offset_s": {k: round(v, 1) for k, v in plan.offset_s.items()}}
