"""The vocabulary that priority applications and the arbiter share.

An application (GreenFlow, Schwung, rain mode, Crosswalk, bus and truck priority) does not
switch lights. Each tick it turns what it sees (detectors, connected road users) into
:class:`PriorityRequests`: rows of "green for this signal group at this intersection, in so
many seconds, at this priority class". The arbiter (:mod:`.arbiter`) ranks all rows of an
intersection, decides which to serve and how, and hands one request mask to the core, whose
safety layer still has the last word.

Order of precedence (highest first), the :class:`PriorityClass` values:

=====================  ======================================================================
SLOW_CROSSER_CLEARING  a slow crosser with the app is on the crossing: hold the walk green
                       until the clearance time covers the rest of the crossing (Crosswalk).
                       A person on the road ranks above everything, also above emergency
                       vehicles; the hold lasts at most one crossing at slow walking speed.
EMERGENCY              GreenFlow for BlueLights: ends conflicting greens early.
SLOW_CROSSER_WALK      a slow crosser with the app waits at the kerb: the walk green lasts
                       until they have stepped onto the crossing (Crosswalk).
PUBLIC_TRANSPORT       a late bus (conditional priority).
FREIGHT                a truck approaching a green at speed: extend the green.
COMPENSATION           groups an emergency pre-emption skipped or cut short, served first
                       afterwards.
CYCLIST                an early Schwung request of a cyclist with the app.
RAIN                   rain mode: cyclist groups served earlier and longer while it rains.
=====================  ======================================================================

Between requests of one class, the earliest arrival comes first. Each class also has limits
(:class:`ClassRules`): how early it may end a conflicting green, how long conflicting road
users may have waited before it is refused (the arbiter's anti-starvation), a budget of
grants per hour, a time-out, and whether it must pay for itself (``net_benefit``: granted
only when the person-seconds it saves exceed the person-seconds it costs the conflicting
streams; see :mod:`.arbiter`). The persons per road user and the other figures of that
rule are in :data:`PERSONS` and :class:`NetBenefitParams`, with their sources.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.state import SignalState

from ._rows import Rows
from .base import Observation, Parameters

__all__ = [
    "DEFAULT_NET_BENEFIT",
    "DEFAULT_RULES",
    "PERSONS",
    "ClassRules",
    "NetBenefitParams",
    "PriorityApplication",
    "PriorityClass",
    "PriorityRequests",
    "RuleArrays",
    "ingress_horizons",
    "request_keys",
    "request_tokens",
    "rows_to_requests",
    "rule_arrays",
]


#: Persons per road user, by the mode of a signal group and by the class of a request. These
#: weigh the person-seconds of the net-benefit rule. Sources (check before quoting as fact):
#:
#: * car 1.3: EEA indicator "Occupancy rates of passenger vehicles" (TERM 029) gives about
#:   1.5 persons per car over all trips in the EU and lower for commuting; the Dutch peak is
#:   mostly commuting, so 1.3 (assumption within that range; not in FACTS.md).
#: * bus 20 passengers + 1 driver: assumption for an urban or regional bus at peak (Dutch
#:   city buses seat about 40 and run from nearly empty to full; unverified).
#: * truck 1.0 (the driver), cyclist 1.0, pedestrian 1.0: one person each.
#: * emergency vehicle and slow crosser: not weighed (absolute precedence).
PERSONS: dict[str, float] = {
    "car": 1.3,
    "bus": 21.0,
    "truck": 1.0,
    "bicycle": 1.0,
    "pedestrian": 1.0,
}


@dataclass(frozen=True)
class NetBenefitParams:
    """The figures of the net-benefit rule besides the occupancies (see :mod:`.arbiter`).

    ``sat_headway_s`` (2.0 s)
        Seconds per vehicle and lane of a queue leaving at saturation flow (1,800 veh/h per
        lane, the usual design value, e.g. HCM 2010 base saturation flow 1,900 pc/h/ln).
    ``stop_penalty_s`` (8 s)
        Seconds a road user loses to a stop beyond its waiting time (braking and pulling
        away: at 1-1.5 m/s^2 from 50 km/h about 5-10 s; assumption).
    ``saturation`` (0.9)
        A conflicting approach is near capacity when its queue needs at least this share of
        the green it can still get (max green left, or a whole max green when red) to clear:
        then no green is cut for a request (saturation gating).
    ``min_cycle_s`` (None: per intersection, the sum over its stages of the longest minimum
        green plus the longest intergreen out of the stage)
        At most one intervention (a cut or a hold that costs others) per intersection in this
        time, and none while a group an earlier one held back is still owed its green.
    """

    sat_headway_s: float = 2.0
    stop_penalty_s: float = 8.0
    saturation: float = 0.9
    min_cycle_s: float | None = None


DEFAULT_NET_BENEFIT = NetBenefitParams()


class PriorityClass(IntEnum):
    """Priority classes; a higher value ranks higher (see the module docstring)."""

    NONE = 0
    RAIN = 1
    CYCLIST = 2
    COMPENSATION = 3
    FREIGHT = 4
    PUBLIC_TRANSPORT = 5
    SLOW_CROSSER_WALK = 6
    EMERGENCY = 7
    SLOW_CROSSER_CLEARING = 8


N_CLASSES = len(PriorityClass)
INF = float("inf")


@dataclass(frozen=True)
class ClassRules:
    """How the arbiter serves one priority class.

    ``preempt``
        May end conflicting greens early. False: the class only holds a green that is
        already there (an extension), or places an early call (``precall``).
    ``prepare``
        From the time a conflicting group that started now could still delay it, no
        conflicting group may start (costly for others: emergency vehicles and buses).
    ``precall``
        Instead of ending conflicting greens, the request becomes an early call for its
        group in the base controller (a long-distance detector: Schwung), which then
        serves it in its own order, at a gap-out, without cutting anyone's green.
    ``gap_out_s``
        With ``precall``: while the request waits, the base controller sees a conflicting
        motor green as gapped out once no vehicle has passed its detectors for this long (a
        shorter gap than its own), so the running stage ends at its next real gap and the
        cycle reaches the requested group sooner. Stages stay whole: nothing is cut while
        vehicles queue at the stop line.
    ``gap_out_after_s``
        ... and sees it as gapped out anyway once it has been green this long (a shorter
        maximum green while the request waits: a shorter cycle).
    ``cut_after_s``
        A conflicting green is ended early only once it has been green this long (never
        below its minimum green, which the core guarantees anyway) ...
    ``cut_gap_s``
        ... or, earlier, once its traffic has thinned out: no vehicle over its detectors
        for this long (a shorter gap than the base controller's; inf: never).
    ``others_wait_s``
        Refused while a conflicting group with demand has waited this long: the arbiter's
        own anti-starvation limit, below the core's hard ``max_wait_s``.
    ``budget_per_h``
        Grants per intersection and hour (a token bucket that starts full).
    ``timeout_s``
        A request that is served this long without its road user arriving is dropped (it
        turned off, stopped, or never comes).
    ``margin_s``
        Green is planned this long before the announced arrival.
    ``headway_s``
        Per vehicle queued in front of it: a queue must be gone before it arrives.
    ``net_benefit``
        A cut or a hold for this class is granted only when it pays in person-seconds, not
        while a conflicting approach is near capacity, and only as the one intervention of
        the cycle (see :mod:`.arbiter`). False for the absolute classes (emergency
        vehicles, a person on the crossing) and for compensation, which pays back.
    ``persons``
        Persons the request's road user carries (see :data:`PERSONS`).
    """

    preempt: bool
    prepare: bool = False
    precall: bool = False
    cut_after_s: float = 0.0
    cut_gap_s: float = INF
    gap_out_s: float = INF
    gap_out_after_s: float = INF
    others_wait_s: float = INF
    budget_per_h: float = INF
    timeout_s: float = INF
    margin_s: float = 2.0
    headway_s: float = 0.0
    net_benefit: bool = False
    persons: float = 1.0


#: The defaults per class. Emergency: Dutch practice clears the approach for a blue-light
#: vehicle whatever it costs; only the core's hard bounds apply. Its margin (12 s) and queue
#: allowance (3 s per queued vehicle) were measured on corridor:peak and crossing:peak (seeds
#: 42, 43): with 4 s and 2 s the emergency vehicles lost 45 % and 51 % less time than without
#: GreenFlow, with 12 s and 3 s 65 % and 62 %, for 5 % more vehicle-loss hours of the others.
#: Cyclists (Schwung) get what Dutch cyclist apps give: early detection, an early call and
#: nothing more (no shortened gap of the running green). Rain mode calls early too, shortens
#: the cycle by ending motor greens at their next real gap (2 s: never while vehicles still
#: pass closely; no shortened maximum green any more), and holds cyclist greens only where
#: that pays. Buses and trucks are conditional: they must pay for
#: themselves in person-seconds, and their budgets (10 grants per hour and intersection)
#: bind: the bundled peak scenarios ask about 16 bus and 19 truck requests an hour.
DEFAULT_RULES: dict[PriorityClass, ClassRules] = {
    PriorityClass.NONE: ClassRules(preempt=False),
    PriorityClass.RAIN: ClassRules(preempt=False, precall=True, gap_out_s=2.0, others_wait_s=45.0,
                                   timeout_s=120.0, net_benefit=True, persons=PERSONS["bicycle"]),
    PriorityClass.CYCLIST: ClassRules(preempt=False, precall=True, others_wait_s=90.0,
                                      budget_per_h=120.0, timeout_s=120.0, net_benefit=True,
                                      persons=PERSONS["bicycle"]),
    PriorityClass.COMPENSATION: ClassRules(preempt=True, timeout_s=120.0),
    PriorityClass.FREIGHT: ClassRules(preempt=False, others_wait_s=40.0, budget_per_h=10.0,
                                      timeout_s=15.0, net_benefit=True, persons=PERSONS["truck"]),
    PriorityClass.PUBLIC_TRANSPORT: ClassRules(preempt=True, prepare=True, cut_after_s=8.0,
                                               others_wait_s=60.0, budget_per_h=10.0, timeout_s=60.0,
                                               headway_s=1.0, net_benefit=True, persons=PERSONS["bus"]),
    PriorityClass.SLOW_CROSSER_WALK: ClassRules(preempt=False, timeout_s=60.0),
    PriorityClass.EMERGENCY: ClassRules(preempt=True, prepare=True, timeout_s=90.0, margin_s=12.0,
                                        headway_s=3.0),
    PriorityClass.SLOW_CROSSER_CLEARING: ClassRules(preempt=False, timeout_s=60.0),
}


class RuleArrays(NamedTuple):
    """:class:`ClassRules` of every class as arrays indexed by class (for the numba kernel)."""

    preempt: np.ndarray        # bool[C]
    prepare: np.ndarray        # bool[C]
    precall: np.ndarray        # bool[C]
    cut_after_s: np.ndarray    # float64[C]
    cut_gap_s: np.ndarray      # float64[C]
    gap_out_s: np.ndarray      # float64[C]
    gap_out_after_s: np.ndarray  # float64[C]
    others_wait_s: np.ndarray  # float64[C]
    budget_per_h: np.ndarray   # float64[C]
    timeout_s: np.ndarray      # float64[C]
    margin_s: np.ndarray       # float64[C]
    headway_s: np.ndarray      # float64[C]
    net_benefit: np.ndarray    # bool[C]
    persons: np.ndarray        # float64[C]


def rule_arrays(rules: dict[PriorityClass, ClassRules]) -> RuleArrays:
    """Pack the rules of every class (missing classes: the defaults)."""
    merged = {**DEFAULT_RULES, **rules}
    ordered = [merged[c] for c in PriorityClass]
    return RuleArrays(
        preempt=np.array([r.preempt for r in ordered], dtype=np.bool_),
        prepare=np.array([r.prepare for r in ordered], dtype=np.bool_),
        precall=np.array([r.precall for r in ordered], dtype=np.bool_),
        cut_after_s=np.array([r.cut_after_s for r in ordered], dtype=np.float64),
        cut_gap_s=np.array([r.cut_gap_s for r in ordered], dtype=np.float64),
        gap_out_s=np.array([r.gap_out_s for r in ordered], dtype=np.float64),
        gap_out_after_s=np.array([r.gap_out_after_s for r in ordered], dtype=np.float64),
        others_wait_s=np.array([r.others_wait_s for r in ordered], dtype=np.float64),
        budget_per_h=np.array([r.budget_per_h for r in ordered], dtype=np.float64),
        timeout_s=np.array([r.timeout_s for r in ordered], dtype=np.float64),
        margin_s=np.array([r.margin_s for r in ordered], dtype=np.float64),
        headway_s=np.array([r.headway_s for r in ordered], dtype=np.float64),
        net_benefit=np.array([r.net_benefit for r in ordered], dtype=np.bool_),
        persons=np.array([r.persons for r in ordered], dtype=np.float64),
    )


_REQ_DTYPES: dict[str, type] = {
    "key": np.int64,
    "intersection": np.int64,
    "group": np.int64,
    "cls": np.int8,
    "eta_s": np.float64,
}


@dataclass
class PriorityRequests(Rows):
    """Requests for green, one row each (arrays of length N).

    ``key``           int64: identifies the request from tick to tick (in memory only; made
                      from the road user's pseudonym and the application, never logged)
    ``intersection``  int64, ``group`` int64: where green is wanted
    ``cls``           int8: a :class:`PriorityClass`
    ``eta_s``         float64: seconds until the road user reaches the stop line (0: now)
    """

    key: np.ndarray
    intersection: np.ndarray
    group: np.ndarray
    cls: np.ndarray
    eta_s: np.ndarray

    DTYPES: ClassVar[dict[str, type]] = _REQ_DTYPES


# A request key's bits, from the lowest: the application's code (8), the intersection (16),
# the road user's token (39): non-negative in an int64.
_APP_BITS = 8
_INTERSECTION_BITS = 16
_TOKEN_BITS = 39
_TOKEN_SHIFT = _APP_BITS + _INTERSECTION_BITS


def request_keys(tokens: np.ndarray, intersections: np.ndarray, app_code: int) -> np.ndarray:
    """Request keys: one per road user, intersection and application (non-negative).

    A road user in range of two intersections makes two requests; the same road user seen
    by two applications too.
    """
    t = np.asarray(tokens, dtype=np.int64) & np.int64((1 << _TOKEN_BITS) - 1)
    i = np.asarray(intersections, dtype=np.int64) & np.int64((1 << _INTERSECTION_BITS) - 1)
    return ((t << np.int64(_TOKEN_SHIFT)) | (i << np.int64(_APP_BITS))
            | np.int64(app_code & ((1 << _APP_BITS) - 1)))


def request_tokens(keys: np.ndarray) -> np.ndarray:
    """The road users' tokens of request keys made by :func:`request_keys` (in memory only,
    like the keys: to find the road user of a request again, never to log)."""
    return np.asarray(keys, dtype=np.int64) >> np.int64(_TOKEN_SHIFT)


def ingress_horizons(net: CompiledNetwork, kinds: tuple[str, ...], default_s: float) -> np.ndarray:
    """float ``[I, G]``: how far ahead [s] a priority request of ``kinds`` may come per group.

    ``default_s`` everywhere for an intersection without ingress rules of these kinds; where
    it has some, the listed groups get their rule's ``travel_time_s`` (or ``default_s``) and
    every other group 0 (never served).
    """
    n_i, n_g = net.timing.valid.shape
    out = np.full((n_i, n_g), default_s, dtype=np.float64)
    for i, x in enumerate(net.config.intersections):
        rules = [p for p in x.priority if p.kind in kinds]
        if not rules:
            continue
        out[i] = 0.0
        index = net.group_index[i]
        for p in rules:
            out[i, index[p.group]] = default_s if p.travel_time_s is None else p.travel_time_s
    return out


def rows_to_requests(v2x_mask: np.ndarray, v2x: Any, app_code: int, cls: PriorityClass,
                     eta_s: np.ndarray) -> PriorityRequests:
    """The requests of the V2X rows selected by ``v2x_mask`` (``eta_s`` per selected row)."""
    return PriorityRequests(
        key=request_keys(v2x.token[v2x_mask], v2x.intersection[v2x_mask], app_code),
        intersection=v2x.intersection[v2x_mask],
        group=v2x.group[v2x_mask],
        cls=np.full(int(np.count_nonzero(v2x_mask)), int(cls), dtype=np.int8),
        eta_s=eta_s,
    )


class PriorityApplication(Parameters, ABC):
    """Base class of the priority applications: the controller interface's little sibling.

    Like a :class:`~.base.Controller`: ``__init__`` stores keyword parameters unchanged,
    :meth:`reset` prepares a run, :meth:`requests` runs once per tick. It returns requests,
    never a light state; the arbiter and the core decide what is shown.
    """

    name: ClassVar[str] = ""
    #: Distinguishes this application's request keys from another's for the same road user.
    app_code: ClassVar[int] = 0

    def reset(self, net: CompiledNetwork) -> None:
        """Forget everything from an earlier run and prepare for ``net``. Idempotent."""
        self.net_ = net

    @abstractmethod
    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        """This tick's requests (``signals`` is the core's state: read it, never write it)."""

    # --- optional capabilities (neutral defaults) ---------------------------------------------

    def v2x_shares(self) -> dict[str, float]:
        """Shares of equipped road users (by kind) this application needs when a run does not
        say; empty: the defaults."""
        return {}

    def gives_advice(self) -> bool:
        """True when :meth:`advice` returns speed advice (GLOSA)."""
        return False

    def advice(self, signals: SignalState, spat: Any) -> Any:
        """Speed advice after the core advanced (see :meth:`gives_advice`); None by default."""
        return None

    def report(self) -> dict[str, Any]:
        """What this application adds to a run's result record (aggregates only)."""
        return {}
