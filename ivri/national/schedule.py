"""How long a run of the national sweep is expected to take: the order in which jobs go to the
workers (longest first, so that no long run is left for the end) and the time still to go in
the progress line. Nothing here changes what a run computes, so it is outside the cache key.
"""

from __future__ import annotations

from ivri.national.sweep import Job

__all__ = ["expected_cost"]

#: Wall seconds of one run on a worker: ``(today's light, each priority application more)``, by
#: type and day variant; the bundled types over 900 + 7,200 s, the real-world networks over their
#: own hour. Least squares over the runs of G40's scope on 20 seeds (0, 2, 3 and 4 applications)
#: and of the full package on seeds 42-49 (7 applications), 2 workers on 2 cores, 2026-12-04/05.
#: An application adds a seventh to a fifth of a bundled run, a tenth to a seventh of a
#: real-world one, and little on ingolstadt21, whose time goes to the traffic of its 21 lights.
_RUN_COST = {
    "crossing:peak": (9.4, 1.19), "crossing:offpeak": (6.0, 1.03),
    "tjunction:peak": (8.4, 1.10), "tjunction:offpeak": (5.3, 1.02),
    "corridor:peak": (17.0, 1.95), "corridor:offpeak": (9.2, 1.26),
    "grid:peak": (26.1, 2.02), "grid:offpeak": (12.5, 1.79),
    "realworld:cologne3": (3.3, 0.47), "realworld:cologne8": (3.9, 0.44),
    "realworld:ingolstadt7": (5.6, 0.46), "realworld:ingolstadt21": (23.9, 0.69),
}
#: The span the bundled costs above were measured over [s], and that of the 10-minute variant.
_COST_SPAN_S = 8100.0
_SHORT_SPAN_S = 600.0


def expected_cost(job: Job) -> float:
    """The wall seconds a job is expected to take on a worker, from measured run times: the order
    the jobs are submitted in (longest first, so that no long run is left for the end) and the
    time still to go in the progress line. A type never measured counts as a bundled grid (its
    off-peak rate for the 10-minute variant)."""
    name, _, variant = job.scenario.partition(":")
    apps = job.controller.count("+")
    if name == "realworld":  # runs its own hour, whatever the end
        base, per_app = _RUN_COST.get(job.scenario, _RUN_COST["grid:peak"])
        return base + per_app * apps
    rate_variant = "offpeak" if variant == "short" else variant
    unknown = "grid:offpeak" if rate_variant == "offpeak" else "grid:peak"
    base, per_app = _RUN_COST.get(f"{name}:{rate_variant}", _RUN_COST[unknown])
    span = job.end_s or (_SHORT_SPAN_S if variant == "short" else _COST_SPAN_S)
    return (base + per_app * apps) * span / _COST_SPAN_S
