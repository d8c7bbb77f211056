"""How long a run of the national sweep is expected to take: the order in which jobs go to the
workers (longest first, so that no long run is left for the end) and the time still to go in
the progress line. Nothing here changes what a run computes, so it is outside the cache key.
"""

from __future__ import annotations

from ivri.national.sweep import Job

__all__ = ["expected_cost"]

#: Wall seconds of one run of today's light (no applications) on a worker, by type; off-peak
#: for the bundled types over 900 + 7,200 s, the real-world networks over their own hour.
#: Measured on 2026-12-05 (G40's scope, seeds 52-57, 2 workers on 2 cores).
_TYPE_COST = {"grid": 12.1, "corridor": 8.2, "crossing": 5.2, "tjunction": 4.4,
              "realworld:cologne3": 2.8, "realworld:cologne8": 3.3, "realworld:ingolstadt7": 5.7,
              "realworld:ingolstadt21": 28.2}
#: Peak demand takes about twice the time of off-peak (1.7-2.4 measured); "short" is 10 minutes.
_VARIANT_COST = {"peak": 2.0, "offpeak": 1.0, "short": 0.1}
#: Each priority application adds about a fifth (15-25 % measured).
_APP_COST = 0.2
#: The bundled runs the costs above were measured on [s].
_COST_SPAN_S = 8100.0


def expected_cost(job: Job) -> float:
    """The wall seconds a job is expected to take on a worker, from measured run times: the order
    the jobs are submitted in (longest first, so that no long run is left for the end) and the
    time still to go in the progress line. A type never measured counts as a bundled grid."""
    name, _, variant = job.scenario.partition(":")
    apps = job.controller.count("+")
    per_app = 1.0 + _APP_COST * apps
    if name == "realworld":  # runs its own hour, whatever the end
        return _TYPE_COST.get(job.scenario, _TYPE_COST["grid"]) * per_app
    length = (job.end_s or _COST_SPAN_S) / _COST_SPAN_S
    return _TYPE_COST.get(name, _TYPE_COST["grid"]) * _VARIANT_COST.get(variant, 1.0) * per_app * length
