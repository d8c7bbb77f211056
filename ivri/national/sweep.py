"""Which runs the national estimate needs: intersection types x day types x features x seeds.

A *cell* of the sweep is what a run means (intersection type, scenario variant, weather, arm,
seed); a :class:`Job` is what SUMO runs. Several cells can share one job: a controller without
the rain application behaves the same in rain and in dry weather (the simulation has no
weather effect on traffic), so its rain cell reuses the dry run.

Arms: the baselines ``fixed-time`` and ``actuated`` (conventional control), each feature
alone on top of the vehicle-actuated controller (``actuated+greenflow``, ...) and ``all``
(every feature combined). Every run emulates V2X with the equipped shares of the parameter
file, the baselines too, so that the same road users are measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ivri.errors import ConfigError
from ivri.national.parameters import ParameterSet

__all__ = [
    "ALL",
    "BASELINES",
    "BUNDLED_TYPES",
    "EQUIPPED_KIND",
    "FEATURES",
    "QUICK_END_S",
    "TREATMENT_BASE",
    "Cell",
    "Job",
    "Sweep",
    "build_sweep",
    "treatment_spec",
]

BASELINES = ("fixed-time", "actuated")
TREATMENT_BASE = "actuated"
#: Every feature the sweep knows, in the order they are combined in ``all``. ``glosa`` (speed
#: advice) joins only when the controller registry has it.
FEATURES = ("greenflow", "schwung", "rain", "crosswalk", "bus", "truck", "glosa")
ALL = "all"
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
QUICK_TYPES = ("crossing", "tjunction")
QUICK_FEATURES = ("greenflow", ALL)
QUICK_END_S = 300.0
WEATHERS = ("dry", "rain")


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

    @property
    def label(self) -> str:
        rain = "" if self.rain_mm_h is None else (" (rain)" if self.rain_mm_h > 0 else " (dry)")
        return f"{self.scenario} · {self.controller}{rain} · seed {self.seed}"


@dataclass(frozen=True)
class Cell:
    """What a run stands for in the estimate."""

    itype: str
    variant: str
    weather: str
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
    all_spec: str = ""

    @property
    def jobs(self) -> list[Job]:
        """The distinct runs, in a stable order."""
        return list(dict.fromkeys(self.cells.values()))

    @property
    def arms(self) -> tuple[str, ...]:
        return (*BASELINES, *self.features)


def treatment_spec(feature: str, singles: tuple[str, ...]) -> str:
    """Controller spec of a feature (``all``: every single feature combined)."""
    if feature == ALL:
        return "+".join((TREATMENT_BASE, *singles))
    return f"{TREATMENT_BASE}+{feature}"


def _available_features(notes: list[str]) -> tuple[str, ...]:
    from ivri.controllers import APPLICATIONS

    out = []
    for f in FEATURES:
        if f in APPLICATIONS:
            out.append(f)
        elif f == "glosa":
            notes.append("glosa (speed advice) is not in ivri.controllers.APPLICATIONS in this "
                         "version: skipped, so the information-service part of the G40 package is "
                         "not simulated")
        else:
            notes.append(f"application {f!r} is not registered: skipped")
    return tuple(out)


def build_sweep(
    params: ParameterSet,
    *,
    quick: bool = False,
    scenarios: list[str] | None = None,
    networks: list[Path] | None = None,
    features: list[str] | None = None,
    seeds: list[int] | None = None,
    end_s: float | None = None,
) -> Sweep:
    """The runs of an estimate.

    ``quick``: crossing and T-junction, the ``:short`` variant for every day type, stopped at
    300 s, one seed, features ``greenflow`` and ``all``. Otherwise the bundled types (or
    ``scenarios``) in the variants of the parameter file's ``[day_types]``, plus each
    ``.sumocfg`` of ``networks`` (one run stands for every day type; its type share must be
    in the parameter file as ``type_share.<file stem>``).
    """
    notes: list[str] = []
    available = _available_features(notes)
    if quick:
        types = list(QUICK_TYPES if scenarios is None else scenarios)
        wanted = list(QUICK_FEATURES if features is None else features)
        seeds = seeds or [42]
        end_s = QUICK_END_S if end_s is None else end_s
        day_variant = dict.fromkeys(params.day_types, "short")
        notes.append("--quick: every day type is represented by the 10-minute :short variant "
                     f"stopped at {end_s:.0f} s (warm-up included): a smoke test, not an estimate")
    else:
        types = list(BUNDLED_TYPES if scenarios is None else scenarios)
        wanted = list((*available, ALL) if features is None else features)
        seeds = seeds or [42, 43, 44]
        day_variant = dict(params.day_types)
    for t in types:
        if t not in BUNDLED_TYPES:
            raise ConfigError(f"unknown intersection type {t!r}; bundled: {', '.join(BUNDLED_TYPES)} "
                              "(add your own network with --network FILE.sumocfg)")
    for f in wanted:
        if f != ALL and f not in FEATURES:
            raise ConfigError(f"unknown feature {f!r}; valid: {', '.join((*FEATURES, ALL))}")
    feats = tuple(f for f in wanted if f == ALL or f in available)
    singles = tuple(f for f in available if f != ALL)
    if not feats:
        raise ConfigError("no feature left to simulate")
    shares = {k: params.value(f"equipped.{k}") for k in ("emergency", "bus", "truck", "cyclist",
                                                            "slow_pedestrian", "car")}
    share_items = tuple(sorted(shares.items()))
    rain = params.value("weather.rain_mm_h")
    if rain <= 0:
        raise ConfigError("parameter 'weather.rain_mm_h' must be above 0")
    all_spec = treatment_spec(ALL, singles)

    scen_of: dict[tuple[str, str], str] = {}
    for t in types:
        for v in dict.fromkeys(day_variant.values()):
            scen_of[(t, v)] = f"{t}:{v}"
    for net in networks or []:
        path = Path(net)
        if path.suffix != ".sumocfg" or not path.is_file():
            raise ConfigError(f"--network {net}: not an existing .sumocfg file")
        name = path.stem.split(".")[0]
        if name in types:
            raise ConfigError(f"--network {net}: type name {name!r} is already in the sweep")
        params.require([f"type_share.{name}"])
        types.append(name)
        for v in dict.fromkeys(day_variant.values()):
            scen_of[(name, v)] = str(path.resolve())
        notes.append(f"network {name} ({path}): the same demand stands for every day type; "
                     "the day_scale parameters carry the difference")
    for t in types:
        params.require([f"type_share.{t}"])

    cells: dict[Cell, Job] = {}
    for (t, v), scenario in scen_of.items():
        for seed in seeds:
            for arm in (*BASELINES, *feats):
                spec = arm if arm in BASELINES else (all_spec if arm == ALL else treatment_spec(arm, singles))
                has_rain = "rain" in spec.split("+")
                for weather in WEATHERS:
                    mm = None if not has_rain else (rain if weather == "rain" else 0.0)
                    cells[Cell(t, v, weather, arm, seed)] = Job(scenario, spec, seed, end_s, share_items, mm)
    variants = tuple(dict.fromkeys(v for _, v in scen_of))
    return Sweep(types=tuple(types), variants=variants, day_variant=day_variant, features=feats,
                 seeds=tuple(seeds), end_s=end_s, shares=shares, cells=cells, notes=notes,
                 all_spec=all_spec)
