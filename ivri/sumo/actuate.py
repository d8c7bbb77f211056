"""Turn signal-group states into SUMO traffic-light state strings, and write only what changed.

The core decides (``SignalState.state``: RED / GREEN / AMBER per group); this module only
translates, per link of each tls:

* ``G`` for a green group, ``g`` when a partial-conflict partner group is green or amber too
  (the link then gives way, as in the network's own program; :attr:`TlsLinkMap.yield_to`);
* ``y`` for an amber group (``r`` for pedestrian groups, whose crossings SUMO has no amber for);
* ``r`` for a red group;
* links without a group keep the state they never change in the network's program
  (``r`` for links that are always red, ``O`` for unsignalled ones, ``G``/``g`` for links
  that are always green).

Everything per tick is array work over all links of all intersections at once; the only
Python loop runs over the intersections that the core reports as changed, and a string is
sent (``trafficlight.setRedYellowGreenState``) only when it differs from the last one sent.
SUMO then runs an "online" program whose one phase repeats every 86,400 s with the same
state, so the state holds until ivri changes it (checked with SUMO 1.28).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.idx import AMBER, GREEN, MODE_PEDESTRIAN, RED
from ivri.core.jit import njit
from ivri.core.state import SignalState
from ivri.errors import ConfigError
from ivri.sumo.connection import SumoConnection
from ivri.sumo.network import TlsLinkMap

__all__ = ["Actuator"]

_G, _g, _y, _r = (ord(c) for c in "Ggyr")


@njit
def _fill_chars(flat: np.ndarray, col: np.ndarray, ped: np.ndarray, fixed: np.ndarray,
                yield_link: np.ndarray, yield_col: np.ndarray, yielding: np.ndarray,
                out: np.ndarray) -> None:  # pragma: no cover - numba
    """The state character (ASCII) of every link into ``out``, from the group states ``flat``
    (int8 ``[I*G]``); ``col`` is each link's column (-1: no group, ``fixed`` character)."""
    yielding[:] = False
    for k in range(yield_link.shape[0]):
        # A partner on amber still sends traffic into the junction: keep giving way.
        if flat[yield_col[k]] != RED:
            yielding[yield_link[k]] = True
    for k in range(col.shape[0]):
        c = col[k]
        if c < 0:
            out[k] = fixed[k]
            continue
        s = flat[c]
        if s == GREEN:
            out[k] = _g if yielding[k] else _G
        elif s == AMBER and not ped[k]:
            out[k] = _y
        else:
            out[k] = _r


class Actuator:
    """Writes the tls state strings of all intersections of a run.

    ``conn`` may be None to only build strings (tests, SPaT). Attributes: ``writes`` (strings
    sent in total), ``writes_by_intersection`` (int ``[I]``), ``last`` (the last string sent
    per intersection, None before the first).
    """

    def __init__(self, conn: SumoConnection | None, net: CompiledNetwork,
                 link_maps: Sequence[TlsLinkMap]) -> None:
        n_i, n_g = net.timing.valid.shape
        if len(link_maps) != n_i:
            raise ConfigError(f"Actuator: {len(link_maps)} link maps for {n_i} intersections")
        self.conn = conn
        self.tls_ids = tuple(lm.tls_id for lm in link_maps)
        col, inter, fixed, ped, offsets = [], [], bytearray(), [], [0]
        yl, yc = [], []
        for i, lm in enumerate(link_maps):
            base = len(col)
            for k in range(lm.n_links):
                g = int(lm.group_of_link[k])
                if g >= n_g:
                    raise ConfigError(f"Actuator: tls {lm.tls_id!r} link {k} names group {g} beyond {n_g}")
                col.append(i * n_g + g if g >= 0 else -1)
                ped.append(g >= 0 and net.mode[i, g] == MODE_PEDESTRIAN)
                for p in lm.yield_to[k]:
                    yl.append(base + k)
                    yc.append(i * n_g + p)
            fixed += lm.fixed_state.encode("ascii")
            inter += [i] * lm.n_links
            offsets.append(len(col))
        self._col = np.asarray(col, dtype=np.intp)
        self._ped = np.asarray(ped, dtype=bool)
        self._fixed = np.frombuffer(bytes(fixed), dtype=np.uint8).copy()
        self._offsets = np.asarray(offsets, dtype=np.intp)
        self._yield_link = np.asarray(yl, dtype=np.intp)
        self._yield_col = np.asarray(yc, dtype=np.intp)
        self._chars = self._fixed.copy()
        self._yielding = np.zeros(len(col), dtype=np.bool_)
        self.last: list[str | None] = [None] * n_i
        self.writes = 0
        self.writes_by_intersection = np.zeros(n_i, dtype=np.int64)

    def _fill(self, state: np.ndarray) -> np.ndarray:
        """Compute the state characters of every link (uint8 ASCII) into ``self._chars``."""
        _fill_chars(np.ascontiguousarray(state, dtype=np.int8).reshape(-1), self._col, self._ped,
                    self._fixed, self._yield_link, self._yield_col, self._yielding, self._chars)
        return self._chars

    def state_strings(self, state: np.ndarray | SignalState) -> list[str]:
        """The SUMO state string of every intersection for ``state`` (``[I, G]``); no writing."""
        arr = state.state if isinstance(state, SignalState) else np.asarray(state)
        chars = self._fill(arr)
        o = self._offsets
        return [chars[o[i]:o[i + 1]].tobytes().decode("ascii") for i in range(len(o) - 1)]

    def write(self, state: np.ndarray | SignalState, changed: np.ndarray | None = None) -> int:
        """Send the strings of the ``changed`` intersections (all when None) that differ from the
        last string sent. Returns the number of strings sent."""
        arr = state.state if isinstance(state, SignalState) else np.asarray(state)
        which = np.arange(len(self.last)) if changed is None else np.flatnonzero(changed)
        if len(which) == 0:
            return 0
        chars = self._fill(arr)
        o = self._offsets
        sent = 0
        for i in which:
            s = chars[o[i]:o[i + 1]].tobytes().decode("ascii")
            if s != self.last[i]:
                if self.conn is not None:
                    self.conn.trafficlight.setRedYellowGreenState(self.tls_ids[i], s)
                self.last[i] = s
                self.writes_by_intersection[i] += 1
                sent += 1
        self.writes += sent
        return sent
