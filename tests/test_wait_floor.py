"""The anti-starvation floor that derived (SUMO) and imported (TLCGen) intersections share."""

from __future__ import annotations

from ivri.config import ConflictConfig, SignalGroupConfig
from ivri.wait_floor import MAX_WAIT_CEILING_S, WAIT_CYCLE_FACTOR, longest_cycle_s, with_wait_floor


def plan(max_green_s: float, max_wait_s: float = 120.0) -> tuple[list[SignalGroupConfig], list[ConflictConfig],
                                                                 tuple[tuple[str, ...], ...]]:
    groups = [SignalGroupConfig(id=g, max_green_s=max_green_s, max_wait_s=max_wait_s) for g in ("a", "b", "c")]
    conflicts = [ConflictConfig(between=("a", "b"), intergreen_s=(4.0, 5.5)),
                 ConflictConfig(between=("b", "c"), intergreen_s=(3.0, 6.0))]
    return groups, conflicts, (("a", "c"), ("b",))


def test_longest_cycle_is_max_greens_plus_the_clearance_out_of_each_stage() -> None:
    groups, conflicts, stages = plan(30.0)
    # Stage (a, c): 30 s + the longest clearance out of a or c (a->b 4 s, c->b 6 s);
    # stage (b): 30 s + the longest out of b (b->a 5.5 s, b->c 3 s).
    assert longest_cycle_s(groups, conflicts, stages) == 30.0 + 6.0 + 30.0 + 5.5


def test_floor_raises_short_waits_in_whole_seconds() -> None:
    groups, conflicts, stages = plan(60.0, max_wait_s=90.0)
    floor = WAIT_CYCLE_FACTOR * (60.0 + 6.0 + 60.0 + 5.5)
    assert floor == 164.375
    assert [g.max_wait_s for g in with_wait_floor(groups, conflicts, stages)] == [165.0] * 3


def test_floor_has_a_ceiling_and_keeps_longer_waits() -> None:
    groups, conflicts, stages = plan(200.0, max_wait_s=100.0)
    assert [g.max_wait_s for g in with_wait_floor(groups, conflicts, stages)] == [MAX_WAIT_CEILING_S] * 3
    groups, conflicts, stages = plan(30.0, max_wait_s=300.0)
    assert [g.max_wait_s for g in with_wait_floor(groups, conflicts, stages)] == [300.0] * 3
