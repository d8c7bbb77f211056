"""Which runs the national estimate needs: intersection types x day types x arms x levels x seeds.

A *cell* of the sweep is what a run means (intersection type, scenario variant, weather,
emergency level, arm, seed); a :class:`Job` is what SUMO runs. Several cells can share one
job: a controller without the rain application behaves the same in rain and in dry weather
(the simulation has no weather effect on traffic), so its rain cell reuses the dry run.

The counterfactual is today's light, not a bare controller:

``kar`` (the baseline of every feature and package)
    vehicle-actuated control with the emergency and bus priority that many Dutch lights have
    today through KAR (short-range radio): a vehicle checks in at a fixed point some 100-300 m
    before the stop line and out after it. Modelled as the ``greenflow`` application with its
    range cut to the KAR check-in distance and the conditional ``bus`` application with its
    request horizon cut to the same distance at urban speed.
features (each alone on top of ``kar``)
    ``greenflow`` (the emergency request from ~1 km), ``glosa`` (information services: speed
    advice on a committed forecast), ``schwung``, ``rain``, ``crosswalk``, ``bus`` (requests
    from further out), ``truck``.
packages
    ``g40`` = G40's scope: information services + emergency priority; ``g40_cyclists``: the
    same with cyclist priority (G40's "possibly cyclists"); ``full``: every feature.
the conversion line
    ``webster`` (a fixed-time plan timed to the scenario's demand by Webster's method, with
    green-wave offsets on corridors) against ``actuated`` (plain vehicle-actuated control):
    what converting a fixed-time light to actuation is worth. Not an iVRI application; it is
    reported on its own line.

Emergency levels: the bundled scenarios carry about 3 emergency vehicles an hour, far more than
a Dutch light sees (about 0.1 an hour). Arms that contain emergency priority run at two levels
(``hi``: as bundled; ``lo``: the parameter ``calibration.emergency_low_per_h``, 0 by default)
and the extrapolation interpolates between them to the real rate; the other features run at
``lo`` only. A network whose demand has no emergency vehicles (the real-world ones) gets
``calibration.emergency_high_per_h`` of them at ``hi``: cars of its own demand, converted
(:mod:`ivri.national.demand`).

Equipped shares (two levels instead of linear scaling): every single feature whose effect
depends on a share of equipped road users (``EQUIPPED_KIND``, emergency vehicles aside) also
runs at a second share, the other end of the parameter's range (level ``share``), against the
baseline at ``lo`` (at ``share`` for bus priority, which the baseline has too); the
extrapolation interpolates between the two measured shares.

Every run emulates V2X with the equipped shares of the parameter file, the baselines too, so
that the same road users are measured; every run has a warm-up that is not counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivri.errors import ConfigError
from ivri.national.demand import scenario_has_emergency
from ivri.national.parameters import ParameterSet

__all__ = [
    "BASELINE",
    "BUNDLED_TYPES",
    "CONVERSION",
    "EQUIPPED_KIND",
    "EV_ARMS",
    "FEATURES",
    "LEVELS",
    "PACKAGES",
    "QUICK_END_S",
    "REALWORLD_TYPES",
    "SHARE_LEVEL",
    "Cell",
    "Job",
    "Sweep",
    "build_sweep",
]

BASELINE = "kar"
#: The conversion line: (fixed-time plan timed to demand, vehicle-actuated)
CONVERSION = ("webster", "actuated")
#: Every single feature, in the order they are combined in ``full``.
FEATURES = ("greenflow", "glosa", "schwung", "rain", "crosswalk", "bus", "truck")
#: Packages: name -> the features they add to the baseline.
PACKAGES: dict[str, tuple[str, ...]] = {
    "g40": ("greenflow", "glosa"),
    "g40_cyclists": ("greenflow", "glosa", "schwung"),
    "full": FEATURES,
}
#: The kind of road user whose equipped share an application's effect scales with.
EQUIPPED_KIND = {
    "greenflow": "emergency",
    "schwung": "cyclist",
    "crosswalk": "slow_pedestrian",
    "bus": "bus",
    "truck": "truck",
    "glosa": "car",
}
BUNDLED_TYPES = ("crossing", "tjunction", "corridor", "grid")
#: Real-world networks of the test set (``ivri fetch-realworld``) as intersection types.
REALWORLD_TYPES = ("cologne3", "cologne8", "ingolstadt7", "ingolstadt21")
QUICK_TYPES = ("crossing", "tjunction")
QUICK_FEATURES = ("g40",)
QUICK_END_S = 300.0
QUICK_WARMUP_S = 60.0
WEATHERS = ("dry", "rain")
#: Emergency levels: "lo" (calibration.emergency_low_per_h) and "hi" (as the scenario has it, or
#: calibration.emergency_high_per_h converted cars where its demand has no emergency vehicles).
LEVELS = ("lo", "hi")
#: The level at which an application with an equipped share runs at a second share.
SHARE_LEVEL = "share"
#: Arms whose controller contains emergency priority: they run at both levels.
EV_ARMS = frozenset({BASELINE, "greenflow", *(p for p, f in PACKAGES.items() if "greenflow" in f)})
DEFAULT_SEEDS = tuple(range(42, 62))  # 20 seeds


@dataclass(frozen=True)
class Job:
    """One SUMO run. Equal jobs give equal results (the cache key is built from them)."""

    scenario: str
    controller: str
    seed: int
    end_s: float | None
    shares: tuple[tuple[str, float], ...]
    #: None: no rain application; 0.0: a dry series; > 0: constant rain over the run [mm/h].
    rain_mm_h: float | None = None
    #: Seconds after the scenario's begin that are simulated but not counted.
    warmup_s: float = 0.0
    #: Emergency vehicles per hour (None: as the scenario has them).
    emergency_per_h: float | None = None
    #: The controller's parameters as canonical JSON ("" for none).
    params: str = ""

    @property
    def label(self) -> str:
        rain = "" if self.rain_mm_h is None else (" (rain)" if self.rain_mm_h > 0 else " (dry)")
        ev = "" if self.emergency_per_h is None else f" · {self.emergency_per_h:g} EV/h"
        return f"{self.scenario} · {self.controller}{rain}{ev} · seed {self.seed}"

    def controller_params(self) -> dict[str, Any]:
        return json.loads(self.params) if self.params else {}


@dataclass(frozen=True)
class Cell:
    """What a run stands for in the estimate."""

    itype: str
    variant: str
    weather: str
    level: str
    arm: str
    seed: int


@dataclass
class Sweep:
    types: tuple[str, ...]
    variants: tuple[str, ...]
    day_variant: dict[str, str]
    features: tuple[str, ...]
    seeds: tuple[int, ...]
    end_s: float | None
    shares: dict[str, float]
    cells: dict[Cell, Job]
    notes: list[str] = field(default_factory=list)
    warmup_s: float = 0.0
    #: arm -> controller spec
    specs: dict[str, str] = field(default_factory=dict)
    #: scenario -> the Webster plan's summary (cycle, Y, L per intersection)
    webster: dict[str, Any] = field(default_factory=dict)
    #: emergency vehicles per hour of the "lo" level
    emergency_low_per_h: float = 0.0
    #: variant of real-world types (they have one demand: it stands for every day type)
    fixed_variant: dict[str, str] = field(default_factory=dict)
    #: feature -> the second equipped share it is simulated at (level "share")
    share_levels: dict[str, float] = field(default_factory=dict)

    @property
    def jobs(self) -> list[Job]:
        """The distinct runs, in a stable order."""
        return list(dict.fromkeys(self.cells.values()))

    @property
    def arms(self) -> tuple[str, ...]:
        return (*CONVERSION, BASELINE, *self.features)

    def levels_of(self, arm: str) -> tuple[str, ...]:
        """The levels an arm runs at (the baseline also at "share" when bus priority has one:
        the baseline's own bus priority sees the bus share)."""
        base = LEVELS if arm in EV_ARMS else ("lo",)
        if arm in self.share_levels or (arm == BASELINE and "bus" in self.share_levels):
            base = (*base, SHARE_LEVEL)
        return base


def _arm_controller(arm: str, params: ParameterSet, available: set[str]) -> tuple[str, dict[str, Any]]:
    """Controller spec and parameters of an arm (not the conversion arms)."""
    kar_range = params.value("baseline.kar_checkin_m")
    kar_horizon = kar_range / params.value("baseline.kar_approach_speed_mps")
    feats = (() if arm == BASELINE else PACKAGES.get(arm, (arm,)))
    apps = ["greenflow", "bus"] + [f for f in FEATURES if f in feats and f not in ("greenflow", "bus")]
    apps = [a for a in apps if a in available]
    cp: dict[str, Any] = {
        "greenflow": {"range_m": params.value("ivri.emergency_range_m") if "greenflow" in feats else kar_range},
        "bus": {"horizon_s": params.value("ivri.bus_horizon_s") if "bus" in feats else kar_horizon},
    }
    return "+".join(["actuated", *apps]), {k: v for k, v in cp.items() if k in apps}


def _fetched_realworld(notes: list[str]) -> list[str]:
    """The real-world types of the test set that are fetched (a note names the others)."""
    from ivri.sumo_networks.realworld import realworld_sumocfg

    out, missing = [], []
    for name in REALWORLD_TYPES:
        try:
            realworld_sumocfg(name)
            out.append(f"realworld:{name}")
        except ConfigError:
            missing.append(name)
    if missing:
        notes.append(f"real-world type(s) {', '.join(missing)} are not fetched and are left out: run "
                     f"`ivri fetch-realworld {' '.join(missing)}` to include them")
    return out


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":")) if params else ""


def _second_share(feature: str, params: ParameterSet) -> float | None:
    """The equipped share a single feature is also run at (the end of its parameter's range
    away from the central value), or None: packages, features without an equipped kind, and
    emergency priority (its share is interpolated through the emergency levels) run at one."""
    kind = EQUIPPED_KIND.get(feature)
    if feature in PACKAGES or kind is None or kind == "emergency":
        return None
    par = params[f"equipped.{kind}"]
    other = par.high if par.high > par.value else par.low
    return None if other == par.value else other


def build_sweep(
    params: ParameterSet,
    *,
    quick: bool = False,
    scenarios: list[str] | None = None,
    networks: list[Path] | None = None,
    features: list[str] | None = None,
    seeds: list[int] | None = None,
    end_s: float | None = None,
    warmup_s: float | None = None,
    span_s: float | None = None,
) -> Sweep:
    """The runs of an estimate.

    ``quick``: crossing and T-junction, the ``:short`` variant for every day type, 60 s of
    warm-up and 240 s counted, one seed, the package ``g40``. Otherwise the bundled types in
    the variants of the parameter file's ``[day_types]`` and the fetched real-world networks
    of the test set (or ``scenarios``: bundled names and ``realworld:NAME``), plus each ``.sumocfg`` of ``networks``; 20 seeds;
    ``warmup_s`` (default 900 s) and ``span_s`` (default 7200 s) counted after it. ``end_s``
    (for tests and smoke runs) caps ``warmup + span``.
    """
    from ivri.controllers import APPLICATIONS

    notes: list[str] = []
    available = set(APPLICATIONS)
    missing = [f for f in FEATURES if f not in available]
    if missing:
        notes.append(f"application(s) {', '.join(missing)} not registered in this version: left out")
    valid = (*FEATURES, *PACKAGES)
    if quick:
        types = list(QUICK_TYPES if scenarios is None else scenarios)
        wanted = list(QUICK_FEATURES if features is None else features)
        seeds = seeds or [42]
        warm = QUICK_WARMUP_S if warmup_s is None else warmup_s
        total = QUICK_END_S if end_s is None else end_s
        day_variant = dict.fromkeys(params.day_types, "short")
        notes.append(f"--quick: every day type is represented by the :short variant, {warm:.0f} s of warm-up "
                     f"and {total - warm:.0f} s counted: a smoke test, not an estimate")
    else:
        types = list(BUNDLED_TYPES) + _fetched_realworld(notes) if scenarios is None else list(scenarios)
        wanted = list(valid if features is None else features)
        seeds = seeds or list(DEFAULT_SEEDS)
        warm = 900.0 if warmup_s is None else warmup_s
        total = warm + (7200.0 if span_s is None else span_s)
        if end_s is not None:
            total = min(total, end_s)
        day_variant = dict(params.day_types)
    if warm < 0 or total <= warm:
        raise ConfigError(f"the counted span must be positive: warm-up {warm:g} s, end {total:g} s")
    for f in wanted:
        if f not in valid:
            raise ConfigError(f"unknown feature {f!r}; valid: {', '.join(valid)}")
    feats = tuple(f for f in wanted if all(a in available for a in PACKAGES.get(f, (f,))))
    if not feats:
        raise ConfigError("no feature left to simulate")
    for pkg in (f for f in feats if f in PACKAGES):
        # A package's share adjustment comes from its parts run alone (two shares each); without
        # them the report would show flat equipped.* rows that look like "the share does not matter".
        alone = [a for a in PACKAGES[pkg] if a not in feats and _second_share(a, params) is not None]
        if alone:
            notes.append(f"{pkg}: {', '.join(alone)} not run alone, so the package is measured at the "
                         f"central equipped shares only and their ranges are not propagated (the "
                         f"equipped.* rows of the tornado stay flat); add them to --features to vary them")
    shares = {k: params.value(f"equipped.{k}") for k in ("emergency", "bus", "truck", "cyclist",
                                                            "slow_pedestrian", "car")}
    share_items = tuple(sorted(shares.items()))
    rain = params.value("weather.rain_mm_h")
    if rain <= 0:
        raise ConfigError("parameter 'weather.rain_mm_h' must be above 0")
    ev_lo = params.value("calibration.emergency_low_per_h")

    scen_of: dict[tuple[str, str], str] = {}
    fixed_variant: dict[str, str] = {}
    type_names: list[str] = []
    for t in types:
        if t.startswith("realworld:"):
            name = t.partition(":")[2]
            if name not in REALWORLD_TYPES:
                raise ConfigError(f"unknown real-world type {t!r}; valid: "
                                  + ", ".join(f"realworld:{n}" for n in REALWORLD_TYPES))
            type_names.append(name)
            fixed_variant[name] = "real"
            scen_of[(name, "real")] = t
            notes.append(f"{t}: its own demand (a morning hour) stands for every day type; the day_scale "
                         "parameters carry the difference; runs end at the scenario's end")
            continue
        if t not in BUNDLED_TYPES:
            raise ConfigError(f"unknown intersection type {t!r}; bundled: {', '.join(BUNDLED_TYPES)}; "
                              f"real-world: {', '.join('realworld:' + n for n in REALWORLD_TYPES)} "
                              "(add your own network with --network FILE.sumocfg)")
        type_names.append(t)
        for v in dict.fromkeys(day_variant.values()):
            scen_of[(t, v)] = f"{t}:{v}"
    for net in networks or []:
        path = Path(net)
        if path.suffix != ".sumocfg" or not path.is_file():
            raise ConfigError(f"--network {net}: not an existing .sumocfg file")
        name = path.stem.split(".")[0]
        if name in type_names:
            raise ConfigError(f"--network {net}: type name {name!r} is already in the sweep")
        type_names.append(name)
        fixed_variant[name] = "own"
        scen_of[(name, "own")] = str(path.resolve())
        notes.append(f"network {name} ({path}): the same demand stands for every day type; "
                     "the day_scale parameters carry the difference")
    for t in type_names:
        params.require([f"type_share.{t}"])

    from ivri.national.webster import webster_plan
    from ivri.runner import resolve_scenario

    specs: dict[str, str] = {"actuated": "actuated", "webster": "fixed-time"}
    arm_params: dict[str, str] = {"actuated": ""}
    for arm in (BASELINE, *feats):
        spec, cp = _arm_controller(arm, params, available)
        specs[arm] = spec
        arm_params[arm] = _canonical(cp)
    share_levels = {f: second for f in feats if (second := _second_share(f, params)) is not None}
    webster: dict[str, Any] = {}
    cells: dict[Cell, Job] = {}
    ev_converted: list[str] = []
    for (t, v), scenario in scen_of.items():
        plan = webster_plan(resolve_scenario(scenario)[1],
                            saturation_pcu_h_lane=params.value("webster.saturation_pcu_h_lane"),
                            c_max=params.value("webster.max_cycle_s"))
        webster[scenario] = plan.to_json()
        sumocfg = resolve_scenario(scenario)[1]
        # A demand without emergency vehicles gets them at the "hi" level by converting cars.
        ev_hi = None if scenario_has_emergency(sumocfg) else params.value("calibration.emergency_high_per_h")
        if ev_hi is not None:
            ev_converted.append(t)
        per_arm = {**arm_params, "webster": _canonical({
            "stage_green_s": {k: [round(x, 1) for x in g] for k, g in plan.stage_green_s.items()},
            "offset_s": {k: round(x, 1) for k, x in plan.offset_s.items()}})}
        for seed in seeds:
            for arm in (*CONVERSION, BASELINE, *feats):
                spec = specs[arm]
                has_rain = "rain" in spec.split("+")
                levels = LEVELS if arm in EV_ARMS else ("lo",)
                if arm in share_levels or (arm == BASELINE and "bus" in share_levels):
                    levels = (*levels, SHARE_LEVEL)
                for level in levels:
                    ev = ev_hi if level == "hi" else ev_lo
                    items = share_items
                    if level == SHARE_LEVEL:
                        kind = EQUIPPED_KIND["bus" if arm == BASELINE else arm]
                        items = tuple(sorted({**shares, kind: share_levels["bus" if arm == BASELINE else arm]}.items()))
                    for weather in WEATHERS:
                        mm = None if not has_rain else (rain if weather == "rain" else 0.0)
                        cells[Cell(t, v, weather, level, arm, seed)] = Job(
                            scenario, spec, seed, total, items, mm, warm, ev, per_arm[arm])
    if ev_converted:
        notes.append(f"{', '.join(dict.fromkeys(ev_converted))}: the demand has no emergency vehicles; at the "
                     f"'hi' level one car every {60.0 / params.value('calibration.emergency_high_per_h'):g} "
                     "min drives its own route as an emergency vehicle")
    variants = tuple(dict.fromkeys(v for _, v in scen_of))
    return Sweep(types=tuple(type_names), variants=variants, day_variant=day_variant, features=feats,
                 seeds=tuple(seeds), end_s=total, shares=shares, cells=cells, notes=notes,
                 warmup_s=warm, specs=specs, webster=webster, emergency_low_per_h=ev_lo,
                 fixed_variant=fixed_variant, share_levels=share_levels)
