"""Fuel types of SUMO emission classes and the conversion of fuel mass to litres.

SUMO (since 1.14) writes fuel in **mg** (tripinfo ``fuel_abs``, emission output ``fuel`` in
mg/s). A litre figure needs the density of the fuel, which depends on the emission class of
the vehicle type. We use the same densities that SUMO itself divides by in its volumetric mode
(``--emissions.volumetric-fuel``), so that our litres equal SUMO's own litres:

==========  ========  ============================================================================
fuel        g/L       source
==========  ========  ============================================================================
petrol      742       SUMO ``HelpersHBEFA4.h`` / ``HelpersHBEFA3.h`` ``compute()``: ``scale *= 742.``
                      for "Gasoline"; ``HelpersPHEMlight5.cpp``: "average gasoline density of
                      742 g/l". Checked on SUMO 1.28: ``fuel_abs`` mg / volumetric ml = 742.0
diesel      836       same files: ``scale *= 836.`` for "Diesel", "average diesel density of
                      836 g/l". Checked on SUMO 1.28: mg / ml = 836.0 for a diesel car
==========  ========  ============================================================================

Gaseous fuels (CNG, LNG), electricity and hydrogen have no litres at the pump that compare with
petrol and diesel: their mass is kept (``fuel_kg``), their litres are zero.

One deliberate difference from SUMO: SUMO's HBEFA4 helper calls every class without
``_diesel_`` in its name "Gasoline", so in its volumetric mode even the diesel rigid truck of
its default truck type (``HBEFA4/RT_le7.5t_Euro-VI_A-C``) is divided by 742. HBEFA names only
the exceptions among heavy vehicles (``RT_petrol``, ``*_CNG_*``, ``*_BEV``...), the rest are
diesel, so :func:`fuel_type_of` calls them diesel and divides by 836.
"""

from __future__ import annotations

import re
from typing import overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "FUEL_CNG",
    "FUEL_DENSITY_G_PER_L",
    "FUEL_DIESEL",
    "FUEL_ELECTRIC",
    "FUEL_HYDROGEN",
    "FUEL_LNG",
    "FUEL_NONE",
    "FUEL_PETROL",
    "FUEL_TYPES",
    "fuel_density_g_per_l",
    "fuel_mg_to_litres",
    "fuel_type_of",
]

FUEL_PETROL = "petrol"
FUEL_DIESEL = "diesel"
FUEL_CNG = "cng"
FUEL_LNG = "lng"
FUEL_ELECTRIC = "electric"
FUEL_HYDROGEN = "hydrogen"
FUEL_NONE = "none"  # SUMO's "Zero" model: pedestrians, bicycles, trams... burn nothing
FUEL_TYPES = (
    FUEL_PETROL,
    FUEL_DIESEL,
    FUEL_CNG,
    FUEL_LNG,
    FUEL_ELECTRIC,
    FUEL_HYDROGEN,
    FUEL_NONE,
)

# The densities SUMO divides by in its volumetric-fuel mode (see the module docstring).
FUEL_DENSITY_G_PER_L: dict[str, float] = {FUEL_PETROL: 742.0, FUEL_DIESEL: 836.0}

_MG_PER_G = 1000.0

# Emission models whose classes never burn a liquid fuel.
_ELECTRIC_MODELS = frozenset({"energy", "mmpevem"})
_ZERO_MODELS = frozenset({"zero"})

_TOKEN_SPLIT = re.compile(r"[_\-().+\s]+")

# Tokens of class names, checked in this order: a plug-in hybrid in electric mode is named
# "LCV_PHEV_diesel_..._(El)", so electric must win over the fuel word in the same name, and gas
# buses are named "UBus_..._CNG_Euro-VI_D-E", so gas must win over the "D" of "D-E".
_ZERO_TOKENS = frozenset({"zero"})  # HBEFA3/zero, HBEFA4/zero: the emission-free class
_ELECTRIC_TOKENS = frozenset({"bev", "electric", "el", "ev"})
_HYDROGEN_TOKENS = frozenset({"fuelcell", "fcev", "h2"})
_CNG_TOKENS = frozenset({"cng"})
_LNG_TOKENS = frozenset({"lng"})
_DIESEL_WORDS = frozenset({"diesel"})
# LPG bi-fuel cars, flex-fuel (E85) vehicles and ethanol buses are converted like petrol, as
# SUMO's own volumetric mode does; we have no sourced density of our own for them.
_PETROL_WORDS = frozenset({"petrol", "gasoline", "lpg", "ffv", "e85", "ethanol"})
_DIESEL_LETTERS = frozenset({"d"})  # HBEFA3 / PHEMlight: PC_D_EU4, HDV_D_EU5, PC_EU4_D_MW
_PETROL_LETTERS = frozenset({"g", "p"})  # PC_G_EU4; "(P)" is the petrol mode of a flex-fuel
# Heavy vehicles whose class names no fuel: HBEFA4 rigid trucks (RT_), articulated trucks
# (TT_AT_), urban buses (UBus_), coaches (Coach_); HBEFA3 averages Bus, Coach, HDV. HBEFA names
# the non-diesel ones explicitly, so the rest run on diesel.
_HEAVY_DIESEL_PREFIXES = frozenset({"rt", "tt", "ubus", "coach", "hgv", "rigidtruck", "hdv", "bus"})


def fuel_type_of(emission_class: str) -> str:
    """Return the fuel a SUMO emission class burns: one of :data:`FUEL_TYPES`.

    Understands HBEFA4 (``HBEFA4/PC_diesel_Euro-6d``, ``HBEFA4/RT_le7.5t_Euro-VI_A-C``),
    HBEFA3 (``HBEFA3/PC_D_EU4``), PHEMlight / PHEMlight5 (``PHEMlight5/PC_EU4_D_MW``) and the
    single-class models ``Zero/default`` and ``Energy/...``. The comparison ignores case.

    Anything unrecognised, including an empty string (an unknown vehicle type), is petrol:
    SUMO's own default and "unknown" class is ``PC_petrol_Euro-4`` and its volumetric mode
    divides any unnamed fuel by the petrol density, so this keeps our litres equal to SUMO's.
    """
    model, _, name = emission_class.strip().rpartition("/")
    model = model.lower()
    if not model and name.lower() in _ZERO_MODELS | _ELECTRIC_MODELS:
        model, name = name.lower(), ""  # a single-class model written without "/<class>"
    if model in _ZERO_MODELS:
        return FUEL_NONE
    if model in _ELECTRIC_MODELS:
        return FUEL_ELECTRIC
    tokens = [t for t in _TOKEN_SPLIT.split(name.lower()) if t]
    token_set = frozenset(tokens)
    if not tokens or token_set <= {"default", "unknown"}:
        return FUEL_PETROL  # the model's default class: PC petrol Euro 4 in HBEFA and PHEMlight
    if token_set & _ZERO_TOKENS:
        return FUEL_NONE
    if token_set & _ELECTRIC_TOKENS:
        return FUEL_ELECTRIC
    if token_set & _HYDROGEN_TOKENS:
        return FUEL_HYDROGEN
    if token_set & _CNG_TOKENS:
        return FUEL_CNG
    if token_set & _LNG_TOKENS:
        return FUEL_LNG
    if token_set & _DIESEL_WORDS:
        return FUEL_DIESEL
    if token_set & _PETROL_WORDS:
        return FUEL_PETROL
    if token_set & _DIESEL_LETTERS:
        return FUEL_DIESEL
    if token_set & _PETROL_LETTERS:
        return FUEL_PETROL
    if tokens[0] in _HEAVY_DIESEL_PREFIXES:
        return FUEL_DIESEL
    return FUEL_PETROL


def fuel_density_g_per_l(fuel_type: str) -> float | None:
    """Density of a liquid fuel in g/L, or ``None`` for a fuel not sold by the litre."""
    return FUEL_DENSITY_G_PER_L.get(fuel_type)


@overload
def fuel_mg_to_litres(fuel_mg: float, fuel_type: str) -> float: ...
@overload
def fuel_mg_to_litres(
    fuel_mg: npt.NDArray[np.floating], fuel_type: str
) -> npt.NDArray[np.float64]: ...


def fuel_mg_to_litres(
    fuel_mg: float | npt.NDArray[np.floating], fuel_type: str
) -> float | npt.NDArray[np.float64]:
    """Convert a fuel mass in mg (SUMO's ``fuel_abs``) to litres: mg / (g/L x 1000 mg/g).

    For a fuel without a litre density (CNG, LNG, electric, hydrogen, none) the result is 0:
    no litres of liquid fuel were burnt. Works on a scalar or a numpy array of masses.
    """
    density_g_per_l = fuel_density_g_per_l(fuel_type)
    if isinstance(fuel_mg, np.ndarray):
        mass_mg = np.asarray(fuel_mg, dtype=np.float64)
        if density_g_per_l is None:
            return np.zeros_like(mass_mg)
        return mass_mg / (density_g_per_l * _MG_PER_G)
    if density_g_per_l is None:
        return 0.0
    return float(fuel_mg) / (density_g_per_l * _MG_PER_G)
