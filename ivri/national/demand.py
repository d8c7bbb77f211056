"""Scenario copies for the national runs: longer demand and a calibrated emergency rate.

The bundled scenarios carry one hour of stationary demand (Poisson flows over [0, 3600] s and a
few single trips such as emergency vehicles). A run with a warm-up and a span of 2 h or more
needs more: :func:`prepare_scenario` writes a copy of the ``.sumocfg`` into a folder where

* every ``<flow>`` / ``<personFlow>`` that ends at the scenario's horizon ends at the new end
  (the same stationary rates, so the same demand per hour);
* every single ``<vehicle>`` / ``<trip>`` / ``<person>`` is repeated once per horizon
  (depart + k x horizon, ids suffixed), so its rate per hour stays the same;
* emergency vehicles (vClass ``emergency``) are thinned to a rate per hour: of the repeated
  emergency trips, every m-th is kept (deterministic, so that baseline and treatment see the
  same vehicles);
* a demand without emergency vehicles (the real-world networks: their cities' demand models
  have none) gets them at the rate asked for: at every 1/rate hours, the first passenger car to
  depart from then on drives as an emergency vehicle of the bundled scenarios' type, on its own
  route (deterministic too: every arm of a seed converts the same cars).

A scenario that starts later than 0 s (a real-world morning or evening hour) keeps its demand
window: only the emergency rate changes.

Elements are written sorted by departure, as SUMO reads route files incrementally. Every path
of the copy is absolute, so it runs from anywhere.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from ivri.errors import NetworkError
from ivri.timefmt import parse_time_s

__all__ = ["EMERGENCY_VTYPE_ID", "prepare_scenario", "scenario_has_emergency"]

_SINGLE = ("vehicle", "trip", "person")
_FLOW = ("flow", "personFlow")


def _depart(elem: ET.Element) -> float:
    value = elem.get("depart") if elem.tag in _SINGLE else elem.get("begin", "0")
    try:
        return parse_time_s(value or "0")
    except ValueError:
        return 0.0  # "triggered" and the like: keep them first


#: The emergency vehicle type of the bundled scenarios (``sumo_networks/build.py``), for demand
#: that has none: a blue-light van that GreenFlow and KAR recognise.
EMERGENCY_VTYPE_ID = "ivri_emergency"
_EMERGENCY_VTYPE = (
    f'<vType id="{EMERGENCY_VTYPE_ID}" vClass="emergency" emissionClass="HBEFA4/LCV_diesel_N1-III_Euro-6d" '
    'length="6.5" speedFactor="1.0" speedDev="0" lcSpeedGain="0" guiShape="emergency" color="1,0,0">'
    '<param key="has.bluelight.device" value="true"/><param key="ivri.mode" value="emergency"/>'
    '<param key="ivri.fuel" value="diesel"/></vType>')


_DEFAULT_TYPE = "DEFAULT_VEHTYPE"


def _types_of_class(root: ET.Element, v_class: str) -> set[str]:
    return {t.get("id", "") for t in root.iter("vType") if t.get("vClass") == v_class}


def _defines_emergency_type(path: Path) -> bool:
    try:
        return any(el.tag == "vType" and el.get("vClass") == "emergency" for _, el in ET.iterparse(path))
    except (ET.ParseError, OSError) as exc:
        raise NetworkError(f"route file {path} cannot be read: {exc}") from None


def _convert_to_emergency(demand: list[ET.Element], cars: set[str], begin_s: float, end_s: float,
                          per_h: float) -> list[ET.Element]:
    """Turn one passenger car per 1/``per_h`` hours into an emergency vehicle; returns them."""
    every_s = 3600.0 / per_h
    due = begin_s + every_s / 2.0  # mid-interval: the first is not lost in the first seconds
    converted: list[ET.Element] = []
    for elem in demand:  # sorted by departure
        if due >= end_s:
            break
        if elem.tag == "person" or elem.get("type", _DEFAULT_TYPE) not in cars or _depart(elem) < due:
            continue
        elem.set("type", EMERGENCY_VTYPE_ID)
        elem.set("departSpeed", "max")
        converted.append(elem)
        due += every_s
    return converted


def _rewrite_routes(src: Path, dst: Path, begin_s: float, horizon_s: float, end_s: float,
                    emergency_per_h: float | None, convert: bool) -> dict[str, int]:
    try:
        tree = ET.parse(src)
    except (ET.ParseError, OSError) as exc:
        raise NetworkError(f"route file {src} cannot be read: {exc}") from None
    root = tree.getroot()
    ev_types = _types_of_class(root, "emergency")
    # SUMO's default type (no ``type`` attribute) is a passenger car.
    cars = _types_of_class(root, "passenger") | {_DEFAULT_TYPE}
    repeats = max(1, math.ceil((end_s - begin_s) / horizon_s))
    head: list[ET.Element] = []
    demand: list[ET.Element] = []
    singles_ev: list[ET.Element] = []
    for elem in list(root):
        root.remove(elem)
        if elem.tag in _FLOW:
            if "end" in elem.attrib and abs(parse_time_s(elem.get("end", "0")) - (begin_s + horizon_s)) < 1e-6:
                elem.set("end", f"{end_s:g}")
            demand.append(elem)
        elif elem.tag in _SINGLE:
            d = _depart(elem)
            for k in range(repeats):
                copy = elem if k == 0 else ET.fromstring(ET.tostring(elem))
                if k:
                    copy.set("id", f"{elem.get('id', '')}.r{k}")
                    copy.set("depart", f"{d + k * horizon_s:g}")
                if d + k * horizon_s >= end_s or d < begin_s:
                    continue  # SUMO would not insert it: outside the simulated window
                (singles_ev if copy.get("type") in ev_types else demand).append(copy)
        else:
            head.append(elem)
    singles_ev.sort(key=_depart)
    kept_ev = singles_ev
    if emergency_per_h is not None:
        sim_rate = len(singles_ev) / ((end_s - begin_s) / 3600.0) if end_s > begin_s else 0.0
        if emergency_per_h <= 0.0:
            kept_ev = []
        elif sim_rate > emergency_per_h:
            every = max(1, round(sim_rate / emergency_per_h))
            kept_ev = singles_ev[::every]
    demand.extend(kept_ev)
    demand.sort(key=_depart)
    if convert and emergency_per_h is not None and emergency_per_h > 0.0:
        kept_ev = _convert_to_emergency(demand, cars, begin_s, end_s, emergency_per_h)
        if kept_ev:
            head.insert(0, ET.fromstring(_EMERGENCY_VTYPE))
    root.extend(head)
    root.extend(demand)
    ET.indent(tree)
    tree.write(dst, encoding="utf-8", xml_declaration=True)
    return {"emergency_vehicles": len(kept_ev)}


def scenario_has_emergency(sumocfg: Path) -> bool:
    """Whether a route file of ``sumocfg`` defines an emergency vehicle type."""
    from ivri.sumo.sumocfg import read_sumocfg

    return any(_defines_emergency_type(src) for src in read_sumocfg(sumocfg).route_files)


def prepare_scenario(sumocfg: Path, folder: Path, end_s: float,
                     emergency_per_h: float | None = None) -> tuple[Path, dict[str, int]]:
    """A copy of ``sumocfg`` in ``folder`` with demand up to ``end_s`` (see the module docstring).

    ``end_s`` is a simulation time (from 0, not from the scenario's begin).

    Returns the new ``.sumocfg`` and counts of what it holds.
    """
    from ivri.sumo.sumocfg import read_sumocfg

    cfg = read_sumocfg(sumocfg)
    horizon = (cfg.end_s or 3600.0) - cfg.begin_s
    if horizon <= 0.0:
        raise NetworkError(f"{sumocfg}: end is not after begin")
    folder.mkdir(parents=True, exist_ok=True)
    routes: list[str] = []
    counts = {"emergency_vehicles": 0}
    convert = not scenario_has_emergency(sumocfg)
    for k, src in enumerate(cfg.route_files):
        dst = folder / f"demand{k}.rou.xml"
        c = _rewrite_routes(src, dst, cfg.begin_s, horizon, end_s, emergency_per_h, convert)
        counts["emergency_vehicles"] += c["emergency_vehicles"]
        # Cars become emergency vehicles in one file only: the rate is the scenario's, not a file's.
        convert = convert and c["emergency_vehicles"] == 0
        routes.append(str(dst.resolve()))
    tree = ET.parse(cfg.path)
    root = tree.getroot()
    for elem in root.iter():
        name = elem.tag
        if name in ("net-file", "net", "n"):
            elem.set("value", str(cfg.net_file))
        elif name in ("route-files", "routes", "r"):
            elem.set("value", ",".join(routes))
        elif name in ("additional-files", "additional", "a"):
            elem.set("value", ",".join(str(p) for p in cfg.additional_files))
        elif name in ("end", "e") and "value" in elem.attrib:
            elem.set("value", f"{end_s:g}")
    out = folder / cfg.path.name
    tree.write(out, encoding="utf-8", xml_declaration=True)
    return out, counts
