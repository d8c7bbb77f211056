"""Behaviour of each controller on small deterministic cases, to the tick.

Every case drives a controller and the real core the way the runner does (observe at the time
of the coming tick, ``step``, ``advance``), with ``dt_s = 1``: tick ``n`` (from 1) is time
``n`` s, and "green from t" means the state set at tick ``t`` is green. Timelines are worked
out by hand in the comments from the rules of the core (a green ends on the tick it is no
longer requested, once its minimum green has passed; a conflicting green starts on the first
tick at which the intergreen since that end has passed).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from ivri.controllers import FixedTime, MaxPressure, VehicleActuated
from ivri.controllers.base import NO_DETECTION_S, Controller, Observation

from ivri.config import ConflictConfig, IntersectionConfig, SignalGroupConfig
from ivri.core.compile import CompiledNetwork, compile_network
from ivri.core.idx import GREEN
from ivri.engine import Engine
from ivri.errors import ConfigError

DT_S = 1.0
Scenario = Callable[[float, Observation], None]


def group(gid: str, **kw: float | str) -> SignalGroupConfig:
    """A group with round numbers: amber 3, min green 5, max green 20, min red 1."""
    base: dict[str, float | str] = {"amber_s": 3.0, "min_green_s": 5.0, "max_green_s": 20.0,
                                    "min_red_s": 1.0}
    base.update(kw)
    return SignalGroupConfig(id=gid, **base)  # type: ignore[arg-type]


def conflict(a: str, b: str, ig_ab: float, ig_ba: float) -> ConflictConfig:
    return ConflictConfig(between=(a, b), intergreen_s=(ig_ab, ig_ba))


def intersection(groups: list[SignalGroupConfig], conflicts: list[ConflictConfig],
                 stages: list[tuple[str, ...]] | None = None, xid: str = "J") -> CompiledNetwork:
    return compile_network([IntersectionConfig(
        id=xid, signal_groups=tuple(groups), conflicts=tuple(conflicts),
        stages=tuple(stages or ()),
    )])


class Run:
    """A controller and a core on one network; ``states[n]`` is the state set at tick n + 1."""

    def __init__(self, net: CompiledNetwork, ctl: Controller, scenario: Scenario, n_ticks: int) -> None:
        self.net = net
        self.ids = net.group_ids[0]
        engine = Engine(net, ctl, DT_S)
        core = engine.core
        obs = Observation.empty(net)
        self.requests = np.zeros((n_ticks, *net.timing.valid.shape), dtype=np.bool_)
        self.states = np.zeros((n_ticks, *net.timing.valid.shape), dtype=np.int8)
        for n in range(n_ticks):
            obs.t_s = core.t_s + DT_S
            scenario(obs.t_s, obs)
            engine.tick(obs)
            self.requests[n] = engine.request
            self.states[n] = core.signals.state

    def col(self, gid: str) -> int:
        return self.ids.index(gid)

    def greens(self, gid: str, i: int = 0) -> list[tuple[int, int]]:
        """The green intervals of ``gid`` as (first green tick, first tick no longer green)."""
        g = self.states[:, i, self.col(gid)] == GREEN
        edges = np.diff(np.concatenate([[False], g, [False]]).astype(np.int8))
        starts = np.nonzero(edges == 1)[0] + 1
        ends = np.nonzero(edges == -1)[0] + 1
        return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]

    def green_starts(self, gid: str, i: int = 0) -> list[int]:
        return [a for a, _ in self.greens(gid, i)]


def calls(ids: tuple[str, ...], when: dict[str, Callable[[float], bool]],
          gaps: dict[str, Callable[[float], float]] | None = None,
          queues: dict[str, Callable[[float], float]] | None = None) -> Scenario:
    """A scenario from per-group functions of time (groups not named: no demand, no gaps)."""
    gaps = gaps or {}
    queues = queues or {}

    def scenario(t: float, obs: Observation) -> None:
        for k, gid in enumerate(ids):
            obs.demand[0, k] = when[gid](t) if gid in when else False
            obs.gap_s[0, k] = gaps[gid](t) if gid in gaps else NO_DETECTION_S
            obs.queue_veh[0, k] = queues[gid](t) if gid in queues else 0.0

    return scenario


def always(t: float) -> bool:
    return True


# -- fixed time --------------------------------------------------------------------------------


def three_way() -> CompiledNetwork:
    """a, b, c all conflicting; intergreens a->b 4, b->c 5, c->a 6 (the others 3)."""
    return intersection(
        [group("a"), group("b"), group("c")],
        [conflict("a", "b", 4, 3), conflict("b", "c", 5, 3), conflict("c", "a", 6, 3)],
        stages=[("a",), ("b",), ("c",)],
    )


def test_fixed_time_plan_and_cycle() -> None:
    ctl = FixedTime(green_s=10.0)
    ctl.reset(three_way())
    assert ctl.transition_s_.tolist() == [[6.0, 4.0, 5.0]]
    assert ctl.green_s_.tolist() == [[10.0, 10.0, 10.0]]
    assert ctl.cycle_s_.tolist() == [45.0]


def test_fixed_time_stage_order_and_exact_ticks() -> None:
    # Cycle 45 s: a green from 0 (the first tick, 1, in the first cycle), b from 0+10+4 = 14,
    # c from 14+10+5 = 29, a again from 29+10+6 = 45; every green 10 s.
    run = Run(three_way(), FixedTime(green_s=10.0), calls(("a", "b", "c"), {}), 140)
    assert run.greens("a") == [(1, 10), (45, 55), (90, 100), (135, 141)]
    assert run.greens("b") == [(14, 24), (59, 69), (104, 114)]
    assert run.greens("c") == [(29, 39), (74, 84), (119, 129)]


def test_fixed_time_offset_shifts_the_cycle() -> None:
    # Stage a's green is planned for [7, 17) + 45 k; it is requested from 7 - 6 = 1 on (its
    # transition slot), and after the all-red start nothing holds it back: a from 1 to 17.
    # Then b from 17 + 4 = 21, c from 31 + 5 = 36, a from 46 + 6 = 52 as planned.
    run = Run(three_way(), FixedTime(green_s=10.0, offset_s=7.0), calls(("a", "b", "c"), {}), 100)
    assert run.greens("a") == [(1, 17), (52, 62), (97, 101)]
    assert run.greens("b") == [(21, 31), (66, 76)]
    assert run.greens("c") == [(36, 46), (81, 91)]


def test_fixed_time_offsets_per_intersection_by_id() -> None:
    net = compile_network([three_way().config.intersections[0],
                           three_way().config.intersections[0].model_copy(update={"id": "K"})])
    run = Run(net, FixedTime(green_s=10.0, offset_s={"K": 20.0}), calls(("a", "b", "c"), {}), 100)
    assert run.green_starts("a", 0) == [1, 45, 90]
    assert run.green_starts("a", 1)[-2:] == [20, 65]


def test_fixed_time_green_clamped_to_group_limits() -> None:
    net = intersection(
        [group("a", max_green_s=15.0), group("p", mode="pedestrian", amber_s=0.0, min_green_s=6.0),
         group("b", min_green_s=12.0, max_green_s=30.0)],
        [conflict("a", "b", 4, 4), conflict("p", "b", 8, 4)],
        stages=[("a", "p"), ("b",)],
    )
    ctl = FixedTime(green_s=20.0, min_green_by_mode_s={"pedestrian": 25.0})
    ctl.reset(net)
    # Stage 0: 20 capped at a's max 15, then raised to the pedestrian minimum 25 (a hard floor
    # wins over a cap). Stage 1: 20 (b: 12 <= 20 <= 30). Transitions: into b max(4, 8) = 8.
    assert ctl.green_s_.tolist() == [[25.0, 20.0]]
    assert ctl.transition_s_.tolist() == [[4.0, 8.0]]
    assert ctl.cycle_s_.tolist() == [57.0]
    ctl = FixedTime(green_s=3.0)
    ctl.reset(net)
    assert ctl.green_s_.tolist() == [[6.0, 12.0]]  # never below the groups' min green


def test_fixed_time_stage_greens_per_intersection() -> None:
    ctl = FixedTime(stage_green_s={"J": [30.0, 12.0, 8.0]})
    ctl.reset(three_way())
    assert ctl.green_s_.tolist() == [[20.0, 12.0, 8.0]]  # 30 capped at max green 20
    assert ctl.cycle_s_.tolist() == [20 + 12 + 8 + 15.0]


@pytest.mark.parametrize("kwargs, match", [
    ({"green_s": 0.0}, "green_s"),
    ({"offset_s": [1.0, 2.0]}, "offset_s has 2 values for 1"),
    ({"offset_s": {"nope": 1.0}}, "unknown intersections"),
    ({"stage_green_s": {"J": [10.0]}}, "1 values for 3 stages"),
    ({"stage_green_s": {"nope": [10.0]}}, "unknown intersection"),
    ({"min_green_by_mode_s": {"tractor": 5.0}}, "unknown mode"),
])
def test_fixed_time_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        FixedTime(**kwargs).reset(three_way())


# -- vehicle-actuated --------------------------------------------------------------------------


def two_way(**kw: float) -> CompiledNetwork:
    """a and b conflict: intergreen a->b 4 s, b->a 5 s; min green 5, max green 20."""
    return intersection([group("a", **kw), group("b", **kw)], [conflict("a", "b", 4, 5)])


def test_actuated_extends_while_gaps_are_short_then_gaps_out() -> None:
    # a: vehicles every second until t = 15, then a gap. b calls all the time.
    # a green from 1; at t = 16 the gap (10 s) >= 3 s: the stage ends, a ends on tick 16;
    # b from 16 + 4 = 20; b has no traffic, gaps out at its min green: ends 25; a from 30,
    # now without traffic: min green to 35; b from 39.
    sc = calls(("a", "b"), {"a": always, "b": always}, gaps={"a": lambda t: 1.0 if t <= 15 else 10.0})
    run = Run(two_way(), VehicleActuated(), sc, 45)
    assert run.greens("a") == [(1, 16), (30, 35)]
    assert run.greens("b") == [(20, 25), (39, 44)]


def test_actuated_gap_parameter_is_the_threshold() -> None:
    # Gaps of 2.5 s extend with gap_s = 3 (max-out at 1 + 20 = 21) but not with gap_s = 2.5.
    sc = calls(("a", "b"), {"a": always, "b": always}, gaps={"a": lambda t: 2.5})
    assert Run(two_way(), VehicleActuated(gap_s=3.0), sc, 30).greens("a")[0] == (1, 21)
    assert Run(two_way(), VehicleActuated(gap_s=2.5), sc, 30).greens("a")[0] == (1, 6)


def test_actuated_gap_counts_only_after_min_green() -> None:
    # The long gap at the start of green (nothing passed during red) must not end it early:
    # a gets exactly its min green (5 s: ends at 6), not a tick more, when no one comes.
    sc = calls(("a", "b"), {"a": always, "b": always})
    run = Run(two_way(), VehicleActuated(), sc, 12)
    assert run.greens("a")[0] == (1, 6)
    run = Run(two_way(), VehicleActuated(min_stage_s=8.0), sc, 12)
    assert run.greens("a")[0] == (1, 9)


def test_actuated_maxes_out() -> None:
    # Continuous traffic on a: max green 20 ends it at 21 though the gaps stay short.
    sc = calls(("a", "b"), {"a": always, "b": always}, gaps={"a": lambda t: 1.0})
    run = Run(two_way(), VehicleActuated(), sc, 30)
    assert run.greens("a") == [(1, 21)]
    assert run.green_starts("b") == [25]


def test_actuated_rests_when_nothing_else_calls() -> None:
    # a has no traffic and is long past max green, but nothing else calls: a stays green.
    # b calls from t = 60: a gaps out at once (ends 60), b from 64.
    sc = calls(("a", "b"), {"a": lambda t: t < 5, "b": lambda t: t >= 60})
    run = Run(two_way(), VehicleActuated(), sc, 70)
    assert run.greens("a") == [(1, 60)]
    assert run.greens("b") == [(64, 71)]


def test_actuated_rest_keeps_extending_until_someone_waits() -> None:
    # While resting, a gap does not count; once b calls (t = 30), a extends while its gaps are
    # short (until 35) but no longer than max green counted from the start of green: a has
    # been green 29 s > 20, so it ends on the first tick b calls.
    sc = calls(("a", "b"), {"a": always, "b": lambda t: t >= 30}, gaps={"a": lambda t: 1.0})
    run = Run(two_way(max_green_s=40.0), VehicleActuated(), sc, 50)
    assert run.greens("a")[0] == (1, 41)
    sc2 = calls(("a", "b"), {"a": always, "b": lambda t: t >= 30},
                gaps={"a": lambda t: 1.0 if t <= 35 else 10.0})
    run = Run(two_way(max_green_s=40.0), VehicleActuated(), sc2, 50)
    assert run.greens("a")[0] == (1, 36)
    assert run.green_starts("b") == [40]


def test_actuated_skips_stages_without_demand() -> None:
    # Stages a, b, c in cycle order; only a and c call: a (1-6), c from 6 + 3 = 9 (a->c is 3),
    # then a again from 14 + 6 = 20, c from 25 + 3 = 28. b never.
    sc = calls(("a", "b", "c"), {"a": always, "c": always})
    run = Run(three_way(), VehicleActuated(), sc, 30)
    assert run.green_starts("a") == [1, 20]
    assert run.green_starts("c") == [9, 28]
    assert run.greens("b") == []


def test_actuated_cycle_order_with_all_calling() -> None:
    # All call, none has traffic: min greens in stage order a, b, c, a.
    # a 1-6; b from 6 + 4 = 10 to 15; c from 15 + 5 = 20 to 25; a from 25 + 6 = 31.
    sc = calls(("a", "b", "c"), {"a": always, "b": always, "c": always})
    run = Run(three_way(), VehicleActuated(), sc, 35)
    assert run.greens("a")[:2] == [(1, 6), (31, 36)]
    assert run.greens("b") == [(10, 15)]
    assert run.greens("c") == [(20, 25)]


def test_actuated_first_stage_is_the_first_caller_in_cycle_order() -> None:
    sc = calls(("a", "b", "c"), {"b": always, "c": always})
    run = Run(three_way(), VehicleActuated(), sc, 5)
    assert run.green_starts("b") == [1] and run.greens("c") == []


def alternative_net() -> CompiledNetwork:
    """Stages (a), (b), (c); a-b and b-c conflict, a and c do not (c: a cycle track, say)."""
    return intersection(
        [group("a"), group("b"), group("c")],
        [conflict("a", "b", 4, 4), conflict("b", "c", 4, 4)],
        stages=[("a",), ("b",), ("c",)],
    )


def test_actuated_alternative_realisation() -> None:
    # a has traffic until 20; c calls from 3 and conflicts with nothing green or requested:
    # it runs alongside a from 3, not waiting for its own stage. As c is served, nobody
    # waits, and a rests in green after its gap-out.
    sc = calls(("a", "b", "c"), {"a": always, "c": lambda t: t >= 3},
               gaps={"a": lambda t: 1.0 if t <= 20 else 10.0})
    run = Run(alternative_net(), VehicleActuated(), sc, 30)
    assert run.greens("c") == [(3, 31)]
    assert run.greens("a") == [(1, 31)]
    # Without it, c waits for a's gap-out (21): the stage changes to c, a ends, and c (which
    # does not conflict with a) starts on the same tick. a calls again at once, so c gaps
    # out at its min green (26) and a, in turn, starts on the tick c ends.
    run = Run(alternative_net(), VehicleActuated(alternative=False), sc, 30)
    assert run.greens("a") == [(1, 21), (26, 31)]
    assert run.greens("c") == [(21, 26)]


def test_actuated_alternative_yields_to_the_next_stage() -> None:
    # As above, and b calls from 10: at a's gap-out (21) the stage goes to b, so the
    # alternative c must end too (it conflicts with b): both end at 21, b from 25.
    sc = calls(("a", "b", "c"), {"a": always, "b": lambda t: t >= 10, "c": always},
               gaps={"a": lambda t: 1.0 if t <= 20 else 10.0})
    run = Run(alternative_net(), VehicleActuated(), sc, 30)
    assert run.greens("a")[0] == (1, 21)
    assert run.greens("c")[0] == (1, 21)
    assert run.green_starts("b") == [25]


def along_net(ig_pb: float = 4.0) -> CompiledNetwork:
    """Stage (a, p) with a pedestrian crossing p beside motor group a; stage (b) conflicts both.

    The clearance a -> b is 5 s; p -> b is ``ig_pb``.
    """
    return intersection(
        [group("a"), group("p", mode="pedestrian", amber_s=0.0), group("b")],
        [conflict("a", "b", 5, 4), conflict("p", "b", ig_pb, 4)],
        stages=[("a", "p"), ("b",)],
    )


ALONG = calls(("a", "p", "b"), {"a": always, "p": lambda t: t <= 2, "b": always},
              gaps={"a": lambda t: 1.0 if t <= 20 else 10.0})


def test_actuated_pedestrians_kept_green_along() -> None:
    # The pedestrian pushes at 1-2 only; a has traffic until 20; b calls all the time.
    # Meeverlengen: p (clearance 4 s, no longer than a's 5 s) stays green as long as a's
    # stage runs (to 21); b starts at 21 + 5 = 26 either way. Without meeverlengen p ends at
    # its min green (6).
    run = Run(along_net(4.0), VehicleActuated(), ALONG, 35)
    assert run.greens("p")[0] == (1, 21)
    assert run.green_starts("b") == [26]
    run = Run(along_net(4.0), VehicleActuated(extend_along=False), ALONG, 35)
    assert run.greens("p")[0] == (1, 6)
    assert run.green_starts("b") == [26]


def test_actuated_no_meeverlengen_that_would_delay_the_next_stage() -> None:
    # p's clearance into b is 9 s, a's 5 s: kept green to 21, p would hold b to 30. So p
    # ends at its min green (6) while b waits, and b starts at 21 + 5 = 26.
    run = Run(along_net(9.0), VehicleActuated(), ALONG, 35)
    assert run.greens("p")[0] == (1, 6)
    assert run.green_starts("b") == [26]
    # With nobody waiting the stage rests, and p stays green along (no one to delay).
    rest = calls(("a", "p", "b"), {"a": always, "p": lambda t: t <= 2},
                 gaps={"a": lambda t: 1.0 if t <= 20 else 10.0})
    run = Run(along_net(9.0), VehicleActuated(), rest, 35)
    assert run.greens("p") == [(1, 36)]


def test_actuated_group_joins_the_running_stage() -> None:
    # p calls only from 10, while a's stage runs: it joins (green from 10).
    sc = calls(("a", "p", "b"), {"a": always, "p": lambda t: t >= 10, "b": always},
               gaps={"a": lambda t: 1.0 if t <= 20 else 10.0})
    run = Run(along_net(4.0), VehicleActuated(), sc, 30)
    assert run.greens("a")[0] == (1, 21)
    assert run.green_starts("p") == [10]


def test_actuated_motor_group_that_gapped_out_stays_green_with_its_stage() -> None:
    # Stage (a, a2), both motor; a2 has no traffic: with b waiting, a2 stays green along while
    # a extends (meeverlengen), and both end together at 21 when a gaps out; b follows after
    # the intergreen.
    net = intersection(
        [group("a"), group("a2"), group("b")],
        [conflict("a", "b", 4, 4), conflict("a2", "b", 4, 4)],
        stages=[("a", "a2"), ("b",)],
    )
    sc = calls(("a", "a2", "b"), {"a": always, "a2": always, "b": always},
               gaps={"a": lambda t: 1.0 if t <= 20 else 10.0})
    run = Run(net, VehicleActuated(), sc, 30)
    assert run.greens("a2") == [(1, 21)]
    assert run.greens("a")[0] == (1, 21)
    assert run.greens("b")[0][0] == 25


@pytest.mark.parametrize("kwargs", [{"gap_s": 0.0}, {"min_stage_s": -1.0}])
def test_actuated_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        VehicleActuated(**kwargs).reset(two_way())


# -- max-pressure ------------------------------------------------------------------------------


def cross() -> CompiledNetwork:
    """Stages (n1, n2) and (e1, e2): each n conflicts with each e; intergreen 4 s; max green 30."""
    gs = [group(g, max_green_s=30.0) for g in ("n1", "n2", "e1", "e2")]
    cs = [conflict(a, b, 4, 4) for a in ("n1", "n2") for b in ("e1", "e2")]
    return intersection(gs, cs, stages=[("n1", "n2"), ("e1", "e2")])


IDS = ("n1", "n2", "e1", "e2")


def pressure_scenario(queue: dict[str, Callable[[float], float]],
                      down: dict[str, float] | None = None,
                      approach: dict[str, float] | None = None) -> Scenario:
    def scenario(t: float, obs: Observation) -> None:
        for k, gid in enumerate(IDS):
            q = queue[gid](t) if gid in queue else 0.0
            a = (approach or {}).get(gid, 0.0)
            obs.queue_veh[0, k] = q
            obs.demand[0, k] = q > 0 or a > 0  # a road user waits or approaches
            obs.downstream_queue_veh[0, k] = (down or {}).get(gid, 0.0)
            obs.approach_veh[0, k] = a

    return scenario


def const(v: float) -> Callable[[float], float]:
    return lambda t: v


def test_max_pressure_picks_the_highest_pressure() -> None:
    # n: 3 + 0, e: 2 + 2 -> e first.
    sc = pressure_scenario({"n1": const(3), "e1": const(2), "e2": const(2)})
    ctl = MaxPressure(period_s=5.0)
    run = Run(cross(), ctl, sc, 3)
    assert run.green_starts("e1") == [1] and run.green_starts("e2") == [1]
    assert run.greens("n1") == []
    assert ctl.state_.pressure.tolist() == [[3.0, 4.0]]


def test_max_pressure_counts_downstream_queues() -> None:
    # e's exit is jammed (5 on e1's downstream lanes): 2 - 5 + 2 = -1 < 3: n first.
    sc = pressure_scenario({"n1": const(3), "e1": const(2), "e2": const(2)}, down={"e1": 5.0})
    run = Run(cross(), MaxPressure(period_s=5.0), sc, 3)
    assert run.green_starts("n1") == [1]


def test_max_pressure_holds_for_the_period() -> None:
    # e wins at t = 1; from t = 2 n's queues are far longer, but e is held until it has been
    # green 5 s (decision at 6): e ends at 6, n from 6 + 4 = 10; n is held to 15 at least.
    sc = pressure_scenario({"n1": lambda t: 1.0 if t < 2 else 9.0, "e1": const(1), "e2": const(1)})
    run = Run(cross(), MaxPressure(period_s=5.0), sc, 20)
    assert run.greens("e1") == [(1, 6)]
    assert run.green_starts("n1") == [10]
    run = Run(cross(), MaxPressure(period_s=8.0), sc, 20)
    assert run.greens("e1") == [(1, 9)]


def test_max_pressure_never_decides_before_min_green() -> None:
    net = intersection([group(g, min_green_s=9.0, max_green_s=30.0) for g in IDS],
                       [conflict(a, b, 4, 4) for a in ("n1", "n2") for b in ("e1", "e2")],
                       stages=[("n1", "n2"), ("e1", "e2")])
    sc = pressure_scenario({"n1": lambda t: 1.0 if t < 2 else 9.0, "e1": const(1), "e2": const(1)})
    run = Run(net, MaxPressure(period_s=5.0), sc, 20)
    assert run.greens("e1") == [(1, 10)]


def test_max_pressure_keeps_the_stage_while_it_wins() -> None:
    # e keeps the larger pressure: the decisions at 6, 11, ..., 26 keep it; n waits until
    # e reaches its max green (30 s, at t = 31) while n calls: the controller decides on that
    # tick (e no longer eligible), so e ends at exactly 31 and does not stutter; n from 35,
    # held 5 s; at 40 e wins again and is back from 44.
    sc = pressure_scenario({"n1": const(1), "e1": const(2), "e2": const(2)})
    run = Run(cross(), MaxPressure(period_s=5.0), sc, 45)
    assert run.greens("e1") == [(1, 31), (44, 46)]
    assert run.greens("n1") == [(35, 40)]


def test_max_pressure_zero_pressure_keeps_the_running_stage() -> None:
    # e gets green for its queue (to t = 3); then all queues are 0 but n1 calls (a push
    # button: demand without a queue count). Pressure and approach tie at 0, so demand
    # decides: n. With no call at all, e stays.
    def sc(with_call: bool) -> Scenario:
        inner = pressure_scenario({"e1": lambda t: 1.0 if t < 3 else 0.0})

        def scenario(t: float, obs: Observation) -> None:
            inner(t, obs)
            obs.demand[0, 0] = with_call and t >= 3

        return scenario

    run = Run(cross(), MaxPressure(period_s=5.0), sc(False), 30)
    assert run.greens("e1") == [(1, 31)]
    run = Run(cross(), MaxPressure(period_s=5.0), sc(True), 30)
    assert run.greens("e1")[0] == (1, 6)
    assert run.green_starts("n1") == [10]


def test_max_pressure_approaching_traffic_breaks_a_tie() -> None:
    # No queues anywhere; 2 road users approach on n2: n is chosen, then held (nothing beats it).
    sc = pressure_scenario({}, approach={"n2": 2.0})
    run = Run(cross(), MaxPressure(period_s=5.0), sc, 20)
    assert run.greens("n2") == [(1, 21)]


def test_max_pressure_negative_pressure_still_picks_the_largest() -> None:
    sc = pressure_scenario({"n1": const(1), "e1": const(1)}, down={"n1": 4.0, "e1": 2.0})
    ctl = MaxPressure(period_s=5.0)
    run = Run(cross(), ctl, sc, 2)
    assert run.green_starts("e1") == [1]
    assert ctl.state_.pressure.tolist() == [[-3.0, -1.0]]


def discharge_scenario(n_approach: float, flows_until: float, e_queue: float) -> Scenario:
    """n1 queues 5 at t = 1 (n first); from t = 2 its queue moves (``n_approach`` vehicles,
    gap 1 s) until ``flows_until``, then nothing passes; e1 queues ``e_queue`` from t = 2."""
    def scenario(t: float, obs: Observation) -> None:
        first = t < 2
        obs.queue_veh[0, :] = 0.0
        obs.approach_veh[0, :] = 0.0
        obs.gap_s[0, :] = NO_DETECTION_S
        obs.queue_veh[0, 0] = 5.0 if first else 0.0
        obs.approach_veh[0, 0] = 5.0 if first else n_approach
        obs.gap_s[0, 0] = 1.0 if 2 <= t < flows_until else 50.0
        obs.queue_veh[0, 2] = 0.0 if first else e_queue
        obs.demand[0, :] = (obs.queue_veh[0] > 0) | (obs.approach_veh[0] > 0)

    return scenario


def test_max_pressure_does_not_cut_a_discharging_green_for_less_than_the_intergreen() -> None:
    # n discharges 6 moving vehicles; e queues 8. 8 > 6, but a switch costs 4 s of intergreen
    # (4 veh/s: 16 vehicles, at most the 6 n still has), and 8 - 6 < 6: n stays green while
    # it discharges and e gets green as soon as nothing passes n's loops any more (t = 16).
    # Without the penalty, e wins at the first decision (t = 6).
    sc = discharge_scenario(6.0, 16.0, 8.0)
    run = Run(cross(), MaxPressure(period_s=5.0), sc, 25)
    assert run.greens("n1") == [(1, 16)]
    assert run.green_starts("e1") == [20]
    run = Run(cross(), MaxPressure(period_s=5.0, lost_veh_per_s=0.0), sc, 25)
    assert run.greens("n1") == [(1, 6)]
    assert run.green_starts("e1") == [10]


def test_max_pressure_cuts_a_trickle() -> None:
    # n still passes its loops, but only 1 vehicle is left: the switch costs at most that
    # one, and e's 4 win at the first decision.
    run = Run(cross(), MaxPressure(period_s=5.0), discharge_scenario(1.0, 99.0, 4.0), 15)
    assert run.greens("n1") == [(1, 6)]
    assert run.green_starts("e1") == [10]


def crossing_beside(a_flows: bool) -> tuple[CompiledNetwork, Scenario]:
    """Stage (a, p): motor a with a crossing p (clearance 12 s into b), stage (b): a queues
    10 and discharges (when ``a_flows``); b queues 3 (calling) from t = 2; persons wait at
    p at t < 9 and again at 12 <= t < 16."""
    net = intersection(
        [group("a"), group("p", mode="pedestrian", amber_s=0.0, min_green_s=6.0), group("b")],
        [conflict("a", "b", 4, 4), conflict("p", "b", 12, 4)],
        stages=[("a", "p"), ("b",)],
    )

    def scenario(t: float, obs: Observation) -> None:
        walk = t < 9 or 12 <= t < 16
        obs.queue_veh[0, :] = (10.0, 1.0 if walk else 0.0, 3.0 if t >= 2 else 0.0)
        obs.approach_veh[0, :] = obs.queue_veh[0]
        obs.gap_s[0, :] = (1.0 if a_flows else NO_DETECTION_S, NO_DETECTION_S, NO_DETECTION_S)
        obs.demand[0, :] = obs.queue_veh[0] > 0

    return net, scenario


def test_max_pressure_starts_a_crossing_once_per_stage_and_ends_it_before_its_clearance_costs() -> None:
    # a keeps its stage (it discharges 10, b has 3). p gets its minimum green (1-6) and is
    # released although persons still wait (its 12 s clearance into the waiting b is longer
    # than a's 4 s: kept green it would hold b back when the stage ends); the persons who
    # come at t = 12 wait for the next turn of the stage rather than restart p.
    net, sc = crossing_beside(True)
    run = Run(net, MaxPressure(period_s=5.0), sc, 20)
    assert run.greens("p") == [(1, 7)]
    assert run.greens("a") == [(1, 21)]


def test_max_pressure_restarts_a_crossing_when_nobody_else_waits() -> None:
    # As above, but b never calls: p stays green while persons wait, and serves them again.
    net, sc = crossing_beside(True)

    def no_b(t: float, obs: Observation) -> None:
        sc(t, obs)
        obs.queue_veh[0, 2] = obs.approach_veh[0, 2] = 0.0
        obs.demand[0, 2] = False

    run = Run(net, MaxPressure(period_s=5.0), no_b, 20)
    assert run.greens("p")[0] == (1, 9)
    assert run.green_starts("p") == [1, 12]


@pytest.mark.parametrize("kwargs", [{"period_s": 0.0}, {"gap_s": 0.0}, {"lost_veh_per_s": -1.0}])
def test_max_pressure_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        MaxPressure(**kwargs).reset(cross())


def test_actuated_group_that_gapped_out_keeps_green_while_its_stage_runs() -> None:
    # As above (a has traffic, a2 gaps out at 6 while b waits), but b stops calling at 8
    # (say, its vehicle turned away) and a2 calls again from 15: a2 never flashes red, it
    # stays green along with a and then with the resting stage.
    net = intersection(
        [group("a"), group("a2"), group("b")],
        [conflict("a", "b", 4, 4), conflict("a2", "b", 4, 4)],
        stages=[("a", "a2"), ("b",)],
    )
    sc = calls(("a", "a2", "b"), {"a": always, "a2": lambda t: t <= 6 or t >= 15,
                                  "b": lambda t: t <= 8}, gaps={"a": lambda t: 1.0})
    run = Run(net, VehicleActuated(), sc, 30)
    assert run.greens("a2") == [(1, 31)]
    assert run.greens("a") == [(1, 31)]
    assert run.greens("b") == []


# -- spillback: blocked exits --------------------------------------------------------------------


def blocked_from(gid: str, ids: tuple[str, ...], start: float, scenario: Scenario) -> Scenario:
    """``scenario`` with ``gid``'s exits blocked from time ``start`` on."""
    def sc(t: float, obs: Observation) -> None:
        scenario(t, obs)
        obs.exit_blocked[0, :] = False
        obs.exit_blocked[0, ids.index(gid)] = t >= start

    return sc


def test_actuated_ends_a_green_whose_exit_is_blocked_while_another_group_waits() -> None:
    # a has continuous traffic (short gaps, a halting queue) and b calls. a's exit is blocked
    # from t = 8: a ends on tick 8 (past its min green) instead of maxing out at 21; b from
    # 8 + 4 = 12. Ignoring the exits (exit_aware=False), a runs to max green.
    base = calls(("a", "b"), {"a": always, "b": always}, gaps={"a": lambda t: 1.0},
                 queues={"a": lambda t: 3.0})
    sc = blocked_from("a", ("a", "b"), 8.0, base)
    run = Run(two_way(), VehicleActuated(), sc, 20)
    assert run.greens("a")[0] == (1, 8)
    assert run.green_starts("b")[0] == 12
    assert Run(two_way(), VehicleActuated(exit_aware=False), sc, 30).greens("a")[0] == (1, 21)


def test_actuated_does_not_start_a_green_into_a_blocked_exit() -> None:
    # b calls but its exit is blocked until t = 30: the controller keeps a resting green (b
    # does not count as waiting); the core still ends a at max green (21), as b's call stands,
    # but b is not started before its exit clears: first requested on tick 30, green from 30
    # (a's intergreen ran out long ago).
    sc = blocked_from("b", ("a", "b"), -1.0, calls(("a", "b"), {"a": lambda t: t < 3, "b": always}))

    def clears(t: float, obs: Observation) -> None:
        sc(t, obs)
        obs.exit_blocked[0, 1] = t < 30

    run = Run(two_way(), VehicleActuated(), clears, 40)
    assert run.greens("a")[0] == (1, 21)
    assert run.green_starts("b") == [30]
    assert not run.requests[:29, 0, 1].any()


def test_max_pressure_gives_a_blocked_group_no_pressure() -> None:
    # n has the larger queue (3 > 2 + 0) but n1's exit is blocked and n2 has no queue: e wins.
    sc = blocked_from("n1", IDS, -1.0, pressure_scenario({"n1": const(3), "e1": const(2)}))
    ctl = MaxPressure(period_s=5.0)
    run = Run(cross(), ctl, sc, 3)
    assert run.green_starts("e1") == [1] and run.greens("n1") == []
    assert ctl.state_.pressure.tolist() == [[0.0, 2.0]]
