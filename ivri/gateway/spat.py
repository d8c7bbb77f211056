"""Outgoing messages: SPATEM from the core's state, MAPEM from the site geometry, SSEM replies.

SPATEM per intersection, one MovementState per signal group (its SignalGroupID from the site
file): GREEN -> ``protected-Movement-Allowed``, AMBER -> ``protected-clearance``, RED ->
``stop-And-Remain``. Timing from :meth:`ivri.core.engine.SignalCore.time_to_change_s`:
``minEndTime`` = now + ``min_s``; ``maxEndTime`` = now + ``max_s`` (36001 "unknown" when it
depends on future demand); ``likelyTime`` = the controller's committed likely time when it
gave one, else ``maxEndTime`` when that is known (a green ends at its max green when
conflicting demand persists; an amber ends exactly), else absent. These are the same times
the core keeps and GLOSA advises on (:mod:`ivri.core.forecast`). All
three are TimeMarks: tenths of a second within the current UTC hour (wrapping at 36000).

SSEM status per arbiter :class:`~ivri.controllers.arbiter.Status`: PREPARING, CLEARING,
GRANTED -> ``granted``; NEW, PLANNED, QUEUED, WAITING -> ``processing``; REFUSED_OTHERS,
REFUSED_BUDGET, REFUSED_COST, REFUSED_SATURATED, REFUSED_CYCLE, TIMED_OUT, NO_GROUP -> ``rejected``. A verified request the arbiter has not
ranked yet (its application asks only from a horizon on) is ``requested``; a request that no
application of the controller serves is ``rejected``.
"""

from __future__ import annotations

import math

import numpy as np

from ivri.controllers.arbiter import Status
from ivri.core.idx import AMBER, GREEN, MODE_BICYCLE, MODE_PEDESTRIAN
from ivri.gateway.ingest import PendingRequest, minute_of_year
from ivri.gateway.site import SiteTable, offset_cm
from ivri.its import (
    Connection,
    GenericLane,
    IntersectionAccessPoint,
    IntersectionGeometry,
    IntersectionReferenceID,
    IntersectionState,
    ItsPduHeader,
    Mapem,
    MovementEvent,
    MovementState,
    NodeXY,
    Position3D,
    SignalRequesterInfo,
    SignalStatus,
    SignalStatusPackage,
    Spatem,
    Ssem,
    TimeChangeDetails,
)

__all__ = ["SSEM_STATUS", "build_mapem", "build_spatem", "build_ssem", "time_mark"]

_PHASE = {GREEN: "protected-Movement-Allowed", AMBER: "protected-clearance"}
_RED = "stop-And-Remain"
TIME_MARK_UNKNOWN = 36001

SSEM_STATUS: dict[int, str] = {
    int(Status.PREPARING): "granted", int(Status.CLEARING): "granted", int(Status.GRANTED): "granted",
    int(Status.NEW): "processing", int(Status.PLANNED): "processing",
    int(Status.QUEUED): "processing", int(Status.WAITING): "processing",
    int(Status.REFUSED_OTHERS): "rejected", int(Status.REFUSED_BUDGET): "rejected",
    int(Status.TIMED_OUT): "rejected", int(Status.NO_GROUP): "rejected",
    int(Status.REFUSED_COST): "rejected", int(Status.REFUSED_SATURATED): "rejected",
    int(Status.REFUSED_CYCLE): "rejected",
}


def time_mark(unix_s: float) -> int:
    """A TimeMark: tenths of a second within the UTC hour (0..35999)."""
    return math.floor(unix_s * 10.0) % 36000


def _ref(site) -> IntersectionReferenceID:
    return IntersectionReferenceID(region=site.its_region, id=site.its_id)


def build_spatem(sites: SiteTable, i: int, state: np.ndarray, min_s: np.ndarray, max_s: np.ndarray,
                 valid: np.ndarray, now_unix_s: float, revision: int = 1,
                 priority_active: bool = False, likely_s: np.ndarray | None = None) -> Spatem:
    """The SPATEM of intersection ``i`` (row ``i`` of the core's arrays); ``min_s`` / ``max_s`` /
    ``likely_s`` from the core's committed forecast (``SignalCore.time_to_change_s``)."""
    site = sites.sites[i]
    moy, ms = minute_of_year(now_unix_s)
    states = []
    for g in np.nonzero(valid[i])[0]:
        s = int(state[i, g])
        lo, hi = float(min_s[i, g]), float(max_s[i, g])
        min_end = time_mark(now_unix_s + lo)
        guess = math.nan if likely_s is None else float(likely_s[i, g])
        if math.isfinite(hi):
            max_end = likely = time_mark(now_unix_s + hi)
        else:
            max_end, likely = TIME_MARK_UNKNOWN, None
        if math.isfinite(guess):
            likely = time_mark(now_unix_s + guess)  # the controller's committed likely time
        states.append(MovementState(
            signal_group=int(site.numbers[g]),
            state_time_speed=(MovementEvent(
                event_state=_PHASE.get(s, _RED),
                timing=TimeChangeDetails(min_end_time=min_end, max_end_time=max_end, likely_time=likely),
            ),),
        ))
    status = ("signalPriorityIsActive", "trafficDependentOperation") if priority_active else (
        "trafficDependentOperation",)
    return Spatem(
        header=ItsPduHeader(message_id=4, station_id=site.station_id),
        time_stamp=moy,
        intersections=(IntersectionState(
            id=_ref(site), revision=revision % 128, status=status, moy=moy, time_stamp=ms,
            states=tuple(states),
        ),),
    )


def build_mapem(sites: SiteTable, i: int, mode: np.ndarray, revision: int = 1) -> Mapem | None:
    """The MAPEM of intersection ``i``: one ingress lane per configured lane id, from the stop
    line 50 m upstream against the approach heading, connected to its signal group. Egress
    lanes are not modelled (``connecting_lane`` 0). None without approaches."""
    site = sites.sites[i]
    cfg = site.config
    if not cfg.approaches:
        return None
    ref = site.ref_point
    lanes = []
    col = {gid: k for k, gid in enumerate(_group_ids(sites, i))}
    for a in cfg.approaches:
        g = col[a.signal_group]
        m = int(mode[i, g])
        lane_type = "crosswalk" if m == MODE_PEDESTRIAN else "bikeLane" if m == MODE_BICYCLE else "vehicle"
        x, y = offset_cm(ref, a.stop_line)
        h = math.radians(a.heading_deg)
        up = 5000  # cm upstream
        dx, dy = -round(math.sin(h) * up), -round(math.cos(h) * up)
        for lane in a.lane_ids:
            lanes.append(GenericLane(
                lane_id=lane, ingress_approach=a.approach_id, directional_use=("ingressPath",),
                lane_type=lane_type, node_list=(NodeXY(x=x, y=y), NodeXY(x=dx, y=dy)),
                connects_to=(Connection(connecting_lane=0, signal_group=int(site.numbers[g])),),
            ))
    return Mapem(
        header=ItsPduHeader(message_id=5, station_id=site.station_id),
        msg_issue_revision=revision % 128,
        intersections=(IntersectionGeometry(
            id=_ref(site), revision=revision % 128,
            ref_point=Position3D(lat=round(ref[0] * 1e7), long=round(ref[1] * 1e7)),
            lane_set=tuple(lanes),
        ),),
    )


def _group_ids(sites: SiteTable, i: int) -> list[str]:
    return sites.group_ids[i]


def build_ssem(sites: SiteTable, i: int, answers: list[tuple[PendingRequest, str]],
               now_unix_s: float, sequence: int, *, private: bool = True) -> list[Ssem]:
    """SSEMs answering ``answers`` ((request, status) pairs) of intersection ``i``; up to 32
    answers per message.

    Privacy: the requester is named by the pseudonymous station id of its ticket and its
    request id; its role is never sent. ``private``: the SSEM goes to a topic only the
    requester can read, so it names the in-bound lane it asked for; otherwise (a broker
    without logins) the lane is left out (approach 0: unknown).
    """
    site = sites.sites[i]
    moy, ms = minute_of_year(now_unix_s)
    unknown = IntersectionAccessPoint(approach=0)
    out = []
    for k in range(0, len(answers), 32):
        packages = tuple(
            SignalStatusPackage(
                requester=SignalRequesterInfo(
                    id=p.station_id, request=p.request_id, sequence_number=p.sequence_number,
                ),
                inbound_on=unknown if not private
                else IntersectionAccessPoint(lane=p.lane) if p.lane is not None
                else IntersectionAccessPoint(approach=p.approach),
                status=status,
            )
            for p, status in answers[k:k + 32]
        )
        out.append(Ssem(
            header=ItsPduHeader(message_id=10, station_id=site.station_id),
            time_stamp=moy, second=ms, sequence_number=(sequence + k // 32) % 128,
            status=(SignalStatus(sequence_number=(sequence + k // 32) % 128, id=_ref(site),
                                 sig_status=packages),),
        ))
    return out
