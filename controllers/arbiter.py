"""The arbiter: one plan per intersection from a base controller and the priority applications.

Every tick:

1. the base controller (fixed-time, actuated, ...) proposes its request mask;
2. every application returns :class:`~.priority.PriorityRequests` rows;
3. :func:`arbitrate_kernel` ranks the rows of each intersection (class, then earliest
   arrival; :mod:`.priority` documents the order) and serves them greedily: a row is
   accepted when its group conflicts with no row accepted before it, and then, by its
   class's :class:`~.priority.ClassRules`:

   * its group is green: the green is held (also past max green: ``extend``);
   * it is red and the class may pre-empt: from the earliest time a conflicting group could
     still delay it (PREPARING, classes with ``prepare``) no conflicting group may start,
     and from the time needed to
     end the running conflicting greens (after their minimum green, or ``cut_after_s``) and
     let their intergreens pass, plus the queue in front of it and a margin (CLEARING), the
     conflicting greens are ended and its group is requested;
   * a class that places early calls (``precall``: Schwung, rain mode) instead adds demand
     for its group in the base controller, once green could not come sooner than the road
     user (it arrives within the time the conflicting greens need to end and clear), and
     lets it see conflicting motor greens as gapped
     out at a shorter gap (``gap_out_s``): the base controller serves the group in its own
     order, sooner, without cutting a green that still carries traffic;
   * refused when conflicting road users have waited too long (``others_wait_s``) or the
     budget of the class is used up; dropped after ``timeout_s`` of service without arrival;
   * net benefit (classes with ``net_benefit``: buses, trucks, rain holds, and cyclists when
     set up to cut): a cut, or a hold of a green the base controller would end, is granted
     only when it pays for itself in person-seconds. Benefit: the persons it serves (the
     request's occupancy, and for a cut also the queue on its own group) times the seconds
     they save (the expected wait for the running conflicting greens to end by themselves,
     half of what their max green leaves, or for a hold the conflicting stage it would
     otherwise wait through) plus a stop. Cost: the persons queued or arriving on each
     conflicting group (detectors; persons per vehicle by mode) times what they lose (a cut
     green: the detour through the request's green and two intergreens; a held-back red or
     a hold: the request's green or the hold). Refused as well while a conflicting approach
     is near capacity (saturation gating: its queue needs nearly all the green it can still
     get), and when the intersection has had its intervention this cycle or still owes a
     held-back group its green. Each is weighed once, when it would first act; a grant is
     then kept (no flapping). The parameters and their sources are in :mod:`.priority`;
     early calls (``precall``) cost nobody and are neither weighed nor budgeted;

4. after an emergency vehicle, or a weighed cut of any class, has gone, the groups it held
   back are owed a green (COMPENSATION requests, served before normal operation resumes and
   before the next intervention). A weighed hold owes nothing: it only lengthens the running
   green, and the groups it kept waiting come next anyway (paying them back with pre-empting
   greens cost 70 % more vehicle-loss hours under rain mode on corridor:peak);
5. every request, grant, refusal, time-out and recovery goes to the decision log, with its
   reason and without any road-user identity.

The core then grants what is safe: minimum green, amber, intergreen and its hard
anti-starvation bound hold whatever the arbiter asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ivri.core.compile import CompiledNetwork, Timing
from ivri.core.idx import AMBER, GREEN, MODE_BICYCLE, MODE_BUS, MODE_PEDESTRIAN, MODE_TRAM, RED
from ivri.core.jit import njit
from ivri.core.state import SignalState
from ivri.errors import ConfigError

from ._common import EPS_S, TickClock, contiguous_timing, slow_mode_mask
from .base import NO_DETECTION_S, Controller, Observation
from .priority import (
    DEFAULT_NET_BENEFIT,
    DEFAULT_RULES,
    PERSONS,
    ClassRules,
    NetBenefitParams,
    PriorityApplication,
    PriorityClass,
    PriorityRequests,
    RuleArrays,
    rule_arrays,
)

__all__ = [
    "ArbiterOut",
    "PriorityArbiter",
    "ReqArrays",
    "Status",
    "TrafficArrays",
    "WeighArrays",
    "arbitrate_kernel",
]


class Status(IntEnum):
    """What the arbiter did with a request this tick."""

    NEW = 0
    NO_GROUP = 1           # its movement is not known yet
    PLANNED = 2            # accepted; far enough out that nothing needs to change yet
    PREPARING = 3          # conflicting groups may not start
    CLEARING = 4           # conflicting greens are ended, its group is requested
    GRANTED = 5            # its group is green and held
    QUEUED = 6             # behind a higher-ranked request that conflicts with it
    WAITING = 7            # an extension for a group that is not green: nothing to hold
    REFUSED_OTHERS = 8     # conflicting road users have waited too long
    REFUSED_BUDGET = 9     # the class's budget of grants is used up
    TIMED_OUT = 10         # served too long without arriving
    CALLED = 11            # an early call for its group was placed in the base controller
    REFUSED_COST = 12      # it would cost the conflicting streams more person-seconds than it saves
    REFUSED_SATURATED = 13  # a conflicting approach is near capacity: no green is cut for it
    REFUSED_CYCLE = 14     # this cycle has had its intervention, or a held-back group is still owed


ACTING = (Status.PREPARING, Status.CLEARING, Status.GRANTED, Status.CALLED)
_STICKY = (Status.REFUSED_BUDGET, Status.TIMED_OUT)

REASONS: dict[Status, str] = {
    Status.PREPARING: "conflicting groups kept red to prepare its green",
    Status.CLEARING: "conflicting greens ended early so that it arrives at green",
    Status.GRANTED: "its green is held until it has passed",
    Status.CALLED: "an early call placed, served in the normal order without cutting a green",
    Status.QUEUED: "waits behind a higher-ranked conflicting request",
    Status.REFUSED_OTHERS: "conflicting road users have waited too long",
    Status.REFUSED_BUDGET: "the budget of grants per hour is used up",
    Status.TIMED_OUT: "served too long without arriving",
    Status.NO_GROUP: "its movement is not known yet",
    Status.REFUSED_COST: "it costs the conflicting streams more person-seconds than it saves",
    Status.REFUSED_SATURATED: "a conflicting approach is near capacity",
    Status.REFUSED_CYCLE: "one intervention per cycle: this one has had it, or a group is still owed",
}

#: Refusals that the decision log records with the person-seconds of both sides.
_WEIGHED = (Status.REFUSED_COST, Status.REFUSED_SATURATED, Status.REFUSED_CYCLE)


@njit
def _conflicting_demand_waited(timing: Timing, sig: SignalState, demand: np.ndarray, i: int, g: int,
                               limit_s: float) -> bool:
    for k in range(sig.state.shape[1]):
        if (timing.conflict[i, g, k] and timing.valid[i, k] and demand[i, k]
                and sig.state[i, k] != GREEN and sig.wait_s[i, k] >= limit_s):
            return True
    return False


@njit
def _near_capacity(timing: Timing, sig: SignalState, queue_veh: np.ndarray, lanes: np.ndarray,
                   nb: np.ndarray, i: int, g: int) -> bool:
    """Whether a group conflicting with ``g`` has a queue that needs nearly all the green it can
    still get (saturation gating). ``nb`` = (sat_headway_s, stop_penalty_s, saturation)."""
    for k in range(sig.state.shape[1]):
        if not (timing.conflict[i, g, k] and timing.valid[i, k]) or queue_veh[i, k] <= 0.0:
            continue
        need_s = queue_veh[i, k] / max(lanes[i, k], 1.0) * nb[0]
        if sig.state[i, k] == GREEN:
            left_s = max(timing.max_green_s[i, k] - sig.elapsed_s[i, k], 0.0)
        else:
            left_s = timing.max_green_s[i, k]
        if need_s >= nb[2] * left_s:
            return True
    return False


@njit
def _person_seconds(timing: Timing, sig: SignalState, queue_veh: np.ndarray, approach_veh: np.ndarray,
                    demand: np.ndarray, persons: np.ndarray, lanes: np.ndarray, nb: np.ndarray,
                    i: int, g: int, own_persons: float, eta_s: float, hold: bool, lead_s: float,
                    margin_s: float) -> tuple[float, float]:
    """Expected (benefit, cost) in person-seconds of serving a request for ``g`` (see the
    module docstring): a hold of a green ``g`` that the base controller would end, or a cut
    of the conflicting greens (and a hold-back of the conflicting reds) for a red ``g``."""
    n_g = sig.state.shape[1]
    benefit = 0.0
    cost = 0.0
    if hold:
        # Without the hold it misses the green and waits for the conflicting stage: the
        # intergreen out, that stage's green (its queue leaving, at least its min green), the
        # intergreen back, and a stop.
        red_s = 0.0
        for k in range(n_g):
            if not (timing.conflict[i, g, k] and timing.valid[i, k]):
                continue
            busy = demand[i, k] or queue_veh[i, k] > 0.0
            if not busy:
                continue
            stage_s = max(timing.min_green_s[i, k], queue_veh[i, k] / max(lanes[i, k], 1.0) * nb[0])
            red_s = max(red_s, timing.intergreen_s[i, g, k] + stage_s + timing.intergreen_s[i, k, g])
            # Who waits on k waits as long as the hold lasts.
            cost += persons[i, k] * max(queue_veh[i, k], approach_veh[i, k], 1.0) * (max(eta_s, 0.0) + margin_s)
        benefit = own_persons * (red_s + nb[1]) if red_s > 0.0 else 0.0
        return benefit, cost
    # A red g served early. Without priority it waits until the running conflicting greens end
    # by themselves (expected: half of what max green leaves them) and their intergreens.
    wait_s = lead_s
    for k in range(n_g):
        if not (timing.conflict[i, g, k] and timing.valid[i, k]):
            continue
        ig_kg = timing.intergreen_s[i, k, g]
        ig_gk = timing.intergreen_s[i, g, k]
        users = max(queue_veh[i, k], approach_veh[i, k])
        if sig.state[i, k] == GREEN:
            wait_s = max(wait_s, 0.5 * max(timing.max_green_s[i, k] - sig.elapsed_s[i, k], 0.0) + ig_kg)
            # Cut: its remaining users wait for g's green and two extra intergreens.
            cost += persons[i, k] * users * (ig_kg + timing.min_green_s[i, g] + ig_gk)
        elif demand[i, k] or queue_veh[i, k] > 0.0:
            # Held back: they wait for g's green first.
            cost += persons[i, k] * max(users, 1.0) * (timing.min_green_s[i, g] + ig_gk)
    saved_s = max(wait_s - max(lead_s, eta_s), 0.0)
    if saved_s > 0.0:
        saved_s += nb[1]  # and it need not stop
    benefit = (own_persons + persons[i, g] * queue_veh[i, g]) * saved_s
    return benefit, cost


class TrafficArrays(NamedTuple):
    """What the arbiter reads of the traffic and the base controller this tick (``[I, G]``)."""

    demand: np.ndarray        # bool: calls on the group's detectors
    gap_s: np.ndarray         # float64: seconds since a vehicle last passed its detectors
    queue_veh: np.ndarray     # float64: vehicles queued at its stop line
    approach_veh: np.ndarray  # float64: vehicles approaching it
    base_request: np.ndarray  # bool: the base controller's proposal


class ReqArrays(NamedTuple):
    """This tick's request rows as the kernel reads them (length N; ``charged`` is updated)."""

    intersection: np.ndarray  # int64
    group: np.ndarray         # int64
    cls: np.ndarray           # int8: a PriorityClass
    eta_s: np.ndarray         # float64: seconds until the road user reaches the stop line
    sticky: np.ndarray        # int8: a status the row keeps (refused for budget, timed out), else 0
    charged: np.ndarray       # bool: weighed and charged to the budget (once per request)
    order: np.ndarray         # int64: the rows by intersection, class (highest first) and ETA


class WeighArrays(NamedTuple):
    """What the net-benefit rule weighs with, and which greens an early call may shorten (see
    the module docstring)."""

    persons: np.ndarray     # float64[I, G]: persons per road user of each group
    lanes: np.ndarray       # float64[I, G]: lanes of each group
    params: np.ndarray      # float64[3]: sat_headway_s, stop_penalty_s, saturation
    cycle_open: np.ndarray  # bool[I]: no intervention yet this cycle and nobody owed
    slow: np.ndarray        # bool[I, G]: pedestrian and bicycle groups (keep their own gap)


class ArbiterOut(NamedTuple):
    """What :func:`arbitrate_kernel` writes (every array overwritten each call)."""

    request: np.ndarray     # bool[I, G]: the request mask for the core
    extend: np.ndarray      # bool[I, G]: greens the core may hold past max green
    precall: np.ndarray     # bool[I, G]: early calls for the base controller's next tick
    gapout: np.ndarray      # bool[I, G]: conflicting greens the base controller sees as gapped out
    held_back: np.ndarray   # bool[I, G]: groups with demand that a request keeps from green
    status: np.ndarray      # int8[N]: a Status per request row
    benefit: np.ndarray     # float64[N]: person-seconds a weighed row saves (0: not weighed)
    cost: np.ndarray        # float64[N]: person-seconds it costs the conflicting streams
    intervened: np.ndarray  # bool[I]: an intervention was granted here this tick


@njit
def arbitrate_kernel(
    timing: Timing,
    sig: SignalState,
    t_s: float,
    dt_s: float,
    traffic: TrafficArrays,
    req: ReqArrays,
    rules: RuleArrays,
    weigh: WeighArrays,
    budget: np.ndarray,
    out: ArbiterOut,
) -> ArbiterOut:
    """Serve the requests of every intersection in rank order (see the module docstring).

    ``dt_s`` is the tick length (the core adds it to every timer before it compares).
    Rows are visited in ``req.order``; rows with ``req.sticky > 0`` keep that status.
    ``budget`` (float ``[I, C]``) is charged once per request (``req.charged``, updated).
    Fills and returns ``out`` (:class:`ArbiterOut`).

    Net benefit (classes with ``net_benefit``): a cut or a hold that costs others is weighed
    once, when it would first act (``req.charged`` False), with ``weigh``
    (:class:`WeighArrays`); ``out.benefit`` / ``out.cost`` get the person-seconds,
    ``out.intervened`` marks intersections where one was granted.
    """
    demand = traffic.demand
    gap_s = traffic.gap_s
    queue_veh = traffic.queue_veh
    approach_veh = traffic.approach_veh
    base_request = traffic.base_request
    r_int = req.intersection
    r_grp = req.group
    r_cls = req.cls
    r_eta = req.eta_s
    r_sticky = req.sticky
    r_charged = req.charged
    persons = weigh.persons
    lanes = weigh.lanes
    nb = weigh.params
    cycle_open = weigh.cycle_open
    slow = weigh.slow
    out_request = out.request
    out_extend = out.extend
    out_precall = out.precall
    out_gapout = out.gapout
    held_back = out.held_back
    status = out.status
    r_benefit = out.benefit
    r_cost = out.cost
    intervened = out.intervened
    held_back[:, :] = False
    status[:] = 0
    r_benefit[:] = 0.0
    r_cost[:] = 0.0
    intervened[:] = False
    out_request[:, :] = base_request
    out_extend[:, :] = False
    out_precall[:, :] = False
    out_gapout[:, :] = False
    n_g = sig.state.shape[1]
    n_i = sig.state.shape[0]
    taken = np.zeros((n_i, n_g), dtype=np.bool_)  # groups of accepted rows
    for r in req.order:
        i = r_int[r]
        g = r_grp[r]
        c = r_cls[r]
        if r_sticky[r] > 0:
            status[r] = r_sticky[r]
            continue
        if g < 0 or g >= n_g or not timing.valid[i, g]:
            status[r] = Status.NO_GROUP
            continue
        if _conflicting_demand_waited(timing, sig, demand, i, g, rules.others_wait_s[c]):
            status[r] = Status.REFUSED_OTHERS
            continue
        queued = False
        for k in range(n_g):
            if taken[i, k] and timing.conflict[i, g, k]:
                queued = True
                break
        if queued:
            status[r] = Status.QUEUED
            continue

        s_g = sig.state[i, g]
        # Earliest start of g if every conflicting green ended as soon as this class may
        # end it (lead), and the same if a conflicting group started right now (worst: the
        # horizon from which no conflicting group may start any more).
        if s_g == GREEN:
            lead = 0.0
        elif s_g == AMBER:
            lead = timing.amber_s[i, g] - sig.elapsed_s[i, g] + timing.min_red_s[i, g]
        else:
            lead = max(timing.min_red_s[i, g] - sig.elapsed_s[i, g], 0.0)
        worst = lead
        for k in range(n_g):
            if not (timing.conflict[i, g, k] and timing.valid[i, k]):
                continue
            ig = timing.intergreen_s[i, k, g]
            keep_s = max(timing.min_green_s[i, k], rules.cut_after_s[c])
            if sig.state[i, k] == GREEN:
                rem = max(keep_s - sig.elapsed_s[i, k], 0.0) + ig
            else:
                rem = max(ig - (t_s - sig.green_end_s[i, k]), 0.0)
            lead = max(lead, rem)
            worst = max(worst, keep_s + ig)
        extra = queue_veh[i, g] * rules.headway_s[c] + rules.margin_s[c]
        if rules.precall[c] and s_g != GREEN and r_eta[r] <= worst + extra:
            # An early call goes in once green could not come sooner than the road user:
            # called earlier, the stage would start, gap out before they arrive and be
            # called again by them, two more changes for nothing.
            act = Status.CALLED
        elif r_eta[r] > worst + extra:
            # Far out: nothing needs to change yet (a green now is not held for it: should
            # it end, there is time to bring it back).
            status[r] = Status.PLANNED
            continue
        elif s_g == GREEN:
            act = Status.GRANTED
        elif not rules.preempt[c]:
            status[r] = Status.WAITING
            continue
        elif r_eta[r] <= lead + extra:
            act = Status.CLEARING
        elif rules.prepare[c]:
            act = Status.PREPARING
        else:
            status[r] = Status.PLANNED
            continue

        # A hold costs others only where the base controller would end the green; a cut
        # (CLEARING, PREPARING) always does. An early call costs nobody anything: it is
        # neither weighed nor charged to the budget.
        costly = act == Status.CLEARING or act == Status.PREPARING or (
            act == Status.GRANTED and not base_request[i, g])
        if act != Status.CALLED and rules.net_benefit[c] and not r_charged[r]:
            if not costly:
                status[r] = Status.PLANNED  # the base controller keeps this green anyway
                taken[i, g] = True
                out_request[i, g] = True
                continue
            benefit, cost = _person_seconds(
                timing, sig, queue_veh, approach_veh, demand, persons, lanes, nb, i, g,
                rules.persons[c], r_eta[r], act == Status.GRANTED, lead, rules.margin_s[c])
            r_benefit[r] = benefit
            r_cost[r] = cost
            if act != Status.GRANTED and _near_capacity(timing, sig, queue_veh, lanes, nb, i, g):
                status[r] = Status.REFUSED_SATURATED
                continue
            if not cycle_open[i] or intervened[i]:
                status[r] = Status.REFUSED_CYCLE
                continue
            if benefit <= cost:
                status[r] = Status.REFUSED_COST
                continue
        if act != Status.CALLED and not r_charged[r]:
            if budget[i, c] < 1.0 - 1e-9:
                status[r] = Status.REFUSED_BUDGET
                continue
            budget[i, c] -= 1.0
            r_charged[r] = True
            if rules.net_benefit[c]:
                intervened[i] = True
        status[r] = act
        if act == Status.CALLED:
            out_precall[i, g] = True  # no reservation: the base controller decides when
            # Only motor greens end at the shorter gap: riders and walkers pass a loop at
            # longer headways, so a 2 s gap would cut a cycle track's green while its queue
            # still rides off (rain mode on tjunction:peak, seed 42: every cycle stream lost
            # about 20 s per trip).
            for k in range(n_g):
                if (timing.conflict[i, g, k] and timing.valid[i, k] and not slow[i, k]
                        and sig.state[i, k] == GREEN
                        and (gap_s[i, k] >= rules.gap_out_s[c]
                             or sig.elapsed_s[i, k] + dt_s >= rules.gap_out_after_s[c] - EPS_S)):
                    out_gapout[i, k] = True
            continue
        taken[i, g] = True
        out_request[i, g] = True
        out_extend[i, g] = True
        for k in range(n_g):
            if not (timing.conflict[i, g, k] and timing.valid[i, k]):
                continue
            # Owed a compensation green: the groups an emergency vehicle keeps waiting, and
            # those a weighed request cuts short or skips. A weighed hold only lengthens the
            # running green; the groups it keeps waiting come next in the normal order anyway,
            # and pre-empting for them afterwards would shorten the next greens for nothing.
            if demand[i, k] and (c == PriorityClass.EMERGENCY
                                 or (rules.net_benefit[c] and r_charged[r] and act != Status.GRANTED)):
                held_back[i, k] = True
            if act == Status.CLEARING:
                # The core adds dt_s before it compares (see TickClock): look one tick ahead.
                if (sig.state[i, k] == GREEN
                        and sig.elapsed_s[i, k] + dt_s < rules.cut_after_s[c] - EPS_S
                        and gap_s[i, k] < rules.cut_gap_s[c]):
                    continue  # not yet: this class lets a conflicting green with traffic run this long
                out_request[i, k] = False
            elif act == Status.PREPARING and sig.state[i, k] == RED:
                out_request[i, k] = False
    return out


class TrackedRequests:
    """Per request key, what the arbiter remembers between ticks (sorted by key; arrays)."""

    __slots__ = ("charged", "cls", "granted", "group", "intersection", "keys", "since_s", "status")

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.int64)
        self.status = np.zeros(0, dtype=np.int8)
        self.charged = np.zeros(0, dtype=np.bool_)
        self.granted = np.zeros(0, dtype=np.bool_)
        self.since_s = np.zeros(0, dtype=np.float64)
        self.intersection = np.zeros(0, dtype=np.int64)
        self.group = np.zeros(0, dtype=np.int64)
        self.cls = np.zeros(0, dtype=np.int8)


class PriorityArbiter(Controller):
    """A base controller plus priority applications, combined per intersection by class.

    Parameters (keyword only, stored unchanged):

    ``base``
        The controller that runs the intersections when nobody asks for priority.
    ``applications``
        The priority applications (:class:`~.priority.PriorityApplication`).
    ``rules``
        Overrides of the class rules, ``{"emergency": {"margin_s": 5.0}, ...}``
        (:class:`~.priority.ClassRules` fields by class name).
    ``compensation_green_s`` (default 8 s)
        After an emergency vehicle has passed, or a bus has had a green cut for it, each
        group it held back is owed a green of at least this long, served before lower-ranked
        requests and the base controller (and before the next intervention).
    ``net_benefit``
        Overrides of :class:`~.priority.NetBenefitParams` fields, ``{"stop_penalty_s": 5}``.

    Attributes after :meth:`reset`: ``request_`` and ``extend_`` (what the core gets),
    ``status_`` (per request row of the last tick), ``owed_`` (bool ``[I, G]``).
    Decisions go to ``decision_log`` when one is attached (:meth:`attach_log`).
    """

    name: ClassVar[str] = "arbiter"
    uses_v2x: ClassVar[bool] = True  # the applications read connected road users

    def __init__(
        self,
        *,
        base: Controller,
        applications: Sequence[PriorityApplication] = (),
        rules: dict[str, dict[str, Any]] | None = None,
        compensation_green_s: float = 8.0,
        net_benefit: dict[str, Any] | None = None,
    ) -> None:
        self.base = base
        self.applications = applications
        self.rules = rules
        self.compensation_green_s = compensation_green_s
        self.net_benefit = net_benefit
        self.decision_log: Any = None

    def attach_log(self, log: Any) -> None:
        """Send decisions to ``log`` (anything with ``record(**fields)``, e.g.
        :class:`ivri.metrics.decisions.DecisionLog`)."""
        self.decision_log = log

    def application_names(self) -> frozenset[str]:
        """Names of the applications this arbiter combines."""
        return frozenset(a.name for a in self.applications)

    def v2x_shares(self) -> dict[str, float]:
        """The shares of equipped road users that the applications need (merged)."""
        return {k: v for a in self.applications for k, v in a.v2x_shares().items()}

    def tracked_requests(self) -> TrackedRequests | None:
        """The requests known after the last tick (sorted by key)."""
        return self.tracked_

    def report(self) -> dict[str, Any]:
        """The applications' contributions to a run's result record, merged."""
        return {k: v for a in self.applications for k, v in a.report().items()}

    def _rules(self) -> RuleArrays:
        parsed: dict[PriorityClass, ClassRules] = {}
        for name, over in (self.rules or {}).items():
            try:
                cls = PriorityClass[str(name).upper()]
            except KeyError:
                valid = ", ".join(c.name.lower() for c in PriorityClass if c)
                raise ConfigError(f"arbiter rules: unknown priority class {name!r}; valid: {valid}") from None
            try:
                parsed[cls] = ClassRules(**{**DEFAULT_RULES[cls].__dict__, **dict(over)})
            except TypeError as exc:
                raise ConfigError(f"arbiter rules for {name!r}: {exc}") from None
        return rule_arrays(parsed)

    def reset(self, net: CompiledNetwork) -> None:
        """Reset the base controller, every application and all priority state."""
        super().reset(net)
        names = [a.name for a in self.applications]
        if len(set(names)) != len(names):
            raise ConfigError(f"arbiter: an application appears twice in {names}")
        self.base.reset(net)
        for app in self.applications:
            app.reset(net)
        self.timing_ = contiguous_timing(net)
        self.rules_ = self._rules()
        self._reset_net_benefit(net)
        n_i = net.n_intersections
        # Token buckets per intersection and class; an unlimited class never runs dry.
        unlimited = ~np.isfinite(self.rules_.budget_per_h)
        self.budget_cap_ = np.where(unlimited, 1e12, self.rules_.budget_per_h)
        self.budget_rate_ = np.where(unlimited, 0.0, self.rules_.budget_per_h / 3600.0)
        self.budget_ = np.tile(self.budget_cap_, (n_i, 1))
        self.request_ = net.full(False, np.bool_)
        self.extend_ = net.full(False, np.bool_)
        self.precall_ = net.full(False, np.bool_)
        self.base_demand_ = net.full(False, np.bool_)
        self.gapout_ = net.full(False, np.bool_)
        self.slow_ = slow_mode_mask(net)
        self.base_gap_ = net.full(0.0)
        self.held_back_ = net.full(False, np.bool_)
        self.held_total_ = net.full(False, np.bool_)  # held back since the emergency began
        self.owed_ = net.full(False, np.bool_)
        self.emergency_active_ = np.zeros(n_i, dtype=np.bool_)
        self.status_ = np.zeros(0, dtype=np.int8)
        self.t_s_ = 0.0
        self.tracked_ = TrackedRequests()
        self.clock_ = TickClock()

    def _reset_net_benefit(self, net: CompiledNetwork) -> None:
        try:
            nb = NetBenefitParams(**{**DEFAULT_NET_BENEFIT.__dict__, **dict(self.net_benefit or {})})
        except TypeError as exc:
            raise ConfigError(f"arbiter net_benefit: {exc}") from None
        self.nb_params_ = nb
        self.nb_ = np.array([nb.sat_headway_s, nb.stop_penalty_s, nb.saturation], dtype=np.float64)
        # Persons per road user of each group, by its mode (buses and trams: a vehicle's load).
        mode = net.mode
        self.persons_ = np.select(
            [mode == MODE_BICYCLE, mode == MODE_PEDESTRIAN, (mode == MODE_BUS) | (mode == MODE_TRAM)],
            [PERSONS["bicycle"], PERSONS["pedestrian"], PERSONS["bus"]], PERSONS["car"]).astype(np.float64)
        self.lanes_ = net.full(1.0)
        for i, x in enumerate(net.config.intersections):  # once per run
            for g, sg in enumerate(x.signal_groups):
                self.lanes_[i, g] = max(len(sg.lanes), 1)
        t = net.timing
        if nb.min_cycle_s is not None:
            self.cycle_s_ = np.full(net.n_intersections, float(nb.min_cycle_s))
        else:
            # The shortest cycle: per stage its longest minimum green and longest intergreen out.
            in_stage = net.stages & t.valid[:, None, :]                          # [I, S, G]
            min_g = np.where(in_stage, t.min_green_s[:, None, :], 0.0).max(axis=2)
            ig_out = np.where(in_stage, t.intergreen_s.max(axis=2)[:, None, :], 0.0).max(axis=2)
            self.cycle_s_ = (min_g + ig_out).sum(axis=1)
        self.last_intervention_s_ = np.full(net.n_intersections, -np.inf)
        self.intervened_ = np.zeros(net.n_intersections, dtype=np.bool_)

    def extend_green(self) -> np.ndarray:
        """Groups whose green the core may hold past max green this tick (priority holds)."""
        return self.extend_

    def commitment(self) -> Any:
        """The base controller's commitment to the next changes (:mod:`ivri.core.forecast`),
        without new holds where an emergency vehicle is being served: it keeps its absolute
        precedence (what the core has accepted before stays kept)."""
        c = self.base.commitment()
        if c is None or not self.emergency_active_.any():
            return c
        from ivri.core.forecast import Commitment

        busy = self.emergency_active_[:, None]
        return Commitment(np.where(busy, -np.inf, c.min_end_s), c.max_end_s, c.likely_s)

    def gives_advice(self) -> bool:
        """True when an application gives speed advice (GLOSA): the engine then asks for
        :meth:`advice` every tick and the bridge applies it."""
        return any(a.gives_advice() for a in self.applications)

    def advice(self, signals: SignalState, spat: Any) -> Any:
        """Speed advice of the applications that give it (:class:`~.glosa.SpeedAdvice`).

        Call after the core has advanced, with its state and its SPaT
        (``core.time_to_change_s()``). Advice never changes a light.
        """
        from .glosa import SpeedAdvice

        return SpeedAdvice.concat([a.advice(signals, spat) for a in self.applications if a.gives_advice()])

    # --- per tick ---------------------------------------------------------------------------

    def _compensation(self, signals: SignalState, demand: np.ndarray) -> PriorityRequests:
        # A debt ends once the group has had its compensation green, or nobody calls any more.
        served = (signals.state == GREEN) & (signals.elapsed_s >= self.compensation_green_s)
        self.owed_ &= demand & ~served
        ii, gg = np.nonzero(self.owed_)
        keys = -(ii.astype(np.int64) * 1024 + gg + 1)  # negative: never a road user's key
        return PriorityRequests(key=keys, intersection=ii, group=gg,
                                cls=np.full(len(ii), PriorityClass.COMPENSATION), eta_s=np.zeros(len(ii)))

    def step(self, obs: Observation, signals: SignalState) -> np.ndarray:
        """Base proposal, application requests, one arbitration kernel call; returns ``request_``."""
        dt_s = self.clock_.tick(obs.t_s)
        self.t_s_ = obs.t_s
        # Early calls from the last tick reach the base controller as demand (a long-distance
        # detector); the core keeps reading the real detectors.
        np.logical_or(obs.demand, self.precall_, out=self.base_demand_)
        np.copyto(self.base_gap_, obs.gap_s)
        self.base_gap_[self.gapout_] = NO_DETECTION_S
        base_request = self.base.step(replace(obs, demand=self.base_demand_, gap_s=self.base_gap_), signals)
        parts = [app.requests(obs, signals) for app in self.applications]
        parts.append(self._compensation(signals, obs.demand))
        req = PriorityRequests.concat(parts)

        np.minimum(self.budget_ + dt_s * self.budget_rate_, self.budget_cap_, out=self.budget_)

        prev_status, sticky, charged, since, granted, known = self._recall(req)
        order = np.lexsort((req.eta_s, -req.cls.astype(np.int64), req.intersection)).astype(np.int64)
        n = len(req)
        cycle_open = ((obs.t_s - self.last_intervention_s_ >= self.cycle_s_)
                      & ~self.owed_.any(axis=1) & ~self.held_total_.any(axis=1))
        out = arbitrate_kernel(
            self.timing_, signals, obs.t_s, dt_s,
            TrafficArrays(obs.demand, obs.gap_s, obs.queue_veh, obs.approach_veh, base_request),
            ReqArrays(req.intersection, req.group, req.cls, req.eta_s, sticky, charged, order),
            self.rules_,
            WeighArrays(self.persons_, self.lanes_, self.nb_, cycle_open, self.slow_),
            self.budget_,
            ArbiterOut(self.request_, self.extend_, self.precall_, self.gapout_, self.held_back_,
                       np.zeros(n, dtype=np.int8), np.zeros(n), np.zeros(n), self.intervened_),
        )
        status, benefit, cost = out.status, out.benefit, out.cost
        self.last_intervention_s_[self.intervened_] = obs.t_s
        # Time-outs: served longer than the class allows.
        acting = np.isin(status, ACTING)
        since = np.where(acting & np.isnan(since), obs.t_s, since)
        since = np.where(acting, since, np.nan)
        out_of_time = acting & (obs.t_s - since >= self.rules_.timeout_s[req.cls])
        status[out_of_time] = Status.TIMED_OUT
        self._recover(req, status, charged)
        self._log(obs.t_s, req, status, prev_status, known, granted, benefit, cost)
        self._remember(req, status, charged, since, granted | acting)
        self.status_ = status
        return self.request_

    def _recall(self, req: PriorityRequests) -> tuple[np.ndarray, ...]:
        """Align the remembered state of each key with this tick's rows (vectorised).

        Returns, per row: the previous status, the sticky status (refused for budget, timed
        out; else 0), whether it was charged, since when it was served (NaN: not), whether
        it was ever granted, and whether its key is known at all.
        """
        tr = self.tracked_
        n = len(req)
        if len(tr.keys) == 0:
            none = np.zeros(n, np.bool_)
            return np.zeros(n, np.int8), np.zeros(n, np.int8), none, np.full(n, np.nan), none.copy(), none.copy()
        pos = np.minimum(np.searchsorted(tr.keys, req.key), len(tr.keys) - 1)
        known = tr.keys[pos] == req.key
        prev_status = np.where(known, tr.status[pos], 0).astype(np.int8)
        sticky = np.where(np.isin(prev_status, _STICKY), prev_status, 0).astype(np.int8)
        charged = known & tr.charged[pos]
        since = np.where(known, tr.since_s[pos], np.nan)
        granted = known & tr.granted[pos]
        return prev_status, sticky, charged, since, granted, known

    def _remember(self, req: PriorityRequests, status: np.ndarray, charged: np.ndarray,
                  since: np.ndarray, granted: np.ndarray) -> None:
        tr = self.tracked_
        gone = ~np.isin(tr.keys, req.key)
        if gone.any() and self.decision_log is not None:
            for k in np.nonzero(gone)[0]:
                was = bool(tr.granted[k])
                compensation = int(tr.cls[k]) == PriorityClass.COMPENSATION
                reason = ("compensation green given" if compensation
                          else "the road user has passed or left; green released" if was
                          else "the request ended before it was served")
                self._emit(self.t_s_, int(tr.intersection[k]), int(tr.group[k]), int(tr.cls[k]),
                           "release" if was else "withdrawn", reason, None)
        order = np.argsort(req.key, kind="stable")
        tr.keys = req.key[order]
        tr.status = status[order]
        tr.charged = charged[order]
        tr.since_s = since[order]
        tr.granted = granted[order]
        tr.intersection = req.intersection[order]
        tr.group = req.group[order]
        tr.cls = req.cls[order]

    def _recover(self, req: PriorityRequests, status: np.ndarray, charged: np.ndarray) -> None:
        """Groups held back by an emergency vehicle, or by a bus, truck or rain hold that was
        weighed and granted, are owed a green once it has gone."""
        holding = (req.cls == PriorityClass.EMERGENCY) | (self.rules_.net_benefit[req.cls] & charged)
        emergency = holding & np.isin(status, ACTING)
        active = np.zeros(len(self.emergency_active_), dtype=np.bool_)
        active[req.intersection[emergency]] = True
        self.held_total_ |= self.held_back_
        ended = self.emergency_active_ & ~active
        if ended.any():
            new_debt = self.held_total_[ended] & ~self.owed_[ended]
            self.owed_[ended] |= self.held_total_[ended]
            self.held_total_[ended] = False
            if self.decision_log is not None:
                for i, g in zip(*np.nonzero(new_debt), strict=True):
                    ii = int(np.nonzero(ended)[0][i])
                    self._emit(self.t_s_, ii, int(g), int(PriorityClass.COMPENSATION), "recovery",
                               "held back by a priority request: served first now", None)
        self.emergency_active_[:] = active

    def _log(self, t_s: float, req: PriorityRequests, status: np.ndarray, prev: np.ndarray,
             known: np.ndarray, granted: np.ndarray, benefit: np.ndarray, cost: np.ndarray) -> None:
        if self.decision_log is None:
            return
        new = ~known & (req.cls != PriorityClass.COMPENSATION)
        changed = known & (status != prev)
        first_grant = np.isin(status, ACTING) & ~granted
        refused = changed & np.isin(status, (Status.REFUSED_OTHERS, Status.REFUSED_BUDGET, Status.TIMED_OUT,
                                             Status.QUEUED, *_WEIGHED))
        refused |= new & np.isin(status, (Status.REFUSED_OTHERS, Status.REFUSED_BUDGET, Status.QUEUED, *_WEIGHED))
        weighed = (benefit > 0.0) | (cost > 0.0)
        for r in np.nonzero(new | first_grant | refused)[0]:
            i, g, c, s = int(req.intersection[r]), int(req.group[r]), int(req.cls[r]), int(status[r])
            eta = float(req.eta_s[r])
            if new[r]:
                self._emit(t_s, i, g, c, "request",
                           f"arrives in {eta:.1f} s" if eta > 0.0 else "is at the stop line or crossing", eta)
            if first_grant[r]:
                reason = ("served first after a priority request held it back"
                          if c == PriorityClass.COMPENSATION else REASONS[Status(s)])
                self._emit(t_s, i, g, c, "grant", reason, eta, *self._weights(weighed[r], benefit[r], cost[r]))
            elif refused[r]:
                event = {Status.TIMED_OUT: "time-out", Status.QUEUED: "deferred"}.get(Status(s), "refusal")
                self._emit(t_s, i, g, c, event, REASONS[Status(s)], eta,
                           *self._weights(weighed[r], benefit[r], cost[r]))

    @staticmethod
    def _weights(weighed: bool, benefit: float, cost: float) -> tuple[float | None, float | None]:
        return (round(float(benefit), 1), round(float(cost), 1)) if weighed else (None, None)

    def _emit(self, t_s: float, i: int, g: int, c: int, event: str, reason: str, eta_s: float | None,
              benefit_ps: float | None = None, cost_ps: float | None = None) -> None:
        net = self.net_
        group_ids = net.group_ids[i]
        self.decision_log.record(
            t_s=round(float(t_s), 3),
            intersection=net.intersection_ids[i],
            signal_group=group_ids[g] if 0 <= g < len(group_ids) else None,
            priority_class=PriorityClass(c).name.lower(),
            event=event,
            reason=reason,
            eta_s=None if eta_s is None else round(eta_s, 1),
            benefit_ps=benefit_ps,
            cost_ps=cost_ps,
        )

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["base"] = f"{self.base.name}{self.base.get_params()}"
        params["applications"] = [f"{a.name}{a.get_params()}" for a in self.applications]
        return params
