"""Run one scenario with one controller, end to end: SUMO -> controller -> core -> SUMO -> KPIs.

This is the loop of the design's data flow. Everything per tick is array work: the bridge
fills an :class:`~controllers.base.Observation` from subscriptions, the controller returns a
request per signal group, the core grants what is safe, and the bridge writes the states of
the intersections that changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ivri.config import NetworkConfig, load_network_config
from ivri.errors import ConfigError, NetworkError

__all__ = [
    "TYPED_PROGRAMS_FILENAME", "RunSpec", "resolve_scenario", "run_controller", "run_dir_of", "sumo_log_lines",
]

#: The additional file that switches SUMO's programs to another type (sumo-actuated, ...).
TYPED_PROGRAMS_FILENAME = "sumo_programs.add.xml"

#: Called with (simulated seconds done, simulated seconds in total).
ProgressCallback = Callable[[float, float], None]


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run; two equal specs give the same result."""

    scenario: str
    controller: str
    seed: int = 42
    out_dir: Path = Path("out")
    backend: Literal["libsumo", "traci"] = "libsumo"
    gui: bool = False
    intersections: Path | None = None
    end_s: float | None = None
    controller_params: dict[str, Any] = field(default_factory=dict)
    #: Emulate connected road users (None: only when the controller has priority
    #: applications; True also for a baseline that the priority benchmark compares with).
    v2x: bool | None = None
    #: Overrides of :data:`ivri.sumo.v2x_options.DEFAULT_SHARES` (share of road users equipped).
    v2x_shares: dict[str, float] | None = None
    #: How often an equipped vehicle sends a CAM [s] (0: every SUMO step).
    v2x_cam_period_s: float = 0.0
    #: Rain series (CSV) for the ``rain`` application.
    rain: Path | None = None
    #: Co-simulation (:mod:`ivri.cosim`): the equipped vehicles publish CAMs to this MQTT
    #: broker (``mqtt://host:port``; ``memory://``: one in the process) and the gateway, in
    #: lockstep, controls the lights.
    v2x_broker: str | None = None
    #: With ``gui``: milliseconds sumo-gui waits per step (to watch at a human pace).
    gui_delay_ms: float = 0.0
    #: With ``gui``: save a screenshot here when an emergency vehicle's request is granted and
    #: it is near its stop line (else near the end of the run); see :class:`ivri.sumo.gui.GuiView`.
    gui_screenshot: Path | None = None


def run_dir_of(out_dir: Path, controller: str) -> Path:
    """The folder of one controller's run inside ``out_dir`` (``+`` is not a file-name character
    everyone likes: ``actuated+greenflow`` runs in ``actuated_greenflow``)."""
    return Path(out_dir) / controller.replace("+", "_")


def resolve_scenario(scenario: str) -> tuple[str, Path]:
    """A bundled scenario name (``grid``, ``grid:short``), a fetched real-world network
    (``realworld:cologne8``, see :mod:`ivri.sumo_networks.realworld`) or a path to a ``.sumocfg``.

    Returns a label for reports and the path of the ``.sumocfg``.
    """
    if scenario.startswith("realworld:"):
        from ivri.sumo_networks.realworld import realworld_sumocfg

        name = scenario.partition(":")[2]
        return name, realworld_sumocfg(name).resolve()
    path = Path(scenario)
    if path.suffix == ".sumocfg" or path.exists():
        if not path.is_file():
            raise NetworkError(f"scenario file {path} does not exist")
        return path.stem, path.resolve()
    from ivri.sumo_networks import get_scenario

    try:
        found = get_scenario(scenario)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]) if exc.args else f"unknown scenario {scenario!r}") from None
    return f"{found.name}:{found.variant}", found.sumocfg


def _load_intersections(path: Path | None) -> NetworkConfig | None:
    return None if path is None else load_network_config(path)


def run_controller(spec: RunSpec, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Run ``spec`` and return its result record (the row of ``kpis.json``).

    The record holds no vehicle or person identities: only aggregates.
    """
    from ivri.controllers import SUMO_REFERENCES, make_controller
    from ivri.controllers.rain import RainMode
    from ivri.engine import Engine
    from ivri.metrics import (
        VTypeInfo,
        compute_health,
        compute_kpis,
        statistics_path,
        summary_path,
        sumo_output_options,
        tripinfo_path,
    )
    from ivri.metrics.decisions import DECISIONS_FILENAME, DecisionLog
    from ivri.metrics.fuel import fuel_type_of
    from ivri.metrics.timeline import TIMELINE_FILENAME, TimelineRecorder
    from ivri.metrics.vtypes import mode_of
    from ivri.sumo.bridge import SumoBridge
    from ivri.sumo.connection import sumo_version
    from ivri.sumo.v2x_options import v2x_options

    label, sumocfg = resolve_scenario(spec.scenario)
    native = spec.controller in SUMO_REFERENCES  # SUMO controls the lights itself
    params = {k: (dict(v) if isinstance(v, dict) else v) for k, v in spec.controller_params.items()}
    if spec.rain is not None:
        if native:
            raise ConfigError(f"a rain series is given but {spec.controller} runs SUMO's own programs")
        # The rain application's input; make_controller refuses it for a spec without that application.
        params.setdefault(RainMode.name, {})["rain"] = spec.rain
    controller = None if native else make_controller(spec.controller, **params)
    if controller is not None and controller.v2x_shares():
        # What the controller needs (GLOSA: a share of equipped cars), unless the run says.
        spec = dataclasses.replace(spec, v2x_shares={**controller.v2x_shares(), **(spec.v2x_shares or {})})
    reads_cams = controller is not None and controller.uses_v2x
    emulate = (reads_cams if spec.v2x is None else spec.v2x) and not native
    if spec.v2x_broker is not None:
        if native:
            raise ConfigError(f"--v2x needs an ivri controller; {spec.controller} runs SUMO's own programs")
        from ivri.cosim import check_broker

        check_broker(spec.v2x_broker)  # a bad URL or no broker fails before SUMO starts
        emulate = True  # the equipped vehicles are the ones that send CAMs
    # Validated before SUMO starts: a bad share is a one-line error naming it.
    v2x = v2x_options({"shares": spec.v2x_shares or {}, "cam_period_s": spec.v2x_cam_period_s,
                       "positions": spec.v2x_broker is not None}) if emulate else None
    run_dir = run_dir_of(spec.out_dir, spec.controller)
    run_dir.mkdir(parents=True, exist_ok=True)
    extra = sumo_output_options(run_dir)
    if spec.end_s is not None:
        extra += ["--end", str(spec.end_s)]
    tls_type = SUMO_REFERENCES.get(spec.controller)
    if tls_type is not None:
        from ivri.sumo.sumocfg import read_sumocfg
        from ivri.sumo.tls_programs import write_typed_programs

        cfg = read_sumocfg(sumocfg)
        programs = run_dir / TYPED_PROGRAMS_FILENAME
        write_typed_programs([cfg.net_file, *cfg.additional_files], tls_type, programs)
        extra += ["--additional-files", str(programs.resolve())]  # loaded last: these programs run
    if spec.gui:
        from ivri.sumo.gui import gui_options

        extra += gui_options(run_dir, spec.gui_delay_ms)
    log = DecisionLog(run_dir / DECISIONS_FILENAME) if controller is not None and controller.application_names() else None
    if log is not None:
        controller.attach_log(log)

    intersections = _load_intersections(spec.intersections)
    started = time.perf_counter()
    bridge = SumoBridge(
        sumocfg,
        backend=spec.backend,
        gui=spec.gui,
        seed=spec.seed,
        out_dir=run_dir,
        extra_args=extra,
        intersections=intersections,
        control=not native,
        v2x=v2x,
    )
    cosim = None
    with contextlib.ExitStack() as stack:
        if log is not None:
            stack.enter_context(log)
        stack.enter_context(bridge)
        net = bridge.start()
        if spec.v2x_broker is not None and net is not None:
            from ivri.cosim import CoSimulation

            # The gateway runs its own controller (same spec and parameters) and logs its
            # decisions into the run's log; the local controller above stays unused.
            cosim = CoSimulation(bridge, spec.v2x_broker, controller=spec.controller, controller_params=params,
                                 config=intersections, decision_log=log,
                                 **({"cam_period_s": spec.v2x_cam_period_s} if spec.v2x_cam_period_s > 0 else {}))
            cosim.start()
            stack.callback(cosim.close)
        end_s = spec.end_s if spec.end_s is not None else bridge.end_s
        if end_s is None:
            raise NetworkError(f"{sumocfg} has no end time; give one with --end")
        begin_s = bridge.begin_s
        span_s = max(end_s - begin_s, 1e-9)
        next_report_s = begin_s
        engine = None
        if controller is not None and net is not None:
            engine = Engine(net, controller, bridge.dt_s, start_s=begin_s)
        # The signal timeline (what every group showed, its calls, its priority requests).
        recorder = TimelineRecorder(net, begin_s) if net is not None and not native else None
        view = None
        if spec.gui and bridge.compiled is not None:
            from ivri.sumo.gui import GuiView

            view = GuiView(bridge.conn, bridge.compiled, [lm.tls_id for lm in bridge.link_maps], bridge.v2x,
                           screenshot_path=spec.gui_screenshot)
        # Speed advice (GLOSA): after the core has advanced, from its SPaT, applied in SUMO.
        advise = engine is not None and bridge.v2x is not None and engine.controller.gives_advice()
        t_s = begin_s
        while t_s < end_s - 1e-9:
            t_s = bridge.step()
            if cosim is not None:
                obs = bridge.observe()
                state, changed = cosim.exchange(t_s, obs)
                bridge.actuate(state, changed)
                recorder.record(t_s, state, changed, obs.demand, obs.detector_occupied)
            elif engine is not None:
                obs = bridge.observe()
                changed = engine.tick(obs)
                bridge.actuate(engine.signals, changed)
                recorder.record(t_s, engine.signals.state, changed, obs.demand, obs.detector_occupied, controller)
                if advise:
                    bridge.apply_advice(engine.advice())
            if view is not None:
                view.update(t_s, end_s, bridge.dt_s, controller.tracked_requests() if controller is not None else None)
            if progress is not None and t_s >= next_report_s:
                progress(t_s - begin_s, span_s)
                next_report_s = t_s + 10.0
        vtypes = {k: VTypeInfo(vclass=v[0], emission_class=v[1]) for k, v in bridge.vtypes().items()}
        per_intersection = bridge.intersection_stats()
        v2x_stats = bridge.v2x.stats.to_dict() if bridge.v2x is not None else None
        safety = bridge.safety.stats.to_dict() if bridge.safety is not None else None
        if cosim is not None:
            cosim.close()
        if recorder is not None:
            recorder.save(run_dir / TIMELINE_FILENAME)
    wall_s = time.perf_counter() - started
    if progress is not None:
        progress(span_s, span_s)

    kpis = compute_kpis(tripinfo_path(run_dir), vtypes)
    health = compute_health(statistics_path(run_dir), summary_path(run_dir), begin_s, end_s)
    record: dict[str, Any] = {
        "scenario": label,
        "sumocfg": str(sumocfg),
        "controller": spec.controller,
        "controller_params": {} if controller is None else _jsonable(controller.get_params()),
        "seed": spec.seed,
        "backend": spec.backend,
        "sumo_version": sumo_version(),
        "simulated_s": end_s - begin_s,
        "wall_time_s": round(wall_s, 3),
        **kpis.to_dict(),
        "health": health.to_dict(),
        "sumocfg_notes": bridge.notes,
        "by_intersection": per_intersection,
        "vtype_modes": {t: mode_of(info.vclass) for t, info in vtypes.items()},
        "vtype_fuels": {t: fuel_type_of(info.emission_class) for t, info in vtypes.items()},
        "sumo_warnings": sumo_log_lines(run_dir),
    }
    if safety is not None:
        record["safety"] = safety
    if v2x_stats is not None:
        from ivri.metrics.app_users import equipped_trip_kpis
        from ivri.sumo.v2x_options import DEFAULT_SHARES

        share = {**DEFAULT_SHARES, **(spec.v2x_shares or {})}["cyclist"]
        bikes = [t for t, info in vtypes.items() if info.vclass == "bicycle"]
        record["v2x"] = v2x_stats
        record["cyclist_app"] = equipped_trip_kpis(tripinfo_path(run_dir), bikes, share, spec.seed, "cyclist")
    if cosim is not None:
        record["cosim"] = cosim.stats()
    if log is not None:
        record["decisions"] = log.summary()
    if controller is not None:
        record.update(controller.report())
    return record


def sumo_log_lines(run_dir: Path) -> int:
    """Lines SUMO wrote to the run's error log (its warnings and errors; 0 on a clean run)."""
    from ivri.sumo.bridge import SUMO_LOG_FILENAME

    path = run_dir / SUMO_LOG_FILENAME
    if not path.is_file():
        return 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        return sum(1 for line in fh if line.strip())


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)) for k, v in params.items()}
