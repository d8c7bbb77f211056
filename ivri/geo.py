"""Distances on the scale of one intersection, from WGS84 latitude and longitude.

Over the few hundred metres of a site the earth is flat enough: an equirectangular projection
around the first point (east = longitude difference times the cosine of its latitude) is off
by well under a centimetre per hundred metres. One definition for the gateway's site table,
its SPaT/MAP geometry and its plausibility checks on CAMs.
"""

from __future__ import annotations

import math

__all__ = ["EARTH_RADIUS_M", "distance_m", "offset_m"]

#: Mean earth radius (IUGG), metres.
EARTH_RADIUS_M = 6371008.8

LatLon = tuple[float, float]


def offset_m(ref: LatLon, point: LatLon) -> tuple[float, float]:
    """``point`` as (east, north) metres from ``ref``; both (latitude, longitude) in degrees."""
    east = math.radians(point[1] - ref[1]) * math.cos(math.radians(ref[0])) * EARTH_RADIUS_M
    north = math.radians(point[0] - ref[0]) * EARTH_RADIUS_M
    return east, north


def distance_m(a: LatLon, b: LatLon) -> float:
    """Distance in metres between two (latitude, longitude) points in degrees."""
    return math.hypot(*offset_m(a, b))
