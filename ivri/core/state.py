"""The changing state of every signal group of a run, as arrays (a numba-friendly struct)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.idx import NEVER_S, RED

__all__ = ["SignalState", "initial_state"]


class SignalState(NamedTuple):
    """What every signal group shows and for how long. Only the core writes these arrays."""

    state: np.ndarray        # int8[I, G]    idx.RED / GREEN / AMBER
    elapsed_s: np.ndarray    # float64[I, G] time in the current aspect
    green_end_s: np.ndarray  # float64[I, G] simulation time at which the last green ended
    wait_s: np.ndarray       # float64[I, G] time with demand while not green (anti-starvation)


def initial_state(net: CompiledNetwork) -> SignalState:
    """All red, as after a long all-red start: every minimum red and intergreen is satisfied."""
    shape = net.timing.valid.shape
    return SignalState(
        state=np.full(shape, RED, dtype=np.int8),
        elapsed_s=np.full(shape, 1.0e9),
        green_end_s=np.full(shape, NEVER_S),
        wait_s=np.zeros(shape),
    )
