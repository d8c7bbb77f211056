"""The paired effect, its interval, the minimum detectable effect and the seeds it needs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ivri.errors import ConfigError
from ivri.national.power import (
    mde,
    optimal_allocation,
    paired_effect,
    running_effects,
    seeds_needed,
)


def test_mde_on_a_synthetic_sample_matches_the_t_table() -> None:
    # Differences 1..5: mean 3, sd sqrt(2.5) = 1.5811, n = 5, 4 degrees of freedom.
    base = np.array([11.0, 12.0, 13.0, 14.0, 15.0])
    treat = np.full(5, 10.0)
    e = paired_effect(base, treat, alpha=0.10, power=0.80)
    assert e.mean == pytest.approx(3.0)
    assert e.sd == pytest.approx(math.sqrt(2.5))
    # Student t table, 4 df: t_0.95 = 2.132, t_0.80 = 0.941.
    assert e.mde == pytest.approx((2.132 + 0.941) * math.sqrt(2.5) / math.sqrt(5), rel=1e-3)
    assert e.low == pytest.approx(3.0 - 2.132 * math.sqrt(2.5) / math.sqrt(5), rel=1e-3)
    assert e.high == pytest.approx(3.0 + 2.132 * math.sqrt(2.5) / math.sqrt(5), rel=1e-3)
    assert e.resolved
    # alpha 0.05: t_0.975 (4 df) = 2.776.
    assert mde(math.sqrt(2.5), 5, alpha=0.05) == pytest.approx((2.776 + 0.941) * math.sqrt(0.5), rel=1e-3)


def test_noise_larger_than_the_effect_is_not_resolved() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(10.0, 1.0, 6)
    treat = base - 0.01 + rng.normal(0.0, 1.0, 6)
    e = paired_effect(base, treat)
    assert not e.resolved
    assert e.mde > abs(e.mean)


def test_seeds_needed_for_an_effect_far_below_the_spread_is_a_number() -> None:
    # The G40 figure per intersection-hour against the spread of a real sweep: hundreds of
    # thousands of seeds, reported as such (it ended the national report with an error before).
    n = seeds_needed(0.00338068, 0.678324)
    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.80)
    assert n == pytest.approx((z * 0.678324 / 0.00338068) ** 2, rel=1e-4)
    assert mde(0.678324, n) <= 0.00338068 * (1 + 1e-4)


def test_seeds_needed_is_the_smallest_n_whose_mde_is_small_enough() -> None:
    n = seeds_needed(0.25, 1.0, alpha=0.10, power=0.80)
    # Normal approximation ((1.645 + 0.842) / 0.25)^2 = 98.9; t quantiles add a little.
    assert 99 <= n <= 103
    assert mde(1.0, n, 0.10, 0.80) <= 0.25 < mde(1.0, n - 1, 0.10, 0.80)
    # Halving the effect takes about four times the seeds.
    assert seeds_needed(0.125, 1.0) == pytest.approx(4 * n, rel=0.03)


def test_one_seed_detects_nothing_and_bad_levels_are_errors() -> None:
    assert mde(1.0, 1) == math.inf
    e = paired_effect(np.array([2.0]), np.array([1.0]))
    assert e.mde == math.inf and not e.resolved
    with pytest.raises(ConfigError, match="alpha"):
        mde(1.0, 5, alpha=1.5)
    with pytest.raises(ConfigError, match="zero"):
        seeds_needed(0.0, 1.0)


def test_optimal_allocation_by_hand() -> None:
    # sd 2 and 1, a seed of the first costs 1 and of the second 4; variance target 1/100
    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.80)
    alloc = optimal_allocation({"a": 2.0, "b": 1.0}, {"a": 1.0, "b": 4.0}, effect=0.1 * z)
    # n_t = sd_t / sqrt(c_t) * (2 * 1 + 1 * 2) / V: 800 and 200, variance 4/800 + 1/200 = 1/100
    assert {t: s["seeds"] for t, s in alloc["strata"].items()} == {"a": 800, "b": 200}
    assert alloc["uniform_seeds"] == 500  # (4 + 1) / V
    assert alloc["optimal_cost"] == pytest.approx(1600.0) and alloc["uniform_cost"] == pytest.approx(2500.0)
    # alike strata: the allocation is the uniform one
    same = optimal_allocation({"a": 1.0, "b": 1.0}, {"a": 3.0, "b": 3.0}, effect=0.1 * z)
    assert [s["seeds"] for s in same["strata"].values()] == [same["uniform_seeds"]] * 2
    with pytest.raises(ConfigError, match="strata differ"):
        optimal_allocation({"a": 1.0}, {"b": 1.0}, effect=1.0)
    with pytest.raises(ConfigError, match="costs must be positive"):
        optimal_allocation({"a": 1.0}, {"a": 0.0}, effect=1.0)


def test_running_effects_follow_the_seeds_in_order() -> None:
    d = np.array([4.0, 2.0, 3.0, 1.0, 5.0])
    steps = running_effects(d, alpha=0.10)
    assert [e.n for e in steps] == [2, 3, 4, 5]
    # after two seeds: mean 3, sd sqrt(2), t_0.95 with 1 df = 6.314
    assert steps[0].mean == pytest.approx(3.0)
    assert steps[0].high - steps[0].mean == pytest.approx(6.314 * math.sqrt(2.0) / math.sqrt(2.0), rel=1e-3)
    # the last step is the effect of every seed, and the interval narrows as seeds come in
    assert steps[-1] == paired_effect(d, np.zeros(5), alpha=0.10)
    assert steps[-1].high - steps[-1].low < steps[0].high - steps[0].low
    assert running_effects(np.array([1.0])) == []
