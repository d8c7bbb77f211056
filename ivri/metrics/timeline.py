"""The signal timeline of a run: what every signal group showed, when, and why (as V-Log records it).

A Dutch traffic engineer judges a controller from its V-Log: per signal group the red, green
and amber over time, the detectors beneath, and the priority requests. :class:`TimelineRecorder`
keeps the same record during a run, cheaply: per tick it compares ``[I, G]`` arrays with the
previous tick's and stores only the changes (time, intersection, group, new value) with numpy,
never a Python loop over signal groups. Channels:

``state``     the core's aspect (:data:`~ivri.core.idx.RED`, ``GREEN``, ``AMBER``); compared
              only on ticks where the core reports a change
``demand``    1 while a road user calls for green (the observation's ``demand``)
``detector``  1 while a vehicle is over one of the group's loops (the observation's
              ``detector_occupied``: over one during the tick's step)
``priority``  the highest :class:`~ivri.controllers.priority.PriorityClass` requesting the group
``granted``   the highest class whose request the arbiter is acting on (held, cleared for,
              or called)

At the end :meth:`TimelineRecorder.save` writes one compressed ``timeline.npz`` into the run's
folder (21 kB for the first 10 minutes of the 3x3 grid, 9 intersections); :func:`load_timeline`
reads it back as a :class:`Timeline`, which :mod:`ivri.metrics.timeline_plot` draws. Every
channel starts at 0 (all red, no demand) at the run's begin, the core's start state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ivri.core.compile import CompiledNetwork

__all__ = ["CHANNELS", "TIMELINE_FILENAME", "Timeline", "TimelineRecorder", "load_timeline"]

TIMELINE_FILENAME = "timeline.npz"
CHANNELS = ("state", "demand", "detector", "priority", "granted")
_FORMAT = 1


class TimelineRecorder:
    """Record the change events of a run's signal groups (see the module docstring).

    Call :meth:`record` once per tick after the core has advanced, then :meth:`save`.
    """

    def __init__(self, net: CompiledNetwork, begin_s: float) -> None:
        self.net = net
        self.begin_s = float(begin_s)
        self.end_s = float(begin_s)
        self._valid = net.timing.valid
        shape = self._valid.shape
        self._prev = {c: np.zeros(shape, dtype=np.int8) for c in CHANNELS}
        self._chunks: dict[str, list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]] = {c: [] for c in CHANNELS}
        self._changed = np.zeros(shape, dtype=np.bool_)
        self._cls = np.zeros(shape, dtype=np.int8)
        self._granted = np.zeros(shape, dtype=np.int8)

    def _diff(self, channel: str, t_s: float, current: np.ndarray) -> None:
        prev = self._prev[channel]
        changed = np.not_equal(current, prev, out=self._changed)
        changed &= self._valid
        if not changed.any():
            return
        ii, gg = np.nonzero(changed)
        values = current[ii, gg].astype(np.int8)
        prev[ii, gg] = values
        self._chunks[channel].append((t_s, ii.astype(np.int16), gg.astype(np.int16), values))

    def record(self, t_s: float, state: np.ndarray, changed: np.ndarray | None = None,
               demand: np.ndarray | None = None, occupied: np.ndarray | None = None,
               controller: Any = None) -> None:
        """Record one tick: the core's ``state`` (``[I, G]``) and its ``changed`` mask (``[I]``;
        None: compare all), the observation's ``demand`` and ``detector_occupied``, and the priority
        requests that ``controller`` tracks (:meth:`~ivri.controllers.base.Controller.tracked_requests`)."""
        self.end_s = float(t_s)
        if changed is None or changed.any():
            self._diff("state", t_s, state)
        if demand is not None:
            self._diff("demand", t_s, demand)
        if occupied is not None:
            self._diff("detector", t_s, occupied)
        tracked = controller.tracked_requests() if controller is not None else None
        if tracked is not None:
            priority_masks(tracked, self._cls, self._granted)
            self._diff("priority", t_s, self._cls)
            self._diff("granted", t_s, self._granted)

    def save(self, path: str | Path) -> Path:
        """Write the events and the names of intersections and groups to ``path`` (``.npz``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for c in CHANNELS:
            chunks = self._chunks[c]
            arrays[f"{c}_t"] = np.concatenate([np.full(len(ch[1]), ch[0]) for ch in chunks]) if chunks else np.zeros(0)
            for k, name in ((1, "i"), (2, "g"), (3, "v")):
                dtype = np.int8 if name == "v" else np.int16
                arrays[f"{c}_{name}"] = (np.concatenate([ch[k] for ch in chunks]) if chunks
                                         else np.zeros(0, dtype=dtype))
        meta = {
            "format": _FORMAT,
            "begin_s": self.begin_s,
            "end_s": self.end_s,
            "intersections": list(self.net.intersection_ids),
            "groups": [list(g) for g in self.net.group_ids],
            "classes": _class_names(),
        }
        np.savez_compressed(path, meta=np.array(json.dumps(meta)), mode=self.net.mode, **arrays)
        return path


def priority_masks(tracked: Any, out_cls: np.ndarray, out_granted: np.ndarray) -> None:
    """Per ``[I, G]``: the highest class requesting the group, and the highest whose request the
    arbiter acts on, from the arbiter's ``tracked_`` rows (``intersection``, ``group``, ``cls``,
    ``status``). Array work over the requests of this tick."""
    from ivri.controllers.arbiter import ACTING

    out_cls[:] = 0
    out_granted[:] = 0
    if len(tracked.keys) == 0:
        return
    known = tracked.group >= 0
    ii, gg, cls = tracked.intersection[known], tracked.group[known], tracked.cls[known]
    np.maximum.at(out_cls, (ii, gg), cls)
    acting = np.isin(tracked.status[known], np.asarray(ACTING, dtype=np.int8))
    np.maximum.at(out_granted, (ii[acting], gg[acting]), cls[acting])


def _class_names() -> dict[int, str]:
    from ivri.controllers.priority import PriorityClass

    return {int(c): c.name.lower() for c in PriorityClass}


@dataclass(frozen=True)
class Timeline:
    """A recorded timeline (:func:`load_timeline`): events per channel, and the names."""

    begin_s: float
    end_s: float
    intersection_ids: tuple[str, ...]
    group_ids: tuple[tuple[str, ...], ...]
    mode: np.ndarray
    class_names: dict[int, str]
    events: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]

    def index_of(self, intersection: str) -> int:
        """Row of ``intersection``; ``KeyError`` names the known ones."""
        try:
            return self.intersection_ids.index(intersection)
        except ValueError:
            raise KeyError(f"unknown intersection {intersection!r}; the timeline has "
                           f"{', '.join(self.intersection_ids)}") from None

    def segments(self, channel: str, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Intervals of constant value of every group of intersection ``i`` in ``channel``:
        arrays ``group``, ``start_s``, ``end_s``, ``value`` (value 0 included; every group starts
        at 0 at :attr:`begin_s`, the last interval ends at :attr:`end_s`)."""
        t, ii, gg, vv = self.events[channel]
        sel = ii == i
        n_g = len(self.group_ids[i])
        g = np.concatenate([np.arange(n_g), gg[sel].astype(np.int64)])
        start = np.concatenate([np.full(n_g, self.begin_s), t[sel]])
        value = np.concatenate([np.zeros(n_g, np.int8), vv[sel]])
        order = np.lexsort((start, g))  # by group, then time (stable: start-of-run first)
        g, start, value = g[order], start[order], value[order]
        end = np.empty_like(start)
        end[:-1] = start[1:]
        last = np.ones(len(g), dtype=np.bool_)
        last[:-1] = g[1:] != g[:-1]
        end[last] = self.end_s
        keep = end > start
        return g[keep], start[keep], end[keep], value[keep]


def load_timeline(path: str | Path) -> Timeline:
    """Read a ``timeline.npz`` written by :meth:`TimelineRecorder.save`.

    Raises ``ValueError`` naming the file when it is not such a file.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            events = {c: (data[f"{c}_t"], data[f"{c}_i"], data[f"{c}_g"], data[f"{c}_v"]) for c in CHANNELS}
            mode = data["mode"]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a timeline file ({exc})") from None
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{path}: timeline format {meta.get('format')!r}, expected {_FORMAT}")
    return Timeline(
        begin_s=float(meta["begin_s"]),
        end_s=float(meta["end_s"]),
        intersection_ids=tuple(meta["intersections"]),
        group_ids=tuple(tuple(g) for g in meta["groups"]),
        mode=mode,
        class_names={int(k): v for k, v in meta["classes"].items()},
        events=events,
    )
