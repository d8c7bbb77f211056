"""Where the gateway's intersections are: approach geometry, ITS ids, signal group numbers.

The network config (:class:`ivri.config.NetworkConfig`) knows signal groups, conflicts and
timing, but not where anything is on the map, and its models forbid extra keys. The gateway
therefore reads a second, small file: one ``[[sites]]`` entry per intersection it serves::

    [[sites]]
    intersection = "J101"        # the id in the network config (and in the MQTT topics)
    its_id = 101                 # IntersectionReferenceID.id in MAPEM / SPATEM / SREM / SSEM
    its_region = 1               # RoadRegulatorID (optional)
    ref_point = [52.10032, 5.07850]    # lat, lon (degrees); default: mean of the stop lines

    [sites.signal_group_numbers]       # SignalGroupID (1..255) per group; default: position + 1
    fc02 = 2

    [[sites.approaches]]
    signal_group = "fc02"
    stop_line = [52.10032, 5.078354]   # lat, lon of the stop line's middle (degrees)
    heading_deg = 90.0                 # direction of travel towards the stop line (0 = north)
    heading_tolerance_deg = 35.0
    range_m = 500.0                    # CAMs farther out are ignored
    lane_ids = [1, 2]                  # MAPEM ingress lanes (SREM inBoundLane.lane)
    approach_id = 1                    # SREM inBoundLane.approach (optional)

Matching rule (vectorised over all stations each tick, :meth:`SiteTable.match`): a station
belongs to an approach when it is within ``range_m`` of the stop line, the stop line lies
ahead of it (the bearing from the station to the stop line is within the tolerance of
``heading_deg``) and, when the CAM carries a heading, it travels that way (same tolerance).
Of several matching approaches the nearest stop line wins. Distance is equirectangular
(accurate to well under a metre at these ranges). Once a vehicle has passed the stop line
the bearing flips and it no longer belongs to the approach: its request ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ivri.config import NetworkConfig, load_model_file
from ivri.errors import ConfigError
from ivri.geo import EARTH_RADIUS_M, distance_m, offset_m

__all__ = ["ApproachConfig", "GatewaySites", "SiteConfig", "SiteTable", "load_gateway_sites"]

AT_STOP_LINE_M = 3.0  # closer than this, the bearing to the stop line is meaningless
REGION_MARGIN_M = 200.0  # CAMs from farther than the approach ranges plus this are refused


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LatLon = tuple[float, float]


def _check_latlon(p: LatLon, what: str) -> None:
    lat, lon = p
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"{what} {p} is not a [lat, lon] pair in degrees")


class ApproachConfig(_Strict):
    """One approach of a signal group: a stop line and the direction vehicles come from."""

    signal_group: str
    stop_line: LatLon
    heading_deg: float = Field(ge=0.0, lt=360.0)
    heading_tolerance_deg: float = Field(35.0, gt=0.0, le=90.0)
    range_m: float = Field(500.0, gt=0.0, le=3000.0)
    lane_ids: tuple[int, ...] = Field(min_length=1)
    approach_id: int | None = Field(None, ge=0, le=15)

    @model_validator(mode="after")
    def _check(self) -> ApproachConfig:
        _check_latlon(self.stop_line, "stop_line")
        for lane in self.lane_ids:
            if not 0 <= lane <= 255:
                raise ValueError(f"lane id {lane} is outside 0..255")
        return self


class SiteConfig(_Strict):
    """The geometry and ITS identity of one intersection."""

    intersection: str
    its_id: int = Field(ge=0, le=65535)
    its_region: int | None = Field(None, ge=0, le=65535)
    station_id: int | None = Field(None, ge=0, le=4294967295, description="the RSU's StationID")
    ref_point: LatLon | None = None
    signal_group_numbers: dict[str, int] = {}
    approaches: tuple[ApproachConfig, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> SiteConfig:
        if self.ref_point is not None:
            _check_latlon(self.ref_point, "ref_point")
        for gid, n in self.signal_group_numbers.items():
            if not 1 <= n <= 255:
                raise ValueError(f"signal group {gid!r}: number {n} is outside 1..255")
        lanes = [lane for a in self.approaches for lane in a.lane_ids]
        if len(set(lanes)) != len(lanes):
            raise ValueError(f"site {self.intersection!r}: a lane id is used by two approaches")
        return self


class GatewaySites(_Strict):
    """The gateway's site file: one entry per intersection."""

    sites: tuple[SiteConfig, ...] = ()


def load_gateway_sites(path: str | Path) -> GatewaySites:
    """Read a site file (TOML, YAML or JSON); :class:`ConfigError` naming field and problem."""
    return load_model_file(path, GatewaySites, "gateway site file")


@dataclass
class _Site:
    index: int                 # row in the compiled network
    its_id: int
    its_region: int | None
    station_id: int
    ref_point: LatLon
    numbers: np.ndarray        # int64 [G]: SignalGroupID per column (0: padding)
    lane_group: dict[int, int]      # lane id -> column
    approach_group: dict[int, int]  # approach id -> column (the first approach with that id)
    config: SiteConfig


class SiteTable:
    """The sites of a network, checked against it, with the approaches as arrays."""

    def __init__(self, net_config: NetworkConfig, sites: GatewaySites | None) -> None:
        by_id = {x.id: (i, x) for i, x in enumerate(net_config.intersections)}
        given = {s.intersection: s for s in (sites.sites if sites else ())}
        for sid in given:
            if sid not in by_id:
                raise ConfigError(f"gateway site {sid!r} is not an intersection of the network config")
        n_g = max(len(x.signal_groups) for x in net_config.intersections)
        self.sites: list[_Site] = []
        self.group_ids = [x.group_ids() for x in net_config.intersections]
        a_int, a_grp, a_lat, a_lon, a_head, a_tol, a_range = ([] for _ in range(7))
        for i, x in enumerate(net_config.intersections):
            cfg = given.get(x.id) or SiteConfig(intersection=x.id, its_id=i + 1)
            col = {gid: k for k, gid in enumerate(x.group_ids())}
            numbers = np.zeros(n_g, dtype=np.int64)
            for k in range(len(col)):
                numbers[k] = k + 1
            for gid, n in cfg.signal_group_numbers.items():
                if gid not in col:
                    raise ConfigError(f"gateway site {x.id!r}: unknown signal group {gid!r}")
                numbers[col[gid]] = n
            used = numbers[: len(col)]
            if len(set(used.tolist())) != len(used) or used.max() > 255:
                raise ConfigError(
                    f"gateway site {x.id!r}: signal group numbers must be unique and 1..255 "
                    "(set signal_group_numbers)"
                )
            lane_group: dict[int, int] = {}
            approach_group: dict[int, int] = {}
            for a in cfg.approaches:
                if a.signal_group not in col:
                    raise ConfigError(
                        f"gateway site {x.id!r}: approach names unknown signal group {a.signal_group!r}"
                    )
                g = col[a.signal_group]
                for lane in a.lane_ids:
                    lane_group[lane] = g
                if a.approach_id is not None:
                    approach_group.setdefault(a.approach_id, g)
                a_int.append(i)
                a_grp.append(g)
                a_lat.append(math.radians(a.stop_line[0]))
                a_lon.append(math.radians(a.stop_line[1]))
                a_head.append(math.radians(a.heading_deg))
                a_tol.append(math.radians(a.heading_tolerance_deg))
                a_range.append(a.range_m)
            ref = cfg.ref_point
            if ref is None and cfg.approaches:
                ref = (
                    sum(a.stop_line[0] for a in cfg.approaches) / len(cfg.approaches),
                    sum(a.stop_line[1] for a in cfg.approaches) / len(cfg.approaches),
                )
            self.sites.append(_Site(
                index=i, its_id=cfg.its_id, its_region=cfg.its_region,
                station_id=cfg.station_id if cfg.station_id is not None else cfg.its_id,
                ref_point=ref or (0.0, 0.0), numbers=numbers, lane_group=lane_group,
                approach_group=approach_group, config=cfg,
            ))
        self.a_int = np.array(a_int, dtype=np.int64)
        self.a_grp = np.array(a_grp, dtype=np.int64)
        self.a_lat = np.array(a_lat, dtype=np.float64)
        self.a_lon = np.array(a_lon, dtype=np.float64)
        self.a_cos = np.cos(self.a_lat)
        self.a_head = np.array(a_head, dtype=np.float64)
        self.a_tol = np.array(a_tol, dtype=np.float64)
        self.a_range = np.array(a_range, dtype=np.float64)
        self.by_its_id = {s.its_id: s for s in self.sites}
        # The region of each site: where a CAM can plausibly come from (its farthest approach
        # range plus a margin); infinite without approaches (nothing to place CAMs on).
        self.region_m = np.full(len(self.sites), np.inf)
        for s in self.sites:
            if s.config.approaches:
                self.region_m[s.index] = REGION_MARGIN_M + max(
                    distance_m(s.ref_point, a.stop_line) + a.range_m for a in s.config.approaches)

    def in_region(self, i: int, lat_deg: float, lon_deg: float) -> bool:
        """Whether a position lies within the region of intersection ``i``."""
        return distance_m(self.sites[i].ref_point, (lat_deg, lon_deg)) <= self.region_m[i]

    @property
    def n_approaches(self) -> int:
        return len(self.a_int)

    def group_of_access(self, site: _Site, lane: int | None, approach: int | None) -> int:
        """The column of an SREM's in-bound lane or approach, or -1."""
        if lane is not None:
            return site.lane_group.get(lane, -1)
        if approach is not None:
            return site.approach_group.get(approach, -1)
        return -1

    def match(self, inter: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
              heading_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signal group column (-1: none) and distance to its stop line (m) per station.

        ``heading_deg`` is NaN where the CAM had no heading. One vectorised pass over
        stations x approaches.
        """
        n = len(inter)
        group = np.full(n, -1, dtype=np.int64)
        dist = np.full(n, np.inf)
        if n == 0 or self.n_approaches == 0:
            return group, dist
        lat = np.radians(lat_deg)[:, None]
        lon = np.radians(lon_deg)[:, None]
        # Vector from the station to the stop line, metres east (dx) and north (dy).
        dx = (self.a_lon[None, :] - lon) * self.a_cos[None, :] * EARTH_RADIUS_M
        dy = (self.a_lat[None, :] - lat) * EARTH_RADIUS_M
        d = np.hypot(dx, dy)
        bearing = np.arctan2(dx, dy)
        ok = (inter[:, None] == self.a_int[None, :]) & (d <= self.a_range[None, :])
        ok &= (_angle_diff(bearing, self.a_head[None, :]) <= self.a_tol[None, :]) | (d < AT_STOP_LINE_M)
        head = np.radians(heading_deg)[:, None]
        ok &= np.isnan(head) | (_angle_diff(head, self.a_head[None, :]) <= self.a_tol[None, :])
        d = np.where(ok, d, np.inf)
        best = np.argmin(d, axis=1)
        rows = np.arange(n)
        dist = d[rows, best]
        found = np.isfinite(dist)
        group[found] = self.a_grp[best[found]]
        return group, dist


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of two angles in radians, in [0, pi]."""
    return np.abs((a - b + np.pi) % (2.0 * np.pi) - np.pi)


def offset_cm(ref: LatLon, point: LatLon) -> tuple[int, int]:
    """``point`` as (east, north) centimetres from ``ref`` (:func:`ivri.geo.offset_m`)."""
    x, y = offset_m(ref, point)
    return round(x * 100), round(y * 100)
