"""The ``ivri`` command: run scenarios, compare controllers, list what is bundled."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ivri.errors import ConfigError, IvriError
from ivri.national.cli import national

app = typer.Typer(
    name="ivri",
    help="ivri: an open engine for intelligent traffic lights. Run SUMO scenarios under "
    "different controllers and compare vehicle-loss hours, fuel, stops and delay per mode.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
if not console.is_terminal:
    # Piped into a file or CI log: rich would assume 80 columns and fold the KPI table.
    console = Console(width=200)
err_console = Console(stderr=True)


def _fail(message: str) -> NoReturn:
    # Escaped: a message may quote brackets (a config value, "pip install 'ivri[mqtt]'") that
    # rich would otherwise take for markup and drop.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _controller_names(controller: str | None, compare: str | None) -> list[str]:
    if controller and compare:
        raise ConfigError("give either --controller or --compare, not both")
    names = [n.strip() for n in (compare or controller or "actuated").split(",") if n.strip()]
    if not names:
        raise ConfigError("--compare needs at least one controller name")
    from ivri.controllers import validate_run_choice

    for n in names:
        validate_run_choice(n)
    return names


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="a bundled scenario (see `ivri scenarios`), e.g. "
                                            "'grid' or 'crossing:short', or a path to a .sumocfg")],
    controller: Annotated[str | None, typer.Option("--controller", "-c", help="controller to run "
                          "(see `ivri controllers`); 'sumo-native' runs SUMO's own programs, 'sumo-actuated' "
                          "and 'sumo-delay-based' switch them to SUMO's actuated or delay-based type")] = None,
    compare: Annotated[str | None, typer.Option(help="comma-separated controllers to run side by "
                       "side with the same seed, e.g. actuated,sumo-native,sumo-actuated,sumo-delay-based")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write kpis.json, a comparison "
                   "plot and SUMO's outputs into this folder")] = None,
    seed: Annotated[int, typer.Option(help="random seed for SUMO")] = 42,
    end: Annotated[float | None, typer.Option(help="stop the simulation at this time, in s of SUMO's clock, "
                   "instead of the scenario's end")] = None,
    config: Annotated[Path | None, typer.Option(help="intersection config (TOML/YAML/JSON) instead "
                      "of deriving the intersections from the SUMO network")] = None,
    traci: Annotated[bool, typer.Option("--traci", help="talk to SUMO over a TraCI socket instead "
                     "of libsumo (slower; for remote runs)")] = False,
    gui: Annotated[bool, typer.Option("--gui", help="watch the run in sumo-gui (implies --traci)")] = False,
    gui_delay: Annotated[float, typer.Option("--gui-delay", metavar="MS", help="with --gui: wait this "
                         "many milliseconds per simulation step")] = 0.0,
    gui_screenshot: Annotated[Path | None, typer.Option("--gui-screenshot", metavar="PNG", help="with "
                              "--gui: save a screenshot when an emergency vehicle's request is granted "
                              "near its stop line (else near the end)")] = None,
    rain: Annotated[Path | None, typer.Option(help="rain series (CSV: time_s,rain_mm_h) for the "
                    "'rain' application, e.g. -c actuated+rain --rain rain.csv")] = None,
    share: Annotated[list[str] | None, typer.Option("--share", help="share of road users with V2X "
                     "or the app, e.g. --share cyclist=0.3 (kinds: emergency, bus, truck, cyclist, "
                     "slow_pedestrian, car); repeatable")] = None,
    v2x: Annotated[str | None, typer.Option("--v2x", metavar="URL", help="co-simulation: the "
                   "equipped vehicles publish CAMs to this MQTT broker (mqtt://host:port; memory:// for one "
                   "in this process) and the gateway controls the lights over it, in lockstep with SUMO")] = None,
    cam_period: Annotated[float, typer.Option("--cam-period", metavar="SECONDS", help="how often an "
                          "equipped vehicle sends a CAM (0: every SUMO step)")] = 0.0,
) -> None:
    """Run a scenario under one or more controllers and print the KPIs.

    Priority applications join a base controller with '+', e.g.
    `-c actuated+greenflow+schwung+crosswalk`; each run with applications writes its
    decision log (decisions.jsonl) next to its outputs (see `ivri log`).
    """
    try:
        if (gui_delay or gui_screenshot) and not gui:
            raise ConfigError("--gui-delay and --gui-screenshot need --gui")
        if gui_delay < 0:
            raise ConfigError(f"--gui-delay {gui_delay:g}: a delay is >= 0 ms")
        _run(scenario, controller, compare, out, seed, end, config, traci, gui, rain,
             _parse_shares(share or []), v2x, cam_period, gui_delay, gui_screenshot)
    except IvriError as exc:
        _fail(str(exc))


def _parse_shares(items: list[str]) -> dict[str, float]:
    from ivri.sumo.v2x_options import DEFAULT_SHARES

    shares = {}
    for item in items:
        kind, eq, value = item.partition("=")
        if not eq or kind.strip() not in DEFAULT_SHARES:
            raise ConfigError(f"--share {item!r}: use KIND=SHARE with KIND one of {', '.join(DEFAULT_SHARES)}")
        try:
            v = float(value)
        except ValueError:
            raise ConfigError(f"--share {item!r}: {value!r} is not a number") from None
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"--share {item!r}: a share is between 0 and 1")
        shares[kind.strip()] = v
    return shares


def _run(scenario: str, controller: str | None, compare: str | None, out: Path | None, seed: int,
         end: float | None, config: Path | None, traci: bool, gui: bool, rain: Path | None = None,
         shares: dict[str, float] | None = None, v2x_broker: str | None = None,
         cam_period: float = 0.0, gui_delay: float = 0.0, gui_screenshot: Path | None = None) -> None:
    from ivri.metrics import kpi_table, plot_comparison, write_kpis_json
    from ivri.runner import RunSpec, resolve_scenario, run_controller

    names = _controller_names(controller, compare)
    label, _ = resolve_scenario(scenario)
    if v2x_broker is not None:
        from ivri.controllers import is_sumo_reference

        if any(is_sumo_reference(n) for n in names):
            raise ConfigError("--v2x needs ivri controllers; the sumo-* references run SUMO's own programs")
        from ivri.cosim import check_broker

        check_broker(v2x_broker)  # a bad URL or no broker fails before SUMO starts
    if config is not None:
        from ivri.config import load_network_config

        load_network_config(config)  # fail before SUMO starts
    out_dir = out if out is not None else Path(os.environ.get("TMPDIR", "/tmp")) / "ivri-run"
    records = []
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed:>6.0f}/{task.total:.0f} sim s"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                  transient=False) as bar:
        for name in names:
            task = bar.add_task(f"{label} · {name}", total=1.0)

            def report(done_s: float, total_s: float, task: int = task) -> None:
                bar.update(task, completed=done_s, total=total_s)

            spec = RunSpec(scenario=scenario, controller=name, seed=seed, out_dir=out_dir,
                           backend="traci" if (traci or gui) else "libsumo", gui=gui,
                           intersections=config, end_s=end,
                           rain=rain if "rain" in name.split("+") else None,
                           v2x_shares=shares or None, v2x_broker=v2x_broker,
                           v2x_cam_period_s=cam_period, gui_delay_ms=gui_delay,
                           gui_screenshot=gui_screenshot)
            records.append(run_controller(spec, progress=report))
    console.print(kpi_table(records))
    for r in records:
        if r.get("sumo_warnings"):
            from ivri.runner import run_dir_of
            from ivri.sumo.bridge import SUMO_LOG_FILENAME

            log = run_dir_of(out_dir, str(r["controller"])) / SUMO_LOG_FILENAME
            err_console.print(f"[yellow]note:[/] {r['controller']}: SUMO wrote {r['sumo_warnings']} warning "
                              f"line(s), see {log}", highlight=False, soft_wrap=True)
    if out is not None:
        from ivri.metrics.html_report import REPORT_FILENAME, write_html_report

        out.mkdir(parents=True, exist_ok=True)
        write_kpis_json(records, out / "kpis.json")
        plot_comparison(records, out / "comparison.png", title=f"{label} (seed {seed})")
        write_html_report(out, records, command=" ".join(["ivri", *sys.argv[1:]]) if sys.argv else None)
        console.print(f"wrote {out / 'kpis.json'}, {out / 'comparison.png'} and {out / REPORT_FILENAME}")


@app.command()
def derive(
    scenario: Annotated[str, typer.Argument(help="a bundled scenario or a path to a .sumocfg")],
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write: .yaml or .json")],
) -> None:
    """Write the intersections that ivri derives from a SUMO network, to review and edit.

    Signal groups, conflicts, intergreen times, timing limits and stages, in the format that
    `ivri run --config FILE` reads back.
    """
    try:
        _derive(scenario, out)
    except IvriError as exc:
        _fail(str(exc))


def _derive(scenario: str, out: Path) -> None:
    from ivri.config import NetworkConfig, write_data_file
    from ivri.runner import resolve_scenario
    from ivri.sumo.network import derive_intersections
    from ivri.sumo.sumocfg import read_sumocfg

    _, sumocfg = resolve_scenario(scenario)
    configs, maps = derive_intersections(read_sumocfg(sumocfg).net_file)
    write_data_file(out, NetworkConfig(intersections=tuple(configs)).model_dump(mode="json"))
    n_groups = sum(len(c.signal_groups) for c in configs)
    console.print(f"wrote {len(configs)} intersections with {n_groups} signal groups to {out}")
    n_merges = sum(len(m.merges) for m in maps)
    console.print(
        f"merges: {n_merges} pairs of links merge onto one lane and run green together; rule: they "
        "stay a partial conflict (green together), the turning stream gives way ('g'), between two "
        "straight or two turning streams the one with the higher link index; streams that SUMO's "
        "right-of-way or the program already make give way keep that"
    )


def _net_file(net: str) -> Path:
    """A ``.net.xml`` path, or the network of a bundled scenario or ``.sumocfg``."""
    if net.endswith(".net.xml"):
        return Path(net)
    from ivri.runner import resolve_scenario
    from ivri.sumo.sumocfg import read_sumocfg

    _, sumocfg = resolve_scenario(net)
    return Path(read_sumocfg(sumocfg).net_file)


@app.command("import-tlc")
def import_tlc(
    tlc: Annotated[Path, typer.Argument(help="a TLCGen controller file (.tlc)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="intersection config to write: .yaml or .json")],
    net: Annotated[str | None, typer.Option("--net", help="the SUMO network (.net.xml, or a scenario) "
                   "to check the conflicts against; needs --map")] = None,
    map_file: Annotated[Path | None, typer.Option("--map", help="mapping file: signal groups -> SUMO "
                        "links, detectors -> lanes (propose one with `ivri map-tlc`)")] = None,
    green_set: Annotated[str | None, typer.Option("--green-set", help="green-time set to take the "
                         "maximum greens from (default: the default period's)")] = None,
) -> None:
    """Import a TLCGen controller into ivri's intersection config, for `ivri run --config`.

    Signal groups, conflicts (intergreen in seconds), amber, guaranteed and maximum greens,
    stages from the module mill, detectors and priority ingress rules. Everything ivri does
    not represent is printed as one warning line each (and kept as comments in the file).
    With --net and --map the conflicts are checked against SUMO's foes: streams that cross
    but may be green together are refused unless the file marks them GK or the mapping lists
    them under allow_conflicts. The field-by-field mapping is in docs/tlcgen.md.
    """
    try:
        _import_tlc(tlc, out, net, map_file, green_set)
    except IvriError as exc:
        _fail(str(exc))


def _import_tlc(tlc: Path, out: Path, net: str | None, map_file: Path | None, green_set: str | None) -> None:
    from ivri.config import NetworkConfig, write_data_file
    from ivri.tlcgen import check_against_network, convert, load_tlc_map, read_tlc

    if net is not None and map_file is None:
        raise ConfigError("--net needs --map: propose a mapping with `ivri map-tlc FILE.tlc --net NET --out MAP.yaml`")
    ctl = read_tlc(tlc)
    mapping = load_tlc_map(map_file) if map_file is not None else None
    imported = convert(ctl, mapping, green_set)
    notes = []
    if net is not None and mapping is not None:
        notes = check_against_network(imported, mapping, _net_file(net))
    elif mapping is not None:
        imported.warnings.append("not checked against SUMO's foes: give --net")
    for line in imported.warnings:
        err_console.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    for line in notes:
        err_console.print(f"note: {line}", highlight=False, soft_wrap=True)
    header = "\n".join([f"imported by `ivri import-tlc` from {tlc.name}"
                        + (f" (green-time set {imported.green_set})" if imported.green_set else ""),
                        "not represented:" if imported.warnings else "",
                        *(f"  {w}" for w in imported.warnings)])
    data = NetworkConfig(intersections=(imported.config,)).model_dump(mode="json")
    write_data_file(out, data, header)
    x = imported.config
    console.print(f"wrote {out}: {len(x.signal_groups)} signal groups, {len(x.conflicts)} conflicts, "
                  f"{len(x.stages)} stages, {len(x.priority)} priority rules; {len(imported.warnings)} warnings")


@app.command("map-tlc")
def map_tlc(
    tlc: Annotated[Path, typer.Argument(help="a TLCGen controller file (.tlc)")],
    net: Annotated[str, typer.Option("--net", help="the SUMO network (.net.xml, or a scenario)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="mapping file to write: .yaml or .json")],
    tls: Annotated[str | None, typer.Option("--tls", help="the SUMO traffic light (needed when the "
                   "network has several)")] = None,
) -> None:
    """Propose where a TLCGen controller's signal groups and detectors are in a SUMO network.

    Arms clockwise from north, Dutch signal-group numbering (01-12 motor traffic, 21-28
    cyclists, 31-38 pedestrians) and each group's type; review the file before
    `ivri import-tlc --net ... --map ...`.
    """
    try:
        from ivri.tlcgen import propose_map, read_tlc, write_map

        mapping, notes = propose_map(read_tlc(tlc), _net_file(net), tls)
        write_map(mapping, out, "\n".join([f"proposed by `ivri map-tlc` for {tlc.name}: review before use",
                                           *notes]))
    except IvriError as exc:
        _fail(str(exc))
    for line in notes:
        err_console.print(f"note: {line}", highlight=False, soft_wrap=True)
    console.print(f"wrote {out}: {sum(1 for g in mapping.groups.values() if g.links)} of "
                  f"{len(mapping.groups)} signal groups placed on traffic light {mapping.tls_id}, "
                  f"{len(mapping.detectors)} detectors")


@app.command("log")
def log_summary(
    folder: Annotated[Path, typer.Argument(help="a run's output folder (searched for decisions.jsonl)")],
) -> None:
    """Summarise the priority decisions of the runs in FOLDER.

    Per priority class: requests, grants, refusals, time-outs and recoveries, and the reasons
    of refusals. The log holds no vehicle or app identities.
    """
    try:
        _log_summary(folder)
    except IvriError as exc:
        _fail(str(exc))


def _log_summary(folder: Path) -> None:
    from ivri.metrics.decisions import DECISIONS_FILENAME, summarise_decisions

    if not folder.exists():
        raise ConfigError(f"{folder} does not exist")
    paths = sorted(folder.rglob(DECISIONS_FILENAME)) if folder.is_dir() else [folder]
    if not paths:
        raise ConfigError(f"no {DECISIONS_FILENAME} under {folder}: run with priority applications "
                          "(e.g. -c actuated+greenflow) and --out")
    for path in paths:
        try:
            summary = summarise_decisions([path])
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        table = Table(title=f"decisions: {path.parent.name}")
        for col in ("class", "requests", "grants", "refusals", "time-outs", "deferred", "releases",
                    "recoveries", "grant rate"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for cls, row in summary["by_class"].items():
            rate = "-" if row["grant_rate"] is None else f"{row['grant_rate']:.0%}"
            table.add_row(cls, *(str(row[k]) for k in ("requests", "grants", "refusals", "time-outs",
                                                         "deferred", "releases", "recoveries")), rate)
        console.print(table)
        if summary["reasons"]:
            reasons = Table(title="why requests were refused, deferred or timed out")
            for col in ("class", "event", "reason", "count"):
                reasons.add_column(col)
            for r in summary["reasons"][:15]:
                reasons.add_row(r["priority_class"], r["event"], r["reason"], str(r["count"]))
            console.print(reasons)


@app.command()
def plot(
    folder: Annotated[Path, typer.Argument(help="a run's output folder (--out of `ivri run`), or one "
                                           "controller's folder in it")],
    intersection: Annotated[str, typer.Option("--intersection", "-i", help="intersection id (see "
                            "`ivri derive`)")],
    t_from: Annotated[float | None, typer.Option("--from", metavar="S", help="start of the window, in s of "
                                                          "SUMO's clock (a scenario may start at its hour of "
                                                          "day, e.g. 57600)")] = None,
    t_to: Annotated[float | None, typer.Option("--to", metavar="S", help="end of the window, in s of SUMO's clock")] = None,
) -> None:
    """Draw the signal timeline of one intersection: per signal group its red, green and amber
    over time, the detector occupancy and calls beneath, priority requests and grants above.

    Writes timeline_<ID>.png and .svg next to each run's timeline.npz in FOLDER.
    """
    try:
        _plot(folder, intersection, t_from, t_to)
    except IvriError as exc:
        _fail(str(exc))


def _plot(folder: Path, intersection: str, t_from: float | None, t_to: float | None) -> None:
    from ivri.metrics.timeline import TIMELINE_FILENAME, load_timeline
    from ivri.metrics.timeline_plot import plot_timeline

    if not folder.exists():
        raise ConfigError(f"{folder} does not exist")
    paths = sorted(folder.rglob(TIMELINE_FILENAME)) if folder.is_dir() else [folder]
    if not paths:
        raise ConfigError(f"no {TIMELINE_FILENAME} under {folder}: run an ivri controller with --out first")
    for path in paths:
        try:
            timeline = load_timeline(path)
            stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in intersection)
            written = plot_timeline(timeline, intersection, path.parent / f"timeline_{stem}.png", t_from=t_from,
                                    t_to=t_to, title=f"{intersection} under {path.parent.name}")
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{path}: {exc.args[0] if exc.args else exc}") from None
        console.print(f"wrote {', '.join(str(w) for w in written)}")


@app.command()
def gateway(
    config: Annotated[Path, typer.Option("--config", help="network config (TOML/YAML/JSON): "
                      "signal groups, conflicts, timing")],
    sites: Annotated[Path | None, typer.Option("--sites", help="site file: approach geometry, "
                     "ITS ids, signal group numbers (see docs/gateway.md)")] = None,
    broker: Annotated[str, typer.Option("--broker", help="mqtt://host[:port] or mqtts://...")]
    = "mqtt://127.0.0.1:1883",
    region: Annotated[str, typer.Option(help="topic level: ivri/<region>/<intersection>/...")] = "nl",
    controller: Annotated[str, typer.Option("--controller", "-c", help="controller spec "
                          "(see `ivri controllers`)")] = "actuated+greenflow+schwung+bus",
    codec: Annotated[str, typer.Option(help="payload codec: json or uper")] = "json",
    asn1_dir: Annotated[Path | None, typer.Option("--asn1-dir", help="ASN.1 modules for --codec "
                        "uper (default: $IVRI_ASN1_DIR)")] = None,
    trust: Annotated[Path | None, typer.Option("--trust", help="trust store (directory or "
                     ".toml/.json): the issuers of authorisation tickets and the revocation list "
                     "(deploy/pki/issue_ticket.py); without it every SREM is refused")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="directory for the "
                         "replay state of signed requests, kept across restarts")] = None,
    allow_cam_priority: Annotated[bool, typer.Option("--allow-cam-priority", help="closed test "
                                  "sites only: CAMs of emergency vehicles, buses and trucks get "
                                  "priority without a signed request")] = False,
    tick: Annotated[float, typer.Option("--tick", help="engine tick, seconds of wall time")] = 0.5,
    spat_every: Annotated[float, typer.Option("--spat-every", help="SPATEM period, seconds "
                          "(also sent at once on every change)")] = 1.0,
    always_demand: Annotated[bool, typer.Option("--always-demand", help="treat every signal "
                             "group as calling (no detectors in live mode)")] = False,
    username: Annotated[str | None, typer.Option(help="MQTT user name")] = None,
    ca_file: Annotated[Path | None, typer.Option("--ca-file", help="CA certificate (PEM) to "
                       "trust for an mqtts:// broker, e.g. a self-signed one")] = None,
    password_env: Annotated[str, typer.Option("--password-env", help="environment variable that "
                            "holds the MQTT password")] = "IVRI_MQTT_PASSWORD",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every priority decision")]
    = False,
) -> None:
    """Run the live MQTT gateway: CAM / SREM in, SPATEM / SSEM / MAPEM out, until Ctrl-C.

    The topic layout and a walk-through with mosquitto are in docs/gateway.md.
    """
    import asyncio
    import logging
    import signal

    try:
        from ivri.gateway.security import TrustStore
        from ivri.gateway.service import GatewayService
    except ModuleNotFoundError as exc:
        _fail(f"the live gateway needs the mqtt extra, which is not installed ({exc}); "
              "pip install 'ivri[mqtt]'")
    try:
        from ivri.config import load_network_config
        from ivri.gateway.settings import gateway_settings
        from ivri.gateway.site import load_gateway_sites

        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # Every setting is checked here, before a file is read or a connection made.
        settings = gateway_settings(
            broker_url=broker, region=region, controller=controller, codec=codec, asn1_dir=asn1_dir,
            state_dir=state_dir, allow_cam_priority=allow_cam_priority, tick_s=tick,
            spat_every_s=spat_every, always_demand=always_demand, username=username,
            password=os.environ.get(password_env) if username else None, ca_file=ca_file,
        )
        service = GatewayService(
            load_network_config(config), settings,
            trust_store=TrustStore.load(trust) if trust is not None else None,
            sites=load_gateway_sites(sites) if sites is not None else None,
        )
    except IvriError as exc:
        _fail(str(exc))
    if trust is None:
        err_console.print("[yellow]warning:[/] no --trust given: every SREM will be refused")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        n = len(service.net.intersection_ids)
        err_console.print(f"gateway: {n} intersection(s) on {broker}, topics "
                          f"ivri/{region}/<id>/..., controller {controller}; Ctrl-C to stop")
        await service.run()

    try:
        asyncio.run(main())
    except IvriError as exc:
        _fail(str(exc))
    console.print(service.stats())


@app.command()
def scenarios() -> None:
    """List the bundled scenarios."""
    from ivri.sumo_networks import bundled_scenarios

    table = Table(title="bundled scenarios")
    table.add_column("name")
    table.add_column("description")
    table.add_column("sumocfg", overflow="fold")
    for s in bundled_scenarios():
        name = s.name if s.variant == "peak" else f"{s.name}:{s.variant}"
        table.add_row(name, s.description, str(s.sumocfg))
    console.print(table)


@app.command("fetch-realworld")
def fetch_realworld(
    names: Annotated[list[str] | None, typer.Argument(help="networks to fetch (default: the "
                     "benchmark's test set); see ivri/sumo_networks/README.md")] = None,
    folder: Annotated[Path | None, typer.Option("--dir", help="where to unpack them (default: "
                      "$IVRI_REALWORLD_DIR or ~/.cache/ivri/realworld)")] = None,
    wheel: Annotated[Path | None, typer.Option(help="a local copy of the sumo-rl 1.4.5 wheel "
                     "instead of downloading it")] = None,
) -> None:
    """Fetch real-world city networks with their own demand (RESCO: Cologne, Ingolstadt).

    Downloads the sumo-rl 1.4.5 wheel from PyPI with pip, checks its SHA-256 and unpacks only
    the networks; they are not part of ivri (their licences: CC BY-NC-SA 3.0, GPL-3.0). Run
    them with `ivri run realworld:NAME`.
    """
    from ivri.sumo_networks.realworld import DEFAULT_SET, NETWORKS, fetch

    try:
        found = fetch(names or DEFAULT_SET, dest=folder, wheel=wheel)
    except IvriError as exc:
        _fail(str(exc))
    table = Table(title="real-world networks")
    for col in ("scenario", "city", "traffic lights", "licence", "sumocfg"):
        table.add_column(col, overflow="fold")
    for name, cfg in found.items():
        info = NETWORKS[name]
        table.add_row(f"realworld:{name}", info.city, str(info.traffic_lights), info.licence, str(cfg))
    console.print(table)


@app.command()
def controllers() -> None:
    """List the controllers that `ivri run --controller` accepts."""
    from ivri.controllers import describe_controllers

    table = Table(title="controllers")
    table.add_column("name")
    table.add_column("what it does")
    for name, text in describe_controllers().items():
        table.add_row(name, text)
    console.print(table)


app.command()(national)


def main() -> None:
    """Entry point that turns every deliberate error into one line and a non-zero exit."""
    try:
        app()
    except IvriError as exc:  # raised outside a command body
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


__all__ = ["app", "main"]
