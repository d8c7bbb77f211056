"""Bundled SUMO scenarios of ivri (installed as ``ivri.sumo_networks``).

Each scenario has three variants: ``peak`` (one hour of high demand, about 0.8 degree of
saturation on the main road), ``offpeak`` (one hour, 40 % of peak) and ``short`` (the first
10 minutes of peak, for tests). Users name them ``"grid"`` (= peak), ``"grid:offpeak"`` or
``"grid:short"``.

The files are built by ``python sumo_networks/build.py`` (see README.md in this folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_VARIANT", "SCENARIO_DIR", "VARIANTS", "Scenario", "bundled_scenarios", "get_scenario"]

SCENARIO_DIR = Path(__file__).resolve().parent

VARIANTS = ("peak", "offpeak", "short")
DEFAULT_VARIANT = "peak"

_VARIANT_TEXT = {
    "peak": "peak hour (3600 s)",
    "offpeak": "off-peak hour, 40% of peak (3600 s)",
    "short": "first 600 s of the peak",
}

# one line each, for `ivri scenarios`
_DESCRIPTIONS = {
    "crossing": "Dutch four-arm urban intersection: 2-lane approaches with own left-turn lane, "
    "separate cycle paths, signalised crossings, bus line W-E, 50 km/h",
    "tjunction": "signalised T-junction: main road W-E with 2-lane approaches, side street S, "
    "separate cycle paths, signalised crossings, bus line E-S",
    "corridor": "arterial corridor of 5 signalised intersections 300 m apart, 1-lane side streets, "
    "cycle paths, crossings, bus line along the corridor",
    "grid": "city grid of 3x3 signalised intersections 250 m apart, 2-lane approaches, "
    "cycle paths, crossings, bus line W-E",
}


@dataclass(frozen=True)
class Scenario:
    name: str  # e.g. "grid" (the bundled name users type)
    variant: str  # "peak" | "offpeak" | "short"
    sumocfg: Path
    description: str  # one line for `ivri scenarios`

    @property
    def key(self) -> str:
        """The name a user types for this variant: ``grid`` for peak, else ``grid:short``."""
        return self.name if self.variant == DEFAULT_VARIANT else f"{self.name}:{self.variant}"


def _make(name: str, variant: str) -> Scenario:
    return Scenario(
        name=name,
        variant=variant,
        sumocfg=SCENARIO_DIR / name / f"{name}.{variant}.sumocfg",
        description=f"{_DESCRIPTIONS[name]}; {_VARIANT_TEXT[variant]}",
    )


def bundled_scenarios() -> list[Scenario]:
    """All bundled scenarios, every name with every variant."""
    return [_make(name, variant) for name in _DESCRIPTIONS for variant in VARIANTS]


def _known() -> list[str]:
    return [s.key for s in bundled_scenarios()]


def get_scenario(name: str) -> Scenario:
    """Look a bundled scenario up by ``name`` or ``name:variant`` (plain name = peak).

    Raises KeyError, naming the valid choices, for an unknown name or variant.
    """
    base, sep, variant = name.strip().partition(":")
    base = base.strip().lower()
    variant = variant.strip().lower() if sep else DEFAULT_VARIANT
    if base not in _DESCRIPTIONS or variant not in VARIANTS:
        raise KeyError(f"unknown scenario {name!r}; known scenarios: {', '.join(_known())}")
    return _make(base, variant)
