"""The one equirectangular distance of the gateway (ivri.geo)."""

from __future__ import annotations

import math

import pytest

from ivri.gateway.site import offset_cm
from ivri.geo import EARTH_RADIUS_M, distance_m, offset_m


def test_a_degree_of_latitude_and_of_longitude() -> None:
    degree_m = EARTH_RADIUS_M * math.pi / 180.0
    assert distance_m((52.0, 5.0), (53.0, 5.0)) == pytest.approx(degree_m)
    # East-west shrinks with the cosine of the latitude (Utrecht: about 0.616).
    assert distance_m((52.0, 5.0), (52.0, 6.0)) == pytest.approx(degree_m * math.cos(math.radians(52.0)))


def test_offsets_are_east_north_and_agree_with_the_distance() -> None:
    ref, point = (52.09, 5.12), (52.0905, 5.1195)
    east, north = offset_m(ref, point)
    assert east < 0.0 < north  # west and north of the reference point
    assert math.hypot(east, north) == pytest.approx(distance_m(ref, point))
    assert offset_cm(ref, point) == (round(east * 100), round(north * 100))
