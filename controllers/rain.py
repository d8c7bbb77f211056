"""Rain mode: cyclists are served earlier and longer while it rains.

Input is a time series of rain intensity (mm/h), read either as a local rain sensor
(``source="sensor"``: reacts to the rain that falls now) or as a rain-radar nowcast
(``source="nowcast"``: the intensity ``lead_s`` ahead is known now, so the profile switches
before the shower). Rain mode is active from the first sample at or above
``threshold_mm_h`` until the series has been below it for ``dry_after_s``.

While active, for each cyclist signal group (parameters per intersection):

* earlier and more frequent service, a shorter cycle rather than a cut: a cyclist group
  whose riders have waited ``wait_s`` is called early (class RAIN, ``precall``), and the
  running stage's motor greens end at their next real gap (2 s, the class's ``gap_out_s``,
  instead of the base controller's 3 s); no motor green with vehicles still passing closely
  is cut, and no maximum green is shortened. A conflicting cycle track keeps its own gap:
  riders pass a loop at longer headways, and ending its green at 2 s moved the delay from
  one cycle track to the other (tjunction:peak, seed 42: every cycle stream about 20 s a trip worse);
* longer green: a cyclist green is held while riders keep coming (the time since one last
  passed a detector is below ``gap_s``) up to ``max_green_s``, also past the group's normal
  maximum green, where the net-benefit rule says it pays (the riders' person-seconds
  against those of the motor traffic it keeps waiting; :mod:`.arbiter`).

In dry hours it requests nothing: the base controller runs unchanged.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.idx import GREEN, MODE_BICYCLE
from ivri.core.state import SignalState
from ivri.errors import ConfigError
from ivri.timefmt import parse_time_s

from .base import Observation
from .priority import PriorityApplication, PriorityClass, PriorityRequests

__all__ = ["RainMode", "RainSeries"]

_TIME_COLUMNS = ("time_s", "t_s", "time", "t")
_RAIN_COLUMNS = ("rain_mm_h", "intensity_mm_h", "rain", "intensity", "mm_h")


@dataclass(frozen=True)
class RainSeries:
    """Rain intensity over time: a step function, each sample valid until the next.

    Before the first sample it is dry; the last sample holds to the end.
    """

    t_s: np.ndarray     # float64[N], strictly increasing
    mm_h: np.ndarray    # float64[N], >= 0

    @classmethod
    def from_csv(cls, path: str | Path) -> RainSeries:
        """Read a CSV with a time column (seconds, ``h:m:s`` or ``d:h:m:s``: SUMO's time format, :mod:`ivri.timefmt`) and an intensity column
        in mm/h; header names: ``time_s`` / ``time`` and ``rain_mm_h`` / ``intensity``.

        Raises :class:`~ivri.errors.ConfigError` naming the file and line of any problem.
        """
        path = Path(path)
        try:
            with path.open(newline="") as fh:
                rows = list(csv.reader(line for line in fh if line.strip() and not line.startswith("#")))
        except OSError as exc:
            raise ConfigError(f"rain series {path}: {exc.strerror or exc}") from None
        if not rows:
            raise ConfigError(f"rain series {path}: the file is empty")
        header = [h.strip().lower() for h in rows[0]]
        t_col = next((header.index(c) for c in _TIME_COLUMNS if c in header), None)
        r_col = next((header.index(c) for c in _RAIN_COLUMNS if c in header), None)
        if t_col is None or r_col is None:
            raise ConfigError(
                f"rain series {path}: header {rows[0]} needs a time column "
                f"({' / '.join(_TIME_COLUMNS)}) and an intensity column ({' / '.join(_RAIN_COLUMNS)})"
            )
        ts: list[float] = []
        rs: list[float] = []
        for n, row in enumerate(rows[1:], start=2):
            try:
                t, r = parse_time_s(row[t_col]), float(row[r_col])
            except (ValueError, IndexError):
                raise ConfigError(f"rain series {path}, line {n}: cannot read {row!r}") from None
            if not (np.isfinite(r) and r >= 0.0):
                raise ConfigError(f"rain series {path}, line {n}: intensity must be >= 0 mm/h, got {r}")
            if ts and t <= ts[-1]:
                raise ConfigError(f"rain series {path}, line {n}: times must increase ({t:g} after {ts[-1]:g})")
            ts.append(t)
            rs.append(r)
        if not ts:
            raise ConfigError(f"rain series {path}: no samples after the header")
        return cls(np.asarray(ts, dtype=np.float64), np.asarray(rs, dtype=np.float64))

    @classmethod
    def constant(cls, mm_h: float) -> RainSeries:
        """Rain (or dry weather) all the time."""
        return cls(np.array([-1.0e12]), np.array([float(mm_h)]))

    def at(self, t_s: float) -> float:
        """Intensity at ``t_s`` (mm/h)."""
        k = int(np.searchsorted(self.t_s, t_s, side="right")) - 1
        return 0.0 if k < 0 else float(self.mm_h[k])

    def max_between(self, t0_s: float, t1_s: float) -> float:
        """Largest intensity in ``[t0_s, t1_s]`` (mm/h)."""
        lo = int(np.searchsorted(self.t_s, t0_s, side="right")) - 1
        hi = int(np.searchsorted(self.t_s, t1_s, side="right"))
        seg = self.mm_h[max(lo, 0):hi]
        return float(seg.max()) if len(seg) else 0.0


_PER_INTERSECTION_KEYS = ("wait_s", "max_green_s", "gap_s")


class RainMode(PriorityApplication):
    """Rain mode: cyclist groups get earlier, more frequent and longer green while it rains.

    Parameters (keyword only):

    ``rain``
        A :class:`RainSeries`, or the path of its CSV.
    ``source`` (``"sensor"`` or ``"nowcast"``), ``lead_s`` (nowcast look-ahead, default 600 s)
    ``threshold_mm_h`` (default 0.5 mm/h: light rain and more), ``dry_after_s`` (default 300 s)
    ``wait_s`` (default 20 s), ``max_green_s`` (default 40 s), ``gap_s`` (default 4 s)
        The cyclist profile while it rains (see the module docstring).
    ``per_intersection``
        Overrides of ``wait_s`` / ``max_green_s`` / ``gap_s`` by intersection id, e.g.
        ``{"J3": {"max_green_s": 50}}``.

    Attribute ``active_`` tells whether rain mode was on at the last tick.
    """

    name: ClassVar[str] = "rain"
    app_code: ClassVar[int] = 4

    def __init__(
        self,
        *,
        rain: RainSeries | str | Path | None = None,
        source: Literal["sensor", "nowcast"] = "sensor",
        lead_s: float = 600.0,
        threshold_mm_h: float = 0.5,
        dry_after_s: float = 300.0,
        wait_s: float = 20.0,
        max_green_s: float = 40.0,
        gap_s: float = 4.0,
        per_intersection: dict[str, dict[str, float]] | None = None,
    ) -> None:
        self.rain = rain
        self.source = source
        self.lead_s = lead_s
        self.threshold_mm_h = threshold_mm_h
        self.dry_after_s = dry_after_s
        self.wait_s = wait_s
        self.max_green_s = max_green_s
        self.gap_s = gap_s
        self.per_intersection = per_intersection

    def reset(self, net: CompiledNetwork) -> None:
        super().reset(net)
        if self.rain is None:
            raise ConfigError("rain: no rain series given (--rain FILE.csv, or rain=RainSeries)")
        self.series_ = self.rain if isinstance(self.rain, RainSeries) else RainSeries.from_csv(self.rain)
        if self.source not in ("sensor", "nowcast"):
            raise ConfigError(f"rain: source must be 'sensor' or 'nowcast', got {self.source!r}")
        n_i = net.n_intersections
        prof: dict[str, np.ndarray] = {k: np.full(n_i, float(getattr(self, k))) for k in _PER_INTERSECTION_KEYS}
        for x_id, over in (self.per_intersection or {}).items():
            if x_id not in net.intersection_index:
                raise ConfigError(f"rain: unknown intersection {x_id!r} in per_intersection; "
                                  f"known: {', '.join(net.intersection_ids)}")
            for k, value in dict(over).items():
                if k not in prof:
                    raise ConfigError(f"rain: unknown parameter {k!r} for {x_id!r}; valid: "
                                      f"{', '.join(_PER_INTERSECTION_KEYS)}")
                prof[k][net.intersection_index[x_id]] = float(value)
        self.profile_ = prof
        self.cyclist_ = (net.mode == MODE_BICYCLE) & net.timing.valid
        self.active_ = False
        self.last_wet_s_ = -np.inf
        self.switches_: list[tuple[float, bool]] = []

    def is_raining(self, t_s: float) -> bool:
        """Whether rain mode is on at ``t_s`` (updates the dry-after hold; call once per tick)."""
        if self.source == "nowcast":
            wet = self.series_.max_between(t_s, t_s + float(self.lead_s)) >= self.threshold_mm_h
        else:
            wet = self.series_.at(t_s) >= self.threshold_mm_h
        if wet:
            self.last_wet_s_ = t_s
        active = wet or (t_s - self.last_wet_s_ < float(self.dry_after_s))
        if active != self.active_:
            self.switches_.append((t_s, active))
        self.active_ = active
        return active

    def report(self) -> dict[str, Any]:
        """When rain mode switched on and off in the run: ``rain_switches`` [[t_s, on], ...]."""
        return {"rain_switches": [[t, on] for t, on in self.switches_]}

    def requests(self, obs: Observation, signals: SignalState) -> PriorityRequests:
        if not self.is_raining(obs.t_s):
            return PriorityRequests.empty()
        p = self.profile_
        green = signals.state == GREEN
        waiting = self.cyclist_ & obs.demand & ~green & (signals.wait_s >= p["wait_s"][:, None])
        riding = (self.cyclist_ & green & (obs.gap_s < p["gap_s"][:, None])
                  & (signals.elapsed_s < p["max_green_s"][:, None]))
        ii, gg = np.nonzero(waiting | riding)
        return PriorityRequests(
            key=(ii.astype(np.int64) * 1024 + gg) << np.int64(8) | np.int64(self.app_code),
            intersection=ii,
            group=gg,
            cls=np.full(len(ii), int(PriorityClass.RAIN), dtype=np.int8),
            eta_s=np.zeros(len(ii)),
        )

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        if isinstance(self.rain, RainSeries):
            params["rain"] = f"RainSeries({len(self.rain.t_s)} samples)"
        return params
