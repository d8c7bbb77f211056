"""The numba options of every ivri kernel, in one place.

Kernels use ``@njit`` from here, never ``numba.njit`` directly, so that a change of policy
(caching, fastmath, bounds checks) is one edit. ``NUMBA_DISABLE_JIT=1`` in the environment
turns every kernel back into plain Python (numba itself honours it); tests run the kernels once
that way, and a traceback then points into readable Python.
"""

from __future__ import annotations

import functools

import numba

__all__ = ["JIT_ENABLED", "njit", "njit_parallel", "prange"]

#: False when ``NUMBA_DISABLE_JIT`` is set: the kernels then run as plain Python.
JIT_ENABLED: bool = not numba.config.DISABLE_JIT

# cache=True: compiled code is stored next to the module, so a run pays the JIT once per
# machine, not once per process. nogil=True: a kernel can run beside other Python threads
# (the MQTT gateway). No fastmath: the safety timers compare accumulated floats against limits
# with an explicit tolerance, and reassociation would make them differ from the naive reference.
# boundscheck stays off (numba's default) for speed; the tests run with NUMBA_DISABLE_JIT once,
# where numpy checks every index.
njit = functools.partial(numba.njit, cache=True, nogil=True, fastmath=False)

#: The same options plus ``parallel=True``, for kernels that split intersections over cores.
njit_parallel = functools.partial(numba.njit, cache=True, nogil=True, fastmath=False, parallel=True)

prange = numba.prange
