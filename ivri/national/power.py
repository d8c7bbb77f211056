"""Statistical power of a paired-seed comparison: the effect, its interval, the smallest effect
the seeds can resolve, and how many seeds resolve a given effect.

Baseline and treatment run on the same seeds (common random numbers: the same demand, the same
vehicles), so the effect is the mean of the paired differences ``d_i = base_i - treat_i`` and
its uncertainty is that of a one-sample t statistic over the ``n`` differences::

    effect  = mean(d)
    se      = sd(d) / sqrt(n)                          (sd with n - 1 degrees of freedom)
    interval: effect +/- t_{1 - alpha/2, n-1} * se     (two-sided, level 1 - alpha)
    MDE     = (t_{1 - alpha/2, n-1} + t_{1 - beta, n-1}) * sd(d) / sqrt(n)

The minimum detectable effect (MDE) is the true effect that a two-sided test at level ``alpha``
finds with probability ``1 - beta`` (the power); the formula is the usual normal-theory one
with t quantiles for a small sample (e.g. Bloom, "Minimum detectable effects", Evaluation
Review 19(5), 1995). An effect smaller than the MDE may be real, but these seeds cannot tell it
from noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from ivri.errors import ConfigError

__all__ = ["ALPHA", "POWER", "PairedEffect", "effect_of_differences", "mde", "optimal_allocation", "paired_effect",
           "running_effects", "seeds_needed"]

#: Two-sided test level of the report (its intervals are 90 %: 1 - ALPHA).
ALPHA = 0.10
#: Power at which the minimum detectable effect is stated.
POWER = 0.80


def _check(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ConfigError(f"power must be in (0, 1), got {power}")


def _z_sum(alpha: float, power: float) -> float:
    """``z_{1-alpha/2} + z_power``: the normal-approximation factor between an MDE and a standard error."""
    return float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power))


def mde(sd_diff: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Minimum detectable effect of ``n`` paired differences with standard deviation ``sd_diff``.

    ``(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd_diff / sqrt(n)``; infinite for ``n < 2``
    (one seed says nothing about the noise).
    """
    _check(alpha, power)
    if n < 2:
        return math.inf
    df = n - 1
    return float((stats.t.ppf(1.0 - alpha / 2.0, df) + stats.t.ppf(power, df)) * sd_diff / math.sqrt(n))


def seeds_needed(effect: float, sd_diff: float, alpha: float = ALPHA, power: float = POWER,
                 n_max: int = 100_000) -> int:
    """The smallest number of paired seeds whose MDE is at most ``|effect|``.

    Solved exactly in ``n`` (the t quantiles depend on ``n``), starting from the normal
    approximation ``((z_{1-alpha/2} + z_power) * sd / effect)^2``. Above ``n_max`` seeds the
    t quantiles equal the normal ones to a few parts in 10^5, so the normal approximation
    (rounded up) is returned as it is: an effect far below the seed-to-seed spread gets a
    number, not an error, because "how many seeds would it take" is the finding.
    """
    _check(alpha, power)
    effect = abs(float(effect))
    if sd_diff <= 0.0:
        return 2
    if effect == 0.0:
        raise ConfigError("an effect of zero cannot be resolved by any number of seeds")
    z = _z_sum(alpha, power)
    approx = (z * sd_diff / effect) ** 2
    if approx > n_max:
        return math.ceil(approx)
    n = max(2, math.floor(approx))
    while n > 2 and mde(sd_diff, n - 1, alpha, power) <= effect:
        n -= 1
    while mde(sd_diff, n, alpha, power) > effect:
        n += 1
    return n


@dataclass(frozen=True)
class PairedEffect:
    """The paired difference over seeds (baseline minus treatment: savings are positive)."""

    n: int
    mean: float
    sd: float
    se: float
    low: float
    high: float
    mde: float
    alpha: float
    power: float

    @property
    def resolved(self) -> bool:
        """True when the interval excludes zero."""
        return self.low > 0.0 or self.high < 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "resolved": self.resolved}


def effect_of_differences(differences: np.ndarray, alpha: float = ALPHA, power: float = POWER) -> PairedEffect:
    """The mean of already-paired differences (one per seed), with its ``1 - alpha`` t interval and MDE."""
    _check(alpha, power)
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise ConfigError(f"differences need a non-empty 1-d sample, got shape {d.shape}")
    n = d.size
    mean = float(d.mean())
    if n < 2:
        return PairedEffect(n, mean, math.nan, math.inf, -math.inf, math.inf, math.inf, alpha, power)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(1.0 - alpha / 2.0, n - 1)) * se
    return PairedEffect(n, mean, sd, se, mean - half, mean + half, mde(sd, n, alpha, power), alpha, power)


def paired_effect(base: np.ndarray, treat: np.ndarray, alpha: float = ALPHA,
                  power: float = POWER) -> PairedEffect:
    """The effect ``base - treat`` over paired seeds, with its ``1 - alpha`` interval and MDE."""
    b = np.asarray(base, dtype=float)
    t = np.asarray(treat, dtype=float)
    if b.shape != t.shape or b.ndim != 1 or b.size == 0:
        raise ConfigError(f"paired samples need equal 1-d shapes, got {b.shape} and {t.shape}")
    return effect_of_differences(b - t, alpha, power)


def running_effects(differences: np.ndarray, alpha: float = ALPHA, power: float = POWER) -> list[PairedEffect]:
    """The effect after the first 2, 3, ..., n seeds, in the order given: how the estimate and
    its interval settle as seeds are added (a reader's check that more seeds would not move it
    much, or that they would)."""
    d = np.asarray(differences, dtype=float)
    return [effect_of_differences(d[:k], alpha, power) for k in range(2, d.size + 1)]


def optimal_allocation(sd: Mapping[str, float], cost: Mapping[str, float], effect: float,
                       alpha: float = ALPHA, power: float = POWER) -> dict[str, Any]:
    """Seeds per stratum that resolve ``effect`` in a sum of independent strata at least cost.

    The national figure is a sum over intersection types, each simulated on its own seeds:
    its variance over ``n_t`` seeds per type is ``sum_t sd_t^2 / n_t``, with ``sd_t`` the
    seed-to-seed standard deviation of type t's contribution. Resolving ``effect`` (as MDE, in
    the normal approximation of :func:`seeds_needed`) needs that variance at or below
    ``V = (effect / (z_{1-alpha/2} + z_power))^2``. With ``cost_t`` per seed (core seconds of
    the runs one seed of type t takes), the cheapest allocation (Neyman's, with costs: Cochran,
    *Sampling Techniques*, 3rd ed., 1977, section 5.5) is::

        n_t = sd_t / sqrt(cost_t) * sum_u(sd_u * sqrt(cost_u)) / V      (at least 2)

    against the same seeds for every type, ``n = sum_t sd_t^2 / V``. Returns the seeds per
    stratum under both and the total cost of each.
    """
    _check(alpha, power)
    if set(sd) != set(cost):
        raise ConfigError(f"strata differ: sd has {sorted(sd)}, cost has {sorted(cost)}")
    if effect == 0.0:
        raise ConfigError("an effect of zero cannot be resolved by any number of seeds")
    if any(not (c > 0.0) for c in cost.values()) or any(not (s >= 0.0) for s in sd.values()):
        raise ConfigError("costs must be positive and standard deviations non-negative")
    z = _z_sum(alpha, power)
    v = (abs(float(effect)) / z) ** 2
    root_sum = sum(sd[t] * math.sqrt(cost[t]) for t in sd)
    # Rounded up, but not for the last bits of a float: 800.0000000001 seeds are 800.
    optimal = {t: max(2, math.ceil(sd[t] / math.sqrt(cost[t]) * root_sum / v - 1e-9)) for t in sd}
    uniform = max(2, math.ceil(sum(s * s for s in sd.values()) / v - 1e-9))
    return {
        "effect": abs(float(effect)), "alpha": alpha, "power": power,
        "strata": {t: {"sd": sd[t], "cost_per_seed": cost[t], "seeds": optimal[t]} for t in sd},
        "uniform_seeds": uniform,
        "uniform_cost": uniform * sum(cost.values()),
        "optimal_cost": sum(optimal[t] * cost[t] for t in sd),
    }
