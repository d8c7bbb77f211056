"""Compile the user's intersection configs into the arrays the kernels work on.

Every run keeps all intersections in one set of arrays shaped ``[intersections, groups]``
(padded to the largest intersection; padded columns have ``valid == False``). Kernels see only
these arrays; names are mapped back through ``group_index``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ivri.config import IntersectionConfig, NetworkConfig
from ivri.core.idx import MODE_CODES

__all__ = ["CompiledNetwork", "Timing", "compile_network", "contiguous_timing", "derive_stages"]


class Timing(NamedTuple):
    """The safety rules of every signal group, as arrays (a numba-friendly struct)."""

    valid: np.ndarray          # bool[I, G]   False for padding columns
    conflict: np.ndarray       # bool[I, G, G] symmetric, False on the diagonal
    intergreen_s: np.ndarray   # float64[I, G, G] end of green of row -> start of green of column
    amber_s: np.ndarray        # float64[I, G]
    min_green_s: np.ndarray    # float64[I, G]
    max_green_s: np.ndarray    # float64[I, G]
    min_red_s: np.ndarray      # float64[I, G]
    max_wait_s: np.ndarray     # float64[I, G]


def contiguous_timing(t: Timing) -> Timing:
    """The timing arrays with one dtype and layout each, so numba compiles one specialisation."""
    return Timing(
        valid=np.ascontiguousarray(t.valid, dtype=np.bool_),
        conflict=np.ascontiguousarray(t.conflict, dtype=np.bool_),
        intergreen_s=np.ascontiguousarray(t.intergreen_s, dtype=np.float64),
        amber_s=np.ascontiguousarray(t.amber_s, dtype=np.float64),
        min_green_s=np.ascontiguousarray(t.min_green_s, dtype=np.float64),
        max_green_s=np.ascontiguousarray(t.max_green_s, dtype=np.float64),
        min_red_s=np.ascontiguousarray(t.min_red_s, dtype=np.float64),
        max_wait_s=np.ascontiguousarray(t.max_wait_s, dtype=np.float64),
    )


@dataclass(frozen=True, eq=False)
class CompiledNetwork:
    """The arrays of a run, plus the id lookups to map results back to names."""

    config: NetworkConfig
    timing: Timing
    mode: np.ndarray                      # int8[I, G] one of idx.MODE_*
    stages: np.ndarray                    # bool[I, S, G] groups of each stage, in cycle order
    n_stages: np.ndarray                  # int32[I]
    intersection_ids: tuple[str, ...]
    group_ids: tuple[tuple[str, ...], ...]
    intersection_index: dict[str, int] = field(repr=False)
    group_index: tuple[dict[str, int], ...] = field(repr=False)

    @property
    def n_intersections(self) -> int:
        return self.timing.valid.shape[0]

    @property
    def n_groups_max(self) -> int:
        return self.timing.valid.shape[1]

    def full(self, value: float | bool, dtype: type = np.float64) -> np.ndarray:
        """A new ``[I, G]`` array filled with ``value`` (padding included)."""
        return np.full(self.timing.valid.shape, value, dtype=dtype)


def derive_stages(x: IntersectionConfig) -> list[tuple[str, ...]]:
    """Cover all signal groups with maximal sets of mutually compatible groups.

    Used when a config gives no stages. Greedy: the most-constrained uncovered group opens a
    stage, which takes further uncovered groups first and then any compatible group, so every
    stage is maximal (a group runs whenever nothing conflicts with it).
    """
    ids = x.group_ids()
    conflicts: dict[str, set[str]] = {g: set() for g in ids}
    for c in x.conflicts:
        a, b = c.between
        conflicts[a].add(b)
        conflicts[b].add(a)
    uncovered = sorted(ids, key=lambda g: (-len(conflicts[g]), ids.index(g)))
    stages: list[tuple[str, ...]] = []
    while uncovered:
        stage = [uncovered[0]]
        for pool in (uncovered[1:], ids):
            for g in pool:
                if g not in stage and not (conflicts[g] & set(stage)):
                    stage.append(g)
        stages.append(tuple(sorted(stage, key=ids.index)))
        uncovered = [g for g in uncovered if g not in stage]
    return stages


def compile_network(config: NetworkConfig | list[IntersectionConfig]) -> CompiledNetwork:
    """Turn validated configs into the padded arrays of :class:`CompiledNetwork`."""
    if not isinstance(config, NetworkConfig):
        config = NetworkConfig(intersections=tuple(config))
    xs = config.intersections
    n_i = len(xs)
    n_g = max(len(x.signal_groups) for x in xs)
    stage_lists = [list(x.stages) if x.stages else derive_stages(x) for x in xs]
    n_s = max(len(s) for s in stage_lists)

    valid = np.zeros((n_i, n_g), dtype=np.bool_)
    conflict = np.zeros((n_i, n_g, n_g), dtype=np.bool_)
    intergreen = np.zeros((n_i, n_g, n_g), dtype=np.float64)
    amber = np.zeros((n_i, n_g))
    min_green = np.ones((n_i, n_g))
    max_green = np.ones((n_i, n_g))
    min_red = np.zeros((n_i, n_g))
    max_wait = np.full((n_i, n_g), 1e9)
    mode = np.zeros((n_i, n_g), dtype=np.int8)
    stages = np.zeros((n_i, n_s, n_g), dtype=np.bool_)
    n_stages = np.zeros(n_i, dtype=np.int32)
    group_index: list[dict[str, int]] = []

    for i, x in enumerate(xs):
        index = {g.id: k for k, g in enumerate(x.signal_groups)}
        group_index.append(index)
        for k, g in enumerate(x.signal_groups):
            valid[i, k] = True
            amber[i, k] = g.amber_s
            min_green[i, k] = g.min_green_s
            max_green[i, k] = g.max_green_s
            min_red[i, k] = g.min_red_s
            max_wait[i, k] = g.max_wait_s
            mode[i, k] = MODE_CODES[g.mode]
        for c in x.conflicts:
            a, b = index[c.between[0]], index[c.between[1]]
            conflict[i, a, b] = conflict[i, b, a] = True
            intergreen[i, a, b], intergreen[i, b, a] = c.intergreen_s
        for s, stage in enumerate(stage_lists[i]):
            for gid in stage:
                stages[i, s, index[gid]] = True
        n_stages[i] = len(stage_lists[i])

    timing = Timing(valid, conflict, intergreen, amber, min_green, max_green, min_red, max_wait)
    return CompiledNetwork(
        config=config,
        timing=timing,
        mode=mode,
        stages=stages,
        n_stages=n_stages,
        intersection_ids=tuple(x.id for x in xs),
        group_ids=tuple(tuple(x.group_ids()) for x in xs),
        intersection_index={x.id: i for i, x in enumerate(xs)},
        group_index=tuple(group_index),
    )
