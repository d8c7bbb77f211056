"""The one small interface that every controller shares (in the spirit of scikit-learn).

A controller *requests*; the core grants what is safe. ``__init__`` only stores keyword
parameters; ``reset(net)`` builds the run state (attributes ending in ``_``); ``step`` turns
one observation into a boolean request per signal group. Nothing here can make a light show
something unsafe: :class:`ivri.core.engine.SignalCore` has the last word.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ivri.core.compile import CompiledNetwork
from ivri.core.forecast import Commitment
from ivri.core.state import SignalState

from .v2x import V2XObservation

if TYPE_CHECKING:
    from .arbiter import TrackedRequests

__all__ = ["Controller", "Observation", "Parameters"]

#: ``gap_s`` when nothing was ever detected.
NO_DETECTION_S = 1.0e9


@dataclass
class Observation:
    """What the detectors of all intersections saw this tick, per signal group (``[I, G]``).

    The SUMO bridge fills it from subscriptions; the MQTT gateway and tests fill it directly.
    Arrays are reused from tick to tick: copy what you keep.
    """

    t_s: float
    demand: np.ndarray               # bool:    a road user waits or approaches (a call for green)
    gap_s: np.ndarray                # float64: time since a vehicle last passed an extension detector
    queue_veh: np.ndarray            # float64: halting road users on the group's approach lanes
    approach_veh: np.ndarray         # float64: road users in the detection zone of the approach
    downstream_queue_veh: np.ndarray  # float64: halting vehicles on the lanes the group feeds
    #: Connected road users near the intersections (CAM-like rows and app requests).
    v2x: V2XObservation = field(default_factory=V2XObservation.empty)
    #: bool ``[I, G]``: the group's exits are blocked (a vehicle stands just past the junction
    #: on at least half the lanes it feeds), so a green moves (next to) nobody. None: not measured (the
    #: gateway and tests that do not fill it), which controllers read as "never blocked".
    exit_blocked: np.ndarray | None = None
    #: bool ``[I, G]``: a vehicle was over one of the group's loops during the last step (the
    #: signal timeline's detector row; controllers read ``gap_s``). None: not measured.
    detector_occupied: np.ndarray | None = None

    @classmethod
    def empty(cls, net: CompiledNetwork, t_s: float = 0.0) -> Observation:
        """An observation with no road users anywhere (for tests and for start-up)."""
        return cls(
            t_s=t_s,
            demand=net.full(False, np.bool_),
            gap_s=net.full(NO_DETECTION_S),
            queue_veh=net.full(0.0),
            approach_veh=net.full(0.0),
            downstream_queue_veh=net.full(0.0),
            exit_blocked=net.full(False, np.bool_),
            detector_occupied=net.full(False, np.bool_),
        )


class Parameters:
    """``get_params`` and ``repr`` from the keyword-only constructor parameters, which
    controllers and priority applications store unchanged under the same names."""

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, for benchmark logs and reports."""
        sig = inspect.signature(type(self).__init__)
        return {
            p: getattr(self, p)
            for p in sig.parameters
            if p != "self" and sig.parameters[p].kind == inspect.Parameter.KEYWORD_ONLY
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


class Controller(Parameters, ABC):
    """Base class of every controller and priority application.

    Subclasses set ``name`` (the registry key), take only keyword arguments in ``__init__``
    and store them unchanged under the same names, and implement :meth:`step`.
    """

    name: ClassVar[str] = ""
    #: The controller reads connected road users (``Observation.v2x``): a SUMO run then
    #: emulates them (:mod:`ivri.sumo.v2x`).
    uses_v2x: ClassVar[bool] = False

    def reset(self, net: CompiledNetwork) -> None:
        """Forget everything from an earlier run and prepare for ``net``. Idempotent."""
        self.net_ = net

    @abstractmethod
    def step(self, obs: Observation, signals: SignalState) -> np.ndarray:
        """Return ``request_green``: bool ``[I, G]``, True where the controller wants green.

        ``signals`` is the core's current state (read it, never write it).
        """

    def extend_green(self) -> np.ndarray | None:
        """bool ``[I, G]``: requested greens the core may hold past max green this tick.

        None (the default) for controllers without priority holds; the arbiter returns the
        groups it holds for a priority request. Pass it to ``SignalCore.advance(..., extend=)``.
        """
        return None

    def commitment(self) -> Commitment | None:
        """What this controller commits to about the next change of each group, or None.

        A :class:`~ivri.core.forecast.Commitment` of absolute times (earliest and latest next
        change, a likely time). Pass it to ``SignalCore.commit`` before ``advance``: the core
        keeps what it accepts, so SPaT and speed advice can rely on it.
        """
        return None

    # --- optional capabilities (neutral defaults; the arbiter and its applications override) ---

    def application_names(self) -> frozenset[str]:
        """Names of the priority applications that serve requests under this controller."""
        return frozenset()

    def v2x_shares(self) -> dict[str, float]:
        """Shares of equipped road users (by kind, see :data:`ivri.sumo.v2x_options.DEFAULT_SHARES`)
        this controller needs when a run does not say; empty: the defaults."""
        return {}

    def attach_log(self, log: Any) -> None:
        """Send priority decisions to ``log`` (anything with ``record(**fields)``). A controller
        without priority decisions has nothing to send."""

    def tracked_requests(self) -> TrackedRequests | None:
        """The priority requests known after the last tick (keys, status, intersection, group,
        class; arrays sorted by key), or None for a controller without priority."""
        return None

    def gives_advice(self) -> bool:
        """True when :meth:`advice` returns speed advice (GLOSA) to apply every tick."""
        return False

    def advice(self, signals: SignalState, spat: Any) -> Any:
        """Speed advice (:class:`~controllers.glosa.SpeedAdvice`) given the core's state and
        SPaT after it advanced; None when :meth:`gives_advice` is False."""
        return None

    def report(self) -> dict[str, Any]:
        """What this controller adds to a run's result record (aggregates only, no identities)."""
        return {}
