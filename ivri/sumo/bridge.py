"""The SUMO bridge of a run: start SUMO, observe it, drive its traffic lights, close it.

::

    with SumoBridge(cfg, out_dir=run_dir, seed=42) as bridge:
        net = bridge.start()                      # CompiledNetwork of the derived intersections
        core = SignalCore(net, bridge.dt_s)
        while t_s < bridge.end_s:
            t_s = bridge.step()
            obs = bridge.observe()
            changed = core.advance(controller.step(obs, core.signals), obs.demand)
            bridge.actuate(core.signals, changed)

``control=False`` runs SUMO's own programs (the ``sumo-native`` reference): no detectors,
no actuation; only the incoming lanes of each intersection are read, so that the
per-intersection queue measure (:meth:`SumoBridge.intersection_stats`) compares like with
like across controllers.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from ivri.config import NetworkConfig
from ivri.controllers.base import Observation
from ivri.core.compile import CompiledNetwork, compile_network
from ivri.core.idx import GREEN
from ivri.core.state import SignalState, initial_state
from ivri.errors import ConfigError, IvriError, NetworkError, SimulationError
from ivri.sumo.actuate import Actuator
from ivri.sumo.connection import Backend, SumoConnection, close_sumo, start_sumo
from ivri.sumo.detectors import Detector, detector_ids_in, write_detectors
from ivri.sumo.network import TlsLinkMap, derive_intersections, link_maps_for_configs, read_net
from ivri.sumo.observe import Observer
from ivri.sumo.sumocfg import (
    SumoConfig,
    driving_overrides,
    parse_time_s,
    read_sumocfg,
    split_file_list,
)
from ivri.sumo.v2x_options import V2XOptions, v2x_options

if TYPE_CHECKING:
    from ivri.sumo.safety import SafetyWatch
    from ivri.sumo.v2x import V2XEmulator

__all__ = ["DETECTOR_FILENAME", "SumoBridge"]

DETECTOR_FILENAME = "ivri_detectors.add.xml"
SUMO_LOG_FILENAME = "sumo_errors.log"
#: Written in place of a sumocfg's gui-settings-file when plain sumo runs (it only checks the file).
BLANK_GUI_SETTINGS_FILENAME = "blank_gui_settings.xml"
#: How often (simulated seconds) the number of vehicles still expected is asked for.
EXPECTED_EVERY_S = 60.0


def _take_option(args: list[str], names: Sequence[str]) -> tuple[str | None, list[str]]:
    """Remove ``--name value`` (or ``--name=value``) from ``args``; return the last value and the rest."""
    value = None
    rest: list[str] = []
    k = 0
    while k < len(args):
        name, eq, inline = args[k].partition("=")
        if name in names:
            if eq:
                value = inline
            elif k + 1 < len(args):
                value = args[k + 1]
                k += 1
            k += 1
            continue
        rest.append(args[k])
        k += 1
    return value, rest


def _option_map(args: Sequence[str]) -> dict[str, str]:
    """``--name value`` pairs (and bare ``--flag``, as ``"true"``) of a command line, by name."""
    out: dict[str, str] = {}
    for k, token in enumerate(args):
        if not token.startswith("--"):
            continue
        name, eq, inline = token[2:].partition("=")
        if eq:
            out[name] = inline
        elif k + 1 < len(args) and not args[k + 1].startswith("--"):
            out[name] = args[k + 1]
        else:
            out[name] = "true"
    return out


class SumoBridge:
    """One SUMO run driven (or watched) by ivri. See the module docstring.

    Parameters: ``sumocfg`` (the scenario), ``backend`` (``"libsumo"`` or ``"traci"``),
    ``gui`` (sumo-gui over TraCI), ``seed`` (SUMO's ``--seed``; the cfg's own when None),
    ``out_dir`` (detector file and SUMO's error log go here), ``extra_args`` (more SUMO
    options; ``--begin``, ``--end``, ``--step-length`` and ``--additional-files`` there are
    honoured), ``intersections`` (a user config instead of deriving from the network),
    ``control`` (False: SUMO's own programs), ``program_id`` (the tls program the groups are
    derived from), ``stopline_loops`` (False: only the extension loop on each lane, which
    saves SUMO about a tenth of its step time on the grid; see :mod:`ivri.sumo.detectors`),
    ``v2x`` (emulate connected road users, :mod:`ivri.sumo.v2x`: None for none, or
    :class:`~ivri.sumo.v2x_options.V2XOptions`, or a mapping of them validated here, before
    SUMO starts; the observation's ``v2x`` is then filled every tick).
    After :meth:`start`, ``sumo_net`` is the network as sumolib reads it.
    """

    def __init__(
        self,
        sumocfg: str | Path,
        *,
        backend: Backend = "libsumo",
        gui: bool = False,
        seed: int | None = None,
        out_dir: str | Path,
        extra_args: Sequence[str] = (),
        intersections: NetworkConfig | None = None,
        control: bool = True,
        program_id: str | None = None,
        stopline_loops: bool = True,
        v2x: V2XOptions | Mapping[str, Any] | None = None,
    ) -> None:
        self.sumocfg = Path(sumocfg)
        self.backend: Backend = "traci" if gui else backend
        self.gui = gui
        self.seed = seed
        self.out_dir = Path(out_dir)
        if ":" in str(self.out_dir.resolve()):
            # SUMO takes an output file name with a colon for host:port and fails to start.
            raise ConfigError(f"output folder {str(self.out_dir)!r}: SUMO cannot write into a path with ':' "
                              "(it reads such a file name as host:port); choose another folder")
        self.extra_args = [str(a) for a in extra_args]
        self.intersections = intersections
        self.control = control
        self.program_id = program_id
        self.stopline_loops = stopline_loops
        self.v2x_options = None if v2x is None else v2x_options(v2x)
        self.v2x: V2XEmulator | None = None
        #: The safety KPIs' reader (:mod:`ivri.sumo.safety`), with ``control``, after :meth:`start`.
        self.safety: SafetyWatch | None = None
        self.sumo_net: Any = None
        self._shown: np.ndarray | None = None
        #: float [I]: signal-group seconds of green while that group's exits were blocked.
        self._green_blocked_s = np.zeros(0)

        self.cfg: SumoConfig | None = None
        self.conn: SumoConnection | None = None
        self.compiled: CompiledNetwork | None = None
        self.link_maps: list[TlsLinkMap] = []
        self.detectors: list[Detector] = []
        self.observer: Observer | None = None
        self.actuator: Actuator | None = None
        self.t_s = 0.0
        self._begin_s: float | None = None
        self._end_s: float | None = None
        self._dt_s: float | None = None
        self._steps = 0
        self._vtypes: dict[str, tuple[str, str]] | None = None
        self._expected: int | None = None
        self._expected_at_s = -np.inf
        self._closed = False
        self.sumo_args: list[str] = []
        #: One line per option of the sumocfg that ivri overrides or honours explicitly.
        self.notes: list[str] = []
        #: Wall seconds spent in SUMO's steps (subscriptions are evaluated there too) and in
        #: reading the detectors and lanes, for the overhead benchmark.
        self.sumo_step_s = 0.0
        self.read_s = 0.0

    # --- timing ----------------------------------------------------------------------------

    def _times(self) -> None:
        if self._dt_s is not None:
            return
        cfg = self.cfg or read_sumocfg(self.sumocfg)
        self.cfg = cfg
        begin, end, step = cfg.begin_s, cfg.end_s, cfg.step_length_s
        args = list(self.extra_args)
        for names, what in ((("--begin", "-b"), "begin"), (("--end", "-e"), "end"),
                            (("--step-length",), "step")):
            value, args = _take_option(args, names)
            if value is None:
                continue
            try:
                t = parse_time_s(value, what=names[0])
            except ValueError as exc:
                raise SimulationError(str(exc)) from None
            if what == "begin":
                begin = t
            elif what == "end":
                end = t if t >= 0 else None
            else:
                step = t
        self._begin_s, self._end_s, self._dt_s = begin, end, step

    @property
    def begin_s(self) -> float:
        """Simulation start time [s] (the cfg's ``begin``, or ``--begin`` in ``extra_args``)."""
        self._times()
        assert self._begin_s is not None
        return self._begin_s

    @property
    def end_s(self) -> float | None:
        """Simulation end time [s], None when neither the cfg nor ``extra_args`` sets one."""
        self._times()
        return self._end_s

    @property
    def dt_s(self) -> float:
        """SUMO's step length [s]: the tick of the core."""
        self._times()
        assert self._dt_s is not None
        return self._dt_s

    # --- start -------------------------------------------------------------------------------

    def start(self) -> CompiledNetwork | None:
        """Read the cfg, derive (or check) the intersections, write detectors, start SUMO.

        Returns the compiled intersections (None with ``control=False``). Raises
        :class:`~ivri.errors.NetworkError` for a broken scenario,
        :class:`~ivri.errors.ConfigError` for a user config that does not fit the network and
        :class:`~ivri.errors.SimulationError` when SUMO does not start. SUMO is closed again
        on any error.
        """
        if self.conn is not None:
            raise SimulationError("SumoBridge.start() was called twice")
        if self._closed:
            raise SimulationError("this SumoBridge was closed; make a new one")
        self._times()
        cfg = self.cfg
        assert cfg is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)

        net = read_net(cfg.net_file)
        self.sumo_net = net
        if self.intersections is not None:
            configs = list(self.intersections.intersections)
            self.link_maps = link_maps_for_configs(configs, net, program_id=self.program_id)
        elif self.control:
            configs, self.link_maps = derive_intersections(net, program_id=self.program_id)
        else:
            # The reference run only needs the lanes of each intersection; a network that the
            # derivation cannot handle still runs under SUMO's own control.
            try:
                configs, self.link_maps = derive_intersections(net, program_id=self.program_id)
            except IvriError:
                configs, self.link_maps = [], []
        self.compiled = compile_network(configs) if configs else None

        adds_value, extra = _take_option(self.extra_args, ("--additional-files", "-a", "--additional"))
        additional = [str(p) for p in cfg.additional_files]
        if adds_value:
            additional += split_file_list(adds_value)
        if self.control and self.compiled is not None:
            det_file = self.out_dir / DETECTOR_FILENAME
            self.detectors = write_detectors(self.link_maps, net, det_file,
                                             taken_ids=detector_ids_in(additional),
                                             stopline=self.stopline_loops)
            additional.append(str(det_file.resolve()))

        args = ["-c", str(cfg.path)]
        if additional:
            # Given on the command line, the list replaces the cfg's: pass the union.
            args += ["--additional-files", ",".join(additional)]
        seed_value, extra = _take_option(extra, ("--seed",))
        seed = self.seed if self.seed is not None else (int(seed_value) if seed_value else None)
        if seed is not None:
            args += ["--seed", str(seed)]
        if "--no-step-log" not in extra:
            args.append("--no-step-log")
        if "--error-log" not in extra:
            log = (self.out_dir / SUMO_LOG_FILENAME).resolve()
            log.unlink(missing_ok=True)  # a stale log would explain a failed start wrongly
            args += ["--error-log", str(log)]
            if "--no-warnings" not in extra:
                # Warnings go to the log only; the run summarises them in one line.
                args += ["--no-warnings", "true"]
        overrides = driving_overrides(cfg, backend=self.backend, gui=self.gui, seeded=seed is not None,
                                      command_line=_option_map(extra),
                                      blank_gui_settings=self.out_dir / BLANK_GUI_SETTINGS_FILENAME)
        for override in overrides:
            args += list(override.args)
            self.notes.append(override.note)
            print(f"note: {override.note}", file=sys.stderr)
        args += extra
        self.sumo_args = args

        self.conn = start_sumo(args, backend=self.backend, gui=self.gui)
        try:
            self._setup()
        except IvriError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise SimulationError(f"SUMO refused the bridge's setup: {exc}") from exc
        except BaseException:
            self.close()
            raise
        return self.compiled if self.control else None

    def _setup(self) -> None:
        conn = self.conn
        self.t_s = self.begin_s
        self._steps = 0
        known = set(conn.trafficlight.getIDList())
        missing = [lm.tls_id for lm in self.link_maps if lm.tls_id not in known]
        if missing:
            raise NetworkError(f"SUMO does not know traffic light(s) {missing} of the network file")
        if self.compiled is None:
            return
        # Person types (slow crossers) are read whenever ivri controls: the safety KPIs need them.
        self.observer = Observer(conn, self.compiled, self.link_maps, self.detectors, dt_s=self.dt_s,
                                 lanes_only=not self.control, person_details=self.control,
                                 direct=self.backend == "libsumo")
        if self.control:
            # Imported here: these read TraCI's variable ids from traci.constants, and importing
            # the bridge must not load SUMO's packages.
            from ivri.sumo.safety import SafetyWatch

            emulate = self.v2x_options is not None
            self.safety = SafetyWatch(conn, self.compiled, self.link_maps, self.observer, self.sumo_net,
                                      own_emergency=not emulate)
            if self.v2x_options is not None:
                from ivri.sumo.v2x import V2XEmulator

                self.v2x = V2XEmulator(conn, self.compiled, self.link_maps, self.observer, self.sumo_net,
                                       seed=self.seed or 0, crossings=self.safety.crossings,
                                       **self.v2x_options.model_dump())
        if self.control:
            for lm in self.link_maps:
                n = len(conn.trafficlight.getRedYellowGreenState(lm.tls_id))
                if n != lm.n_links:
                    raise NetworkError(
                        f"traffic light {lm.tls_id!r} has {n} links in SUMO but {lm.n_links} in the "
                        "network's program (an additional file replaces its program?)"
                    )
            self.actuator = Actuator(conn, self.compiled, self.link_maps)
            # Take over every controlled light at once: all red (the core's start state).
            self._shown = initial_state(self.compiled).state
            self.actuator.write(self._shown)
            self._green_blocked_s = np.zeros(self.compiled.n_intersections)

    # --- per tick ------------------------------------------------------------------------------

    def _require(self) -> SumoConnection:
        if self.conn is None:
            raise SimulationError("SUMO is not running: call start() first" if not self._closed
                                  else "SUMO was closed")
        return self.conn

    def step(self) -> float:
        """Advance SUMO by one step and read the detectors and lanes; return the new time [s]."""
        conn = self._require()
        started = perf_counter()
        try:
            conn.simulationStep()
        except Exception as exc:  # noqa: BLE001 - libsumo / traci errors, re-raised as ours
            raise SimulationError(f"SUMO failed at t={self.t_s:g} s: {exc}") from None
        stepped = perf_counter()
        self.sumo_step_s += stepped - started
        self._steps += 1
        # Time from the step count (SUMO's clock is integer milliseconds): no drift, no call.
        self.t_s = round((self.begin_s + self._steps * self.dt_s) * 1000.0) / 1000.0
        if self.observer is not None:
            self.observer.read()
            self.read_s += perf_counter() - stepped
        return self.t_s

    def observe(self) -> Observation:
        """The detectors' view of this step, per intersection and signal group."""
        self._require()
        if self.observer is None or not self.control:
            raise SimulationError("observe() needs control=True and at least one intersection")
        obs = self.observer.observation(self.t_s, self._shown)
        if self._shown is not None and obs.exit_blocked is not None:
            # Group-seconds of green shown into a blocked exit (the state SUMO showed this step).
            self._green_blocked_s += ((self._shown == GREEN) & obs.exit_blocked).sum(axis=1) * self.dt_s
        if self.v2x is not None:
            obs.v2x = self.v2x.read(self.t_s, self._shown)
        if self.safety is not None and self._shown is not None:
            self.safety.read(self._shown, self.v2x)
        return obs

    def actuate(self, signals: SignalState | np.ndarray, changed: np.ndarray | None = None) -> int:
        """Write the tls states of the ``changed`` intersections (all when None); returns writes."""
        self._require()
        if self.actuator is None:
            raise SimulationError("actuate() needs control=True")
        self._shown = signals.state if isinstance(signals, SignalState) else signals
        try:
            return self.actuator.write(signals, changed)
        except IvriError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SimulationError(f"SUMO refused a traffic-light state at t={self.t_s:g} s: {exc}") from None

    def apply_advice(self, advice: Any) -> int:
        """Make equipped vehicles follow speed advice (GLOSA, :class:`~ivri.controllers.glosa.SpeedAdvice`:
        ``token``, ``speed_mps``); only changes reach SUMO (:meth:`V2XEmulator.apply_advice`).
        Returns the TraCI calls made; 0 without V2X emulation."""
        self._require()
        if self.v2x is None:
            return 0
        return self.v2x.apply_advice(advice.token, advice.speed_mps)

    # --- information ---------------------------------------------------------------------------

    def expected_vehicles(self) -> int:
        """Vehicles and persons still running or waiting to depart (SUMO's
        ``getMinExpectedNumber``), asked at most every 60 simulated seconds."""
        conn = self._require()
        if self._expected is None or self.t_s - self._expected_at_s >= EXPECTED_EVERY_S:
            self._expected = int(conn.simulation.getMinExpectedNumber())
            self._expected_at_s = self.t_s
        return self._expected

    def vtypes(self) -> dict[str, tuple[str, str]]:
        """``{vType id: (vClass, emission class)}`` of the run (read from SUMO, kept after close)."""
        if self._vtypes is None:
            conn = self._require()
            self._vtypes = {
                t: (conn.vehicletype.getVehicleClass(t), conn.vehicletype.getEmissionClass(t))
                for t in conn.vehicletype.getIDList()
            }
        return dict(self._vtypes)

    def intersection_stats(self) -> dict[str, dict[str, Any]]:
        """Per intersection: halting vehicle-hours on its approaches; under ivri's control also
        tls writes and ``green_while_exit_blocked_s``, the signal-group seconds of green shown
        while that group's exits were blocked (a green that moves nobody)."""
        out: dict[str, dict[str, Any]] = {}
        if self.compiled is None or self.observer is None:
            return out
        for i, x in enumerate(self.compiled.intersection_ids):
            rec: dict[str, Any] = {
                "tls_id": self.link_maps[i].tls_id,
                "halting_veh_h": float(self.observer.queue_veh_s[i]) / 3600.0,
            }
            if self.actuator is not None:
                rec["tls_writes"] = int(self.actuator.writes_by_intersection[i])
                rec["green_while_exit_blocked_s"] = float(self._green_blocked_s[i])
            out[x] = rec
        return out

    # --- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop SUMO (idempotent). Vehicle types are read first so :meth:`vtypes` still works."""
        conn, self.conn = self.conn, None
        self._closed = True
        if conn is None:
            return
        if self._vtypes is None:
            with contextlib.suppress(Exception):
                self._vtypes = {
                    t: (conn.vehicletype.getVehicleClass(t), conn.vehicletype.getEmissionClass(t))
                    for t in conn.vehicletype.getIDList()
                }
        # Wait for SUMO to exit, also sumo-gui (it runs with --quit-on-end): its outputs
        # (tripinfo) are complete only then.
        close_sumo(conn)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
