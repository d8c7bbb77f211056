"""The numba options of every ivri kernel, in one place.

Kernels use ``@njit`` from here, never ``numba.njit`` directly, so that a change of policy
(caching, fastmath, bounds checks) is one edit. ``NUMBA_DISABLE_JIT=1`` in the environment
turns every kernel back into plain Python (numba itself honours it); tests run the kernels once
that way, and a traceback then points into readable Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

__all__ = ["JIT_ENABLED", "njit", "njit_parallel", "prange"]

#: False when ``NUMBA_DISABLE_JIT`` is set: the kernels then run as plain Python.
JIT_ENABLED: bool = not getattr(numba.config, "DISABLE_JIT", False)  # set from the environment at import

_Function = TypeVar("_Function", bound=Callable[..., Any])

# cache=True: compiled code is stored next to the module, so a run pays the JIT once per
# machine, not once per process. nogil=True: a kernel can run beside other Python threads
# (the MQTT gateway). No fastmath: the safety timers compare accumulated floats against limits
# with an explicit tolerance, and reassociation would make them differ from the naive reference.
# boundscheck stays off (numba's default) for speed; the tests run with NUMBA_DISABLE_JIT once,
# where numpy checks every index.
#
# Both decorators return the compiled dispatcher typed as the function it compiles, so that the
# type checker checks every call of a kernel against the kernel's own signature.


def njit(function: _Function) -> _Function:
    """Compile ``function`` with the options above."""
    return cast(_Function, numba.njit(cache=True, nogil=True, fastmath=False)(function))


def njit_parallel(function: _Function) -> _Function:
    """The same options plus ``parallel=True``, for kernels that split intersections over cores."""
    return cast(_Function, numba.njit(cache=True, nogil=True, fastmath=False, parallel=True)(function))

prange = numba.prange
