"""The engine's tick: one controller and the signal-timing core, advanced together.

Every way of driving the lights goes through :meth:`Engine.tick`: ``ivri run``
(:mod:`ivri.runner`), the live gateway (:mod:`ivri.gateway.service`), the co-simulation
(:mod:`ivri.cosim`) and the tests::

    engine = Engine(net, make_controller("actuated+greenflow"), dt_s=0.5)
    for obs in observations:                  # controllers.base.Observation, one per tick
        changed = engine.tick(obs)            # bool [I]: intersections whose aspects changed
        ...engine.signals.state...            # int8 [I, G]: idx.RED / GREEN / AMBER

A tick is: the controller turns the observation into requests, its commitment about the
next changes goes to the core, then the core advances with the requests, the demand and the
greens the controller holds for priority. The core (:class:`~ivri.core.engine.SignalCore`)
has the last word on what every signal shows; the controller only asks. A tick can be taken
in its two halves, :meth:`Engine.decide` and :meth:`Engine.advance` (the live gateway
decides as soon as a priority request arrives and advances at the tick's time).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ivri.controllers.base import Controller, Observation
from ivri.core.compile import CompiledNetwork
from ivri.core.engine import SignalCore, TimeToChange
from ivri.core.state import SignalState

__all__ = ["Engine"]


class Engine:
    """A controller and a :class:`~ivri.core.engine.SignalCore` over one compiled network.

    ``controller`` is reset for ``net`` here (``reset=False``: it already is). ``monitor`` turns on the core's independent
    conflict monitor (a :class:`~ivri.errors.SafetyViolation` on conflicting greens);
    ``start_s`` is the simulated time of the all-red start.
    """

    def __init__(self, net: CompiledNetwork, controller: Controller, dt_s: float, *,
                 start_s: float = 0.0, monitor: bool = True, reset: bool = True) -> None:
        self.net = net
        self.core = SignalCore(net, dt_s, start_s=start_s, monitor=monitor)
        self.controller = controller
        if reset:
            controller.reset(net)
        #: The controller's requests of the last tick (its own array; None before the first).
        self.request: np.ndarray | None = None
        self._decided: Observation | None = None  # decided, not yet advanced

    @property
    def signals(self) -> SignalState:
        """The core's state (written in place every tick: read it, never write it)."""
        return self.core.signals

    @property
    def t_s(self) -> float:
        """Time of the current state [s]."""
        return self.core.t_s

    @property
    def dt_s(self) -> float:
        """Length of a tick [s]."""
        return self.core.dt_s

    def tick(self, obs: Observation) -> np.ndarray:
        """One tick: controller, commitment, priority holds, core. Returns ``changed`` (bool
        ``[I]``, the core's own array, overwritten by the next tick)."""
        self.decide(obs)
        return self.advance()

    def decide(self, obs: Observation) -> None:
        """The first half of a tick: the controller decides on ``obs`` (its requests, its
        priority decisions) and its commitment goes to the core; the signals do not change.

        The live gateway calls it as soon as a priority request arrives, so that the decision
        is announced at once, and :meth:`advance` at the tick's own time: the core keeps its
        fixed step, so no minimum, amber or intergreen gets shorter in wall time.
        """
        ctl = self.controller
        self.request = ctl.step(obs, self.core.signals)
        self.core.commit(ctl.commitment())
        self._decided = obs

    @property
    def decided(self) -> bool:
        """True between :meth:`decide` and :meth:`advance`."""
        return self._decided is not None

    def advance(self) -> np.ndarray:
        """The second half of a tick: the core advances one step with what :meth:`decide`
        decided. Returns ``changed`` as :meth:`tick` does."""
        obs = self._decided
        if obs is None:
            raise RuntimeError("Engine.advance without a decision: call decide(obs) first")
        self._decided = None
        assert self.request is not None
        return self.core.advance(self.request, obs.demand, self.controller.extend_green())

    def time_to_change_s(self) -> TimeToChange:
        """The core's SPaT: seconds to the next change of every group (see ``SignalCore``)."""
        return self.core.time_to_change_s()

    def advice(self) -> Any:
        """The controller's speed advice for this tick (after :meth:`tick`), from the core's
        state and SPaT; None when it gives none."""
        if not self.controller.gives_advice():
            return None
        return self.controller.advice(self.core.signals, self.core.time_to_change_s())

    def use(self, controller: Controller, *, reset: bool) -> None:
        """Hand the intersections to ``controller`` from the next tick (a fallback). ``reset``:
        prepare it for the network first; False for one that has been running all along (a
        base controller under an arbiter)."""
        if reset:
            controller.reset(self.net)
        self.controller = controller
        self._decided = None  # a decision of the controller replaced is not carried out
