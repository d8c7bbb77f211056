#!/usr/bin/env python3
"""Build the bundled SUMO scenarios of ivri from plain XML.

Run from anywhere::

    python sumo_networks/build.py            # (re)build all scenarios
    python sumo_networks/build.py --check    # build, then run every .sumocfg and report
    python sumo_networks/build.py grid       # only some scenarios

For each scenario ``<name>`` this writes into ``sumo_networks/<name>/``:

* ``<name>.nod.xml``, ``<name>.edg.xml``, ``<name>.con.xml``   plain XML (input of netconvert)
* ``<name>.net.xml``                                          the network (netconvert output)
* ``<name>.add.xml``                                          bus stops
* ``<name>.peak.rou.xml``, ``<name>.offpeak.rou.xml``         demand (vTypes + flows)
* ``<name>.peak.sumocfg``, ``<name>.offpeak.sumocfg``, ``<name>.short.sumocfg``

Everything is deterministic: the XML is generated from the tables below, netconvert gets
fixed options and its date stamp is removed from the output, and the demand uses Poisson
flows (``period="exp(rate)"``) whose random draws come from SUMO's ``--seed`` (42 in every
sumocfg). Running the script twice gives byte-identical files.

Layout conventions (all scenarios):

* right-hand traffic, 50 km/h on car edges; car edges ``A_B`` (from node A to node B),
  2 car lanes per direction on main roads (lane 1 = left-turn only, lane 0 = through + right)
  unless stated otherwise;
* a one-way cycle path on each side of every road, as a separate edge ``bk_A_B``
  (lane 1 ``allow="bicycle"``) with a sidewalk (lane 0 ``allow="pedestrian"``) on its outer
  side; it has its own stop line and its own signal links at each traffic light;
* a signalised pedestrian crossing over each arm of every signalised intersection
  (cycle path + carriageway + cycle path);
* every intersection is a traffic light of SUMO's ``actuated`` type (netconvert
  ``--tls.default-type actuated``), 4 s yellow, SUMO's default phase layout
  (``opposites``) and default left-turn handling: permissive left turns where left turners
  share a lane, an extra protected left phase where they have their own lane.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------------------
CAR_SPEED = 13.89  # 50 km/h
BIKE_PATH_SPEED = 8.33  # speed limit of the cycle path (bikes are limited by their vType)
CAR_LANE_WIDTH = 3.2
BIKE_LANE_WIDTH = 2.0
SIDEWALK_WIDTH = 2.0
VERGE = 1.5  # space between carriageway and cycle path
CAR_CLASSES = "passenger taxi bus coach delivery truck trailer motorcycle emergency"
YELLOW = 4  # s, >= 3 s; 4 s is the rule of thumb up to 50-60 km/h
SEED = 42
# Cycle paths keep SUMO's direct left-turn links: without them netconvert pairs the approaches
# differently and builds a poor 4-stage program. The demand has no left-turning cyclists,
# though: a cyclist waiting on a one-lane cycle path for a gap in oncoming traffic blocks
# every cyclist behind him (SUMO's indirect two-stage bike turns deadlock with the straight
# cyclists instead). Cyclist demand goes straight on or turns right; grid routes are forced
# with via edges.
BIKE_LEFT_TURNS = True

NETCONVERT_OPTIONS = [
    "--tls.default-type",
    "actuated",
    f"--tls.yellow.time={YELLOW}",
    "--no-turnarounds",
    "true",
    "--offset.disable-normalization",
    "true",
    "--junctions.corner-detail",
    "5",
    "--walkingareas",
    "true",
    "--output.original-names",
    "false",
]

# vehicle and person types shared by all scenarios (HBEFA4 classes of SUMO 1.28)
VTYPES = """\
    <!-- motor traffic: HBEFA4 emission classes (SUMO's default model since 1.23) -->
    <vType id="car" vClass="passenger" emissionClass="HBEFA4/PC_petrol_Euro-6d" speedDev="0.1" color="0.8,0.8,0.8">
        <param key="ivri.mode" value="car"/>
        <param key="ivri.fuel" value="petrol"/>
    </vType>
    <vType id="car_diesel" vClass="passenger" emissionClass="HBEFA4/PC_diesel_Euro-6d" speedDev="0.1" color="0.5,0.5,0.5">
        <param key="ivri.mode" value="car"/>
        <param key="ivri.fuel" value="diesel"/>
    </vType>
    <vType id="truck" vClass="truck" emissionClass="HBEFA4/RT_gt14-20t_Euro-VI_D-E" length="10.0" speedDev="0.05" color="0.2,0.4,0.8">
        <param key="ivri.mode" value="truck"/>
        <param key="ivri.fuel" value="diesel"/>
    </vType>
    <vType id="truck_heavy" vClass="trailer" emissionClass="HBEFA4/TT_AT_gt34-40t_Euro-VI_D-E" length="16.5" speedDev="0.05" color="0.1,0.2,0.6">
        <param key="ivri.mode" value="truck"/>
        <param key="ivri.fuel" value="diesel"/>
    </vType>
    <vType id="bus" vClass="bus" emissionClass="HBEFA4/UBus_Std_gt15-18t_Euro-VI_D-E" length="12.0" speedDev="0.05" color="1,0.6,0">
        <param key="ivri.mode" value="bus"/>
        <param key="ivri.fuel" value="diesel"/>
    </vType>
    <vType id="emergency" vClass="emergency" emissionClass="HBEFA4/LCV_diesel_N1-III_Euro-6d" length="6.5" speedFactor="1.0" speedDev="0" lcSpeedGain="0" guiShape="emergency" color="1,0,0">
        <param key="has.bluelight.device" value="true"/>
        <param key="ivri.mode" value="emergency"/>
        <param key="ivri.fuel" value="diesel"/>
    </vType>
    <!-- cyclists and pedestrians -->
    <vType id="bike" vClass="bicycle" emissionClass="Zero" speedDev="0.1" color="0,0.7,0">
        <param key="ivri.mode" value="bicycle"/>
    </vType>
    <vType id="ped" vClass="pedestrian" speedDev="0.1">
        <param key="ivri.mode" value="pedestrian"/>
    </vType>
    <vType id="ped_slow" vClass="pedestrian" desiredMaxSpeed="0.7" maxSpeed="0.9" speedDev="0.05" color="1,0,1">
        <param key="ivri.mode" value="pedestrian"/>
        <param key="ivri.slow" value="1"/>
    </vType>
    <!-- fleet mixes for general motor traffic -->
    <vTypeDistribution id="mix_main" vTypes="car car_diesel truck truck_heavy" probabilities="0.77 0.15 0.06 0.02"/>
    <vTypeDistribution id="mix_side" vTypes="car car_diesel truck" probabilities="0.81 0.15 0.04"/>
    <vTypeDistribution id="mix_peds" vTypes="ped ped_slow" probabilities="0.85 0.15"/>
"""

OFFPEAK_FACTOR = 0.4
# SUMO's generated programs have no all-red and the junctions here are large (the cycle
# crossings lie inside them), so a vehicle caught inside by the next stage can deadlock with
# the vehicles of that stage. Vehicles ignore such a blocker after it has stood for 30 s.
EXTRA_PROCESSING = '\n        <ignore-junction-blocker value="30"/>'
# The bluelight device lets emergency vehicles pass red lights. Its reaction of the traffic
# around them (a rescue lane) needs the sublane model; in the lane-based model used here the
# reacting vehicles stop changing lanes, and a car that still has to reach its turn lane then
# blocks the emergency vehicle until it teleports (seen in about 1 run in 5). So: no reaction.
BLUELIGHT_REACTIONDIST = 0
PED_APPROACH = 50.0  # m walked on the sidewalk before the first and after the last crossing


# --------------------------------------------------------------------------------------
# network model
# --------------------------------------------------------------------------------------
@dataclass
class Node:
    id: str
    x: float
    y: float
    tls: bool


@dataclass
class Road:
    """A two-way road between nodes a and b: car edges a_b / b_a and cycle paths."""

    a: str
    b: str
    lanes_ab: int = 2
    lanes_ba: int = 2
    speed: float = CAR_SPEED
    name: str = ""
    priority: int = 2  # 3 for main roads

    def lanes(self, frm: str) -> int:
        return self.lanes_ab if frm == self.a else self.lanes_ba


@dataclass
class Net:
    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    roads: list[Road] = field(default_factory=list)
    bus_stops: list[tuple[str, str, float]] = field(default_factory=list)  # id, edge, pos

    def node(self, nid: str, x: float, y: float, tls: bool = False) -> None:
        self.nodes[nid] = Node(nid, x, y, tls)

    def road(
        self, a: str, b: str, lanes_ab: int = 2, lanes_ba: int | None = None, name: str = "", priority: int = 2
    ) -> None:
        self.roads.append(
            Road(a, b, lanes_ab, lanes_ab if lanes_ba is None else lanes_ba, name=name, priority=priority)
        )

    # geometry helpers
    def unit(self, a: str, b: str) -> tuple[float, float]:
        na, nb = self.nodes[a], self.nodes[b]
        dx, dy = nb.x - na.x, nb.y - na.y
        d = math.hypot(dx, dy)
        return dx / d, dy / d

    def roads_at(self, nid: str) -> list[Road]:
        return [r for r in self.roads if nid in (r.a, r.b)]

    def offset(self, road: Road) -> float:
        """Lateral distance from the road centre line to the centre of a cycle-path edge."""
        car = max(road.lanes_ab, road.lanes_ba) * CAR_LANE_WIDTH
        return car + VERGE + (BIKE_LANE_WIDTH + SIDEWALK_WIDTH) / 2

    def setback(self, nid: str) -> float:
        """Where cycle paths end at a signalised node (distance from the node centre)."""
        return max(self.offset(r) for r in self.roads_at(nid)) + (BIKE_LANE_WIDTH + SIDEWALK_WIDTH) / 2 + 2.0


def car_edge(a: str, b: str) -> str:
    return f"{a}_{b}"


def bike_edge(a: str, b: str) -> str:
    return f"bk_{a}_{b}"


def fmt(v: float) -> str:
    s = f"{v:.2f}"
    return "0.00" if s == "-0.00" else s


def turn(net: Net, a: str, via: str, b: str) -> str:
    """'s', 'l' or 'r' for a movement a -> via -> b."""
    ux, uy = net.unit(a, via)
    vx, vy = net.unit(via, b)
    cross = ux * vy - uy * vx
    dot = ux * vx + uy * vy
    if abs(cross) < 0.35 and dot > 0:
        return "s"
    return "l" if cross > 0 else "r"


def write_plain(net: Net, out: Path) -> None:
    nodes = ['<nodes version="1.20">']
    extra_nodes: list[str] = []
    edges = ['<edges version="1.20">']
    cons = ['<connections version="1.20">']

    for n in sorted(net.nodes.values(), key=lambda n: n.id):
        if n.tls:
            nodes.append(f'    <node id="{n.id}" x="{fmt(n.x)}" y="{fmt(n.y)}" type="traffic_light" tl="{n.id}"/>')
        else:
            nodes.append(f'    <node id="{n.id}" x="{fmt(n.x)}" y="{fmt(n.y)}" type="priority"/>')

    for r in net.roads:
        for frm, to in ((r.a, r.b), (r.b, r.a)):
            nl = r.lanes(frm)
            name = f' name="{r.name}"' if r.name else ""
            edges.append(
                f'    <edge id="{car_edge(frm, to)}" from="{frm}" to="{to}" priority="{r.priority}" numLanes="{nl}" '
                f'speed="{r.speed:.2f}" width="{CAR_LANE_WIDTH}" allow="{CAR_CLASSES}"{name}/>'
            )
            # cycle path + sidewalk on the right-hand side of travel direction
            ux, uy = net.unit(frm, to)
            rx, ry = uy, -ux
            off = net.offset(r)
            a, b = net.nodes[frm], net.nodes[to]
            sa = net.setback(frm) if a.tls else 0.0
            sb = net.setback(to) if b.tls else 0.0
            p0 = (a.x + rx * off + ux * sa, a.y + ry * off + uy * sa)
            p1 = (b.x + rx * off - ux * sb, b.y + ry * off - uy * sb)
            bfrom, bto = frm, to
            if not a.tls:
                bfrom = f"{frm}_{bike_edge(frm, to)}"
                extra_nodes.append(f'    <node id="{bfrom}" x="{fmt(p0[0])}" y="{fmt(p0[1])}" type="priority"/>')
            if not b.tls:
                bto = f"{to}_{bike_edge(frm, to)}"
                extra_nodes.append(f'    <node id="{bto}" x="{fmt(p1[0])}" y="{fmt(p1[1])}" type="priority"/>')
            edges.append(
                f'    <edge id="{bike_edge(frm, to)}" from="{bfrom}" to="{bto}" priority="{r.priority}" numLanes="2" '
                f'speed="{BIKE_PATH_SPEED:.2f}" spreadType="center" '
                f'shape="{fmt(p0[0])},{fmt(p0[1])} {fmt(p1[0])},{fmt(p1[1])}">\n'
                f'        <lane index="0" allow="pedestrian" width="{SIDEWALK_WIDTH}"/>\n'
                f'        <lane index="1" allow="bicycle" width="{BIKE_LANE_WIDTH}"/>\n'
                f"    </edge>"
            )

    # car connections at signalised nodes: own left-turn lane where there are 2 lanes
    for n in sorted(net.nodes.values(), key=lambda n: n.id):
        if not n.tls:
            continue
        neigh = [r.b if r.a == n.id else r.a for r in net.roads_at(n.id)]
        road_of = {(r.b if r.a == n.id else r.a): r for r in net.roads_at(n.id)}
        for src in neigh:
            nin = road_of[src].lanes(src)
            moves = {turn(net, src, n.id, dst): dst for dst in neigh if dst != src}
            for mv in "lsr":
                if mv not in moves:
                    continue
                dst = moves[mv]
                nout = road_of[dst].lanes(n.id)
                if nin == 1:
                    pairs = [(0, nout - 1 if mv == "l" else 0)]
                elif mv == "l":
                    pairs = [(nin - 1, nout - 1)]
                elif mv == "r":
                    pairs = [(0, 0)]
                else:  # straight: lane 0, plus lane 1 where there is no left turn
                    pairs = [(0, 0)] if "l" in moves else [(i, min(i, nout - 1)) for i in range(nin)]
                for fl, tl in pairs:
                    cons.append(
                        f'    <connection from="{car_edge(src, n.id)}" to="{car_edge(n.id, dst)}" '
                        f'fromLane="{fl}" toLane="{tl}"/>'
                    )
        # cycle paths: straight and right only (see BIKE_LEFT_TURNS)
        for src in neigh:
            moves = {turn(net, src, n.id, dst): dst for dst in neigh if dst != src}
            for mv in "lsr" if BIKE_LEFT_TURNS else "sr":
                if mv in moves:
                    cons.append(
                        f'    <connection from="{bike_edge(src, n.id)}" to="{bike_edge(n.id, moves[mv])}" '
                        f'fromLane="1" toLane="1"/>'
                    )
        # one pedestrian crossing per arm: cycle path in, carriageway, cycle path out
        for src in neigh:
            crossed = [bike_edge(src, n.id), car_edge(src, n.id), car_edge(n.id, src), bike_edge(n.id, src)]
            cons.append(f'    <crossing node="{n.id}" edges="{" ".join(crossed)}"/>')

    nodes.extend(sorted(extra_nodes))
    nodes.append("</nodes>")
    edges.append("</edges>")
    cons.append("</connections>")
    header = '<?xml version="1.0" encoding="UTF-8"?>\n<!-- generated by sumo_networks/build.py, do not edit -->\n'
    (out / f"{net.name}.nod.xml").write_text(header + "\n".join(nodes) + "\n")
    (out / f"{net.name}.edg.xml").write_text(header + "\n".join(edges) + "\n")
    (out / f"{net.name}.con.xml").write_text(header + "\n".join(cons) + "\n")

    adds = ["<additional>"]
    for sid, edge, pos in net.bus_stops:
        adds.append(
            f'    <busStop id="{sid}" lane="{edge}_0" startPos="{pos:.1f}" endPos="{pos + 25:.1f}" '
            f'lines="1" friendlyPos="true"/>'
        )
    adds.append("</additional>")
    (out / f"{net.name}.add.xml").write_text(header + "\n".join(adds) + "\n")


# --------------------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------------------
def sumo_binary(name: str) -> str:
    exe = shutil.which(name)
    if exe:
        return exe
    import sumo  # the eclipse-sumo wheel

    return os.path.join(sumo.SUMO_HOME, "bin", name)


def run_netconvert(net: Net, out: Path) -> None:
    n = net.name
    cmd = [
        sumo_binary("netconvert"),
        "--node-files",
        f"{n}.nod.xml",
        "--edge-files",
        f"{n}.edg.xml",
        "--connection-files",
        f"{n}.con.xml",
        "--output-file",
        f"{n}.net.xml",
        *NETCONVERT_OPTIONS,
    ]
    res = subprocess.run(cmd, cwd=out, capture_output=True, text=True, check=False)
    msg = (res.stdout + res.stderr).strip()
    if res.returncode != 0:
        raise RuntimeError(f"netconvert failed for {n}:\n{msg}")
    warnings = [line for line in msg.splitlines() if "Warning" in line or "Error" in line]
    for w in warnings:
        print(f"  netconvert {n}: {w}")
    # strip the date stamp so that rebuilding gives identical files
    p = out / f"{n}.net.xml"
    text = p.read_text()
    text = re.sub(r"<!-- generated on [^\n]* by Eclipse SUMO", "<!-- generated by Eclipse SUMO", text, count=1)
    p.write_text(text)
    fix_undetected_phases(p)


_UNDETECTED_PHASE = re.compile(r"At actuated tlLogic '([^']+)', actuated phase (\d+) has no controlling detector")


def fix_undetected_phases(net_file: Path) -> None:
    """Make the actuated phases that SUMO has no detector for fixed at their minimum duration.

    Where only minor links ('g') are green in an actuated phase (the corridor's short
    left-turn phase), SUMO finds no loop that may extend it, warns at every start ("actuated
    phase 3 has no controlling detector") and runs it at its minimum duration. Written as a
    fixed phase of that duration it runs the same, without the warning. SUMO itself says which
    phases these are: the network is loaded once and its warnings are read.
    """
    res = subprocess.run([sumo_binary("sumo"), "-n", str(net_file), "--begin", "0", "--end", "0",
                          "--no-step-log"], capture_output=True, text=True, check=False)
    found = {(m.group(1), int(m.group(2))) for m in _UNDETECTED_PHASE.finditer(res.stdout + res.stderr)}
    if not found:
        return
    lines = net_file.read_text().splitlines(keepends=True)
    tls, k = None, 0
    for n, line in enumerate(lines):
        opened = re.search(r'<tlLogic id="([^"]+)"', line)
        if opened:
            tls, k = opened.group(1), 0
        elif "<phase " in line and tls is not None:
            if (tls, k) in found:
                m = re.search(r'minDur="([\d.]+)"', line)
                line = re.sub(r'duration="[\d.]+"', f'duration="{m.group(1)}"', line, count=1)
                lines[n] = re.sub(r' minDur="[\d.]+" maxDur="[\d.]+"', "", line)
            k += 1
    net_file.write_text("".join(lines))


def edge_lengths(out: Path, name: str) -> dict[str, float]:
    lengths: dict[str, float] = {}
    for _, el in ET.iterparse(out / f"{name}.net.xml"):
        if el.tag == "edge" and el.get("function") is None:
            lanes = el.findall("lane")
            if lanes:
                lengths[el.get("id")] = float(lanes[0].get("length"))
        if el.tag in ("edge",):
            el.clear()
    return lengths


# --------------------------------------------------------------------------------------
# demand
# --------------------------------------------------------------------------------------
@dataclass
class Demand:
    """Peak-hour demand of one scenario, in vehicles (persons) per hour."""

    cars: list[tuple[str, str, float, str]] = field(default_factory=list)  # from, to, veh/h, mix
    # cyclists: (bike edge from, to, /h[, via edges]); straight on and right turns only
    bikes: list[tuple] = field(default_factory=list)
    # walks: (from edge, start near its end?, to edge, stop near its end?, persons/h)
    peds: list[tuple[str, bool, str, bool, float]] = field(default_factory=list)
    buses: list[tuple[str, str, str, float, list[str]]] = field(default_factory=list)  # id, from, to, period s, stops
    emergency: list[tuple[float, str, str]] = field(default_factory=list)  # depart, from, to


def write_routes(name: str, out: Path, dem: Demand, variant: str) -> dict[str, float]:
    f = 1.0 if variant == "peak" else OFFPEAK_FACTOR
    lengths = edge_lengths(out, name)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<!-- generated by sumo_networks/build.py: {name}, {variant} demand; Poisson flows drawn with SUMO's seed -->",
        (
            '<routes xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/routes_file.xsd">'
        ),
        VTYPES,
    ]
    totals = {"motor": 0.0, "bicycle": 0.0, "pedestrian": 0.0, "bus": 0.0, "emergency": 0.0}

    def rate(per_hour: float) -> str:
        return f"exp({per_hour / 3600.0:.6f})"

    for frm, to, q, mix in dem.cars:
        q *= f
        if q <= 0:
            continue
        totals["motor"] += q
        lines.append(
            f'    <flow id="f_{frm}__{to}" type="{mix}" begin="0" end="3600" period="{rate(q)}" '
            f'from="{frm}" to="{to}" departLane="best" departSpeed="max"/>'
        )
    for frm, to, q, *via in dem.bikes:
        q *= f
        if q <= 0:
            continue
        totals["bicycle"] += q
        via_attr = f' via="{" ".join(via[0])}"' if via and via[0] else ""
        lines.append(
            f'    <flow id="b_{frm}__{to}" type="bike" begin="0" end="3600" period="{rate(q)}" '
            f'from="{frm}" to="{to}"{via_attr} departLane="best" departSpeed="max"/>'
        )
    for k, (frm, frm_end, to, to_end, q) in enumerate(dem.peds):
        q *= f
        if q <= 0:
            continue
        totals["pedestrian"] += q
        # start ~PED_APPROACH m before the first crossing and end as far after the last one
        dpos = max(0.0, lengths[frm] - PED_APPROACH) if frm_end else min(PED_APPROACH, lengths[frm])
        apos = max(0.0, lengths[to] - PED_APPROACH) if to_end else min(PED_APPROACH, lengths[to])
        lines.append(
            f'    <personFlow id="p{k}_{frm}__{to}" type="mix_peds" begin="0" end="3600" period="{rate(q)}" '
            f'departPos="{dpos:.1f}">\n'
            f'        <walk from="{frm}" to="{to}" arrivalPos="{apos:.1f}"/>\n'
            f"    </personFlow>"
        )
    # Buses and emergency vehicles by departure: SUMO drops a vehicle that departs before one
    # it has already read ("Route file should be sorted by departure time, ignoring ...").
    timed: list[tuple[float, str]] = []
    for bid, frm, to, period, stops in dem.buses:
        if variant != "peak":
            period *= 2  # half the frequency off-peak
        totals["bus"] += 3600.0 / period
        # No ``line``: no person rides a bus, and a line makes SUMO's person router warn at every
        # start that it "has less than two usable stops" (the stops have no sidewalk access).
        stop_xml = "".join(f'\n        <stop busStop="{s}" duration="20"/>' for s in stops)
        timed.append((period / 3,
            (f'    <flow id="{bid}" type="bus" begin="{period / 3:.0f}" end="3600" period="{period:.0f}" '
            f'from="{frm}" to="{to}" departLane="best" departSpeed="max">{stop_xml}\n    </flow>')
        ))
    for i, (dep, frm, to) in enumerate(sorted(dem.emergency)):
        totals["emergency"] += 1
        timed.append((dep,
            (f'    <trip id="ev_{i}" type="emergency" depart="{dep:.0f}" from="{frm}" to="{to}" '
            f'departLane="best" departSpeed="max"/>')
        ))
    lines.extend(xml for _, xml in sorted(timed, key=lambda e: e[0]))
    lines.append("</routes>")
    (out / f"{name}.{variant}.rou.xml").write_text("\n".join(lines) + "\n")
    return totals


def write_cfgs(name: str, out: Path) -> None:
    for variant, rou, end in (("peak", "peak", 3600), ("offpeak", "offpeak", 3600), ("short", "peak", 600)):
        cfg = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by sumo_networks/build.py: {name}, variant {variant} -->
<configuration xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/sumoConfiguration.xsd">
    <input>
        <net-file value="{name}.net.xml"/>
        <route-files value="{name}.{rou}.rou.xml"/>
        <additional-files value="{name}.add.xml"/>
    </input>
    <time>
        <begin value="0"/>
        <end value="{end}"/>
        <step-length value="1"/>
    </time>
    <processing>
        <time-to-teleport value="300"/>{EXTRA_PROCESSING}
    </processing>
    <random_number>
        <seed value="{SEED}"/>
    </random_number>
    <bluelight_device>
        <device.bluelight.reactiondist value="{BLUELIGHT_REACTIONDIST}"/>
    </bluelight_device>
</configuration>
"""
        (out / f"{name}.{variant}.sumocfg").write_text(cfg)


# --------------------------------------------------------------------------------------
# demand helpers
# --------------------------------------------------------------------------------------
def od_from_entries(
    net: Net,
    entries: dict[str, float],
    weights: dict[str, float],
    mix: dict[str, str],
    via: dict[str, str],
) -> list[tuple[str, str, float, str]]:
    """Car flows between fringe nodes: each entry's volume split over the other fringes.

    entries: fringe node -> veh/h entering; weights: fringe node -> attraction;
    via: fringe node -> its (single) neighbouring node.
    """
    flows = []
    for o, q in entries.items():
        dests = {d: w for d, w in weights.items() if d != o}
        tot = sum(dests.values())
        for d, w in dests.items():
            flows.append((car_edge(o, via[o]), car_edge(via[d], d), q * w / tot, mix[o]))
    return flows


def arm_crossing(n: str, x: str, q: float) -> list[tuple[str, bool, str, bool, float]]:
    """Pedestrians crossing arm n-x of node n, q persons/h in each direction."""
    return [(bike_edge(x, n), True, bike_edge(n, x), False, q), (bike_edge(n, x), False, bike_edge(x, n), True, q)]


def fringe_via(net: Net) -> dict[str, str]:
    via = {}
    for n in net.nodes.values():
        if not n.tls:
            (r,) = net.roads_at(n.id)
            via[n.id] = r.b if r.a == n.id else r.a
    return via


# --------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------
def crossing() -> tuple[Net, Demand]:
    net = Net("crossing")
    net.node("C", 0, 0, tls=True)
    for nid, x, y in (("W", -400, 0), ("E", 400, 0), ("N", 0, 400), ("S", 0, -400)):
        net.node(nid, x, y)
    net.road("W", "C", name="Hoofdweg", priority=3)
    net.road("C", "E", name="Hoofdweg", priority=3)
    net.road("N", "C", name="Dwarsstraat")
    net.road("C", "S", name="Dwarsstraat")
    net.bus_stops = [("bs_E", "C_E", 120.0), ("bs_W", "C_W", 120.0)]

    dem = Demand()
    # per approach: (left, through, right) veh/h at peak
    approach = {"W": (65, 315, 65), "E": (65, 315, 65), "N": (50, 170, 50), "S": (50, 170, 50)}
    bike_approach = {"W": (0, 240, 60), "E": (0, 240, 60), "N": (0, 160, 40), "S": (0, 160, 40)}
    main = {"W", "E"}
    for o, (ql, qs, qr) in approach.items():
        for mv, q in zip("lsr", (ql, qs, qr), strict=True):
            d = next(x for x in "WENS" if x != o and turn(net, o, "C", x) == mv)
            dem.cars.append((car_edge(o, "C"), car_edge("C", d), q, "mix_main" if o in main else "mix_side"))
        bl, bs, br = bike_approach[o]
        for mv, q in zip("lsr", (bl, bs, br), strict=True):
            d = next(x for x in "WENS" if x != o and turn(net, o, "C", x) == mv)
            dem.bikes.append((bike_edge(o, "C"), bike_edge("C", d), q))
    # pedestrians: across each arm (both directions), plus some diagonal walks (two crossings)
    for x, q in (("W", 50), ("E", 50), ("N", 40), ("S", 40)):
        dem.peds += arm_crossing("C", x, q)
    for o, d in (("W", "N"), ("N", "E"), ("E", "S"), ("S", "W")):  # corner to opposite corner
        dem.peds.append((bike_edge(o, "C"), True, bike_edge("C", d), False, 10))
    dem.buses = [
        ("bus_WE", car_edge("W", "C"), car_edge("C", "E"), 450, ["bs_E"]),
        ("bus_EW", car_edge("E", "C"), car_edge("C", "W"), 450, ["bs_W"]),
    ]
    dem.emergency = [
        (120, car_edge("W", "C"), car_edge("C", "E")),
        (1320, car_edge("S", "C"), car_edge("C", "N")),
        (2520, car_edge("E", "C"), car_edge("C", "S")),
    ]
    return net, dem


def tjunction() -> tuple[Net, Demand]:
    net = Net("tjunction")
    net.node("T", 0, 0, tls=True)
    for nid, x, y in (("W", -400, 0), ("E", 400, 0), ("S", 0, -300)):
        net.node(nid, x, y)
    net.road("W", "T", name="Hoofdweg")
    net.road("T", "E", name="Hoofdweg")
    net.road("T", "S", name="Zijstraat")
    net.bus_stops = [("bs_S", "T_S", 100.0), ("bs_E", "T_E", 120.0)]
    dem = Demand()
    car = {("W", "E"): 500, ("W", "S"): 120, ("E", "W"): 420, ("E", "S"): 120, ("S", "W"): 150, ("S", "E"): 150}
    bikes = {("W", "E"): 240, ("W", "S"): 100, ("E", "W"): 240, ("S", "E"): 120}  # no left turns
    for (o, d), q in car.items():
        dem.cars.append((car_edge(o, "T"), car_edge("T", d), q, "mix_side" if o == "S" else "mix_main"))
    for (o, d), q in bikes.items():
        dem.bikes.append((bike_edge(o, "T"), bike_edge("T", d), q))
    for x, q in (("W", 40), ("E", 40), ("S", 30)):
        dem.peds += arm_crossing("T", x, q)
    dem.buses = [
        ("bus_ES", car_edge("E", "T"), car_edge("T", "S"), 450, ["bs_S"]),
        ("bus_SE", car_edge("S", "T"), car_edge("T", "E"), 450, ["bs_E"]),
    ]
    dem.emergency = [
        (150, car_edge("S", "T"), car_edge("T", "W")),
        (1350, car_edge("W", "T"), car_edge("T", "E")),
        (2550, car_edge("E", "T"), car_edge("T", "S")),
    ]
    return net, dem


def corridor() -> tuple[Net, Demand]:
    net = Net("corridor")
    n_int, spacing, side = 5, 300.0, 200.0
    ids = [f"J{i + 1}" for i in range(n_int)]
    for i, j in enumerate(ids):
        net.node(j, i * spacing, 0, tls=True)
        net.node(f"{j}N", i * spacing, side)
        net.node(f"{j}S", i * spacing, -side)
    net.node("W", -spacing, 0)
    net.node("E", n_int * spacing, 0)
    chain = ["W", *ids, "E"]
    for a, b in itertools.pairwise(chain):
        net.road(a, b, 2, name="Hoofdweg")
    for j in ids:
        net.road(f"{j}N", j, 1, name=f"Zijstraat {j}")
        net.road(j, f"{j}S", 1, name=f"Zijstraat {j}")
    net.bus_stops = [
        ("bs_J2_J3", "J2_J3", 150.0),
        ("bs_J4_J3", "J4_J3", 150.0),
        ("bs_J4_J5", "J4_J5", 150.0),
        ("bs_J2_J1", "J2_J1", 150.0),
    ]

    via = fringe_via(net)
    entries = {"W": 720.0, "E": 720.0}
    entries.update({f"{j}{s}": 80.0 for j in ids for s in "NS"})
    weights = {"W": 10.0, "E": 10.0}
    weights.update({f"{j}{s}": 0.7 for j in ids for s in "NS"})
    mix = {k: ("mix_main" if k in ("W", "E") else "mix_side") for k in entries}
    dem = Demand()
    dem.cars = od_from_entries(net, entries, weights, mix, via)
    # cyclists: along the corridor and across it
    for o, d, q in (("W", "E", 180), ("E", "W", 180)):
        dem.bikes.append((bike_edge(o, via[o]), bike_edge(via[d], d), q))
    for j in ids:
        dem.bikes.append((bike_edge(f"{j}N", j), bike_edge(j, f"{j}S"), 40))
        dem.bikes.append((bike_edge(f"{j}S", j), bike_edge(j, f"{j}N"), 40))
        dem.bikes.append((bike_edge("W", "J1"), bike_edge(j, f"{j}S"), 15))
        dem.bikes.append((bike_edge(f"{j}S", j), bike_edge("J5", "E"), 15))
    # pedestrians: across the main road (west and east arm) and across the side streets
    chain_nb = dict(zip(ids, ["W", *ids[:-1]], strict=True))
    for j in ids:
        dem.peds += arm_crossing(j, chain_nb[j], 25)
        dem.peds += arm_crossing(j, f"{j}N", 10)
        dem.peds += arm_crossing(j, f"{j}S", 10)
    # a few longer walks along the corridor (several crossings)
    dem.peds.append((bike_edge("J2N", "J2"), True, bike_edge("J3", "J3S"), False, 15))
    dem.peds.append((bike_edge("J4S", "J4"), True, bike_edge("J3", "J3N"), False, 15))
    dem.buses = [
        ("bus_WE", car_edge("W", "J1"), car_edge("J5", "E"), 450, ["bs_J2_J3", "bs_J4_J5"]),
        ("bus_EW", car_edge("E", "J5"), car_edge("J1", "W"), 450, ["bs_J4_J3", "bs_J2_J1"]),
    ]
    dem.emergency = [
        (100, car_edge("W", "J1"), car_edge("J5", "E")),
        (1300, car_edge("E", "J5"), car_edge("J1", "W")),
        (2500, car_edge("J3S", "J3"), car_edge("J5", "E")),
    ]
    return net, dem


def grid() -> tuple[Net, Demand]:
    net = Net("grid")
    k, spacing, arm = 3, 250.0, 200.0

    def g(i: int, j: int) -> str:
        return f"G{i}{j}"

    for i in range(k):
        for j in range(k):
            net.node(g(i, j), i * spacing, j * spacing, tls=True)
    fr = {}
    for t in range(k):
        fr[f"W{t}"] = (-arm, t * spacing, g(0, t))
        fr[f"E{t}"] = ((k - 1) * spacing + arm, t * spacing, g(k - 1, t))
        fr[f"S{t}"] = (t * spacing, -arm, g(t, 0))
        fr[f"N{t}"] = (t * spacing, (k - 1) * spacing + arm, g(t, k - 1))
    for nid, (x, y, _) in fr.items():
        net.node(nid, x, y)
    for t in range(k):
        net.road(f"W{t}", g(0, t))
        for i in range(k - 1):
            net.road(g(i, t), g(i + 1, t))
        net.road(g(k - 1, t), f"E{t}")
        net.road(f"S{t}", g(t, 0))
        for j in range(k - 1):
            net.road(g(t, j), g(t, j + 1))
        net.road(g(t, k - 1), f"N{t}")
    net.bus_stops = [
        ("bs_G01_G11", "G01_G11", 100.0),
        ("bs_G21_G11", "G21_G11", 100.0),
        ("bs_G11_G21", "G11_G21", 100.0),
        ("bs_G11_G01", "G11_G01", 100.0),
    ]

    via = fringe_via(net)
    entries = {f: (420.0 if f[1] == "1" else 320.0) for f in fr}
    weights = {f: (1.3 if f[1] == "1" else 1.0) for f in fr}
    mix = {f: ("mix_main" if f[1] == "1" else "mix_side") for f in fr}
    dem = Demand()
    dem.cars = od_from_entries(net, entries, weights, mix, via)
    # cyclists: straight across the grid, and one right turn at each column / row (forced
    # with via so that no route takes a left turn)
    for t in range(k):
        for o, d in ((f"W{t}", f"E{t}"), (f"E{t}", f"W{t}"), (f"S{t}", f"N{t}"), (f"N{t}", f"S{t}")):
            dem.bikes.append((bike_edge(o, via[o]), bike_edge(via[d], d), 35.0))
    right = {"W": "S", "E": "N", "S": "E", "N": "W"}  # exit side after a right turn
    for t in range(k):
        for side in "WESN":
            o = f"{side}{t}"
            for c in range(k):  # turn right at the c-th intersection passed
                if side in "WE":
                    i = c if side == "W" else k - 1 - c
                    node, d = g(i, t), f"{right[side]}{i}"
                else:
                    j = c if side == "S" else k - 1 - c
                    node, d = g(t, j), f"{right[side]}{j}"
                nxt = {"S": (0, -1), "N": (0, 1), "E": (1, 0), "W": (-1, 0)}[right[side]]
                ni, nj = int(node[1]) + nxt[0], int(node[2]) + nxt[1]
                after = g(ni, nj) if 0 <= ni < k and 0 <= nj < k else d
                v = [bike_edge(node, after)] if after != d else []
                dem.bikes.append((bike_edge(o, via[o]), bike_edge(via[d], d), 8.0, v))
    # pedestrians: across every arm of every intersection, 10 persons/h each way
    for n in sorted(x.id for x in net.nodes.values() if x.tls):
        for r in net.roads_at(n):
            dem.peds += arm_crossing(n, r.b if r.a == n else r.a, 10)
    dem.buses = [
        ("bus_WE", car_edge("W1", "G01"), car_edge("G21", "E1"), 600, ["bs_G01_G11", "bs_G11_G21"]),
        ("bus_EW", car_edge("E1", "G21"), car_edge("G01", "W1"), 600, ["bs_G21_G11", "bs_G11_G01"]),
    ]
    dem.emergency = [
        (100, car_edge("W1", "G01"), car_edge("G21", "E1")),
        (1300, car_edge("S1", "G10"), car_edge("G12", "N1")),
        (2500, car_edge("E0", "G20"), car_edge("G02", "N0")),
    ]
    return net, dem


SCENARIOS = {"crossing": crossing, "tjunction": tjunction, "corridor": corridor, "grid": grid}


# --------------------------------------------------------------------------------------
# build + check
# --------------------------------------------------------------------------------------
def build(name: str) -> dict:
    net, dem = SCENARIOS[name]()
    out = HERE / name
    out.mkdir(exist_ok=True)
    write_plain(net, out)
    run_netconvert(net, out)
    totals = {v: write_routes(name, out, dem, v) for v in ("peak", "offpeak")}
    write_cfgs(name, out)
    return {"totals": totals}


def check(name: str, variant: str) -> dict:
    """Run one sumocfg with plain sumo; count arrivals per mode; return stats."""
    cfg = HERE / name / f"{name}.{variant}.sumocfg"
    with tempfile.TemporaryDirectory() as tmp:
        tri = Path(tmp) / "tripinfo.xml"
        cmd = [
            sumo_binary("sumo"),
            "-c",
            str(cfg),
            "--no-step-log",
            "--duration-log.statistics",
            "--tripinfo-output",
            str(tri),
            "--tripinfo-output.write-unfinished",
        ]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        log = res.stdout + res.stderr
        arrived: dict[str, int] = {}
        unfinished: dict[str, int] = {}
        tl_sum: dict[str, float] = {}
        for _, el in ET.iterparse(tri):
            if el.tag == "tripinfo":
                t = el.get("vType").split("@")[0]
                bucket = unfinished if float(el.get("arrival", "-1")) < 0 else arrived
                bucket[t] = bucket.get(t, 0) + 1
                tl_sum[t] = tl_sum.get(t, 0.0) + float(el.get("timeLoss"))
            elif el.tag == "personinfo":
                wk = el.find("walk")
                t = el.get("type").split("@")[0]
                done = wk is not None and float(wk.get("arrival", "-1")) >= 0
                bucket = arrived if done else unfinished
                bucket[t] = bucket.get(t, 0) + 1
                if wk is not None:
                    tl_sum[t] = tl_sum.get(t, 0.0) + float(wk.get("timeLoss", 0.0))
                el.clear()
    errors = [line for line in log.splitlines() if "Error" in line]
    warnings = [line for line in log.splitlines() if line.startswith("Warning")]
    teleports = sum("Teleporting" in w for w in warnings)
    return {
        "rc": res.returncode,
        "wall": wall,
        "arrived": arrived,
        "unfinished": unfinished,
        "errors": errors,
        "warnings": warnings,
        "teleports": teleports,
        "log": log,
        "timeloss": {t: tl_sum[t] / max(1, arrived.get(t, 0) + unfinished.get(t, 0)) for t in tl_sum},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "names", nargs="*", metavar="NAME", help=f"scenarios to build (default: all of {', '.join(SCENARIOS)})"
    )
    ap.add_argument("--check", action="store_true", help="run every sumocfg after building and report")
    args = ap.parse_args(argv)
    names = args.names or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    ok = True
    for name in names:
        info = build(name)
        for v, tot in info["totals"].items():
            print(f"{name:10s} {v:8s} " + ", ".join(f"{k} {q:.0f}/h" for k, q in tot.items()))
    if args.check:
        modes = {"car", "car_diesel", "truck", "truck_heavy", "bus", "emergency", "bike", "ped", "ped_slow"}
        for name in names:
            for variant in ("peak", "offpeak", "short"):
                st = check(name, variant)
                missing = sorted(m for m in modes if st["arrived"].get(m, 0) == 0)
                if variant == "short":  # 10 minutes: not every rare type has to show up
                    missing = [m for m in missing if m not in ("truck_heavy",)]
                bad = st["rc"] != 0 or st["errors"] or missing or st["teleports"]
                ok &= not bad
                print(
                    f"{name:10s} {variant:8s} {st['wall']:6.1f} s  rc={st['rc']} "
                    f"teleports={st['teleports']} warnings={len(st['warnings'])} "
                    f"arrived={dict(sorted(st['arrived'].items()))} "
                    f"unfinished={sum(st['unfinished'].values())}" + (f" MISSING={missing}" if missing else "")
                )
                print(
                    "           mean timeLoss: " + ", ".join(f"{t} {v:.0f}s" for t, v in sorted(st["timeloss"].items()))
                )
                for e in st["errors"][:5] + st["warnings"][:5]:
                    print(f"           {e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
