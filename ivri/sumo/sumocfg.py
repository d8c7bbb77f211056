"""Read the parts of a SUMO ``.sumocfg`` that the bridge needs.

SUMO configuration files hold one element per option, usually grouped in sections
(``<input><net-file value="..."/></input>``); SUMO itself ignores the section level, and so
does this reader. Options may use their long name or a synonym (``net-file`` / ``net`` /
``n``), file lists may be separated by commas or spaces, and relative paths are relative to
the folder of the ``.sumocfg`` (SUMO's own rule). Times are read by :func:`ivri.timefmt.parse_time_s`
(seconds, ``h:m:s`` or ``d:h:m:s``, as SUMO reads them).

Only what the bridge needs is interpreted (:class:`SumoConfig`); every other option is kept
as text in :attr:`SumoConfig.options`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ivri.errors import NetworkError
from ivri.timefmt import parse_time_s

__all__ = [
    "OptionOverride",
    "SumoConfig",
    "driving_overrides",
    "parse_time_s",
    "read_sumocfg",
    "split_file_list",
]

# SUMO's long option name and the synonyms it accepts in a configuration file.
_SYNONYMS = {
    "net-file": ("net-file", "net", "n"),
    "route-files": ("route-files", "routes", "r"),
    "additional-files": ("additional-files", "additional", "a"),
    "begin": ("begin", "b"),
    "end": ("end", "e"),
    "step-length": ("step-length",),
    "seed": ("seed",),
    # GUI options and their one-letter forms.
    "gui-settings-file": ("gui-settings-file", "g"),
    "quit-on-end": ("quit-on-end", "Q"),
    "game": ("game", "G"),
    "start": ("start", "S"),
    "delay": ("delay", "d"),
    "breakpoints": ("breakpoints", "B"),
    "demo": ("demo", "D"),
}
_CANONICAL = {alias: name for name, aliases in _SYNONYMS.items() for alias in aliases}


@dataclass(frozen=True)
class SumoConfig:
    """What a ``.sumocfg`` says about the run, with every path absolute."""

    path: Path
    net_file: Path
    route_files: tuple[Path, ...] = ()
    additional_files: tuple[Path, ...] = ()
    begin_s: float = 0.0
    end_s: float | None = None          # None: SUMO runs until all traffic has left
    step_length_s: float = 1.0
    seed: int | None = None
    options: dict[str, str] = field(default_factory=dict, repr=False)  # every option, as text


def split_file_list(value: str) -> list[str]:
    """SUMO file lists: separated by commas and / or white space."""
    return [p for p in re.split(r"[,\s]+", value.strip()) if p]


def read_sumocfg(path: str | Path) -> SumoConfig:
    """Read a ``.sumocfg``; raise :class:`~ivri.errors.NetworkError` naming the file and the problem.

    Errors: the file is missing or not XML, it names no network, or a file it references
    (network, routes, additional files) does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"SUMO configuration {path} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise NetworkError(f"SUMO configuration {path} is not valid XML: {exc}") from None
    except OSError as exc:
        raise NetworkError(f"SUMO configuration {path} cannot be read: {exc.strerror or exc}") from None
    if root.tag not in ("configuration", "sumoConfiguration"):
        raise NetworkError(
            f"SUMO configuration {path}: root element is <{root.tag}>, expected <configuration>"
        )

    options: dict[str, str] = {}
    for el in root.iter():
        if el is root or "value" not in el.attrib:
            continue
        options[_CANONICAL.get(el.tag, el.tag)] = el.attrib["value"]

    folder = path.resolve().parent

    def resolve(name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else (folder / p)

    def existing(names: list[str], option: str) -> tuple[Path, ...]:
        out = []
        for name in names:
            p = resolve(name)
            if not p.is_file():
                raise NetworkError(f"SUMO configuration {path}: {option} {name!r} does not exist ({p})")
            out.append(p)
        return tuple(out)

    net_names = split_file_list(options.get("net-file", ""))
    if not net_names:
        raise NetworkError(f"SUMO configuration {path} names no network (net-file)")
    if len(net_names) > 1:
        raise NetworkError(f"SUMO configuration {path} names more than one network: {net_names}")
    (net_file,) = existing(net_names, "net-file")

    def time_option(name: str, default: float | None) -> float | None:
        if name not in options:
            return default
        try:
            return parse_time_s(options[name], what=name)
        except ValueError as exc:
            raise NetworkError(f"SUMO configuration {path}: {exc}") from None

    begin_s = time_option("begin", 0.0)
    end_s = time_option("end", None)
    if end_s is not None and end_s < 0:
        end_s = None  # SUMO's "-1": no end
    step_s = time_option("step-length", 1.0)
    if step_s is None or step_s <= 0:
        raise NetworkError(f"SUMO configuration {path}: step-length must be positive, got {step_s}")
    seed = None
    if "seed" in options:
        try:
            seed = int(options["seed"])
        except ValueError:
            raise NetworkError(f"SUMO configuration {path}: seed {options['seed']!r} is not an integer") from None

    return SumoConfig(
        path=path.resolve(),
        net_file=net_file,
        route_files=existing(split_file_list(options.get("route-files", "")), "route file"),
        additional_files=existing(split_file_list(options.get("additional-files", "")), "additional file"),
        begin_s=float(begin_s or 0.0),
        end_s=end_s,
        step_length_s=float(step_s),
        seed=seed,
        options=options,
    )


# --- options written for other tools ---------------------------------------------------------

#: Options that only sumo-gui uses; plain sumo accepts them and does nothing with them.
_GUI_ONLY = ("start", "quit-on-end", "delay", "breakpoints", "game", "game.mode", "demo",
             "window-size", "window-pos", "tracker-interval", "registry-viewport", "osg-view",
             "gui-testing", "gui-testing-debug", "gui-testing.setting-output", "alternative-net-file",
             "edgedata-files", "selection-file", "demand-files", "input-color", "disable-textures")
#: Options that make SUMO write something and stop instead of simulating.
_STOP_INSTEAD = ("save-configuration", "save-template", "save-schema", "save-commented")
_TRUE = ("true", "1", "yes", "on", "x")


@dataclass(frozen=True)
class OptionOverride:
    """How the bridge treats one option of a ``.sumocfg`` that conflicts with the way ivri runs SUMO.

    ``args`` are the command-line options that override it (options on the command line win
    over the configuration file); empty when the option is honoured. ``note`` is the one line
    that says so.
    """

    option: str
    args: tuple[str, ...]
    note: str


def _is_true(value: str) -> bool:
    return value.strip().lower() in _TRUE


def driving_overrides(
    cfg: SumoConfig,
    *,
    backend: str,
    gui: bool,
    seeded: bool,
    command_line: dict[str, str],
    blank_gui_settings: Path,
) -> list[OptionOverride]:
    """The options of ``cfg`` that would make a run hang or diverge, and what ivri does with each.

    A configuration written for a controller coupled over TraCI (``remote-port``,
    ``num-clients``), for watching in sumo-gui (``start``, ``delay``, ``breakpoints``...) or
    with outputs of its own must not make ``ivri run`` wait for a client that never comes,
    pause, or lose the metrics' files. ``backend``/``gui`` say how SUMO is started,
    ``seeded`` whether the run gives ``--seed``, ``command_line`` the options (name without
    dashes -> value) ivri passes anyway (outputs, ``end``...); ``blank_gui_settings`` is where
    an empty visualisation settings file is written when a plain-sumo run must not open the
    configured one.

    Raises :class:`~ivri.errors.NetworkError` for an option that makes SUMO stop without
    simulating (``save-configuration`` and friends).
    """
    opts = cfg.options
    out: list[OptionOverride] = []

    def add(option: str, args: tuple[str, ...], note: str) -> None:
        out.append(OptionOverride(option, args, f"{cfg.path.name}: {note}"))

    for name in _STOP_INSTEAD:
        if opts.get(name):
            raise NetworkError(f"SUMO configuration {cfg.path} sets {name} {opts[name]!r}: SUMO would "
                               "write that file and stop without simulating; remove the option")

    port = opts.get("remote-port", "").strip()
    if port and port != "0":
        if backend == "libsumo" and not gui:
            add("remote-port", ("--remote-port", "0"),
                f"remote-port {port} ignored: ivri runs SUMO in-process (libsumo), a TraCI server "
                "would wait for a client that never connects")
        else:
            add("remote-port", (), f"remote-port {port} replaced by the port ivri's own TraCI "
                "connection uses")
    clients = opts.get("num-clients", "").strip()
    if clients and clients != "1":
        add("num-clients", ("--num-clients", "1"),
            f"num-clients {clients} set to 1: ivri is the only client, SUMO would wait for the others")

    step = cfg.step_length_s
    if abs(step - 1.0) > 1e-9 and "step-length" not in command_line:
        add("step-length", (), f"step-length {step:g} s honoured: the controllers and the safety "
            f"core tick every {step:g} s (the bundled scenarios use 1 s)")
    if _is_true(opts.get("random", "false")) and seeded:
        add("random", ("--random", "false"),
            "random ignored: a run uses the seed ivri gives it, so that runs repeat")

    for name in _GUI_ONLY:
        if name not in opts:
            continue
        value = opts[name]
        if not gui:
            add(name, (), f"{name} {value!r} is a sumo-gui option: no effect without --gui")
        elif name == "breakpoints":
            add(name, ("--breakpoints", ""), f"breakpoints {value!r} ignored: sumo-gui would pause "
                "the run there and the TraCI client wait for it")
        elif name in ("game", "demo") and _is_true(value):
            add(name, (f"--{name}", "false"), f"{name} ignored: ivri drives the simulation, "
                f"sumo-gui's {name} mode would take it over")
        elif name == "delay":
            add(name, (), f"delay {value} ms honoured in sumo-gui (it slows the run down)")
    settings = opts.get("gui-settings-file", "").strip()
    if settings:
        if gui:
            add("gui-settings-file", (), f"gui-settings-file {settings!r} honoured in sumo-gui")
        else:
            # Plain sumo opens the file only to check that it is there; a missing one stops it.
            blank_gui_settings.parent.mkdir(parents=True, exist_ok=True)
            blank_gui_settings.write_text("<viewsettings/>\n", encoding="utf-8")
            add("gui-settings-file", ("--gui-settings-file", str(blank_gui_settings)),
                f"gui-settings-file {settings!r} is a sumo-gui option: not loaded without --gui")

    tripinfo = command_line.get("tripinfo-output")
    if opts.get("personinfo-output") and tripinfo:
        add("personinfo-output", ("--personinfo-output", tripinfo),
            f"personinfo-output {opts['personinfo-output']!r} replaced: persons are written into "
            "the run's tripinfo file, where the metrics read them")
    for name, value in command_line.items():
        # begin, end and step-length on the command line are the user's own choice (--end).
        if name in opts and opts[name] != value and name not in ("begin", "end", "step-length"):
            add(name, (), f"{name} {opts[name]!r} replaced by ivri's {value!r} (needed for the metrics)")
    return out
